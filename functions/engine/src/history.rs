//! A customer's payment history as an aggregate: what the invoices that are
//! settled and wholly in the past contribute to every fact a policy or the
//! risk model reads, so a sweep need not load them.
//!
//! - [`FoldedInvoice`]: what one such invoice contributes (its dates, amount,
//!   settlement day, and the plan and dispute flags it leaves for ever);
//! - [`PaymentHistory`]: the sum of a customer's folded invoices
//!   ([`Book::history`]); [`Settlements`], its part about settlement days;
//! - [`foldable`]: the rule — which invoice may fold before a cutoff;
//! - [`fold`]: a book with its foldable invoices moved into the aggregates
//!   (the memory ledger and the tests; SQLite and DynamoDB store the
//!   aggregate and keep the same rule).
//!
//! **The cutoff** is the sweep's `since` ([`crate::sweep::history_since`]):
//! an aggregate folded before `cutoff` answers exactly as the full records
//! for every day whose sweep looks back no further than that, i.e. any day
//! `D` with `history_since(policy, D) >= cutoff`. (Steps of folded invoices
//! are dated before the cutoff, so they fall outside every contact cap and
//! the model's communication window; a policy whose caps reach further back
//! than an adapter's stored fold must not be swept from that fold.)
//!
//! **Exact and order-independent.** Every field is a count, an integer sum,
//! a minimum or maximum, or a multiset (the days after due as a histogram,
//! the amounts, the settlements by day, the latest [`RECENT_SETTLED`] in the
//! canonical order settled on, due, invoice id). Adding folded invoices in
//! any order, or adding some here and the rest from the remaining records
//! ([`Book::customer_stats`], the model's features), gives the same values
//! bit for bit: there is no floating-point sum whose result depends on the
//! order. The recency-weighted mean of the model is built from
//! [`Settlements::by_day`] (integer sums per settlement day), in day order,
//! on both paths (see `collect_model::features`). So a late payment that
//! settles an invoice before the last folded one needs no rebuild; the
//! aggregate is rebuilt from records ([`PaymentHistory::rebuild`]) only when
//! a record of an invoice already folded changes (a refund, a reopened
//! dispute): the adapter then unfolds the customer and folds again.
//!
//! **For a stored adapter.** Load a customer's unfolded records and its
//! stored aggregate into a [`Book`] (`history`), call [`fold`] with the
//! sweep's `since`, and in one transaction store the new aggregate
//! ([`PaymentHistory::to_json`]) and mark folded the invoices that left the
//! book (a crash between the two would add an invoice twice). A sweep whose
//! `since` is before [`PaymentHistory::folded_before`] (a policy whose caps
//! now reach further back) must not read the aggregate
//! ([`PaymentHistory::covers`]): unfold and read the records. Late data on
//! a folded invoice: unfold the customer (drop the aggregate, clear the
//! marks); the next fold rebuilds it from the records.
//!
//! **Compact, not constant.** The median of the customer's earlier amounts
//! and the median days after due need the multisets: amounts are kept as
//! (amount, count) runs, days after due as a histogram, settlements by day
//! as (day, Σ days after due, count). A customer with four years of monthly
//! invoices keeps some 48 runs of each at most, a few hundred bytes to a few
//! KiB instead of every invoice, payment, event and step.

use crate::book::{Book, PlanState};
use crate::domain::{Invoice, MAX_AMOUNT};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// How many of the latest settled invoices an aggregate keeps by name (the
/// model's "recent" late share and the last days late read them).
pub const RECENT_SETTLED: usize = 5;

/// What one folded invoice contributes: settled before the cutoff, nothing
/// dated on or after it, so none of these values changes on a later day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoldedInvoice {
    pub invoice_id: String,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub amount: Decimal,
    /// The day its payments first covered its amount ([`Book::settled_on`]).
    pub settled_on: NaiveDate,
    /// A payment plan was accepted on it.
    pub plan_accepted: bool,
    /// Its latest plan is defaulted, for ever (the schedule's missed
    /// amounts stay missed: no payment comes after the cutoff).
    pub plan_defaulted: bool,
    /// A dispute on it is open, for ever (no event comes after the cutoff).
    pub dispute_open: bool,
}

impl FoldedInvoice {
    /// Its settlement, as [`Settlements::add`] takes it.
    pub fn settlement(&self) -> Settlement<'_> {
        Settlement {
            invoice_id: &self.invoice_id,
            issue_date: self.issue_date,
            due_date: self.due_date,
            settled_on: self.settled_on,
        }
    }
}

