//! The table's key schema and the keys of every item (see the table in the
//! [module docs](super)). `infra/template.yaml` declares the same names; a
//! test of the `collect-e2e` crate compares the two so they cannot drift.

use sha2::{Digest, Sha256};

/// Partition key attribute of the table.
pub const PK: &str = "PK";
/// Sort key attribute of the table.
pub const SK: &str = "SK";
/// The sparse, overloaded global secondary index: open invoices by shard
/// and due date; customers by shard.
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
/// The TTL attribute (epoch seconds).
pub const TTL: &str = "expires_at";
/// Every attribute used in a key of the table or of an index, with its
/// DynamoDB type: what the template must declare in `AttributeDefinitions`.
pub const KEY_ATTRIBUTES: [(&str, &str); 4] = [(PK, "S"), (SK, "S"), (GSI1PK, "S"), (GSI1SK, "S")];

/// Other attributes.
pub const DOC: &str = "doc";
pub const KIND: &str = "kind";
pub const STATUS: &str = "status";
pub const CUSTOMER_ID: &str = "customer_id";
/// When the ERP last changed a customer or an invoice, as
/// [`version_text`]: an older record never overwrites a newer one (a
/// conditional write on it; see `collect_engine::ingest::patch`).
pub const UPDATED_AT: &str = "updated_at";

/// An `updated_at` as text that sorts as the time does (UTC, always nine
/// decimals), so DynamoDB's condition `updated_at <= :v` compares times.
pub fn version_text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}
/// An action's audit trail: a list of maps, one per change of the action,
/// appended by the write that makes the change (see
/// [`super::dynamo::Dynamo::put_action`]).
pub const TRAIL: &str = "trail";

pub const CUSTOMER_SK: &str = "CUSTOMER";
pub const REF_SK: &str = "REF";
pub const MESSAGE_SK: &str = "MESSAGE";
pub const INVOICE_PREFIX: &str = "INVOICE#";
pub const PAYMENT_PREFIX: &str = "PAYMENT#";
pub const EVENT_PREFIX: &str = "EVENT#";
pub const ACTION_PREFIX: &str = "ACTION#";
pub const HOLD_PREFIX: &str = "HOLD#";
/// A customer's payment history folded out of the partition the sweep
/// reads: the aggregate of its folded invoices
/// ([`collect_engine::history::PaymentHistory`]), in the customer's
/// partition (see [`crate::dynamo`]'s `fold`).
pub const HISTORY_SK: &str = "HIST";
/// The first character of a folded item's sort key: `~` sorts after every
/// live sort key (they all start with a capital letter), so the sweep's
/// Query reads the live items with `SK < "~"` and never the folded ones.
pub const FOLDED_PREFIX: &str = "~";
/// On a folded item: its sort key while it was live.
pub const LIVE_SK: &str = "live_sk";
/// On a folded item: the invoice it was folded with.
pub const FOLDED_INVOICE: &str = "folded_invoice";

/// Where an item of a folded invoice is kept: in the same partition, under
/// `~<invoice>#<its live sort key>`, so one Query reads a customer's whole
/// history and the sweep's (`SK < "~"`) none of it.
pub fn folded_sk(invoice_id: &str, live_sk: &str) -> String {
    format!("{FOLDED_PREFIX}{invoice_id}#{live_sk}")
}

/// The prefix of every folded item of an invoice (ids holding `#` may
/// share it: the items' `folded_invoice` attribute tells them apart).
pub fn folded_invoice_prefix(invoice_id: &str) -> String {
    format!("{FOLDED_PREFIX}{invoice_id}#")
}

/// How many virtual shards a new stack's customers are spread over
/// (`VirtualShards` in the template, `VIRTUAL_SHARDS` in the functions'
/// environment): fixed for the life of the table's index layout.
pub const DEFAULT_VIRTUAL_SHARDS: u32 = 1024;

/// The most index partitions of the desk's open work (`WORK#<n>`): the
/// queue reads every one of them at once, so their number stays small
/// whatever the number of virtual shards.
pub const MAX_WORK_PARTITIONS: u32 = 64;

