//! The DynamoDB adapter: records, events, actions and messages in one table
//! (the design and its access patterns are in the [module docs](super)).
//!
//! Records are stored as JSON documents (`doc`) beside the key attributes,
//! as in the SQLite store, so both hold the same data contract.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, PutRequest, ReturnValuesOnConditionCheckFailure, WriteRequest,
};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::AwsError;
use super::keys::{self, DOC, GSI1, GSI1PK, GSI1SK, KIND, PK, SK, STATUS, TRAIL, TTL};
use collect_delivery::ledger::{LogEntry, Recorded};
use collect_engine::book::Book;
use collect_engine::domain::{
    ActionId, ActionRecord, ActionStatus, Customer, Event, Invoice, Payment,
};
use collect_engine::ingest::Patch;

pub(super) type Item = HashMap<String, AttributeValue>;

/// How long mail events are kept (TTL), in days.
pub const MAIL_EVENT_DAYS: i64 = 400;
/// BatchWriteItem takes at most 25 requests.
const BATCH: usize = 25;
/// Attempts at re-sending `UnprocessedItems` before giving up.
pub(super) const BATCH_ATTEMPTS: u32 = 8;
/// How many customer partitions are read at once.
const PARALLEL_QUERIES: usize = 16;
/// How many conditional action writes are in flight at once.
const PARALLEL_WRITES: usize = 16;
/// Attempts at a read-merge-write of a record another writer keeps changing.
const MERGE_ATTEMPTS: u32 = 5;

/// A stored mail event (SES's or the ERP's), as the events function wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailEvent {
    pub event_id: String,
    /// `send`, `delivery`, `bounce`, … for SES; the event kind otherwise.
    pub kind: String,
    pub date: NaiveDate,
    pub message_id: Option<String>,
    pub action_id: Option<String>,
    /// SES's message id, when the event came from SES.
    pub provider_message_id: Option<String>,
}

/// Counts of a batch write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BatchOutcome {
    pub items: usize,
    /// Requests re-sent because DynamoDB returned them as unprocessed.
    pub retried: usize,
}

/// The table.
#[derive(Debug, Clone)]
pub struct Dynamo {
    client: Client,
    table: String,
    shards: u32,
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.as_str()),
        _ => None,
    }
}

pub(super) fn encode<T: Serialize>(v: &T) -> Result<String, AwsError> {
    serde_json::to_string(v).map_err(|e| AwsError::Corrupt {
        key: "(new record)".to_string(),
        reason: e.to_string(),
    })
}

pub(super) fn decode<T: DeserializeOwned>(item: &Item) -> Result<T, AwsError> {
    let key = format!(
        "{}/{}",
        get_s(item, PK).unwrap_or("?"),
        get_s(item, SK).unwrap_or("?")
    );
    let doc = get_s(item, DOC).ok_or_else(|| AwsError::Corrupt {
        key: key.clone(),
        reason: "no `doc` attribute".to_string(),
    })?;
    serde_json::from_str(doc).map_err(|e| AwsError::Corrupt {
        key,
        reason: e.to_string(),
    })
}

pub(super) fn conditional_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

/// An item's keys plus its document.
pub(super) fn item(pk: String, sk: String, kind: &str, doc: String) -> Item {
    let mut it = Item::new();
    it.insert(PK.to_string(), s(pk));
    it.insert(SK.to_string(), s(sk));
    it.insert(KIND.to_string(), s(kind));
    it.insert(DOC.to_string(), s(doc));
    it
}