/// One settled invoice, as the settlement facts read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement<'a> {
    pub invoice_id: &'a str,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub settled_on: NaiveDate,
}

impl Settlement<'_> {
    /// Settlement day minus due date (negative: early).
    pub fn days_after_due(&self) -> i64 {
        (self.settled_on - self.due_date).num_days()
    }
}

/// One of the latest settlements, kept by name so the latest few are known
/// in the canonical order (settled on, due, invoice id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentSettlement {
    pub settled_on: NaiveDate,
    pub due_date: NaiveDate,
    pub invoice_id: String,
    pub days_after_due: i64,
}

impl RecentSettlement {
    fn key(&self) -> (NaiveDate, NaiveDate, &str) {
        (self.settled_on, self.due_date, &self.invoice_id)
    }
}

/// The settlements of a customer's invoices: counts, integer sums and
/// multisets, so any two sets add exactly and in any order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlements {
    /// Invoices settled.
    pub count: u32,
    /// Of them, settled after their due date.
    pub late: u32,
    /// Σ days late of the late ones.
    pub total_days_late: i64,
    /// Σ days after due (negative when early), all of them.
    pub total_days_after_due: i64,
    /// Σ days from issue to settlement.
    pub total_days_to_pay: i64,
    /// Histogram of days after due: `(days, count)`, by days.
    pub days_after_due: Vec<(i64, u32)>,
    /// By settlement day: `(day, Σ days after due, count)`, by day.
    pub by_day: Vec<(NaiveDate, i64, u32)>,
    /// The latest [`RECENT_SETTLED`], oldest first in the canonical order.
    pub recent: Vec<RecentSettlement>,
}

impl Settlements {
    /// The empty set (a `const`, so a borrowed default needs no allocation).
    pub const EMPTY: Settlements = Settlements {
        count: 0,
        late: 0,
        total_days_late: 0,
        total_days_after_due: 0,
        total_days_to_pay: 0,
        days_after_due: Vec::new(),
        by_day: Vec::new(),
        recent: Vec::new(),
    };

    /// Adds one settlement.
    pub fn add(&mut self, s: &Settlement<'_>) {
        let after = s.days_after_due();
        self.count = self.count.saturating_add(1);
        if after > 0 {
            self.late = self.late.saturating_add(1);
            self.total_days_late = self.total_days_late.saturating_add(after);
        }
        self.total_days_after_due = self.total_days_after_due.saturating_add(after);
        self.total_days_to_pay = self
            .total_days_to_pay
            .saturating_add((s.settled_on - s.issue_date).num_days());
        match self.days_after_due.binary_search_by_key(&after, |e| e.0) {
            Ok(at) => {
                if let Some(e) = self.days_after_due.get_mut(at) {
                    e.1 = e.1.saturating_add(1);
                }
            }
            Err(at) => self.days_after_due.insert(at, (after, 1)),
        }
        match self.by_day.binary_search_by_key(&s.settled_on, |e| e.0) {
            Ok(at) => {
                if let Some(e) = self.by_day.get_mut(at) {
                    e.1 = e.1.saturating_add(after);
                    e.2 = e.2.saturating_add(1);
                }
            }
            Err(at) => self.by_day.insert(at, (s.settled_on, after, 1)),
        }
        let key = (s.settled_on, s.due_date, s.invoice_id);
        let at = self.recent.partition_point(|r| r.key() <= key);
        if at > 0 || self.recent.len() < RECENT_SETTLED {
            self.recent.insert(
                at,
                RecentSettlement {
                    settled_on: s.settled_on,
                    due_date: s.due_date,
                    invoice_id: s.invoice_id.to_string(),
                    days_after_due: after,
                },
            );
            if self.recent.len() > RECENT_SETTLED {
                self.recent.remove(0);
            }
        }
    }

    /// The latest settlement in the canonical order.
    pub fn last(&self) -> Option<&RecentSettlement> {
        self.recent.last()
    }

    /// The day of the latest settlement.
    pub fn last_settled_on(&self) -> Option<NaiveDate> {
        self.by_day.last().map(|e| e.0)
    }

    /// The most days after due (negative when every one was early).
    pub fn max_days_after_due(&self) -> Option<i64> {
        self.days_after_due.last().map(|e| e.0)
    }

    /// How many settled at most `days` after due (e.g. `-7`: a week early).
    pub fn at_most_days_after_due(&self, days: i64) -> u32 {
        self.days_after_due
            .iter()
            .take_while(|e| e.0 <= days)
            .fold(0u32, |n, e| n.saturating_add(e.1))
    }

