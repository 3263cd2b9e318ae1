//! Records to items and back: the keys of every item, the document
//! (`doc`, the record's JSON), the attributes of the sparse index, and the
//! lines of an action's audit trail.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::NaiveDate;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Dynamo;
use crate::error::{AwsError, CorruptError, EncodeError};
use crate::keys::{self, DOC, GSI1PK, GSI1SK, KIND, PK, SK, TRAIL};
use collect_delivery::ledger::LogEntry;
use collect_engine::domain::{ActionRecord, Customer, Invoice, Payment};

/// An item as the SDK reads and writes it.
pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.as_str()),
        _ => None,
    }
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Result<String, AwsError> {
    serde_json::to_string(v).map_err(|e| EncodeError::new("a record", e).into())
}

pub(crate) fn decode<T: DeserializeOwned>(item: &Item) -> Result<T, AwsError> {
    let key = format!(
        "{}/{}",
        get_s(item, PK).unwrap_or("?"),
        get_s(item, SK).unwrap_or("?")
    );
    let doc = get_s(item, DOC).ok_or_else(|| CorruptError::no_attribute(key.clone(), DOC))?;
    serde_json::from_str(doc).map_err(|e| CorruptError::json(key, e).into())
}

pub(crate) fn conditional_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

/// An item's keys plus its document.
pub(crate) fn item(pk: String, sk: String, kind: &str, doc: String) -> Item {
    let mut it = Item::new();
    it.insert(PK.to_string(), s(pk));
    it.insert(SK.to_string(), s(sk));
    it.insert(KIND.to_string(), s(kind));
    it.insert(DOC.to_string(), s(doc));
    it
}

impl Dynamo {
    pub(super) fn customer_item(&self, c: &Customer) -> Result<Item, AwsError> {
        let mut it = item(
            keys::customer_pk(&c.customer_id),
            keys::CUSTOMER_SK.to_string(),
            "customer",
            encode(c)?,
        );
        let shard = keys::shard_of(&c.customer_id, self.shards);
        it.insert(GSI1PK.to_string(), s(keys::customers_gsi_pk(shard)));
        it.insert(GSI1SK.to_string(), s(c.customer_id.clone()));
        Ok(it)
    }

    /// An invoice; `open` puts it in the sparse index of open invoices.
    pub(super) fn invoice_item(&self, i: &Invoice, open: bool) -> Result<Item, AwsError> {
        let mut it = item(
            keys::customer_pk(&i.customer_id),
            keys::invoice_sk(&i.invoice_id),
            "invoice",
            encode(i)?,
        );
        if open {
            let shard = keys::shard_of(&i.customer_id, self.shards);
            it.insert(GSI1PK.to_string(), s(keys::open_gsi_pk(shard)));
            it.insert(
                GSI1SK.to_string(),
                s(keys::open_gsi_sk(i.due_date, &i.invoice_id)),
            );
        }
        Ok(it)
    }

    pub(super) fn invoice_ref_item(i: &Invoice) -> Item {
        let mut it = Item::new();
        it.insert(PK.to_string(), s(keys::invoice_ref_pk(&i.invoice_id)));
        it.insert(SK.to_string(), s(keys::REF_SK));
        it.insert(KIND.to_string(), s("invoice_ref"));
        it.insert(keys::CUSTOMER_ID.to_string(), s(i.customer_id.clone()));
        it
    }

    pub(super) fn payment_item(customer_id: &str, p: &Payment) -> Result<Item, AwsError> {
        Ok(item(
            keys::customer_pk(customer_id),
            keys::payment_sk(&p.invoice_id, &p.payment_id),
            "payment",
            encode(p)?,
        ))
    }
}

/// One line of an action's trail: `day` and `status` always; `note`,
/// `by` and `risk` when the record has them (short, so a line stays small).
pub(super) fn trail_line(r: &ActionRecord, day: NaiveDate) -> AttributeValue {
    let mut line = HashMap::new();
    line.insert("day".to_string(), s(day.to_string()));
    line.insert("status".to_string(), s(r.status.as_str()));
    if let Some(note) = &r.note {
        line.insert("note".to_string(), s(note.clone()));
    }
    if let Some(by) = &r.decided_by {
        line.insert("by".to_string(), s(by.clone()));
    }
    // A number DynamoDB can hold: a finite one (a risk is a probability).
    if let Some(risk) = r.risk.filter(|r| r.is_finite()) {
        line.insert("risk".to_string(), AttributeValue::N(risk.to_string()));
    }
    AttributeValue::M(line)
}

/// A stored trail line, as the port's [`LogEntry`] (`seq` from 1).
pub(super) fn read_trail_line(
    action_id: &str,
    index: usize,
    line: &AttributeValue,
) -> Result<LogEntry, AwsError> {
    let key = || format!("{}{action_id}/{TRAIL}[{index}]", keys::ACTION_PREFIX);
    let AttributeValue::M(m) = line else {
        return Err(CorruptError::not_a_map(key()).into());
    };
    let text = |name: &str| match m.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    };
    let day = text("day")
        .ok_or_else(|| CorruptError::no_field(key(), "day"))?
        .parse::<NaiveDate>()
        .map_err(|e| CorruptError::not_a_date(key(), "day", e))?;
    let status = text("status").ok_or_else(|| CorruptError::no_field(key(), "status"))?;
    let risk = match m.get("risk") {
        Some(AttributeValue::N(v)) => Some(
            v.parse::<f64>()
                .map_err(|e| CorruptError::not_a_number(key(), "risk", v, e))?,
        ),
        _ => None,
    };
    Ok(LogEntry {
        action_id: action_id.into(),
        seq: i64::try_from(index).unwrap_or(i64::MAX).saturating_add(1),
        day,
        status,
        note: text("note"),
        by: text("by"),
        risk,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use collect_engine::domain::PostalAddress;
    use collect_testkit::book::customer;

    fn customer_doc(c: &Customer) -> Item {
        item(
            keys::customer_pk(&c.customer_id),
            keys::CUSTOMER_SK.to_string(),
            "customer",
            encode(c).unwrap(),
        )
    }

    #[test]
    fn a_customer_with_a_postal_address_round_trips() {
        let c = Customer {
            country: Some("CA".into()),
            address: PostalAddress {
                line1: Some("100 Queen St W".into()),
                line2: Some("Floor 3".into()),
                postal_code: Some("M5H 2N2".into()),
                city: Some("Toronto".into()),
                region: Some("ON".into()),
            },
            ..customer("C1")
        };
        let it = customer_doc(&c);
        assert_eq!(decode::<Customer>(&it).unwrap(), c);
    }

    #[test]
    fn a_customer_item_written_before_the_address_reads_without_one() {
        let c = customer("C2");
        let it = customer_doc(&c);
        let doc = get_s(&it, DOC).unwrap();
        assert!(!doc.contains("address"), "no empty address written: {doc}");
        let mut old: serde_json::Value = serde_json::from_str(doc).unwrap();
        old.as_object_mut().unwrap().remove("address");
        let mut it = it.clone();
        it.insert(DOC.to_string(), s(old.to_string()));
        let back: Customer = decode(&it).unwrap();
        assert!(back.address.is_empty());
        assert_eq!(back, c);
    }
}