impl Dynamo {
    pub fn new(client: Client, table: impl Into<String>, shards: u32) -> Dynamo {
        Dynamo {
            client,
            table: table.into(),
            shards: shards.max(1),
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

    // ------------------------------------------------------------ items

    fn customer_item(&self, c: &Customer) -> Result<Item, AwsError> {
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
    fn invoice_item(&self, i: &Invoice, open: bool) -> Result<Item, AwsError> {
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

    fn invoice_ref_item(i: &Invoice) -> Item {
        let mut it = Item::new();
        it.insert(PK.to_string(), s(keys::invoice_ref_pk(&i.invoice_id)));
        it.insert(SK.to_string(), s(keys::REF_SK));
        it.insert(KIND.to_string(), s("invoice_ref"));
        it.insert(keys::CUSTOMER_ID.to_string(), s(i.customer_id.clone()));
        it
    }

    fn payment_item(customer_id: &str, p: &Payment) -> Result<Item, AwsError> {
        Ok(item(
            keys::customer_pk(customer_id),
            keys::payment_sk(&p.invoice_id, &p.payment_id),
            "payment",
            encode(p)?,
        ))
    }

    // ------------------------------------------------------------ records

    pub async fn put_customer(&self, c: &Customer) -> Result<(), AwsError> {
        self.put(self.customer_item(c)?).await
    }

    /// Upserts an invoice and its reference item; the invoice is open (in
    /// the sweep's index) while its payments do not cover it.
    pub async fn put_invoice(&self, i: &Invoice) -> Result<(), AwsError> {
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
    pub async fn merge_customer(&self, patch: &Patch<Customer>) -> Result<(), AwsError> {
        if patch.kept.is_empty() {
            return self.put_customer(&patch.record).await;
        }
        let pk = keys::customer_pk(&patch.record.customer_id);
        for _ in 0..MERGE_ATTEMPTS {
            let stored = self.get_doc::<Customer>(&pk, keys::CUSTOMER_SK).await?;
            let merged = patch.apply(stored.as_ref().map(|(c, _)| c));
            let it = self.customer_item(&merged)?;
            if self
                .put_if_doc(it, stored.as_ref().map(|(_, doc)| doc.as_str()))
                .await?
            {
                return Ok(());
            }
        }
        Err(Self::kept_changing("customer", &patch.record.customer_id))
    }

    /// Upserts an invoice as given, like [`Dynamo::merge_customer`], with
    /// its reference item and its place in the open-invoice index.
    pub async fn merge_invoice(&self, patch: &Patch<Invoice>) -> Result<(), AwsError> {
        if patch.kept.is_empty() {
            return self.put_invoice(&patch.record).await;
        }
        let i = &patch.record;
        let pk = keys::customer_pk(&i.customer_id);
        let sk = keys::invoice_sk(&i.invoice_id);
        for _ in 0..MERGE_ATTEMPTS {
            let stored = self.get_doc::<Invoice>(&pk, &sk).await?;
            let merged = patch.apply(stored.as_ref().map(|(i, _)| i));
            let paid = self.paid(&merged.customer_id, &merged.invoice_id).await?;
            let it = self.invoice_item(&merged, paid < merged.amount)?;
            if self
                .put_if_doc(it, stored.as_ref().map(|(_, doc)| doc.as_str()))
                .await?
            {
                return self.put(Self::invoice_ref_item(&merged)).await;
            }
        }
        Err(Self::kept_changing("invoice", &i.invoice_id))
    }

    /// Upserts customers of a CSV drop: full records in batches, partial
    /// ones merged one by one.
    pub async fn merge_customers(&self, patches: &[Patch<Customer>]) -> Result<usize, AwsError> {
        let (full, partial): (Vec<&Patch<Customer>>, Vec<&Patch<Customer>>) =
            patches.iter().partition(|p| p.kept.is_empty());
        let full: Vec<Customer> = full.into_iter().map(|p| p.record.clone()).collect();
        self.put_customers(&full).await?;
        for p in partial {
            self.merge_customer(p).await?;
        }
        Ok(patches.len())
    }

    /// Upserts invoices of a CSV drop, like [`Dynamo::merge_customers`].
    pub async fn merge_invoices(&self, patches: &[Patch<Invoice>]) -> Result<usize, AwsError> {
        let (full, partial): (Vec<&Patch<Invoice>>, Vec<&Patch<Invoice>>) =
            patches.iter().partition(|p| p.kept.is_empty());
        let full: Vec<Invoice> = full.into_iter().map(|p| p.record.clone()).collect();
        self.put_invoices(&full).await?;
        for p in partial {
            self.merge_invoice(p).await?;
        }
        Ok(patches.len())
    }

    fn kept_changing(kind: &str, id: &str) -> AwsError {
        AwsError::Service {
            service: "DynamoDB",
            operation: "PutItem",
            message: format!(
                "{kind} `{id}` kept changing while it was being updated ({MERGE_ATTEMPTS} attempts)"
            ),
            retryable: true,
        }
    }

    /// A stored document, decoded and as text (for a conditional write).
    async fn get_doc<T: DeserializeOwned>(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<(T, String)>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::sdk("DynamoDB", "GetItem", e))?;
        match out.item {
            None => Ok(None),
            Some(it) => {
                let doc = get_s(&it, DOC).unwrap_or_default().to_string();
                Ok(Some((decode(&it)?, doc)))
            }
        }
    }

    /// Puts an item if the stored document is still `old` (if there is no
    /// item, when `old` is `None`); `Ok(false)` when another write came
    /// first.
    async fn put_if_doc(&self, it: Item, old: Option<&str>) -> Result<bool, AwsError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(it));
        let request = match old {
            None => request
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK),
            Some(doc) => request
                .condition_expression("#doc = :doc")
                .expression_attribute_names("#doc", DOC)
                .expression_attribute_values(":doc", s(doc)),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(false),
            Err(e) => Err(AwsError::sdk("DynamoDB", "PutItem", e)),
        }
    }

    /// An invoice by its id, if it is known.
    pub async fn invoice(&self, invoice_id: &str) -> Result<Option<Invoice>, AwsError> {
        let Some(customer_id) = self.customer_of_invoice(invoice_id).await? else {
            return Ok(None);
        };
        Ok(self
            .get_doc::<Invoice>(
                &keys::customer_pk(&customer_id),
                &keys::invoice_sk(invoice_id),
            )
            .await?
            .map(|(i, _)| i))
    }

    /// The customer an invoice belongs to, if the invoice is known.
    pub async fn customer_of_invoice(&self, invoice_id: &str) -> Result<Option<String>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(keys::invoice_ref_pk(invoice_id)))
            .key(SK, s(keys::REF_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::sdk("DynamoDB", "GetItem", e))?;
        Ok(out
            .item
            .as_ref()
            .and_then(|it| get_s(it, keys::CUSTOMER_ID))
            .map(str::to_string))
    }

