//! The desk's index of open work on DynamoDB: an action item awaiting
//! approval or a planned call, and an open contact hold, carry the sparse
//! `GSI1PK = WORK#<shard>` and a `GSI1SK` of `<queue>#<decided on>#<entry>` while
//! they are open work; every write of an action ([`Dynamo::put_action`],
//! the one write path of action items) and of a hold sets or removes them.
//! The index projects keys only, so the entry a queue row needs (kind,
//! invoice, label, segment, risk, the balance when the sweep recorded the
//! action, the due date, a call's "call again on" day) is in `GSI1SK`
//! itself, as compact JSON: listing the whole queue is one Query per
//! shard, run together, each paged by DynamoDB (1 MB, about 3,000
//! entries, a page), never a scan and never a read of the book.

use super::codec::{decode, encode, get_s, item, s, trail_line};
use super::{Dynamo, Item};
use crate::error::{AwsError, Service};
use crate::keys::{self, DOC, GSI1, GSI1PK, GSI1SK, PK, SK, STATUS, TRAIL};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::NaiveDate;
use collect_delivery::ledger::{TrailNote, WorkEntry, WorkKind, work_of_action};
use collect_engine::domain::{ActionRecord, ActionStatus, Event, Invoice};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The prefix of the index partitions of open work: `WORK#<partition>`,
/// the customer's [`keys::work_partition`] (its virtual shard folded onto
/// at most 64 partitions), so a queue is read by one Query per partition,
/// all at once.
pub const WORK_GSI_PREFIX: &str = "WORK#";

/// The index partition of a customer's open work.
pub fn work_gsi_pk(shard: u32) -> String {
    format!("{WORK_GSI_PREFIX}{shard}")
}

/// The longest label or segment kept in an index entry (a sort key holds
/// at most 1,024 bytes).
const TEXT_MAX: usize = 120;

/// What `GSI1SK` carries after `<queue>#<decided on>#`.
#[derive(Debug, Serialize, Deserialize)]
struct Row {
    k: WorkKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    i: Option<String>,
    l: String,
    s: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    b: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<NaiveDate>,
}

fn cut(t: &str) -> String {
    t.chars().take(TEXT_MAX).collect()
}

/// The `GSI1SK` of an entry.
pub fn work_sk(w: &WorkEntry) -> Result<String, AwsError> {
    let row = Row {
        k: w.kind,
        i: w.invoice_id.clone(),
        l: cut(&w.label),
        s: cut(&w.segment),
        r: w.risk.filter(|r| r.is_finite()),
        b: w.balance,
        c: w.currency.clone(),
        d: w.due_date,
        a: w.call_again_on,
    };
    Ok(format!("{}#{}#{}", w.queue, w.decided_on, encode(&row)?))
}

/// The entry of an index item's keys (`None` when they are not one).
fn parse_work(pk: &str, sk: &str, gsk: &str) -> Option<WorkEntry> {
    let customer_id = keys::customer_of_pk(pk)?.to_string();
    let (queue, rest) = gsk.split_once('#')?;
    let (decided_on, json) = rest.split_once('#')?;
    let row: Row = serde_json::from_str(json).ok()?;
    let task_id = match row.k {
        WorkKind::FixContact => collect_engine::contact::hold_task_id(&customer_id),
        _ => sk.strip_prefix(keys::ACTION_PREFIX)?.to_string(),
    };
    Some(WorkEntry {
        task_id,
        kind: row.k,
        queue: queue.to_string(),
        customer_id,
        invoice_id: row.i,
        label: row.l,
        segment: row.s,
        risk: row.r,
        decided_on: decided_on.parse().ok()?,
        balance: row.b,
        currency: row.c,
        due_date: row.d,
        call_again_on: row.a,
    })
}

impl Dynamo {
    /// The index entry of an action about to be written, if it is open
    /// work, with its invoice's open amount and due date read now (two
    /// requests, only for the few actions that wait for a person).
    pub(super) async fn work_entry(&self, r: &ActionRecord) -> Result<Option<WorkEntry>, AwsError> {
        let Some(mut w) = work_of_action(r) else {
            return Ok(None);
        };
        let pk = keys::customer_pk(&r.customer_id);
        if let Some((invoice, _, _)) = self
            .get_doc::<Invoice>(&pk, &keys::invoice_sk(&r.invoice_id))
            .await?
        {
            let paid = self.paid(&r.customer_id, &r.invoice_id).await?;
            w.balance = Some(invoice.amount.saturating_sub(paid));
            w.currency = Some(invoice.currency);
            w.due_date = Some(invoice.due_date);
        }
        Ok(Some(w))
    }

    /// The hold item's index keys while it is open.
    pub(super) fn index_hold(
        &self,
        it: &mut Item,
        hold: &collect_engine::contact::ContactHold,
    ) -> Result<(), AwsError> {
        if let Some(w) = collect_delivery::ledger::work_of_hold(hold) {
            let partition = keys::work_partition(&hold.customer_id, self.shards);
            it.insert(GSI1PK.to_string(), s(work_gsi_pk(partition)));
            it.insert(GSI1SK.to_string(), s(work_sk(&w)?));
        }
        Ok(())
    }

