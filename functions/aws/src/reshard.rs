//! Re-indexing a table to another number of virtual shards: the upgrade of
//! a stack whose items carry the keys of `shard_of(_, Shards)` (before
//! virtual shards, the stack's `Shards` was the index's layout), or any
//! later change of `VirtualShards`.
//!
//! Only the sparse index's keys move: `GSI1PK` of the items that carry
//! one (`S#<n>#OPEN`, `S#<n>#CUSTOMERS`, `S#<n>#MESSAGES`, `WORK#<n>`) is
//! rewritten to the customer's virtual shard (or work partition) under the
//! new count; `GSI1SK`, the documents and every other attribute stay. One
//! Scan page at a time (keys and `customer_id` only), one conditional
//! `UpdateItem` per item whose key changes (`GSI1PK` as read: a write that
//! changed it meanwhile wins and is counted, not overwritten).
//!
//! **Resumable.** Each page returns the Scan's position as a text
//! [`Cursor`]: a run stopped anywhere goes on from its last cursor, and a
//! run from the start again rewrites nothing already right (an item whose
//! key is already the new one is not written). The Scan can be split in
//! `segments` run side by side (DynamoDB's parallel scan).
//!
//! **How to change the count** (README, "Operations"): deploy the stack
//! with the new `VirtualShards` between two sweeps (from then on every
//! write uses the new keys), run `collect reindex` (or [`reindex`]) to its
//! end, then let the next sweep run. A sweep during the re-index misses the
//! customers whose keys are not rewritten yet; re-running the day after the
//! re-index (`{"day": …}` on the coordinator) sends what they are owed, and
//! nothing twice.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use super::dynamo::{Dynamo, Item, WORK_GSI_PREFIX, conditional_failed, get_s, s};
use super::error::{AwsError, Service};
use super::keys::{self, CUSTOMER_ID, GSI1PK, PK, SK};

/// Where a re-index's Scan stopped: the last key it read, as text
/// (`{"PK": …, "SK": …}`), to give back to go on.
pub type Cursor = String;

/// What one page of a re-index did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReindexPage {
    /// Items read that carry an index key.
    pub scanned: usize,
    /// Items whose `GSI1PK` was rewritten.
    pub rewritten: usize,
    /// Items already keyed for the new count.
    pub unchanged: usize,
    /// Items another write changed between the read and the rewrite (left
    /// as that write made them: it used the keys of the code that wrote).
    pub changed_meanwhile: usize,
    /// Items with an index key this re-index does not know, or no customer
    /// (left alone): `(PK, SK)`.
    pub skipped: Vec<(String, String)>,
    /// Where to go on; `None` when the Scan (or its segment) is done.
    pub cursor: Option<Cursor>,
}

/// The `GSI1PK` an item keyed `old` (of `customer_id`) carries when the
/// table has `virtual_shards`; `None` for a key this re-index leaves alone.
pub fn rekey(old: &str, customer_id: &str, virtual_shards: u32) -> Option<String> {
    if let Some(n) = old.strip_prefix(WORK_GSI_PREFIX) {
        n.parse::<u32>().ok()?;
        return Some(super::dynamo::work_gsi_pk(keys::work_partition(
            customer_id,
            virtual_shards,
        )));
    }
    let rest = old.strip_prefix("S#")?;
    let (n, kind) = rest.split_once('#')?;
    n.parse::<u32>().ok()?;
    if !["OPEN", "CUSTOMERS", "MESSAGES"].contains(&kind) {
        return None;
    }
    let v = keys::shard_of(customer_id, virtual_shards);
    Some(format!("S#{v}#{kind}"))
}

fn cursor_of(last: &HashMap<String, AttributeValue>) -> Result<Cursor, AwsError> {
    let mut keys = std::collections::BTreeMap::new();
    for name in [PK, SK] {
        if let Some(v) = get_s(last, name) {
            keys.insert(name, v.to_string());
        }
    }
    serde_json::to_string(&keys)
        .map_err(|e| super::error::EncodeError::new("the re-index cursor", e).into())
}

/// Why a re-index stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReindexError {
    /// The cursor to go on from is not one a re-index printed.
    #[error(
        "the re-index cursor `{cursor}` is not one a re-index printed ({reason}); \
         help: give the last `cursor` a re-index printed, or none to start again from the beginning"
    )]
    BadCursor { cursor: String, reason: String },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// A cursor given back; an error names what is wrong with it.
fn start_of(cursor: &str) -> Result<Item, ReindexError> {
    #[derive(Deserialize)]
    struct Keys {
        #[serde(rename = "PK")]
        pk: String,
        #[serde(rename = "SK")]
        sk: String,
    }
    let k: Keys = serde_json::from_str(cursor).map_err(|e| ReindexError::BadCursor {
        cursor: cursor.to_string(),
        reason: e.to_string(),
    })?;
    let mut it = Item::new();
    it.insert(PK.to_string(), s(k.pk));
    it.insert(SK.to_string(), s(k.sk));
    Ok(it)
}

