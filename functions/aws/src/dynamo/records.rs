//! What the ERP writes: customers, invoices and payments (upserts, so a
//! re-delivered event is harmless), partial updates merged with what is
//! stored, invoice events written once, and the batches of a CSV drop.
//!
//! An invoice is in the sparse index of open invoices while its payments do
//! not cover it: every write of an invoice or a payment keeps that true.
//!
//! A record of an invoice that was folded (late data: a refund, a
//! correction, an event) unfolds it first (`fold`: its items back live, the
//! customer's aggregate rebuilt by the next sweep), so it is written beside
//! the invoice's other records and merged with the stored invoice.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use rust_decimal::Decimal;
use serde::Serialize;

use super::codec::{decode, encode, item, s};
use super::{BATCH_ATTEMPTS, Dynamo, Item, backoff};
use crate::error::{AwsError, RequestError, Service, ServiceError};
use crate::keys::{self, GSI1PK, PK, SK};
use collect_engine::domain::{Customer, Event, Invoice, Payment};
use collect_engine::ingest::Patch;

/// BatchWriteItem takes at most 25 requests.
const BATCH: usize = 25;
/// Attempts at a read-merge-write of a record another writer keeps changing.
const MERGE_ATTEMPTS: u32 = 5;

/// What a merge of a customer or an invoice did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merged {
    Written,
    /// The record is older (`updated_at`) than the stored one: not written.
    Older,
}

/// Whether a record of version `mine` is older than the stored `stored`
/// (both [`keys::version_text`], which sort as the times do).
pub(super) fn is_older(mine: Option<&str>, stored: Option<&str>) -> bool {
    matches!((mine, stored), (Some(mine), Some(stored)) if mine < stored)
}

/// The item with its `updated_at` attribute, when the record has one.
pub(super) fn with_version(mut it: Item, version: Option<&str>) -> Item {
    if let Some(v) = version {
        it.insert(keys::UPDATED_AT.to_string(), s(v));
    }
    it
}

/// Counts of a batch write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BatchOutcome {
    pub items: usize,
    /// Requests re-sent because DynamoDB returned them as unprocessed.
    pub retried: usize,
}

impl Dynamo {
    pub async fn put_customer(&self, c: &Customer) -> Result<(), AwsError> {
        self.put(self.customer_item(c)?).await
    }

    /// Upserts an invoice and its reference item; the invoice is open (in
    /// the sweep's index) while its payments do not cover it.
    pub async fn put_invoice(&self, i: &Invoice) -> Result<(), AwsError> {
        self.unfold_if_folded(&i.customer_id, &i.invoice_id).await?;
        let paid = self.paid(&i.customer_id, &i.invoice_id).await?;
        self.put(self.invoice_item(i, paid < i.amount)?).await?;
        self.put(Self::invoice_ref_item(i)).await
    }

    // ------------------------------------------------------------ partial updates

    /// Upserts a customer as an event or an export gave it: the fields the
    /// patch does not give keep their stored value (the rule of
    /// [`collect_engine::ingest::patch`], the same as the local store's). The read
    /// and the write are one optimistic step: the write is conditional on
    /// the document read, and a write that lost to another one reads again.
    /// A patch with `updated_at` is also conditional on the stored one: an
    /// older record is not written ([`Merged::Older`]).
    pub async fn merge_customer(&self, patch: &Patch<Customer>) -> Result<Merged, AwsError> {
        let version = patch.updated_at.map(keys::version_text);
        if patch.kept.is_empty() && version.is_none() {
            self.put_customer(&patch.record).await?;
            return Ok(Merged::Written);
        }
        let pk = keys::customer_pk(&patch.record.customer_id);
        for _ in 0..MERGE_ATTEMPTS {
            let stored = self.get_doc::<Customer>(&pk, keys::CUSTOMER_SK).await?;
            if is_older(
                version.as_deref(),
                stored.as_ref().and_then(|(_, _, v)| v.as_deref()),
            ) {
                return Ok(Merged::Older);
            }
            let merged = patch.apply(stored.as_ref().map(|(c, _, _)| c));
            let it = with_version(self.customer_item(&merged)?, version.as_deref());
            if self
                .put_if_doc(
                    it,
                    stored.as_ref().map(|(_, doc, _)| doc.as_str()),
                    version.as_deref(),
                )
                .await?
            {
                return Ok(Merged::Written);
            }
        }
        Err(Self::kept_changing("customer", &patch.record.customer_id))
    }