    /// The open work of one queue or all: a Query of each shard's index
    /// partition `WORK#<shard>` (with `begins_with(GSI1SK, "<queue>#")` for
    /// one queue), the shards together.
    pub async fn open_work(&self, queue: Option<&str>) -> Result<Vec<WorkEntry>, AwsError> {
        let mut tasks = tokio::task::JoinSet::new();
        for shard in 0..keys::work_partitions(self.shards) {
            let me = self.clone();
            let queue = queue.map(str::to_string);
            tasks.spawn(async move { me.open_work_of(shard, queue.as_deref()).await });
        }
        let mut out = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let part = joined.map_err(|source| AwsError::Task {
                operation: "Query",
                source,
            })??;
            out.extend(part);
        }
        Ok(out)
    }

    async fn open_work_of(
        &self,
        shard: u32,
        queue: Option<&str>,
    ) -> Result<Vec<WorkEntry>, AwsError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .expression_attribute_names("#pk", GSI1PK)
                .expression_attribute_values(":pk", s(work_gsi_pk(shard)))
                .set_exclusive_start_key(start.take());
            q = match queue {
                None => q.key_condition_expression("#pk = :pk"),
                Some(name) => q
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :queue)")
                    .expression_attribute_names("#sk", GSI1SK)
                    .expression_attribute_values(":queue", s(format!("{name}#"))),
            };
            let page = q
                .send()
                .await
                .map_err(|e| AwsError::sdk(Service::DynamoDb, "Query", e))?;
            for it in page.items() {
                if let (Some(pk), Some(sk), Some(gsk)) =
                    (get_s(it, PK), get_s(it, SK), get_s(it, GSI1SK))
                    && let Some(w) = parse_work(pk, sk, gsk)
                {
                    out.push(w);
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Writes a customer's invoice events, each unless its id is stored.
    pub async fn put_customer_events(
        &self,
        customer_id: &str,
        events: &[Event],
    ) -> Result<Vec<bool>, AwsError> {
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let Some(invoice_id) = &e.invoice_id else {
                out.push(false);
                continue;
            };
            self.unfold_if_folded(customer_id, invoice_id).await?;
            let it = item(
                keys::customer_pk(customer_id),
                keys::invoice_event_sk(invoice_id, &e.event_id),
                "event",
                encode(e)?,
            );
            out.push(self.put_new(it).await?);
        }
        Ok(out)
    }

    /// A trail line that changes no status, if the action's status is
    /// still `expected` and its document unchanged since read; with a
    /// "call again on" day, the index entry carries it.
    pub async fn note_action(
        &self,
        action: &ActionRecord,
        expected: ActionStatus,
        note: &TrailNote,
        day: NaiveDate,
    ) -> Result<bool, AwsError> {
        let pk = keys::customer_pk(&action.customer_id);
        let sk = keys::action_sk(&action.action_id);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk.clone()))
            .key(SK, s(sk.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::sdk(Service::DynamoDb, "GetItem", e))?;
        let Some(stored) = out.item else {
            return Ok(false);
        };
        let current: ActionRecord = decode(&stored)?;
        if current.status != expected {
            return Ok(false);
        }
        let doc = get_s(&stored, DOC).unwrap_or_default().to_string();
        let mut line = current.clone();
        line.note = Some(note.note.clone());
        line.decided_by = Some(note.by.clone());
        let mut set = "#trail = list_append(if_not_exists(#trail, :empty), :line)".to_string();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(pk.clone()))
            .key(SK, s(sk.clone()))
            .condition_expression("#status = :expected AND #doc = :doc")
            .expression_attribute_names("#trail", TRAIL)
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#doc", DOC)
            .expression_attribute_values(":expected", s(expected.as_str()))
            .expression_attribute_values(":doc", s(doc))
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":line", AttributeValue::L(vec![trail_line(&line, day)]));
        if let Some(on) = note.call_again_on
            && let (Some(gsk), Some(_)) = (get_s(&stored, GSI1SK), get_s(&stored, GSI1PK))
            && let Some(mut w) = parse_work(&pk, &sk, gsk)
        {
            w.call_again_on = Some(on);
            set.push_str(", #gsk = :gsk");
            update = update
                .expression_attribute_names("#gsk", GSI1SK)
                .expression_attribute_values(":gsk", s(work_sk(&w)?));
        }
        match update.update_expression(format!("SET {set}")).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(super::conditional_failed) => Ok(false),
            Err(e) => Err(AwsError::sdk(Service::DynamoDb, "UpdateItem", e)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_goes_through_its_sort_key_and_back() {
        let w = WorkEntry {
            task_id: "act-1".to_string(),
            kind: WorkKind::Call,
            queue: "collections".to_string(),
            customer_id: "C#1".to_string(),
            invoice_id: Some("I-1".to_string()),
            label: "call collections".to_string(),
            segment: "standard".to_string(),
            risk: Some(0.25),
            decided_on: "2027-03-10".parse().unwrap(),
            balance: Some("7000.00".parse().unwrap()),
            currency: Some("USD".to_string()),
            due_date: Some("2027-02-17".parse().unwrap()),
            call_again_on: Some("2027-03-12".parse().unwrap()),
        };
        let gsk = work_sk(&w).unwrap();
        assert!(gsk.starts_with("collections#2027-03-10#"), "{gsk}");
        let back = parse_work(&keys::customer_pk("C#1"), "ACTION#act-1", &gsk).unwrap();
        assert_eq!(back, w);
        assert!(gsk.len() < 400, "{}", gsk.len());
    }
}
