//! The records of one chunk of a CSV drop, written in batches: what is
//! stored is read with consistent BatchGetItem requests (100 keys each), the
//! records that need no condition go out with BatchWriteItem (25 each), and
//! the conditional writes (a record with `updated_at`, a partial one) run
//! in parallel, a bounded number at a time.
//!
//! The rules are exactly those of the one-by-one merges in `records`: an
//! older record (by `updated_at`) is not written, a partial one keeps the
//! stored values of what it leaves out, and a conditional write that lost
//! to another writer is done again by [`Dynamo::merge_customer`] /
//! [`Dynamo::merge_invoice`], which read again. Rows of one chunk have
//! distinct ids (the engine's reader refuses a duplicate), so the writes of
//! a chunk never race each other.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use rust_decimal::Decimal;

use super::codec::{decode, get_s, s};
use super::records::{is_older, with_version};
use super::{BATCH_ATTEMPTS, Dynamo, Item, backoff};
use crate::error::{AwsError, RequestError, Service, ServiceError};
use crate::keys::{self, DOC, GSI1PK, PK, SK};
use collect_engine::domain::{Customer, Invoice, Payment};
use collect_engine::ingest::Patch;

/// BatchGetItem takes at most 100 keys.
const GET_BATCH: usize = 100;
/// Requests of one chunk in flight at a time (batch reads, batch writes,
/// conditional writes, index refreshes).
const PARALLEL_REQUESTS: usize = 8;

/// A key: `(PK, SK)`.
type Key = (String, String);

/// What the batched merges of a chunk did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Merges {
    /// Records given (each is applied, or older and left: both count as
    /// applied, as one by one).
    pub records: usize,
    /// Records older than the stored one: not written.
    pub older: usize,
}

/// The stored document and `updated_at` of an item.
fn doc_and_version(it: &Item) -> (String, Option<String>) {
    (
        get_s(it, DOC).unwrap_or_default().to_string(),
        get_s(it, keys::UPDATED_AT).map(str::to_string),
    )
}

impl Dynamo {
    /// Items by key, read consistently in requests of 100 keys, up to
    /// [`PARALLEL_REQUESTS`] requests at a time; keys DynamoDB leaves
    /// unprocessed are asked again with backoff. Missing items are absent
    /// from the answer.
    pub(crate) async fn batch_get(&self, wanted: &[Key]) -> Result<HashMap<Key, Item>, AwsError> {
        let mut unique: Vec<&Key> = Vec::with_capacity(wanted.len());
        let mut seen: HashSet<&Key> = HashSet::new();
        for k in wanted {
            if seen.insert(k) {
                unique.push(k);
            }
        }
        let mut groups = unique.chunks(GET_BATCH).map(|chunk| {
            chunk
                .iter()
                .map(|(pk, sk)| {
                    HashMap::from([
                        (PK.to_string(), s(pk.clone())),
                        (SK.to_string(), s(sk.clone())),
                    ])
                })
                .collect::<Vec<_>>()
        });
        let mut found = HashMap::with_capacity(unique.len());
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            while tasks.len() < PARALLEL_REQUESTS {
                let Some(group) = groups.next() else {
                    break;
                };
                let me = self.clone();
                tasks.spawn(async move { me.batch_get_group(group).await });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let items = joined.map_err(|source| AwsError::Task {
                operation: "BatchGetItem",
                source,
            })??;
            for it in items {
                if let (Some(pk), Some(sk)) = (get_s(&it, PK), get_s(&it, SK)) {
                    found.insert((pk.to_string(), sk.to_string()), it);
                }
            }
        }
        Ok(found)
    }