    /// Upserts an invoice as given, like [`Dynamo::merge_customer`], with
    /// its reference item and its place in the open-invoice index.
    pub async fn merge_invoice(&self, patch: &Patch<Invoice>) -> Result<Merged, AwsError> {
        let version = patch.updated_at.map(keys::version_text);
        if patch.kept.is_empty() && version.is_none() {
            self.put_invoice(&patch.record).await?;
            return Ok(Merged::Written);
        }
        let i = &patch.record;
        let pk = keys::customer_pk(&i.customer_id);
        let sk = keys::invoice_sk(&i.invoice_id);
        for _ in 0..MERGE_ATTEMPTS {
            self.unfold_if_folded(&i.customer_id, &i.invoice_id).await?;
            let stored = self.get_doc::<Invoice>(&pk, &sk).await?;
            if is_older(
                version.as_deref(),
                stored.as_ref().and_then(|(_, _, v)| v.as_deref()),
            ) {
                return Ok(Merged::Older);
            }
            let merged = patch.apply(stored.as_ref().map(|(i, _, _)| i));
            let paid = self.paid(&merged.customer_id, &merged.invoice_id).await?;
            let it = with_version(
                self.invoice_item(&merged, paid < merged.amount)?,
                version.as_deref(),
            );
            if self
                .put_if_doc(
                    it,
                    stored.as_ref().map(|(_, doc, _)| doc.as_str()),
                    version.as_deref(),
                )
                .await?
            {
                self.put(Self::invoice_ref_item(&merged)).await?;
                return Ok(Merged::Written);
            }
        }
        Err(Self::kept_changing("invoice", &i.invoice_id))
    }

    /// Upserts customers of a CSV drop: full records in batches, partial
    /// or versioned ones merged one by one.
    pub async fn merge_customers(&self, patches: &[Patch<Customer>]) -> Result<usize, AwsError> {
        let (full, partial): (Vec<&Patch<Customer>>, Vec<&Patch<Customer>>) = patches
            .iter()
            .partition(|p| p.kept.is_empty() && p.updated_at.is_none());
        let full: Vec<Customer> = full.into_iter().map(|p| p.record.clone()).collect();
        self.put_customers(&full).await?;
        for p in partial {
            self.merge_customer(p).await?;
        }
        Ok(patches.len())
    }

    /// Upserts invoices of a CSV drop, like [`Dynamo::merge_customers`].
    pub async fn merge_invoices(&self, patches: &[Patch<Invoice>]) -> Result<usize, AwsError> {
        let (full, partial): (Vec<&Patch<Invoice>>, Vec<&Patch<Invoice>>) = patches
            .iter()
            .partition(|p| p.kept.is_empty() && p.updated_at.is_none());
        let full: Vec<Invoice> = full.into_iter().map(|p| p.record.clone()).collect();
        self.put_invoices(&full).await?;
        for p in partial {
            self.merge_invoice(p).await?;
        }
        Ok(patches.len())
    }

    fn kept_changing(kind: &'static str, id: &str) -> AwsError {
        ServiceError::kept_changing(kind, id, MERGE_ATTEMPTS).into()
    }

    // ------------------------------------------------------------ payments and events

    /// Records a payment; `Ok(false)` when the invoice is not known. The
    /// payment that settles an invoice takes it out of the sweep's index.
    pub async fn put_payment(&self, p: &Payment) -> Result<bool, AwsError> {
        let Some(customer_id) = self.customer_of_invoice(&p.invoice_id).await? else {
            return Ok(false);
        };
        self.unfold_if_folded(&customer_id, &p.invoice_id).await?;
        self.put(Self::payment_item(&customer_id, p)?).await?;
        self.refresh_open(&customer_id, &p.invoice_id).await?;
        Ok(true)
    }

    /// Sum of the payments recorded for an invoice.
    pub(super) async fn paid(
        &self,
        customer_id: &str,
        invoice_id: &str,
    ) -> Result<Decimal, AwsError> {
        let items = self
            .query_prefix(
                &keys::customer_pk(customer_id),
                &keys::payments_of_invoice_prefix(invoice_id),
            )
            .await?;
        let mut total = Decimal::ZERO;
        for it in &items {
            let p: Payment = decode(it)?;
            total = total.saturating_add(p.amount);
        }
        Ok(total)
    }