    /// The median days after due (the mean of the two middle ones for an
    /// even count), as `f64` exactly as a sorted list would give it.
    pub fn median_days_after_due(&self) -> Option<f64> {
        let n = usize::try_from(self.count).ok()?;
        if n == 0 {
            return None;
        }
        let hi = nth(&self.days_after_due, n / 2)? as f64;
        if n % 2 == 1 {
            Some(hi)
        } else {
            let lo = nth(&self.days_after_due, n / 2 - 1)? as f64;
            Some((lo + hi) / 2.0)
        }
    }
}

/// The `k`-th (from 0) value of a run-length list sorted by value.
fn nth<T: Copy>(runs: &[(T, u32)], k: usize) -> Option<T> {
    let mut seen = 0usize;
    for (v, c) in runs {
        seen = seen.saturating_add(usize::try_from(*c).ok()?);
        if k < seen {
            return Some(*v);
        }
    }
    None
}

/// A customer's folded invoices, summed: everything [`Book::customer_stats`]
/// and the model's features read of them. Serialised with serde (JSON) so
/// an adapter stores it as one value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentHistory {
    /// The latest cutoff an invoice was folded before: the aggregate is
    /// exact for a sweep whose `since` is on or after it.
    pub folded_before: NaiveDate,
    /// Invoices folded.
    pub invoices: u32,
    /// The earliest issue date among them.
    pub first_issue: Option<NaiveDate>,
    /// Their amounts, `(amount, count)` by amount (the median of a
    /// customer's earlier amounts needs them all).
    pub amounts: Vec<(Decimal, u32)>,
    /// Their settlements (every folded invoice is settled).
    pub settlements: Settlements,
    /// Of them, with a plan accepted.
    pub plans_accepted: u32,
    /// Of those, with the plan defaulted.
    pub plans_defaulted: u32,
    /// Of them, with a dispute still open.
    pub disputes_open: u32,
}

impl Default for PaymentHistory {
    fn default() -> Self {
        PaymentHistory {
            folded_before: NaiveDate::MIN,
            invoices: 0,
            first_issue: None,
            amounts: Vec::new(),
            settlements: Settlements::default(),
            plans_accepted: 0,
            plans_defaulted: 0,
            disputes_open: 0,
        }
    }
}

impl PaymentHistory {
    /// Adds one folded invoice (any order gives the same aggregate). The
    /// caller makes sure an invoice is added once.
    pub fn add(&mut self, f: &FoldedInvoice) {
        self.invoices = self.invoices.saturating_add(1);
        self.first_issue = Some(
            self.first_issue
                .map_or(f.issue_date, |d| d.min(f.issue_date)),
        );
        match self.amounts.binary_search_by(|e| e.0.cmp(&f.amount)) {
            Ok(at) => {
                if let Some(e) = self.amounts.get_mut(at) {
                    e.1 = e.1.saturating_add(1);
                }
            }
            Err(at) => self.amounts.insert(at, (f.amount, 1)),
        }
        self.settlements.add(&f.settlement());
        if f.plan_accepted {
            self.plans_accepted = self.plans_accepted.saturating_add(1);
            if f.plan_defaulted {
                self.plans_defaulted = self.plans_defaulted.saturating_add(1);
            }
        }
        if f.dispute_open {
            self.disputes_open = self.disputes_open.saturating_add(1);
        }
    }

    /// The aggregate of these folded invoices, folded before `cutoff`: what
    /// an adapter writes when it rebuilds a customer from its records.
    pub fn rebuild<'a>(
        folded: impl IntoIterator<Item = &'a FoldedInvoice>,
        cutoff: NaiveDate,
    ) -> PaymentHistory {
        let mut h = PaymentHistory {
            folded_before: cutoff,
            ..PaymentHistory::default()
        };
        for f in folded {
            h.add(f);
        }
        h
    }

    /// Whether a sweep that looks back to `since` may read this aggregate
    /// instead of the records it sums.
    pub fn covers(&self, since: NaiveDate) -> bool {
        self.folded_before <= since
    }

    /// The aggregate as one JSON value, for an adapter to store.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// An aggregate stored by [`PaymentHistory::to_json`].
    pub fn from_json(text: &str) -> Result<PaymentHistory, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// What `invoice` contributes to its customer's aggregate if it may fold