    /// One BatchGetItem request of up to 100 keys, and its unprocessed
    /// keys again with backoff.
    async fn batch_get_group(
        &self,
        mut pending: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<Vec<Item>, AwsError> {
        let mut found = Vec::with_capacity(pending.len());
        let mut attempt = 0u32;
        while !pending.is_empty() {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            if attempt >= BATCH_ATTEMPTS {
                return Err(ServiceError::unprocessed(
                    "BatchGetItem",
                    pending.len(),
                    "key",
                    BATCH_ATTEMPTS,
                )
                .into());
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| RequestError::new(Service::DynamoDb, "BatchGetItem", e))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| AwsError::sdk(Service::DynamoDb, "BatchGetItem", e))?;
            found.extend(
                out.responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default(),
            );
            pending = out
                .unprocessed_keys
                .and_then(|mut m| m.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            attempt += 1;
        }
        Ok(found)
    }

    /// Which of these customers are stored.
    pub async fn known_customers(&self, ids: &[String]) -> Result<HashSet<String>, AwsError> {
        let wanted: Vec<Key> = ids
            .iter()
            .map(|c| (keys::customer_pk(c), keys::CUSTOMER_SK.to_string()))
            .collect();
        Ok(self
            .batch_get(&wanted)
            .await?
            .into_keys()
            .filter_map(|(pk, _)| keys::customer_of_pk(&pk).map(str::to_string))
            .collect())
    }

    /// The owner of each known invoice (its reference item).
    pub async fn invoice_owners(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, String>, AwsError> {
        let wanted: Vec<Key> = ids
            .iter()
            .map(|i| (keys::invoice_ref_pk(i), keys::REF_SK.to_string()))
            .collect();
        let found = self.batch_get(&wanted).await?;
        Ok(ids
            .iter()
            .filter_map(|i| {
                let it = found.get(&(keys::invoice_ref_pk(i), keys::REF_SK.to_string()))?;
                Some((i.clone(), get_s(it, keys::CUSTOMER_ID)?.to_string()))
            })
            .collect())
    }

    /// Known invoices by id (reference items, then the invoices), in batches.
    pub async fn invoices_by_id(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Invoice>, AwsError> {
        let owners = self.invoice_owners(ids).await?;
        let wanted: Vec<Key> = owners
            .iter()
            .map(|(i, c)| (keys::customer_pk(c), keys::invoice_sk(i)))
            .collect();
        let found = self.batch_get(&wanted).await?;
        let mut out = HashMap::with_capacity(found.len());
        for it in found.values() {
            let invoice: Invoice = decode(it)?;
            out.insert(invoice.invoice_id.clone(), invoice);
        }
        Ok(out)
    }

    /// Unconditional puts with BatchWriteItem, up to [`PARALLEL_REQUESTS`]
    /// requests of 25 at a time ([`Dynamo::batch_put`] each, which sends
    /// unprocessed items again); returns how many items were written.
    pub(crate) async fn put_batches(&self, items: Vec<Item>) -> Result<usize, AwsError> {
        let total = items.len();
        let mut groups: Vec<Vec<Item>> = Vec::new();
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            groups.push(items.by_ref().take(25).collect());
        }
        let mut tasks = tokio::task::JoinSet::new();
        let mut groups = groups.into_iter();
        loop {
            while tasks.len() < PARALLEL_REQUESTS {
                let Some(group) = groups.next() else {
                    break;
                };
                let me = self.clone();
                tasks.spawn(async move { me.batch_put(group).await });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            joined.map_err(|source| AwsError::Task {
                operation: "BatchWriteItem",
                source,
            })??;
        }
        Ok(total)
    }

    /// Conditional puts `(item, stored document, version)`, in parallel;
    /// returns the indexes of those that lost to another writer.
    async fn put_all_if_doc(
        &self,
        puts: Vec<(usize, Item, Option<String>, Option<String>)>,
    ) -> Result<Vec<usize>, AwsError> {
        let mut lost = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        let mut puts = puts.into_iter();
        loop {
            while tasks.len() < PARALLEL_REQUESTS {
                let Some((i, it, old, version)) = puts.next() else {
                    break;
                };
                let me = self.clone();
                tasks.spawn(async move {
                    let written = me
                        .put_if_doc(it, old.as_deref(), version.as_deref())
                        .await?;
                    Ok::<_, AwsError>((i, written))
                });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (i, written) = joined.map_err(|source| AwsError::Task {
                operation: "PutItem",
                source,
            })??;
            if !written {
                lost.push(i);
            }
        }
        lost.sort_unstable();
        Ok(lost)
    }

    /// The customers of one chunk ([`Dynamo::merge_customers`] in batches).
    pub async fn merge_customer_batch(
        &self,
        patches: &[Patch<Customer>],
    ) -> Result<Merges, AwsError> {
        let wanted: Vec<Key> = patches
            .iter()
            .map(|p| {
                (
                    keys::customer_pk(&p.record.customer_id),
                    keys::CUSTOMER_SK.to_string(),
                )
            })
            .collect();
        let stored = self.batch_get(&wanted).await?;
        let mut merges = Merges {
            records: patches.len(),
            older: 0,
        };
        let mut full = Vec::new();
        let mut puts = Vec::new();
        for (i, (p, key)) in patches.iter().zip(&wanted).enumerate() {
            let version = p.updated_at.map(keys::version_text);
            if p.kept.is_empty() && version.is_none() {
                full.push(self.customer_item(&p.record)?);
                continue;
            }
            let item = stored.get(key);
            let (doc, stored_version) = item.map(doc_and_version).unzip();
            if is_older(version.as_deref(), stored_version.flatten().as_deref()) {
                merges.older += 1;
                continue;
            }
            let record: Option<Customer> = item.map(decode).transpose()?;
            let merged = p.apply(record.as_ref());
            let it = with_version(self.customer_item(&merged)?, version.as_deref());
            puts.push((i, it, doc, version));
        }
        self.put_batches(full).await?;
        for i in self.put_all_if_doc(puts).await? {
            if let Some(p) = patches.get(i) {
                if self.merge_customer(p).await? == super::Merged::Older {
                    merges.older += 1;
                }
            }
        }
        Ok(merges)
    }

    /// The invoices of one chunk ([`Dynamo::merge_invoices`] in batches),
    /// each with its reference item and its place in the open-invoice
    /// index. The payments of an invoice are summed (a Query) only when
    /// they can matter: an invoice never stored before (no reference item)
    /// has none, and one whose amount did not change keeps its place.
    pub async fn merge_invoice_batch(
        &self,
        patches: &[Patch<Invoice>],
    ) -> Result<Merges, AwsError> {
        let wanted: Vec<Key> = patches
            .iter()
            .map(|p| {
                (
                    keys::customer_pk(&p.record.customer_id),
                    keys::invoice_sk(&p.record.invoice_id),
                )
            })
            .collect();
        let stored = self.batch_get(&wanted).await?;
        let ids: Vec<String> = patches
            .iter()
            .map(|p| p.record.invoice_id.clone())
            .collect();
        let owners = self.invoice_owners(&ids).await?;
        let mut merges = Merges {
            records: patches.len(),
            older: 0,
        };
        let mut full = Vec::new();
        let mut puts = Vec::new();
        let mut refs: HashMap<usize, Item> = HashMap::new();
        let mut one_by_one = Vec::new();
        for (i, (p, key)) in patches.iter().zip(&wanted).enumerate() {
            let version = p.updated_at.map(keys::version_text);
            let item = stored.get(key);
            if item.is_none() && owners.contains_key(&p.record.invoice_id) {
                // Known, but not where this row puts it (another customer,
                // or not among the live items): the one-by-one merge.
                one_by_one.push(i);
                continue;
            }
            let (doc, stored_version) = item.map(doc_and_version).unzip();
            if is_older(version.as_deref(), stored_version.flatten().as_deref()) {
                merges.older += 1;
                continue;
            }
            let record: Option<Invoice> = item.map(decode).transpose()?;
            let merged = p.apply(record.as_ref());
            let open = match (&record, item) {
                (Some(before), Some(it)) if before.amount == merged.amount => {
                    it.contains_key(GSI1PK)
                }
                (None, None) if !owners.contains_key(&merged.invoice_id) => {
                    Decimal::ZERO < merged.amount
                }
                _ => self.paid(&merged.customer_id, &merged.invoice_id).await? < merged.amount,
            };
            let it = with_version(self.invoice_item(&merged, open)?, version.as_deref());
            if p.kept.is_empty() && version.is_none() {
                full.push(it);
                full.push(Self::invoice_ref_item(&merged));
            } else {
                refs.insert(i, Self::invoice_ref_item(&merged));
                puts.push((i, it, doc, version));
            }
        }
        self.put_batches(full).await?;
        let lost = self.put_all_if_doc(puts).await?;
        // The reference items of the conditional writes that landed.
        for i in &lost {
            refs.remove(i);
        }
        self.put_batches(refs.into_values().collect()).await?;
        for i in lost.into_iter().chain(one_by_one) {
            if let Some(p) = patches.get(i) {
                if self.merge_invoice(p).await? == super::Merged::Older {
                    merges.older += 1;
                }
            }
        }
        Ok(merges)
    }

    /// Payments of one chunk whose owners are known (`owners`: invoice →
    /// customer), in batches; each touched invoice's place in the open
    /// index is then refreshed, in parallel. Returns the payments whose
    /// invoice is not known.
    pub async fn put_payment_batch(
        &self,
        records: &[Payment],
        owners: &HashMap<String, String>,
    ) -> Result<(usize, Vec<Payment>), AwsError> {
        let mut items = Vec::new();
        let mut unknown = Vec::new();
        let mut touched: HashSet<(String, String)> = HashSet::new();
        for p in records {
            match owners.get(&p.invoice_id) {
                Some(c) => {
                    items.push(Self::payment_item(c, p)?);
                    touched.insert((c.clone(), p.invoice_id.clone()));
                }
                None => unknown.push(p.clone()),
            }
        }
        let written = self.put_batches(items).await?;
        let mut tasks = tokio::task::JoinSet::new();
        let mut touched = touched.into_iter();
        loop {
            while tasks.len() < PARALLEL_REQUESTS {
                let Some((c, i)) = touched.next() else {
                    break;
                };
                let me = self.clone();
                tasks.spawn(async move { me.refresh_open(&c, &i).await });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            joined.map_err(|source| AwsError::Task {
                operation: "Query",
                source,
            })??;
        }
        Ok((written, unknown))
    }
}