/// The virtual shard of a customer: a stable hash of the id, so a
/// customer's items always land in one index partition.
///
/// The table's sparse index is keyed by the *virtual* shard (`S#<v>#OPEN`,
/// `S#<v>#CUSTOMERS`, `S#<v>#MESSAGES`), whose number is fixed when the
/// table's layout is (`VIRTUAL_SHARDS`); the stack's `Shards` only says how
/// many worker jobs a day's sweep is cut into, each a range of virtual
/// shards ([`worker_ranges`]). Changing `Shards` therefore moves no item
/// and never splits a customer; changing the number of virtual shards
/// needs a re-index of every index key ([`crate::reshard`]).
pub fn shard_of(customer_id: &str, shards: u32) -> u32 {
    let digest = Sha256::digest(customer_id.as_bytes());
    let mut first = [0u8; 4];
    for (slot, byte) in first.iter_mut().zip(digest.iter()) {
        *slot = *byte;
    }
    u32::from_be_bytes(first) % shards.max(1)
}

/// The virtual shards `[from, to)` of each of `workers` worker jobs over
/// `virtual_shards` virtual shards: contiguous ranges as even as can be,
/// covering every virtual shard exactly once; never an empty range (more
/// workers than virtual shards: one virtual shard each).
pub fn worker_ranges(workers: u32, virtual_shards: u32) -> Vec<std::ops::Range<u32>> {
    let v = u64::from(virtual_shards.max(1));
    let w = u64::from(workers.clamp(1, virtual_shards.max(1)));
    (0..w)
        .map(|i| {
            // i * v / w <= v, which is a u32.
            let at = |k: u64| u32::try_from(k * v / w).unwrap_or(u32::MAX);
            at(i)..at(i + 1)
        })
        .collect()
}

/// The index partition of a customer's open work (`WORK#<n>`): its virtual
/// shard folded onto at most [`MAX_WORK_PARTITIONS`] partitions, so the
/// desk's queue costs the same few Queries whatever the virtual shards.
pub fn work_partition(customer_id: &str, virtual_shards: u32) -> u32 {
    shard_of(customer_id, work_partitions(virtual_shards))
}

/// How many index partitions the desk's open work is spread over.
pub fn work_partitions(virtual_shards: u32) -> u32 {
    virtual_shards.clamp(1, MAX_WORK_PARTITIONS)
}

pub fn customer_pk(customer_id: &str) -> String {
    format!("C#{customer_id}")
}

/// The customer id of a `C#…` partition key.
pub fn customer_of_pk(pk: &str) -> Option<&str> {
    pk.strip_prefix("C#")
}

pub fn invoice_sk(invoice_id: &str) -> String {
    format!("{INVOICE_PREFIX}{invoice_id}")
}

pub fn invoice_ref_pk(invoice_id: &str) -> String {
    format!("I#{invoice_id}")
}

pub fn payment_sk(invoice_id: &str, payment_id: &str) -> String {
    format!("{PAYMENT_PREFIX}{invoice_id}#{payment_id}")
}

pub fn payments_of_invoice_prefix(invoice_id: &str) -> String {
    format!("{PAYMENT_PREFIX}{invoice_id}#")
}

pub fn invoice_event_sk(invoice_id: &str, event_id: &str) -> String {
    format!("{EVENT_PREFIX}{invoice_id}#{event_id}")
}

pub fn action_sk(action_id: &str) -> String {
    format!("{ACTION_PREFIX}{action_id}")
}

/// A contact hold of the customer's address (its key: trimmed, lower case).
pub fn contact_hold_sk(address_key: &str) -> String {
    format!("{HOLD_PREFIX}{address_key}")
}

pub fn message_pk(message_id: &str) -> String {
    format!("M#{message_id}")
}

pub fn action_pk(action_id: &str) -> String {
    format!("A#{action_id}")
}

pub fn mail_event_sk(event_id: &str) -> String {
    format!("{EVENT_PREFIX}{event_id}")
}

pub fn open_gsi_pk(shard: u32) -> String {
    format!("S#{shard}#OPEN")
}

/// Sorts by due date, then invoice: a range condition on it selects a
/// due-date window.
pub fn open_gsi_sk(due_date: chrono::NaiveDate, invoice_id: &str) -> String {
    format!("{due_date}#{invoice_id}")
}