/// before `cutoff`, or `None` when it must stay in the book. It folds when,
/// on every day from `cutoff` on, the sweep, the checks and the model read
/// nothing of it but these values:
/// - issued and settled before the cutoff, every payment dated before it,
///   and not open after them (so not open on any later day);
/// - every invoice event (mail events naming it included) and every
///   recorded step dated before the cutoff, and no step a sweep may still
///   write (planned, sending, awaiting approval, approved, deferred);
/// - its dispute and plan states fixed: a dispute the export dates on or
///   after the cutoff, or a current plan whose schedule is not yet paid in
///   full, keep it in the book;
/// - amounts within [`MAX_AMOUNT`] (beyond it the customer is set aside,
///   which only the records can say).
pub fn foldable(book: &Book, invoice: &Invoice, cutoff: NaiveDate) -> Option<FoldedInvoice> {
    let last_day = cutoff.pred_opt()?;
    if invoice.issue_date >= cutoff || invoice.amount.abs() > MAX_AMOUNT {
        return None;
    }
    let settled_on = book.settled_on(invoice).filter(|d| *d < cutoff)?;
    let payments = book
        .payments
        .get(&invoice.invoice_id)
        .map_or(&[][..], Vec::as_slice);
    if payments
        .iter()
        .any(|p| p.paid_on >= cutoff || p.amount.abs() > MAX_AMOUNT)
    {
        return None;
    }
    if book.balance(invoice, last_day) > Decimal::ZERO {
        return None;
    }
    let events = book
        .events
        .get(&invoice.invoice_id)
        .map_or(&[][..], Vec::as_slice);
    if events.iter().any(|e| e.date >= cutoff) {
        return None;
    }
    let steps = book.steps_of(&invoice.invoice_id);
    if steps.iter().any(|s| {
        crate::book::is_live(s.status)
            || s.decided_on >= cutoff
            || s.sent_on.is_some_and(|d| d >= cutoff)
    }) || book
        .actions_of(&invoice.invoice_id)
        .iter()
        .any(|a| crate::book::is_live(a.status))
    {
        return None;
    }
    if invoice.disputed && invoice.dispute_opened_on.unwrap_or(invoice.issue_date) >= cutoff {
        return None;
    }
    let (dispute_open, _) = book.dispute_open(invoice, last_day);
    let plan_accepted = events
        .iter()
        .any(|e| matches!(e.kind, crate::domain::EventKind::PlanAccepted(_)));
    let plan_defaulted = match book.plan_state(invoice, last_day) {
        PlanState::None => false,
        PlanState::Defaulted => true,
        PlanState::Current => {
            // Current for ever only when the schedule is paid in full.
            let plan = book.plan(invoice, last_day)?;
            let paid = payments
                .iter()
                .filter(|p| p.paid_on >= plan.accepted_on)
                .map(|p| p.amount)
                .fold(Decimal::ZERO, Decimal::saturating_add);
            let owed = plan
                .items
                .iter()
                .map(|(_, a)| *a)
                .fold(Decimal::ZERO, Decimal::saturating_add);
            if paid < owed {
                return None;
            }
            false
        }
    };
    Some(FoldedInvoice {
        invoice_id: invoice.invoice_id.clone(),
        issue_date: invoice.issue_date,
        due_date: invoice.due_date,
        amount: invoice.amount,
        settled_on,
        plan_accepted,
        plan_defaulted,
        dispute_open,
    })
}

/// The book with every [`foldable`] invoice before `cutoff` moved into its
/// customer's aggregate in [`Book::history`] (added to what is there): its
/// invoice, payments, events, steps and action records leave the book.
pub fn fold(mut book: Book, cutoff: NaiveDate) -> Book {
    let mut folded: Vec<(String, FoldedInvoice)> = Vec::new();
    for inv in &book.invoices {
        if let Some(f) = foldable(&book, inv, cutoff) {
            folded.push((inv.customer_id.clone(), f));
        }
    }
    if folded.is_empty() {
        return book;
    }
    let mut gone = std::collections::HashSet::with_capacity(folded.len());
    for (customer, f) in folded {
        book.payments.remove(&f.invoice_id);
        book.events.remove(&f.invoice_id);
        book.steps.remove(&f.invoice_id);
        book.actions.remove(&f.invoice_id);
        let h = book.history.entry(customer).or_default();
        h.folded_before = h.folded_before.max(cutoff);
        h.add(&f);
        gone.insert(f.invoice_id);
    }
    book.invoices.retain(|i| !gone.contains(&i.invoice_id));
    book.reindex();
    book
}

/// The canonical order of settlements: settled on, due, invoice id.
pub fn canonical(a: &Settlement<'_>, b: &Settlement<'_>) -> Ordering {
    (a.settled_on, a.due_date, a.invoice_id).cmp(&(b.settled_on, b.due_date, b.invoice_id))
}
