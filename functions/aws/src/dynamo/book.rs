//! What the sweep and training read: a customer's whole partition as a
//! book, the customers of a shard (those with an open invoice in a window,
//! or all of them), and an invoice by its id.

use std::collections::HashSet;

use chrono::NaiveDate;

use super::codec::{decode, get_s, s};
use super::{Dynamo, Item};
use crate::error::{AwsError, Service};
use crate::keys::{self, GSI1, GSI1PK, GSI1SK, KIND, PK, SK, STATUS};
use collect_engine::book::Book;
use collect_engine::contact::ContactHold;
use collect_engine::domain::{ActionRecord, Customer, Event, Invoice, Payment};

/// How many customer partitions are read at once.
const PARALLEL_QUERIES: usize = 16;

impl Dynamo {
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
            .map(|(i, _, _)| i))
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
    /// customer partition, a bounded number at a time.
    pub async fn load_book(&self, customer_ids: &[String]) -> Result<Book, AwsError> {
        let mut customers = Vec::new();
        let mut invoices = Vec::new();
        let mut payments = Vec::new();
        let mut events = Vec::new();
        let mut actions = Vec::new();
        let mut holds: Vec<ContactHold> = Vec::new();
        for chunk in customer_ids.chunks(PARALLEL_QUERIES) {
            let mut tasks = tokio::task::JoinSet::new();
            for c in chunk {
                let me = self.clone();
                let pk = keys::customer_pk(c);
                tasks.spawn(async move { me.query_prefix(&pk, "").await });
            }
            while let Some(joined) = tasks.join_next().await {
                let items = joined.map_err(|source| AwsError::Task {
                    operation: "Query",
                    source,
                })??;
                for it in &items {
                    match get_s(it, KIND) {
                        Some("customer") => customers.push(decode::<Customer>(it)?),
                        Some("invoice") => invoices.push(decode::<Invoice>(it)?),
                        Some("payment") => payments.push(decode::<Payment>(it)?),
                        Some("event") => events.push(decode::<Event>(it)?),
                        Some("action") => actions.push(decode::<ActionRecord>(it)?),
                        // Only the open holds: the checks before sending read them.
                        Some("contact_hold") if get_s(it, STATUS) == Some("open") => {
                            holds.push(decode::<ContactHold>(it)?);
                        }
                        _ => {}
                    }
                }
            }
        }
        let mut book = Book::new(customers, invoices, payments, events, actions);
        for h in holds {
            book.contact_holds
                .entry(h.customer_id.to_string())
                .or_default()
                .push(h);
        }
        Ok(book)
    }
}
