//! Folding: a customer's settled past moved out of the part of its
//! partition the sweep reads, its payment history kept as one aggregate.
//!
//! A sweep reads of each customer only what it decides from: the live items
//! (`PK = C#<customer> AND SK < "~"`) and the aggregate `HIST`
//! ([`PaymentHistory`], the sum of the customer's folded invoices). An
//! invoice that [`foldable`] lets go before the sweep's `since` (settled,
//! every payment, event and step before it, no step a sweep may write
//! again) is *folded*: its items (the invoice, its payments, events and
//! actions with their trails) are copied under `~<invoice>#<live sort key>`
//! (the `folded_invoice` and `live_sk` attributes say what they were), the
//! aggregate adds it, and the live items are deleted. One Query of the
//! whole partition still reads the customer's whole history (explain,
//! audit, the desk's customer page, training).
//!
//! **Which invoices are folded** is the aggregate item's `folded` set (ids
//! only: some 20 bytes an invoice); its `version` grows with every write,
//! and every write of it is conditional on the version read, so a fold and
//! an unfold never overwrite each other. A fold is four steps, each
//! idempotent, so a crash anywhere loses and duplicates nothing:
//! 1. the folded copies are put (a crash leaves copies of invoices still
//!    live: the aggregate does not name them, readers ignore them, the next
//!    fold puts them again);
//! 2. the aggregate is written with the invoices added to its sum and its
//!    set (conditional on its version: a fold that lost the race stops);
//! 3. each live item is deleted on the condition that it is still as read
//!    (a record the ERP changed meanwhile stays live);
//! 4. nothing more: a live item left behind (a crash in step 3, a change
//!    that came in between) belongs to an invoice the set names, which the
//!    next sweep sees and *unfolds*.
//!
//! **Late data** (a payment, an invoice update, an event naming a folded
//! invoice): the writer unfolds the invoice first ([`Dynamo::unfold_if_folded`]):
//! its folded copies are put back live (never over a live item: a newer
//! record wins), the aggregate drops it from its set and is marked `stale`
//! (the copies stay, ignored, until the invoice folds again). The next sweep rebuilds a stale aggregate
//! exactly from the folded copies the set names
//! ([`PaymentHistory::rebuild`]), and may fold the invoice again. A writer
//! that raced a fold (checked before the fold's step 2, wrote after its
//! read) leaves a live item of a folded invoice, which the next sweep
//! unfolds the same way.
//!
//! **A sweep of an earlier day** (a late job) looks back further than the
//! aggregate's cutoff ([`PaymentHistory::covers`]): it reads that
//! customer's whole partition instead, and folds nothing.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::NaiveDate;

use super::book::Records;
use super::codec::{conditional_failed, get_s, n, s};
use super::{Dynamo, Item};
use crate::error::{AwsError, Service};
use crate::keys::{self, DOC, FOLDED_INVOICE, GSI1PK, GSI1SK, KIND, LIVE_SK, PK, SK, TRAIL};
use collect_engine::book::Book;
use collect_engine::history::{FoldedInvoice, PaymentHistory, foldable};

/// The aggregate item's set of folded invoice ids (a string set).
const FOLDED: &str = "folded";
/// Set on the aggregate item when an invoice was unfolded: its sum is
/// rebuilt by the next sweep.
const STALE: &str = "stale";
/// Grows with every write of the aggregate item.
const VERSION: &str = "version";
/// Reads of a customer before its housekeeping (unfold, rebuild) is done;
/// after them the customer's whole partition is read.
const ATTEMPTS: usize = 4;
/// Conditional deletes in flight at once.
const PARALLEL_DELETES: usize = 16;
/// Attempts at an unfold's write of the aggregate while others write it.
const UNFOLD_ATTEMPTS: usize = 5;

/// The step of a fold after which a test's crash point may stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoldStep {
    /// The folded copies are written, the aggregate not yet.
    Copied,
    /// The aggregate names the invoices, no live item is deleted yet.
    Aggregated,
    /// One live item is deleted, the others not yet.
    FirstDeleted,
}