    /// Puts the invoice in or takes it out of the open-invoice index.
    pub(super) async fn refresh_open(
        &self,
        customer_id: &str,
        invoice_id: &str,
    ) -> Result<(), AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(keys::customer_pk(customer_id)))
            .key(SK, s(keys::invoice_sk(invoice_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::sdk(Service::DynamoDb, "GetItem", e))?;
        let Some(existing) = out.item else {
            return Ok(());
        };
        let invoice: Invoice = decode(&existing)?;
        let open = self.paid(customer_id, invoice_id).await? < invoice.amount;
        if open == existing.contains_key(GSI1PK) {
            return Ok(());
        }
        self.put(self.invoice_item(&invoice, open)?).await
    }

    /// Stores an invoice event once (by event id); `Ok(None)` when the
    /// invoice is not known, `Ok(Some(false))` when it was stored before.
    pub async fn put_invoice_event(&self, e: &Event) -> Result<Option<bool>, AwsError> {
        let Some(invoice_id) = &e.invoice_id else {
            return Ok(None);
        };
        let Some(customer_id) = self.customer_of_invoice(invoice_id).await? else {
            return Ok(None);
        };
        self.unfold_if_folded(&customer_id, invoice_id).await?;
        let it = item(
            keys::customer_pk(&customer_id),
            keys::invoice_event_sk(invoice_id, &e.event_id),
            "event",
            encode(e)?,
        );
        self.put_new(it).await.map(Some)
    }

    /// The events stored for an invoice of a customer (disputes, promises,
    /// plans), in key order; a folded invoice's from its folded copies.
    pub async fn invoice_events(
        &self,
        customer_id: &str,
        invoice_id: &str,
    ) -> Result<Vec<Event>, AwsError> {
        let prefix = format!("{}{invoice_id}#", keys::EVENT_PREFIX);
        let pk = keys::customer_pk(customer_id);
        let mut items = self.query_prefix(&pk, &prefix).await?;
        if items.is_empty() {
            items = self
                .query_prefix(&pk, &keys::folded_sk(invoice_id, &prefix))
                .await?
                .into_iter()
                .filter(|it| super::get_s(it, keys::FOLDED_INVOICE) == Some(invoice_id))
                .collect();
        }
        items.iter().map(decode).collect()
    }

    // ------------------------------------------------------------ batches (CSV drops)

    /// Upserts many records with BatchWriteItem (CSV drops).
    pub async fn put_customers(&self, records: &[Customer]) -> Result<BatchOutcome, AwsError> {
        let items = records
            .iter()
            .map(|c| self.customer_item(c))
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_put(items).await
    }

    /// Upserts invoices in batches. Payments already recorded are taken
    /// into account per invoice, so the index stays right.
    pub async fn put_invoices(&self, records: &[Invoice]) -> Result<BatchOutcome, AwsError> {
        self.unfold_named(
            records
                .iter()
                .map(|i| (i.customer_id.as_str(), i.invoice_id.as_str())),
        )
        .await?;
        let mut items = Vec::with_capacity(records.len() * 2);
        for i in records {
            let paid = self.paid(&i.customer_id, &i.invoice_id).await?;
            items.push(self.invoice_item(i, paid < i.amount)?);
            items.push(Self::invoice_ref_item(i));
        }
        self.batch_put(items).await
    }

    /// Writes payments in batches; returns the ones whose invoice is not
    /// known (to be rejected), after updating the index of the others.
    pub async fn put_payments(
        &self,
        records: &[Payment],
    ) -> Result<(BatchOutcome, Vec<Payment>), AwsError> {
        let mut items = Vec::new();
        let mut unknown = Vec::new();
        let mut touched: HashSet<(String, String)> = HashSet::new();
        let mut owners: HashMap<String, Option<String>> = HashMap::new();
        for p in records {
            let owner = match owners.get(&p.invoice_id) {
                Some(o) => o.clone(),
                None => {
                    let o = self.customer_of_invoice(&p.invoice_id).await?;
                    owners.insert(p.invoice_id.clone(), o.clone());
                    o
                }
            };
            match owner {
                Some(c) => {
                    items.push(Self::payment_item(&c, p)?);
                    touched.insert((c, p.invoice_id.clone()));
                }
                None => unknown.push(p.clone()),
            }
        }
        self.unfold_named(touched.iter().map(|(c, i)| (c.as_str(), i.as_str())))
            .await?;
        let outcome = self.batch_put(items).await?;
        for (c, i) in &touched {
            self.refresh_open(c, i).await?;
        }
        Ok((outcome, unknown))
    }

    /// Unfolds the folded invoices among `(customer, invoice)` pairs: one
    /// read of each customer's aggregate, an unfold for each invoice it
    /// names (a batch of a CSV drop, before it is written).
    async fn unfold_named<'a>(
        &self,
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), AwsError> {
        let mut by_customer: HashMap<&str, HashSet<&str>> = HashMap::new();
        for (c, i) in pairs {
            by_customer.entry(c).or_default().insert(i);
        }
        for (c, invoices) in by_customer {
            let stored = self.stored_history(c).await?;
            for i in invoices {
                if stored.folded.contains(i) {
                    self.unfold_invoice(c, i).await?;
                }
            }
        }
        Ok(())
    }

    /// BatchWriteItem in chunks of 25; `UnprocessedItems` are sent again
    /// with exponential backoff, a bounded number of times.
    pub async fn batch_put(&self, items: Vec<Item>) -> Result<BatchOutcome, AwsError> {
        let mut outcome = BatchOutcome {
            items: items.len(),
            retried: 0,
        };
        let mut requests: Vec<WriteRequest> = Vec::with_capacity(items.len());
        for it in items {
            let put = PutRequest::builder()
                .set_item(Some(it))
                .build()
                .map_err(|e| RequestError::new(Service::DynamoDb, "BatchWriteItem", e))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        for chunk in requests.chunks(BATCH) {
            let mut pending: Vec<WriteRequest> = chunk.to_vec();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                if attempt > 0 {
                    outcome.retried += pending.len();
                    tokio::time::sleep(backoff(attempt)).await;
                }
                if attempt >= BATCH_ATTEMPTS {
                    return Err(ServiceError::unprocessed(
                        "BatchWriteItem",
                        pending.len(),
                        "item",
                        BATCH_ATTEMPTS,
                    )
                    .into());
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| AwsError::sdk(Service::DynamoDb, "BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                attempt += 1;
            }
        }
        Ok(outcome)
    }
}