    /// Records a payment; `Ok(false)` when the invoice is not known. The
    /// payment that settles an invoice takes it out of the sweep's index.
    pub async fn put_payment(&self, p: &Payment) -> Result<bool, AwsError> {
        let Some(customer_id) = self.customer_of_invoice(&p.invoice_id).await? else {
            return Ok(false);
        };
        self.put(Self::payment_item(&customer_id, p)?).await?;
        self.refresh_open(&customer_id, &p.invoice_id).await?;
        Ok(true)
    }

    /// Sum of the payments recorded for an invoice.
    async fn paid(&self, customer_id: &str, invoice_id: &str) -> Result<Decimal, AwsError> {
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
    async fn refresh_open(&self, customer_id: &str, invoice_id: &str) -> Result<(), AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(keys::customer_pk(customer_id)))
            .key(SK, s(keys::invoice_sk(invoice_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::sdk("DynamoDB", "GetItem", e))?;
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
        let it = item(
            keys::customer_pk(&customer_id),
            keys::invoice_event_sk(invoice_id, &e.event_id),
            "event",
            encode(e)?,
        );
        self.put_new(it).await.map(Some)
    }

    /// Stores a mail event once under its message (or action), with a TTL.
    /// Returns whether it was new.
    pub async fn put_mail_event(&self, e: &MailEvent) -> Result<bool, AwsError> {
        let pk = match (&e.message_id, &e.action_id) {
            (Some(m), _) => keys::message_pk(m),
            (None, Some(a)) => keys::action_pk(a),
            (None, None) => {
                return Err(AwsError::Corrupt {
                    key: e.event_id.clone(),
                    reason: "a mail event needs a message or an action".to_string(),
                });
            }
        };
        let mut it = item(
            pk,
            keys::mail_event_sk(&e.event_id),
            "mail_event",
            encode(e)?,
        );
        let expires = e
            .date
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp())
            .unwrap_or_default()
            + MAIL_EVENT_DAYS * 86_400;
        it.insert(TTL.to_string(), n(expires));
        self.put_new(it).await
    }