impl std::fmt::Display for FoldStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FoldStep::Copied => "after copying the folded items",
            FoldStep::Aggregated => "after writing the aggregate",
            FoldStep::FirstDeleted => "after deleting the first live item",
        })
    }
}

/// Whether the fold of a customer stops after a step.
pub type FoldCrash = dyn Fn(&str, FoldStep) -> bool + Send + Sync;

/// A test's crash points in the fold.
#[derive(Clone)]
pub struct FoldFault(pub Arc<FoldCrash>);

impl std::fmt::Debug for FoldFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FoldFault")
    }
}

/// The aggregate item as read.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stored {
    pub history: Option<PaymentHistory>,
    pub folded: BTreeSet<String>,
    pub stale: bool,
    /// `None`: there is no aggregate item.
    pub version: Option<i64>,
}

impl Stored {
    /// The aggregate item among a partition's items, if there is one.
    pub(crate) fn of(items: &[Item]) -> Result<Stored, AwsError> {
        match items
            .iter()
            .find(|it| get_s(it, SK) == Some(keys::HISTORY_SK))
        {
            Some(it) => Stored::read(it),
            None => Ok(Stored::default()),
        }
    }

    fn read(it: &Item) -> Result<Stored, AwsError> {
        let key = || format!("{}/{}", get_s(it, PK).unwrap_or("?"), keys::HISTORY_SK);
        let history = match get_s(it, DOC) {
            Some(doc) => Some(
                PaymentHistory::from_json(doc)
                    .map_err(|e| crate::error::CorruptError::json(key(), e))?,
            ),
            None => None,
        };
        let folded = match it.get(FOLDED) {
            Some(AttributeValue::Ss(ids)) => ids.iter().cloned().collect(),
            _ => BTreeSet::new(),
        };
        let version = match it.get(VERSION) {
            Some(AttributeValue::N(v)) => v.parse::<i64>().unwrap_or(0),
            _ => 0,
        };
        Ok(Stored {
            history,
            folded,
            stale: matches!(it.get(STALE), Some(AttributeValue::Bool(true))),
            version: Some(version),
        })
    }

    /// Whether a sweep looking back to `since` may read the aggregate
    /// instead of the folded records.
    pub(crate) fn covers(&self, since: NaiveDate) -> bool {
        self.folded.is_empty() || self.history.as_ref().is_none_or(|h| h.covers(since))
    }

    /// The aggregate a book carries: none while nothing is folded.
    pub(crate) fn aggregate(&self) -> Option<&PaymentHistory> {
        self.history.as_ref().filter(|_| !self.folded.is_empty())
    }
}

/// A live item as a folded copy of `invoice_id`'s: another sort key, no
/// index keys (a folded invoice is settled and its actions are not open
/// work), and what it was.
fn folded_copy(it: &Item, invoice_id: &str) -> Option<Item> {
    let live_sk = get_s(it, SK)?.to_string();
    let mut copy = it.clone();
    copy.remove(GSI1PK);
    copy.remove(GSI1SK);
    copy.insert(SK.to_string(), s(keys::folded_sk(invoice_id, &live_sk)));
    copy.insert(LIVE_SK.to_string(), s(live_sk));
    copy.insert(FOLDED_INVOICE.to_string(), s(invoice_id));
    Some(copy)
}

/// A folded copy as the live item it was.
fn live_again(it: &Item) -> Option<Item> {
    let live_sk = get_s(it, LIVE_SK)?.to_string();
    let mut live = it.clone();
    live.remove(LIVE_SK);
    live.remove(FOLDED_INVOICE);
    live.insert(SK.to_string(), s(live_sk));
    Some(live)
}