/// One Scan page of the re-index to `virtual_shards` (of segment
/// `segment` of `segments` when given), from `cursor`.
pub async fn reindex_page(
    dynamo: &Dynamo,
    virtual_shards: u32,
    segment: Option<(i32, i32)>,
    cursor: Option<&str>,
    limit: i32,
) -> Result<ReindexPage, ReindexError> {
    let mut scan = dynamo
        .client()
        .scan()
        .table_name(dynamo.table())
        .filter_expression("attribute_exists(#gpk)")
        .projection_expression("#pk, #sk, #gpk, #cid")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#sk", SK)
        .expression_attribute_names("#gpk", GSI1PK)
        .expression_attribute_names("#cid", CUSTOMER_ID)
        .limit(limit.max(1));
    if let Some((segment, total)) = segment {
        scan = scan.segment(segment).total_segments(total);
    }
    if let Some(c) = cursor {
        scan = scan.set_exclusive_start_key(Some(start_of(c)?));
    }
    let out = scan
        .send()
        .await
        .map_err(|e| ReindexError::from(AwsError::sdk(Service::DynamoDb, "Scan", e)))?;
    let mut page = ReindexPage::default();
    for it in out.items.unwrap_or_default() {
        let (Some(pk), Some(sk), Some(old)) = (get_s(&it, PK), get_s(&it, SK), get_s(&it, GSI1PK))
        else {
            continue;
        };
        page.scanned += 1;
        let customer = keys::customer_of_pk(pk).or_else(|| get_s(&it, CUSTOMER_ID));
        let Some(new) = customer.and_then(|c| rekey(old, c, virtual_shards)) else {
            page.skipped.push((pk.to_string(), sk.to_string()));
            continue;
        };
        if new == old {
            page.unchanged += 1;
            continue;
        }
        let written = dynamo
            .client()
            .update_item()
            .table_name(dynamo.table())
            .key(PK, s(pk))
            .key(SK, s(sk))
            .update_expression("SET #gpk = :new")
            .condition_expression("#gpk = :old")
            .expression_attribute_names("#gpk", GSI1PK)
            .expression_attribute_values(":new", s(new))
            .expression_attribute_values(":old", s(old))
            .send()
            .await;
        match written {
            Ok(_) => page.rewritten += 1,
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => {
                page.changed_meanwhile += 1;
            }
            Err(e) => return Err(AwsError::sdk(Service::DynamoDb, "UpdateItem", e).into()),
        }
    }
    page.cursor = match out.last_evaluated_key {
        Some(last) if !last.is_empty() => Some(cursor_of(&last).map_err(ReindexError::from)?),
        _ => None,
    };
    Ok(page)
}

/// A whole re-index (or one segment's), from `cursor` to the end, page by
/// page; `progress` sees each page (to print its cursor, so a stopped run
/// can go on). Returns the pages' sums.
pub async fn reindex(
    dynamo: &Dynamo,
    virtual_shards: u32,
    segment: Option<(i32, i32)>,
    mut cursor: Option<Cursor>,
    mut progress: impl FnMut(&ReindexPage),
) -> Result<ReindexPage, ReindexError> {
    let mut total = ReindexPage::default();
    loop {
        let page = reindex_page(dynamo, virtual_shards, segment, cursor.as_deref(), 500).await?;
        progress(&page);
        total.scanned += page.scanned;
        total.rewritten += page.rewritten;
        total.unchanged += page.unchanged;
        total.changed_meanwhile += page.changed_meanwhile;
        total.skipped.extend(page.skipped);
        cursor = page.cursor;
        if cursor.is_none() {
            return Ok(total);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_index_key_follows_the_customer_to_the_new_count() {
        let c = "CUST-42";
        let v = keys::shard_of(c, 1024);
        assert_eq!(rekey("S#3#OPEN", c, 1024), Some(format!("S#{v}#OPEN")));
        assert_eq!(
            rekey("S#3#CUSTOMERS", c, 1024),
            Some(format!("S#{v}#CUSTOMERS"))
        );
        assert_eq!(
            rekey("S#3#MESSAGES", c, 1024),
            Some(format!("S#{v}#MESSAGES"))
        );
        assert_eq!(
            rekey("WORK#3", c, 1024),
            Some(format!("WORK#{}", keys::work_partition(c, 1024)))
        );
        // Already right: the same key (nothing written).
        let same = format!("S#{}#OPEN", keys::shard_of(c, 16));
        assert_eq!(rekey(&same, c, 16).as_deref(), Some(same.as_str()));
        // Keys it does not know are left alone.
        for other in ["S#x#OPEN", "S#3#ELSE", "L#sweep", "WORK#", "OPEN"] {
            assert_eq!(rekey(other, c, 1024), None, "{other}");
        }
    }

    #[test]
    fn a_cursor_round_trips_and_a_wrong_one_says_so() {
        let mut last = HashMap::new();
        last.insert(PK.to_string(), s("C#A"));
        last.insert(SK.to_string(), s("INVOICE#1"));
        let c = cursor_of(&last).unwrap();
        assert_eq!(c, r#"{"PK":"C#A","SK":"INVOICE#1"}"#);
        let start = start_of(&c).unwrap();
        assert_eq!(get_s(&start, SK), Some("INVOICE#1"));
        let err = start_of("page 3").unwrap_err().to_string();
        assert!(err.contains("re-index cursor"), "{err}");
    }
}