    /// The mail events stored for a message.
    pub async fn mail_events(&self, message_id: &str) -> Result<Vec<MailEvent>, AwsError> {
        self.query_prefix(&keys::message_pk(message_id), keys::EVENT_PREFIX)
            .await?
            .iter()
            .map(decode)
            .collect()
    }

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
        let outcome = self.batch_put(items).await?;
        for (c, i) in &touched {
            self.refresh_open(c, i).await?;
        }
        Ok((outcome, unknown))
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
                .map_err(|e| AwsError::Corrupt {
                    key: "(batch item)".to_string(),
                    reason: e.to_string(),
                })?;
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
                    return Err(AwsError::Service {
                        service: "DynamoDB",
                        operation: "BatchWriteItem",
                        message: format!(
                            "{} item(s) still unprocessed after {BATCH_ATTEMPTS} attempts",
                            pending.len()
                        ),
                        retryable: true,
                    });
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| AwsError::sdk("DynamoDB", "BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                attempt += 1;
            }
        }
        Ok(outcome)
    }

    // ------------------------------------------------------------ reading

    /// The customers with an open invoice due on or before `through`
    /// (overdue ones included), in one shard: a Query on the sparse index.
    pub async fn open_customers(
        &self,
        shard: u32,
        through: NaiveDate,
    ) -> Result<Vec<String>, AwsError> {
        let mut out: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("#pk = :pk AND #sk <= :hi")
                .expression_attribute_names("#pk", GSI1PK)
                .expression_attribute_names("#sk", GSI1SK)
                .expression_attribute_values(":pk", s(keys::open_gsi_pk(shard)))
                // `~` sorts after every id character: the whole last day.
                .expression_attribute_values(":hi", s(format!("{through}#~")))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AwsError::sdk("DynamoDB", "Query", e))?;
            for it in page.items() {
                if let Some(c) = get_s(it, PK).and_then(keys::customer_of_pk) {
                    if seen.insert(c.to_string()) {
                        out.push(c.to_string());
                    }
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Every customer of a shard (training).
    pub async fn shard_customers(&self, shard: u32) -> Result<Vec<String>, AwsError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", GSI1PK)
                .expression_attribute_values(":pk", s(keys::customers_gsi_pk(shard)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AwsError::sdk("DynamoDB", "Query", e))?;
            out.extend(
                page.items()
                    .iter()
                    .filter_map(|it| get_s(it, PK).and_then(keys::customer_of_pk))
                    .map(str::to_string),
            );
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    /// All items of a partition whose sort key starts with `prefix`
    /// (`""` for all), every page.
    pub(super) async fn query_prefix(&self, pk: &str, prefix: &str) -> Result<Vec<Item>, AwsError> {
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
            q = if prefix.is_empty() {
                q.key_condition_expression("#pk = :pk")
            } else {
                q.key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":prefix", s(prefix))
            };
            let page = q
                .send()
                .await
                .map_err(|e| AwsError::sdk("DynamoDB", "Query", e))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    /// The whole history of some customers, as a book: one Query per
    /// customer partition, a bounded number at a time.
    pub async fn load_book(&self, customer_ids: &[String]) -> Result<Book, AwsError> {
        let mut customers = Vec::new();
        let mut invoices = Vec::new();
        let mut payments = Vec::new();
        let mut events = Vec::new();
        let mut actions = Vec::new();
        for chunk in customer_ids.chunks(PARALLEL_QUERIES) {
            let mut tasks = tokio::task::JoinSet::new();
            for c in chunk {
                let me = self.clone();
                let pk = keys::customer_pk(c);
                tasks.spawn(async move { me.query_prefix(&pk, "").await });
            }
            while let Some(joined) = tasks.join_next().await {
                let items = joined.map_err(|e| AwsError::Service {
                    service: "DynamoDB",
                    operation: "Query",
                    message: format!("a query task failed: {e}"),
                    retryable: true,
                })??;
                for it in &items {
                    match get_s(it, KIND) {
                        Some("customer") => customers.push(decode::<Customer>(it)?),
                        Some("invoice") => invoices.push(decode::<Invoice>(it)?),
                        Some("payment") => payments.push(decode::<Payment>(it)?),
                        Some("event") => events.push(decode::<Event>(it)?),
                        Some("action") => actions.push(decode::<ActionRecord>(it)?),
                        _ => {}
                    }
                }
            }
        }
        Ok(Book::new(customers, invoices, payments, events, actions))
    }

    // ------------------------------------------------------------ actions

    /// Records a sweep's actions. A new action is written only if no item
    /// has its id; a changed one only if its stored status is still the
    /// one the sweep saw (`previous`). Refused writes are conflicts: another
    /// run got there first, and this run must not act on them. Each write
    /// adds the line of `day` to the action's trail.
    ///
    /// Each write is its own conditional UpdateItem (DynamoDB has no batch
    /// of conditional writes short of a transaction, which costs twice), up
    /// to [`PARALLEL_WRITES`] at a time; the answer keeps the order of
    /// `records`. An error stops the recording: what was written stays
    /// written, and the next run sees it as recorded (as after a crash).
    pub async fn record_actions(
        &self,
        records: &[ActionRecord],
        previous: &HashMap<ActionId, ActionStatus>,
        day: NaiveDate,
    ) -> Result<Recorded, AwsError> {
        let mut out = Recorded::default();
        for chunk in records.chunks(PARALLEL_WRITES) {
            let mut tasks = tokio::task::JoinSet::new();
            for (i, r) in chunk.iter().enumerate() {
                let me = self.clone();
                let r = r.clone();
                let expected: Vec<ActionStatus> =
                    previous.get(&r.action_id).copied().into_iter().collect();
                tasks.spawn(async move { (i, me.put_action(&r, &expected, day).await) });
            }
            let mut written = vec![false; chunk.len()];
            while let Some(joined) = tasks.join_next().await {
                let (i, result) = joined.map_err(|e| AwsError::Service {
                    service: "DynamoDB",
                    operation: "UpdateItem",
                    message: format!("a write task failed: {e}"),
                    retryable: true,
                })?;
                if let Some(slot) = written.get_mut(i) {
                    *slot = result?;
                }
            }
            for (r, ok) in chunk.iter().zip(written) {
                if ok {
                    out.written.push(r.action_id.clone());
                } else {
                    out.conflicts.push(r.action_id.clone());
                }
            }
        }
        Ok(out)
    }

    /// Writes an action if its stored status is one of `expected` (or, with
    /// none, if it does not exist). `Ok(false)` when the condition fails.
    ///
    /// The same UpdateItem appends the change to the action's audit trail
    /// (the item's `trail` list: day, status, note, by, risk — what
    /// SQLite's `action_log` keeps), so the trail costs no request of its
    /// own and is never out of step with the record. A record written again
    /// unchanged (a rerun of a day) is answered as written and adds no line:
    /// the condition refuses it and returns the stored item, whose document
    /// is the same.
    ///
    /// Size: DynamoDB items are limited to 400 KB. A line is about 100–300
    /// bytes (the note is the longest part) and an action changes a few
    /// times in its life (planned, sending, sent; a deferral a day while a
    /// cap holds), so a trail stays far below the limit: a thousand lines
    /// would still be under a third of it.
    pub async fn put_action(
        &self,
        r: &ActionRecord,
        expected: &[ActionStatus],
        day: NaiveDate,
    ) -> Result<bool, AwsError> {
        let doc = encode(r)?;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(keys::customer_pk(&r.customer_id)))
            .key(SK, s(keys::action_sk(&r.action_id)))
            .update_expression(
                "SET #kind = :kind, #doc = :doc, #status = :status, \
                 #trail = list_append(if_not_exists(#trail, :empty), :line)",
            )
            .expression_attribute_names("#kind", KIND)
            .expression_attribute_names("#doc", DOC)
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#trail", TRAIL)
            .expression_attribute_values(":kind", s("action"))
            .expression_attribute_values(":doc", s(doc.clone()))
            .expression_attribute_values(":status", s(r.status.as_str()))
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":line", AttributeValue::L(vec![trail_line(r, day)]));
        if expected.is_empty() {
            update = update
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK);
        } else {
            let names: Vec<String> = (0..expected.len()).map(|i| format!(":s{i}")).collect();
            update = update
                .condition_expression(format!(
                    "#status IN ({}) AND #doc <> :doc",
                    names.join(", ")
                ))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            for (name, st) in names.iter().zip(expected) {
                update = update.expression_attribute_values(name, s(st.as_str()));
            }
        }
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(refused)) => {
                    // Refused: written already as it is (answered as
                    // written, no new line), or another run moved it.
                    let stored = refused.item();
                    let unchanged = stored.is_some_and(|it| {
                        get_s(it, DOC) == Some(doc.as_str())
                            && get_s(it, STATUS)
                                .is_some_and(|st| expected.iter().any(|x| x.as_str() == st))
                    });
                    Ok(unchanged)
                }
                _ => Err(AwsError::sdk("DynamoDB", "UpdateItem", e)),
            },
        }
    }

    /// An action's audit trail, oldest first (empty when the action is not
    /// known): one consistent GetItem of the trail attribute only.
    pub async fn action_trail(
        &self,
        customer_id: &str,
        action_id: &str,
    ) -> Result<Vec<LogEntry>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(keys::customer_pk(customer_id)))
            .key(SK, s(keys::action_sk(action_id)))
            .projection_expression("#trail")
            .expression_attribute_names("#trail", TRAIL)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::sdk("DynamoDB", "GetItem", e))?;
        let lines = match out.item.as_ref().and_then(|it| it.get(TRAIL)) {
            Some(AttributeValue::L(lines)) => lines.as_slice(),
            _ => &[],
        };
        lines
            .iter()
            .enumerate()
            .map(|(i, line)| read_trail_line(action_id, i, line))
            .collect()
    }

    pub async fn action(
        &self,
        customer_id: &str,
        action_id: &str,
    ) -> Result<Option<ActionRecord>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(keys::customer_pk(customer_id)))
            .key(SK, s(keys::action_sk(action_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::sdk("DynamoDB", "GetItem", e))?;
        out.item.as_ref().map(decode).transpose()
    }

    // ------------------------------------------------------------ low level

    async fn put(&self, it: Item) -> Result<(), AwsError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(it))
            .send()
            .await
            .map_err(|e| AwsError::sdk("DynamoDB", "PutItem", e))?;
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
            Err(e) => Err(AwsError::sdk("DynamoDB", "PutItem", e)),
        }
    }
}