impl Dynamo {
    /// Crash points for tests: the fold of a customer stops with
    /// [`AwsError::FoldInterrupted`] after a step `fault` names.
    pub fn with_fold_fault(mut self, fault: FoldFault) -> Dynamo {
        self.fold_fault = Some(fault);
        self
    }

    /// A ledger whose load of the whole book ([`collect_delivery::ledger::Scope::All`])
    /// folds as a shard's sweep does: for the conformance suite, whose
    /// runs sweep the whole book. (The desk's audit page loads the whole
    /// book too, and must not write.)
    pub fn folding_every_scope(mut self) -> Dynamo {
        self.fold_every_scope = true;
        self
    }

    pub(crate) fn folds_every_scope(&self) -> bool {
        self.fold_every_scope
    }

    fn fold_crash(&self, customer_id: &str, step: FoldStep) -> Result<(), AwsError> {
        match &self.fold_fault {
            Some(f) if (f.0)(customer_id, step) => Err(AwsError::FoldInterrupted {
                customer: customer_id.to_string(),
                step,
            }),
            _ => Ok(()),
        }
    }

    /// The aggregate item of a customer, read consistently.
    pub(crate) async fn stored_history(&self, customer_id: &str) -> Result<Stored, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(keys::customer_pk(customer_id)))
            .key(SK, s(keys::HISTORY_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::sdk(Service::DynamoDb, "GetItem", e))?;
        match out.item {
            Some(it) => Stored::read(&it),
            None => Ok(Stored::default()),
        }
    }

    /// The customer's aggregate as it reads for a book: what
    /// [`collect_engine::book::Book::history`] holds of it.
    pub async fn payment_history(
        &self,
        customer_id: &str,
    ) -> Result<Option<PaymentHistory>, AwsError> {
        Ok(self.stored_history(customer_id).await?.aggregate().cloned())
    }

    /// Writes the aggregate item if its version is still `read` (no item
    /// when `None`); `Ok(false)` when another write came first.
    async fn put_history(
        &self,
        customer_id: &str,
        history: &PaymentHistory,
        folded: &BTreeSet<String>,
        stale: bool,
        read: Option<i64>,
    ) -> Result<bool, AwsError> {
        let mut it = Item::new();
        it.insert(PK.to_string(), s(keys::customer_pk(customer_id)));
        it.insert(SK.to_string(), s(keys::HISTORY_SK));
        it.insert(KIND.to_string(), s("history"));
        it.insert(DOC.to_string(), s(history.to_json()));
        if !folded.is_empty() {
            it.insert(
                FOLDED.to_string(),
                AttributeValue::Ss(folded.iter().cloned().collect()),
            );
        }
        if stale {
            it.insert(STALE.to_string(), AttributeValue::Bool(true));
        }
        it.insert(VERSION.to_string(), n(read.unwrap_or(0).saturating_add(1)));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(it));
        let put = match read {
            None => put
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK),
            Some(v) => put
                .condition_expression("#version = :version")
                .expression_attribute_names("#version", VERSION)
                .expression_attribute_values(":version", n(v)),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(false),
            Err(e) => Err(AwsError::sdk(Service::DynamoDb, "PutItem", e)),
        }
    }

    /// Deletes an item if its document (and, for an action, the length of
    /// its trail) is still as read; `Ok(false)` when it changed.
    async fn delete_if_unchanged(&self, it: &Item) -> Result<bool, AwsError> {
        let (Some(pk), Some(sk)) = (get_s(it, PK), get_s(it, SK)) else {
            return Ok(false);
        };
        let mut delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .expression_attribute_names("#doc", DOC);
        let doc = get_s(it, DOC).unwrap_or_default();
        delete = delete.expression_attribute_values(":doc", s(doc));
        delete = match it.get(TRAIL) {
            Some(AttributeValue::L(lines)) => delete
                .condition_expression("#doc = :doc AND size(#trail) = :lines")
                .expression_attribute_names("#trail", TRAIL)
                .expression_attribute_values(
                    ":lines",
                    n(i64::try_from(lines.len()).unwrap_or(i64::MAX)),
                ),
            _ => delete.condition_expression("#doc = :doc"),
        };
        match delete.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(false),
            Err(e) => Err(AwsError::sdk(Service::DynamoDb, "DeleteItem", e)),
        }
    }

    /// Folds a customer's foldable invoices before `cutoff` (see the
    /// module docs): `records` are its live items as read (`items`, each
    /// with the invoice it belongs to in `owners`), `stored` its aggregate
    /// as read. Returns the records left live, with the aggregate.
    pub(crate) async fn fold_customer(
        &self,
        customer_id: &str,
        items: &[Item],
        owners: &[Option<String>],
        records: Records,
        stored: &Stored,
        cutoff: NaiveDate,
    ) -> Result<Records, AwsError> {
        let mut records = records;
        let book = Book::new(
            records.customers.clone(),
            records.invoices.clone(),
            records.payments.clone(),
            records.events.clone(),
            records.actions.clone(),
        );
        let folding: Vec<FoldedInvoice> = book
            .invoices
            .iter()
            .filter_map(|i| foldable(&book, i, cutoff))
            .collect();
        if folding.is_empty() {
            // Exact for this cutoff too (nothing more folds before it).
            let history = stored.aggregate().cloned().map(|mut h| {
                h.folded_before = h.folded_before.max(cutoff);
                h
            });
            return Ok(records.with_history(customer_id, history));
        }
        let ids: HashSet<&str> = folding.iter().map(|f| f.invoice_id.as_str()).collect();
        let moving: Vec<(&Item, &str)> = items
            .iter()
            .zip(owners)
            .filter_map(|(it, owner)| {
                let owner = owner.as_deref().filter(|o| ids.contains(o))?;
                Some((it, owner))
            })
            .collect();
        // 1. The copies.
        let copies: Vec<Item> = moving
            .iter()
            .filter_map(|(it, owner)| folded_copy(it, owner))
            .collect();
        self.batch_put(copies).await?;
        self.fold_crash(customer_id, FoldStep::Copied)?;
        // 2. The aggregate, on the version read.
        let mut history = stored.aggregate().cloned().unwrap_or_default();
        history.folded_before = history.folded_before.max(cutoff);
        for f in &folding {
            history.add(f);
        }
        let mut folded = stored.folded.clone();
        folded.extend(ids.iter().map(|i| (*i).to_string()));
        if !self
            .put_history(customer_id, &history, &folded, false, stored.version)
            .await?
        {
            // Another write of the aggregate came first: nothing is folded
            // today (the copies are ignored until a fold names them).
            return Ok(records.with_history(customer_id, stored.aggregate().cloned()));
        }
        self.fold_crash(customer_id, FoldStep::Aggregated)?;
        // 3. The live items, each if unchanged.
        let mut first = true;
        for chunk in moving.chunks(PARALLEL_DELETES) {
            let mut tasks = tokio::task::JoinSet::new();
            for (it, _) in chunk {
                let me = self.clone();
                let it = (*it).clone();
                tasks.spawn(async move { me.delete_if_unchanged(&it).await });
            }
            while let Some(joined) = tasks.join_next().await {
                joined.map_err(|source| AwsError::Task {
                    operation: "DeleteItem",
                    source,
                })??;
            }
            if first {
                first = false;
                self.fold_crash(customer_id, FoldStep::FirstDeleted)?;
            }
        }
        records.retain_invoices(|i| !ids.contains(i));
        Ok(records.with_history(customer_id, Some(history)))
    }

    /// Puts a folded invoice's items back live (never over a live item),
    /// takes it out of the aggregate's set and marks the aggregate stale
    /// (the next sweep rebuilds it). The folded copies stay, ignored (the
    /// set no longer names them), until the invoice folds again and they
    /// are written over: an unfold needs no DeleteItem, so the events
    /// function and the desk, which may unfold, delete nothing.
    /// `Ok(false)` when the aggregate does not name the invoice.
    pub async fn unfold_invoice(
        &self,
        customer_id: &str,
        invoice_id: &str,
    ) -> Result<bool, AwsError> {
        let pk = keys::customer_pk(customer_id);
        for _ in 0..UNFOLD_ATTEMPTS {
            let stored = self.stored_history(customer_id).await?;
            if !stored.folded.contains(invoice_id) {
                return Ok(false);
            }
            let copies: Vec<Item> = self
                .query_prefix(&pk, &keys::folded_invoice_prefix(invoice_id))
                .await?
                .into_iter()
                .filter(|it| get_s(it, FOLDED_INVOICE) == Some(invoice_id))
                .collect();
            for copy in &copies {
                if let Some(live) = live_again(copy) {
                    self.put_new(live).await?;
                }
            }
            let mut folded = stored.folded.clone();
            folded.remove(invoice_id);
            let history = stored.history.clone().unwrap_or_default();
            if self
                .put_history(customer_id, &history, &folded, true, stored.version)
                .await?
            {
                tracing::info!(customer_id, invoice_id, "folded invoice unfolded");
                return Ok(true);
            }
        }
        Err(crate::error::ServiceError::kept_changing(
            "payment history",
            customer_id,
            u32::try_from(UNFOLD_ATTEMPTS).unwrap_or(u32::MAX),
        )
        .into())
    }

    /// Unfolds the invoice if its customer's aggregate names it (one
    /// consistent GetItem when it does not): what a writer of late data
    /// calls before it writes a record of the invoice.
    pub async fn unfold_if_folded(
        &self,
        customer_id: &str,
        invoice_id: &str,
    ) -> Result<bool, AwsError> {
        if !self
            .stored_history(customer_id)
            .await?
            .folded
            .contains(invoice_id)
        {
            return Ok(false);
        }
        self.unfold_invoice(customer_id, invoice_id).await
    }

    /// Rebuilds a stale aggregate from the folded copies its set names
    /// ([`PaymentHistory::rebuild`], the same sum a fold made); an invoice
    /// that would no longer fold is unfolded. `Ok(false)` when another
    /// write came first (the caller reads again).
    pub(crate) async fn rebuild_history(&self, customer_id: &str) -> Result<bool, AwsError> {
        let stored = self.stored_history(customer_id).await?;
        if !stored.stale {
            return Ok(true);
        }
        let cutoff = stored
            .history
            .as_ref()
            .map_or(NaiveDate::MIN, |h| h.folded_before);
        let mut records = Records::default();
        for it in self.query_folded(&keys::customer_pk(customer_id)).await? {
            if get_s(&it, FOLDED_INVOICE).is_some_and(|i| stored.folded.contains(i)) {
                records.push(&it)?;
            }
        }
        let book = Book::new(
            Vec::new(),
            records.invoices,
            records.payments,
            records.events,
            records.actions,
        );
        let mut folded = BTreeSet::new();
        let mut sums: Vec<FoldedInvoice> = Vec::new();
        for i in &book.invoices {
            if let Some(f) = foldable(&book, i, cutoff) {
                folded.insert(f.invoice_id.clone());
                sums.push(f);
            }
        }
        let history = PaymentHistory::rebuild(&sums, cutoff);
        if !self
            .put_history(customer_id, &history, &folded, false, stored.version)
            .await?
        {
            return Ok(false);
        }
        // Named but not foldable (or with no copy): live again.
        for gone in stored.folded.difference(&folded) {
            let pk = keys::customer_pk(customer_id);
            for copy in self
                .query_prefix(&pk, &keys::folded_invoice_prefix(gone))
                .await?
                .into_iter()
                .filter(|it| get_s(it, FOLDED_INVOICE) == Some(gone.as_str()))
            {
                if let Some(live) = live_again(&copy) {
                    self.put_new(live).await?;
                }
            }
        }
        tracing::info!(
            customer_id,
            folded = folded.len(),
            "payment history rebuilt"
        );
        Ok(true)
    }

    /// One customer's records for a sweep of a day that looks back to
    /// `since`: the live items and the aggregate when the aggregate covers
    /// `since`, the whole history otherwise. With `fold`, the customer's
    /// housekeeping is done first (leftovers unfolded, a stale aggregate
    /// rebuilt) and its foldable invoices are folded; without it (the
    /// checks before sending), a customer that needs housekeeping is read
    /// whole.
    pub(crate) async fn customer_live(
        &self,
        customer_id: &str,
        since: NaiveDate,
        fold: bool,
    ) -> Result<Records, AwsError> {
        let pk = keys::customer_pk(customer_id);
        for _ in 0..ATTEMPTS {
            let items = self.query_live(&pk).await?;
            let stored = Stored::of(&items)?;
            if !stored.covers(since) {
                break;
            }
            let mut records = Records::default();
            let mut owners = Vec::with_capacity(items.len());
            for it in &items {
                owners.push(records.push(it)?);
            }
            let leftovers: BTreeSet<&str> = owners
                .iter()
                .flatten()
                .map(String::as_str)
                .filter(|i| stored.folded.contains(*i))
                .collect();
            if stored.stale || !leftovers.is_empty() {
                if !fold {
                    break;
                }
                for invoice_id in leftovers {
                    self.unfold_invoice(customer_id, invoice_id).await?;
                }
                self.rebuild_history(customer_id).await?;
                continue;
            }
            return if fold {
                self.fold_customer(customer_id, &items, &owners, records, &stored, since)
                    .await
            } else {
                Ok(records.with_history(customer_id, stored.aggregate().cloned()))
            };
        }
        self.customer_whole(customer_id).await
    }

    /// One customer's whole history: the live items and the folded copies
    /// of the invoices the aggregate names (a live item wins over its copy),
    /// without the aggregate (a full book).
    pub(crate) async fn customer_whole(&self, customer_id: &str) -> Result<Records, AwsError> {
        let items = self
            .query_prefix(&keys::customer_pk(customer_id), "")
            .await?;
        let stored = Stored::of(&items)?;
        let live: HashSet<&str> = items
            .iter()
            .filter_map(|it| get_s(it, SK))
            .filter(|sk| *sk < keys::FOLDED_PREFIX)
            .collect();
        let mut records = Records::default();
        for it in &items {
            let Some(sk) = get_s(it, SK) else { continue };
            if sk >= keys::FOLDED_PREFIX {
                let named = get_s(it, FOLDED_INVOICE).is_some_and(|i| stored.folded.contains(i));
                let shadowed = get_s(it, LIVE_SK).is_none_or(|l| live.contains(l));
                if !named || shadowed {
                    continue;
                }
            }
            records.push(it)?;
        }
        Ok(records)
    }

    /// A folded copy of an action, by the action's invoice and id (the
    /// trail and the record of an action whose invoice was folded).
    pub(crate) async fn folded_item(
        &self,
        customer_id: &str,
        invoice_id: &str,
        live_sk: &str,
    ) -> Result<Option<Item>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(keys::customer_pk(customer_id)))
            .key(SK, s(keys::folded_sk(invoice_id, live_sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::sdk(Service::DynamoDb, "GetItem", e))?;
        Ok(out.item)
    }

    /// A folded action found by its id alone (the desk names an action by
    /// customer and id): the customer's folded items, filtered.
    pub(crate) async fn folded_action(
        &self,
        customer_id: &str,
        action_id: &str,
    ) -> Result<Option<Item>, AwsError> {
        let live_sk = keys::action_sk(action_id);
        Ok(self
            .query_folded(&keys::customer_pk(customer_id))
            .await?
            .into_iter()
            .find(|it| get_s(it, LIVE_SK) == Some(live_sk.as_str())))
    }
}
