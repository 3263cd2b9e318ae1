//! The DynamoDB adapter: records, events, actions and messages in one table
//! (the design and its access patterns are in the [crate docs](crate)).
//!
//! Records are stored as JSON documents (`doc`) beside the key attributes,
//! as in the SQLite store, so both hold the same data contract. The
//! adapter is one type, [`Dynamo`], whose methods live by responsibility:
//! - `codec`: records to items and back (keys, documents, the sparse index
//!   attributes, an action's trail lines);
//! - `records`: what the ERP writes (customers, invoices, payments, invoice
//!   events), one by one or in batches, with partial updates merged;
//! - `book`: what the sweep and training read (a customer's live items and
//!   payment history, or its whole partition; the customers of a shard, an
//!   invoice by its id);
//! - `fold`: a customer's settled invoices moved out of the part of its
//!   partition the sweep reads, their sum kept as one aggregate item, and
//!   moved back when late data names one;
//! - `batches`: the records of one chunk of a CSV drop, read with
//!   BatchGetItem and written in batches or in parallel, by the same rules;
//! - `actions`: the sweep's action records, written on conditions, with
//!   their audit trails;
//! - `mail`: mail events (SES's and the ERP's), kept for reconciliation;
//! - `holds`: contact holds of a customer's address (bounced, complained,
//!   refused), in the customer's partition;
//! - `work`: the desk's index of open work (`GSI1PK = WORK#<shard>`), kept by
//!   every write of an action and of a hold;
//! - this module: the table handle and the low-level calls they share.
//!
//! The ledger port's messages and leases are in [`crate::ledger`].

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;

use super::error::{AwsError, Service};
use super::keys::{self, DOC, PK, SK};

mod actions;
mod batches;
mod book;
mod codec;
mod fold;
mod holds;
mod mail;
mod records;
mod work;

pub use batches::Merges;
pub use fold::{FoldFault, FoldStep};
pub use mail::{MAIL_EVENT_DAYS, MailEvent};
pub use records::{BatchOutcome, Merged};
pub use work::{WORK_GSI_PREFIX, work_gsi_pk, work_sk};

pub(crate) use codec::{Item, conditional_failed, decode, encode, get_s, item, n, s};

/// Attempts at re-sending `UnprocessedItems` before giving up.
pub(crate) const BATCH_ATTEMPTS: u32 = 8;

/// The table.
#[derive(Debug, Clone)]
pub struct Dynamo {
    client: Client,
    table: String,
    shards: u32,
    /// Crash points of the fold (tests only; see [`Dynamo::with_fold_fault`]).
    fold_fault: Option<FoldFault>,
    /// Whether a load of the whole book folds too (tests; see
    /// [`Dynamo::folding_every_scope`]).
    fold_every_scope: bool,
}

impl Dynamo {
    pub fn new(client: Client, table: impl Into<String>, shards: u32) -> Dynamo {
        Dynamo {
            client,
            table: table.into(),
            shards: shards.max(1),
            fold_fault: None,
            fold_every_scope: false,
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn shards(&self) -> u32 {
        self.shards
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    // ------------------------------------------------------------ low level

    /// A stored document, decoded and as text (for a conditional write).
    async fn get_doc<T: DeserializeOwned>(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<(T, String, Option<String>)>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::sdk(Service::DynamoDb, "GetItem", e))?;
        match out.item {
            None => Ok(None),
            Some(it) => {
                let doc = get_s(&it, DOC).unwrap_or_default().to_string();
                let version = get_s(&it, keys::UPDATED_AT).map(str::to_string);
                Ok(Some((decode(&it)?, doc, version)))
            }
        }
    }

    /// Puts an item if the stored document is still `old` (if there is no
    /// item, when `old` is `None`) and, when `version` is given (the ERP's
    /// `updated_at`, [`keys::version_text`]), the stored version is not
    /// later; `Ok(false)` when another write came first or is newer.
    async fn put_if_doc(
        &self,
        it: Item,
        old: Option<&str>,
        version: Option<&str>,
    ) -> Result<bool, AwsError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(it));
        let (request, condition) = match old {
            None => (
                request.expression_attribute_names("#pk", PK),
                "attribute_not_exists(#pk)",
            ),
            Some(doc) => (
                request
                    .expression_attribute_names("#doc", DOC)
                    .expression_attribute_values(":doc", s(doc)),
                "#doc = :doc",
            ),
        };
        let request = match version {
            None => request.condition_expression(condition),
            Some(v) => request
                .condition_expression(format!(
                    "{condition} AND (attribute_not_exists(#ver) OR #ver <= :ver)"
                ))
                .expression_attribute_names("#ver", keys::UPDATED_AT)
                .expression_attribute_values(":ver", s(v)),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(false),
            Err(e) => Err(AwsError::sdk(Service::DynamoDb, "PutItem", e)),
        }
    }

    async fn put(&self, it: Item) -> Result<(), AwsError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(it))
            .send()
            .await
            .map_err(|e| AwsError::sdk(Service::DynamoDb, "PutItem", e))?;
        Ok(())
    }

    /// Puts an item unless one with its key exists; returns whether it was new.
    async fn put_new(&self, it: Item) -> Result<bool, AwsError> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(it))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(false),
            Err(e) => Err(AwsError::sdk(Service::DynamoDb, "PutItem", e)),
        }
    }

    /// All items of a partition whose sort key starts with `prefix`
    /// (`""` for all), every page.
    pub(crate) async fn query_prefix(&self, pk: &str, prefix: &str) -> Result<Vec<Item>, AwsError> {
        if prefix.is_empty() {
            self.query_range(pk, None).await
        } else {
            self.query_range(pk, Some(("begins_with(#sk, :v)", prefix)))
                .await
        }
    }

    /// The live items of a customer's partition (`SK < "~"`): everything
    /// but the folded copies (see `fold`).
    pub(crate) async fn query_live(&self, pk: &str) -> Result<Vec<Item>, AwsError> {
        self.query_range(pk, Some(("#sk < :v", keys::FOLDED_PREFIX)))
            .await
    }

    /// The folded copies of a customer's partition (`SK >= "~"`).
    pub(crate) async fn query_folded(&self, pk: &str) -> Result<Vec<Item>, AwsError> {
        self.query_range(pk, Some(("#sk >= :v", keys::FOLDED_PREFIX)))
            .await
    }

    /// All items of a partition, or those whose sort key meets `sk` (a
    /// condition on `#sk` with one value `:v`), every page.
    async fn query_range(&self, pk: &str, sk: Option<(&str, &str)>) -> Result<Vec<Item>, AwsError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start.take());
            q = match sk {
                None => q.key_condition_expression("#pk = :pk"),
                Some((condition, value)) => q
                    .key_condition_expression(format!("#pk = :pk AND {condition}"))
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":v", s(value)),
            };
            let page = q
                .send()
                .await
                .map_err(|e| AwsError::sdk(Service::DynamoDb, "Query", e))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// 50 ms, 100 ms, 200 ms, … capped at 5 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64.saturating_mul(1u64 << attempt.min(7)).min(5_000))
}