/// One line of an action's trail: `day` and `status` always; `note`,
/// `by` and `risk` when the record has them (short, so a line stays small).
fn trail_line(r: &ActionRecord, day: NaiveDate) -> AttributeValue {
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
fn read_trail_line(
    action_id: &str,
    index: usize,
    line: &AttributeValue,
) -> Result<LogEntry, AwsError> {
    let corrupt = |reason: String| AwsError::Corrupt {
        key: format!("{}{action_id}/{TRAIL}[{index}]", keys::ACTION_PREFIX),
        reason,
    };
    let AttributeValue::M(m) = line else {
        return Err(corrupt("not a map".to_string()));
    };
    let text = |name: &str| match m.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    };
    let day = text("day")
        .ok_or_else(|| corrupt("no `day`".to_string()))?
        .parse::<NaiveDate>()
        .map_err(|e| corrupt(format!("`day`: {e}")))?;
    let status = text("status").ok_or_else(|| corrupt("no `status`".to_string()))?;
    let risk = match m.get("risk") {
        Some(AttributeValue::N(v)) => Some(
            v.parse::<f64>()
                .map_err(|e| corrupt(format!("`risk` `{v}`: {e}")))?,
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

/// 50 ms, 100 ms, 200 ms, … capped at 5 s.
pub(super) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64.saturating_mul(1u64 << attempt.min(7)).min(5_000))
}
