//! What the sweep and training read: a customer's live items and payment
//! history ([`Dynamo::load_live`], what a sweep decides from) or its whole
//! history ([`Dynamo::load_book`]: explain, audit, the desk, training), the
//! customers of a shard (those with an open invoice in a window, or all of
//! them), and an invoice by its id.

use std::collections::HashSet;

use chrono::NaiveDate;

use super::codec::{decode, get_s, s};
use super::{Dynamo, Item};
use crate::error::{AwsError, Service};
use crate::keys::{self, GSI1, GSI1PK, GSI1SK, KIND, PK, SK, STATUS};
use collect_engine::book::Book;
use collect_engine::contact::ContactHold;
use collect_engine::domain::{ActionRecord, Customer, Event, Invoice, Payment};
use collect_engine::history::PaymentHistory;

/// How many customer partitions are read at once.
const PARALLEL_QUERIES: usize = 16;

impl Dynamo {
    /// An invoice by its id, if it is known (live or folded).
    pub async fn invoice(&self, invoice_id: &str) -> Result<Option<Invoice>, AwsError> {
        let Some(customer_id) = self.customer_of_invoice(invoice_id).await? else {
            return Ok(None);
        };
        let live = self
            .get_doc::<Invoice>(
                &keys::customer_pk(&customer_id),
                &keys::invoice_sk(invoice_id),
            )
            .await?
            .map(|(i, _, _)| i);
        if live.is_some() {
            return Ok(live);
        }
        // Folded: its copy.
        self.folded_item(&customer_id, invoice_id, &keys::invoice_sk(invoice_id))
            .await?
            .as_ref()
            .map(decode)
            .transpose()
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
            .map_err(|e| AwsError::sdk(Service::DynamoDb, "GetItem", e))?;
        Ok(out
            .item
            .as_ref()
            .and_then(|it| get_s(it, keys::CUSTOMER_ID))
            .map(str::to_string))
    }

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
                .map_err(|e| AwsError::sdk(Service::DynamoDb, "Query", e))?;
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
                .map_err(|e| AwsError::sdk(Service::DynamoDb, "Query", e))?;
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

    /// The whole history of some customers, as a book: one Query per
    /// customer partition (the live items and the folded copies), a bounded
    /// number at a time; no aggregate (a full book).
    pub async fn load_book(&self, customer_ids: &[String]) -> Result<Book, AwsError> {
        self.load_each(
            customer_ids,
            |me, c| async move { me.customer_whole(&c).await },
        )
        .await
    }

    /// What a sweep of a day that looks back to `since` decides from: per
    /// customer its live items and its payment history
    /// ([`collect_engine::book::Book::history`]), never the folded
    /// invoices, so what it reads does not grow with history (a customer
    /// whose aggregate was folded after `since` is read whole). With
    /// `fold`, the customers' invoices that may fold before `since` are
    /// folded on the way (see `fold`): the sweep worker, which holds the
    /// shard's lease.
    pub async fn load_live(
        &self,
        customer_ids: &[String],
        since: NaiveDate,
        fold: bool,
    ) -> Result<Book, AwsError> {
        self.load_each(customer_ids, move |me, c| async move {
            me.customer_live(&c, since, fold).await
        })
        .await
    }

    /// Each customer's records by `read`, a bounded number at a time, as
    /// one book.
    async fn load_each<F, Fut>(&self, customer_ids: &[String], read: F) -> Result<Book, AwsError>
    where
        F: Fn(Dynamo, String) -> Fut,
        Fut: std::future::Future<Output = Result<Records, AwsError>> + Send + 'static,
    {
        let mut all = Records::default();
        for chunk in customer_ids.chunks(PARALLEL_QUERIES) {
            let mut tasks = tokio::task::JoinSet::new();
            for c in chunk {
                tasks.spawn(read(self.clone(), c.clone()));
            }
            while let Some(joined) = tasks.join_next().await {
                let records = joined.map_err(|source| AwsError::Task {
                    operation: "Query",
                    source,
                })??;
                all.absorb(records);
            }
        }
        Ok(all.into_book())
    }
}

/// A customer's records as read from its items, before they are a book.
#[derive(Debug, Default)]
pub(crate) struct Records {
    pub customers: Vec<Customer>,
    pub invoices: Vec<Invoice>,
    pub payments: Vec<Payment>,
    pub events: Vec<Event>,
    pub actions: Vec<ActionRecord>,
    /// Only the open holds: the checks before sending read them.
    pub holds: Vec<ContactHold>,
    /// The customers' aggregates (none in a full book).
    pub history: Vec<(String, PaymentHistory)>,
}

impl Records {
    /// Decodes an item by its kind; the invoice it belongs to, for an
    /// invoice, a payment, an invoice event or an action.
    pub(crate) fn push(&mut self, it: &Item) -> Result<Option<String>, AwsError> {
        Ok(match get_s(it, KIND) {
            Some("customer") => {
                self.customers.push(decode::<Customer>(it)?);
                None
            }
            Some("invoice") => {
                let i = decode::<Invoice>(it)?;
                let id = i.invoice_id.clone();
                self.invoices.push(i);
                Some(id)
            }
            Some("payment") => {
                let p = decode::<Payment>(it)?;
                let id = p.invoice_id.clone();
                self.payments.push(p);
                Some(id)
            }
            Some("event") => {
                let e = decode::<Event>(it)?;
                let id = e.invoice_id.clone();
                self.events.push(e);
                id
            }
            Some("action") => {
                let a = decode::<ActionRecord>(it)?;
                let id = a.invoice_id.to_string();
                self.actions.push(a);
                Some(id)
            }
            Some("contact_hold") if get_s(it, STATUS) == Some("open") => {
                self.holds.push(decode::<ContactHold>(it)?);
                None
            }
            _ => None,
        })
    }

    /// With the customer's aggregate, if it has one.
    pub(crate) fn with_history(
        mut self,
        customer_id: &str,
        history: Option<PaymentHistory>,
    ) -> Records {
        if let Some(h) = history {
            self.history.push((customer_id.to_string(), h));
        }
        self
    }

    /// Keeps the records of the invoices `keep` answers true for (and
    /// every record that names no invoice).
    pub(crate) fn retain_invoices(&mut self, keep: impl Fn(&str) -> bool) {
        self.invoices.retain(|i| keep(&i.invoice_id));
        self.payments.retain(|p| keep(&p.invoice_id));
        self.events
            .retain(|e| e.invoice_id.as_deref().is_none_or(&keep));
        self.actions.retain(|a| keep(&a.invoice_id));
    }

    fn absorb(&mut self, other: Records) {
        self.customers.extend(other.customers);
        self.invoices.extend(other.invoices);
        self.payments.extend(other.payments);
        self.events.extend(other.events);
        self.actions.extend(other.actions);
        self.holds.extend(other.holds);
        self.history.extend(other.history);
    }

    fn into_book(self) -> Book {
        let mut book = Book::new(
            self.customers,
            self.invoices,
            self.payments,
            self.events,
            self.actions,
        );
        for h in self.holds {
            book.contact_holds
                .entry(h.customer_id.to_string())
                .or_default()
                .push(h);
        }
        book.history = self.history.into_iter().collect();
        book
    }
}