pub fn customers_gsi_pk(shard: u32) -> String {
    format!("S#{shard}#CUSTOMERS")
}

/// The sparse index entry of a message while it is planned or sending:
/// every unfinished message of a shard, whether or not its customer still
/// has an open invoice.
pub fn unfinished_gsi_pk(shard: u32) -> String {
    format!("S#{shard}#MESSAGES")
}

pub fn unfinished_gsi_sk(planned_on: chrono::NaiveDate, message_id: &str) -> String {
    format!("{planned_on}#{message_id}")
}

/// The prefix of lease items' partition keys: the only items the sweep
/// worker may delete (its IAM policy names it; a test compares them).
pub const LEASE_PREFIX: &str = "L#";

pub fn lease_pk(name: &str) -> String {
    format!("{LEASE_PREFIX}{name}")
}

pub const LEASE_SK: &str = "LEASE";

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard_of("C1", 16), shard_of("C1", 16));
        let mut seen = std::collections::HashSet::new();
        for i in 0..400 {
            seen.insert(shard_of(&format!("C{i}"), 16));
        }
        assert_eq!(seen.len(), 16);
        assert_eq!(shard_of("anything", 0), 0);
    }

    #[test]
    fn worker_ranges_cover_every_virtual_shard_once() {
        for (workers, v) in [(1, 1024), (64, 1024), (3, 1024), (4, 16), (7, 5), (0, 8)] {
            let ranges = worker_ranges(workers, v);
            assert_eq!(ranges.len() as u32, workers.clamp(1, v));
            assert_eq!(ranges.first().unwrap().start, 0);
            assert_eq!(ranges.last().unwrap().end, v);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
            }
            assert!(ranges.iter().all(|r| !r.is_empty()), "{ranges:?}");
            let widths: Vec<u32> = ranges.iter().map(|r| r.end - r.start).collect();
            let (lo, hi) = (widths.iter().min().unwrap(), widths.iter().max().unwrap());
            assert!(hi - lo <= 1, "{widths:?}");
        }
    }

    #[test]
    fn a_customer_keeps_its_virtual_shard_whatever_the_workers() {
        // The worker of a customer is the range holding its virtual shard:
        // one range for every worker count, so one worker a day.
        for i in 0..200 {
            let c = format!("C{i}");
            let v = shard_of(&c, DEFAULT_VIRTUAL_SHARDS);
            for workers in [3, 4, 64] {
                let holders = worker_ranges(workers, DEFAULT_VIRTUAL_SHARDS)
                    .into_iter()
                    .filter(|r| r.contains(&v))
                    .count();
                assert_eq!(holders, 1);
            }
        }
        // Work partitions: at most 64, the same as the virtual shard for a
        // small table (an existing stack keeps its keys).
        assert_eq!(work_partitions(1024), 64);
        assert_eq!(work_partition("C1", 16), shard_of("C1", 16));
        // A power of two folds: the work partition is the virtual shard's
        // remainder, so the desk's keys follow the customer's.
        assert_eq!(work_partition("C1", 1024), shard_of("C1", 1024) % 64);
    }

    #[test]
    fn due_dates_sort_as_text() {
        let a = open_gsi_sk(chrono::NaiveDate::from_ymd_opt(2026, 1, 9).unwrap(), "Z");
        let b = open_gsi_sk(chrono::NaiveDate::from_ymd_opt(2026, 1, 10).unwrap(), "A");
        assert!(a < b);
        assert_eq!(customer_of_pk(&customer_pk("C-1")), Some("C-1"));
    }

    #[test]
    fn folded_items_sort_after_every_live_one() {
        let folded = folded_sk("INV-1", &action_sk("a1"));
        for live in [
            CUSTOMER_SK.to_string(),
            HISTORY_SK.to_string(),
            invoice_sk("zz"),
            payment_sk("zz", "p"),
            invoice_event_sk("zz", "e"),
            action_sk("zz"),
            contact_hold_sk("zz@example.com"),
        ] {
            assert!(live.as_str() < FOLDED_PREFIX, "{live}");
            assert!(live < folded, "{live}");
        }
        assert!(folded.starts_with(&folded_invoice_prefix("INV-1")));
    }
}
