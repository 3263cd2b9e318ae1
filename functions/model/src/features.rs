//! Leak-free features of one open invoice as of a prediction day.
//!
//! Everything here is computed from a [`Book`] for a day `D` and uses only
//! what was known then:
//! - the customer's payment behaviour comes from invoices settled strictly
//!   before `D` (as [`Book::customer_stats`] counts them);
//! - exposure (open and overdue invoices, open amount) is the book's as-of
//!   view at the end of `D`, the same view the sweep acts on;
//! - disputes, promises, plans, reminders sent and mail opened or answered
//!   count only when dated strictly before `D`;
//! - nothing reads the invoice's own outcome, nor any fact dated after `D`.
//!
//! A fact that is not known (no settled invoice yet, no credit limit in the
//! export, …) is `None` here; the model turns it into an explicit
//! missing-indicator column plus a neutral fill value (the training mean), so
//! "unknown" is never confused with zero.
//!
//! **Full and folded books, one code path.** A book loaded for a sweep may
//! hold a customer's settled, wholly past invoices as one aggregate
//! ([`Book::history`], `collect_engine::history`) instead of records. The
//! payment-history features start from that aggregate's [`Settlements`]
//! (empty in a full book) and add the customer's remaining settled
//! invoices; the other customer-level counts start from its counts. Every
//! value is a count, an integer sum, a maximum or a median over multisets,
//! so a folded book gives the same row as the full records bit for bit.
//! The recency-weighted mean (`hist_ewm_days_after_due`) is
//! Σ w·x / Σ w with w = 2^(−age/`HALF_LIFE_DAYS`): the day's factor cancels
//! between numerator and denominator, so the age is taken from the latest
//! settlement instead of the day, and the sums run per settlement day
//! ([`Settlements::by_day`], integer sums) in day order — the same
//! floating-point operations whichever records the settlements came from.

use chrono::{Datelike, Days, NaiveDate};
use collect_engine::book::{Book, PlanState};
use collect_engine::domain::{ActionStatus, EventKind, Invoice};
use collect_engine::history::{Settlement, Settlements};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Bumped whenever a feature is added, removed, reordered or changes meaning:
/// a model trained on another version is refused at load time.
pub const SCHEMA_VERSION: u32 = 1;

/// How far back customer-level communication counts reach (the engine's,
/// so that a sweep loads at least this much history).
pub use collect_engine::book::COMMUNICATION_DAYS;

/// An invoice paid at least this many days before its due date counts as paid early.
pub const EARLY_DAYS: i64 = 7;

/// How many of the latest settled invoices make the "recent" late share
/// (the engine's aggregate keeps that many by name).
pub use collect_engine::history::RECENT_SETTLED;

/// Recency weighting of the customer's history: a settlement this many days
/// older counts half as much.
pub const HALF_LIFE_DAYS: f64 = 90.0;

/// A due date within this many days of a calendar quarter's end is "quarter-end".
pub const QUARTER_END_DAYS: i64 = 14;

/// One base feature: its column name and, when it can be unknown, the name of
/// the missing-indicator column it shares with the features that are unknown
/// for the same reason.
#[derive(Debug, Clone, Copy)]
pub struct FeatureDef {
    pub name: &'static str,
    pub missing: Option<&'static str>,
    pub doc: &'static str,
}

const fn f(name: &'static str, doc: &'static str) -> FeatureDef {
    FeatureDef {
        name,
        missing: None,
        doc,
    }
}

const fn m(name: &'static str, missing: &'static str, doc: &'static str) -> FeatureDef {
    FeatureDef {
        name,
        missing: Some(missing),
        doc,
    }
}

const HIST: &str = "no_payment_history";

/// The base features, in column order. Missing-indicator columns follow them
/// (see [`FeatureSchema::current`]).
pub const FEATURES: &[FeatureDef] = &[
    // The customer's payment behaviour (invoices settled before the day).
    f(
        "hist_settled_log",
        "ln(1 + invoices of the customer settled before the day)",
    ),
    m(
        "hist_late_share",
        HIST,
        "share of them settled after their due date",
    ),
    m(
        "hist_mean_days_late",
        HIST,
        "mean days late (0 when on time)",
    ),
    m("hist_max_days_late", HIST, "worst days late"),
    m(
        "hist_last_days_late",
        HIST,
        "days late of the most recently settled one",
    ),
    m(
        "hist_mean_days_after_due",
        HIST,
        "mean settlement day relative to the due date (negative = early)",
    ),
    m(
        "hist_mean_days_to_pay",
        HIST,
        "mean days from issue to settlement",
    ),
    m(
        "hist_early_share",
        HIST,
        "share paid at least EARLY_DAYS before the due date",
    ),
    m(
        "hist_recent_late_share",
        HIST,
        "late share of the RECENT_SETTLED latest settled",
    ),
    m(
        "hist_recent_mean_days_after_due",
        HIST,
        "mean settlement day relative to due of the RECENT_SETTLED latest settled",
    ),
    m(
        "hist_median_days_after_due",
        HIST,
        "median settlement day relative to the due date",
    ),
    f(
        "hist_late_share_smoothed",
        "(late + 1) / (settled + 2): the late share shrunk towards 1/2 for short histories",
    ),
    m(
        "days_since_last_settlement",
        HIST,
        "days since the customer last settled an invoice",
    ),
    // The invoice.
    f("log_amount", "ln(1 + amount)"),
    m(
        "amount_vs_usual",
        "no_usual_amount",
        "ln(amount / median amount of the customer's earlier invoices)",
    ),
    f("terms_days", "due date - issue date"),
    f("days_to_due", "due date - prediction day"),
    f("days_since_issue", "prediction day - issue date"),
    f("due_weekday", "weekday of the due date, 0 = Monday"),
    f("due_month", "month of the due date, 1-12"),
    f(
        "due_quarter_end",
        "1 when due in the last QUARTER_END_DAYS days of a quarter",
    ),
    // Exposure on the day.
    f(
        "open_invoices_other",
        "the customer's other open invoices on the day",
    ),
    f(
        "overdue_invoices_other",
        "of them, past their due date on the day",
    ),
    f(
        "oldest_overdue_days",
        "days past due of the customer's oldest overdue open invoice (0 when none)",
    ),
    m(
        "known_late_share",
        "no_known_outcome",
        "late share over every outcome known on the day: invoices settled before it, and open invoices already past due (late for sure)",
    ),
    m(
        "hist_ewm_days_after_due",
        HIST,
        "days after due of settled invoices, weighted by recency (half-life HALF_LIFE_DAYS of settlement date)",
    ),
    f(
        "open_amount_log",
        "ln(1 + the customer's open amount, this invoice included)",
    ),
    m(
        "credit_utilization",
        "no_credit_limit",
        "open amount / credit limit",
    ),
    m(
        "credit_score",
        "no_credit_score",
        "the export's credit score",
    ),
    m(
        "annual_revenue_log",
        "no_annual_revenue",
        "ln(1 + annual revenue)",
    ),
    // Disputes opened before the day.
    f(
        "dispute_open",
        "1 when a dispute on this invoice was opened before the day and is open",
    ),
    f(
        "customer_open_disputes",
        "the customer's other invoices with a dispute open since before the day",
    ),
    // Communication before the day.
    f(
        "reminders_sent_invoice",
        "reminders sent for this invoice before the day",
    ),
    f(
        "reminders_sent_customer_90d",
        "reminders sent to the customer in the COMMUNICATION_DAYS before the day",
    ),
    f(
        "mails_opened_customer_90d",
        "the customer's mail opened in that period",
    ),
    f(
        "mails_replied_customer_90d",
        "the customer's replies in that period",
    ),
    // Promises and payment plans before the day.
    f(
        "promise_active",
        "1 when a promise to pay made before the day covers the day",
    ),
    f("plan_current", "1 when this invoice is on a current plan"),
    f("plan_defaulted", "1 when this invoice's plan is defaulted"),
    f(
        "customer_plans_accepted",
        "plans the customer accepted on other invoices before the day",
    ),
    f(
        "customer_plans_defaulted",
        "of them, defaulted the day before",
    ),
    // Tenure.
    f(
        "tenure_days_log",
        "ln(1 + days since the customer's first invoice)",
    ),
    f(
        "invoices_before_log",
        "ln(1 + the customer's invoices issued before the day)",
    ),
];

/// The column layout a model was trained on: names in order and a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSchema {
    pub version: u32,
    pub names: Vec<String>,
}

impl FeatureSchema {
    /// The schema of this build: the base features, then one indicator per
    /// distinct reason a fact can be missing.
    pub fn current() -> FeatureSchema {
        let mut names: Vec<String> = FEATURES.iter().map(|d| d.name.to_string()).collect();
        names.extend(indicator_names().into_iter().map(str::to_string));
        FeatureSchema {
            version: SCHEMA_VERSION,
            names,
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// What differs from `expected`, in words; `None` when they agree.
    pub fn difference(&self, expected: &FeatureSchema) -> Option<String> {
        if self == expected {
            return None;
        }
        let mut parts = Vec::new();
        if self.version != expected.version {
            parts.push(format!(
                "the model was trained on feature schema v{}, this build computes v{}",
                self.version, expected.version
            ));
        }
        let missing: Vec<&str> = expected
            .names
            .iter()
            .filter(|n| !self.names.contains(n))
            .map(String::as_str)
            .collect();
        let extra: Vec<&str> = self
            .names
            .iter()
            .filter(|n| !expected.names.contains(n))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            parts.push(format!(
                "features this build computes that the model lacks: {}",
                missing.join(", ")
            ));
        }
        if !extra.is_empty() {
            parts.push(format!(
                "features the model expects that this build does not compute: {}",
                extra.join(", ")
            ));
        }
        if missing.is_empty() && extra.is_empty() && self.names != expected.names {
            let at = self
                .names
                .iter()
                .zip(&expected.names)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            parts.push(format!(
                "the features are in another order (from column {at})"
            ));
        }
        Some(parts.join("; "))
    }
}

/// The missing-indicator columns, in order of first use.
pub fn indicator_names() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for d in FEATURES {
        if let Some(name) = d.missing
            && !out.contains(&name)
        {
            out.push(name);
        }
    }
    out
}

/// One value per base feature; `None` when the fact is not known.
pub type RawFeatures = Vec<Option<f64>>;

/// The model's input row: filled base values, then the indicators (1 when any
/// feature of that group is missing). `fills` holds one value per base
/// feature. A value that is not finite counts as missing, so a model never
/// sees NaN or infinity.
pub fn expand(raw: &[Option<f64>], fills: &[f64]) -> Vec<f64> {
    let indicators = indicator_names();
    let mut out = Vec::with_capacity(raw.len() + indicators.len());
    let known = |v: &Option<f64>| v.filter(|x| x.is_finite());
    for (v, fill) in raw.iter().zip(fills.iter().chain(std::iter::repeat(&0.0))) {
        out.push(known(v).unwrap_or(*fill));
    }
    for name in indicators {
        let missing = FEATURES
            .iter()
            .zip(raw)
            .any(|(d, v)| d.missing == Some(name) && known(v).is_none());
        out.push(if missing { 1.0 } else { 0.0 });
    }
    out
}

fn money(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

fn ln1p(x: f64) -> f64 {
    x.max(0.0).ln_1p()
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| sum / n as f64)
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        return None;
    }
    let hi = xs.get(n / 2).copied()?;
    if n % 2 == 1 {
        Some(hi)
    } else {
        let lo = xs.get(n / 2 - 1).copied()?;
        Some((lo + hi) / 2.0)
    }
}

fn is_quarter_end(d: NaiveDate) -> bool {
    let quarter_last_month = ((d.month() - 1) / 3 + 1) * 3;
    let next = if quarter_last_month == 12 {
        NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(d.year(), quarter_last_month + 1, 1)
    };
    next.is_some_and(|n| (n - d).num_days() <= QUARTER_END_DAYS)
}

/// The features of `invoice` as of `day` (see the module documentation for
/// what "as of" means for each group). One value per entry of [`FEATURES`].
pub fn compute(book: &Book, invoice: &Invoice, day: NaiveDate) -> RawFeatures {
    let before = day.pred_opt().unwrap_or(day);
    let window_start = day
        .checked_sub_days(Days::new(COMMUNICATION_DAYS))
        .unwrap_or(NaiveDate::MIN);
    let customer = book.customers.get(&invoice.customer_id);

    // The customer's folded invoices first (none in a full book), then the
    // remaining ones: the same sums either way (module documentation).
    let history = book.history.get(&invoice.customer_id);
    let mut settled: Cow<'_, Settlements> =
        Cow::Borrowed(history.map_or(&NO_SETTLEMENTS, |h| &h.settlements));
    let mut earlier_amounts: Vec<f64> = Vec::new();
    let mut first_issue: Option<NaiveDate> = None;
    let mut invoices_before = 0u32;
    let mut customer_disputes = 0u32;
    let mut plans_accepted = 0u32;
    let mut plans_defaulted = 0u32;
    if let Some(h) = history {
        // Folded before a cutoff on or before `day`: issued and settled
        // before it, plans and disputes fixed.
        first_issue = h.first_issue;
        invoices_before = h.invoices;
        for (a, count) in &h.amounts {
            let a = money(*a);
            earlier_amounts.extend((0..*count).map(|_| a));
        }
        customer_disputes = h.disputes_open;
        plans_accepted = h.plans_accepted;
        plans_defaulted = h.plans_defaulted;
    }
    let mut open_other = 0u32;
    let mut overdue_other = 0u32;
    let mut oldest_overdue = 0i64;
    let mut open_amount = Decimal::ZERO;
    let mut reminders_invoice = 0u32;
    let mut reminders_customer = 0u32;
    let mut opened = 0u32;
    let mut replied = 0u32;

    for inv in book.invoices_of(&invoice.customer_id) {
        if inv.issue_date > day {
            continue;
        }
        let this = inv.invoice_id == invoice.invoice_id;
        first_issue = Some(first_issue.map_or(inv.issue_date, |f| f.min(inv.issue_date)));
        if inv.issue_date < day && !this {
            invoices_before += 1;
            earlier_amounts.push(money(inv.amount));
        }
        let balance = book.balance(inv, day);
        if balance > Decimal::ZERO {
            open_amount = open_amount.saturating_add(balance);
            if !this {
                open_other += 1;
                if inv.due_date < day {
                    overdue_other += 1;
                    oldest_overdue = oldest_overdue.max((day - inv.due_date).num_days());
                }
            }
        } else if !this && let Some(on) = book.settled_on(inv).filter(|d| *d < day) {
            settled.to_mut().add(&Settlement {
                invoice_id: &inv.invoice_id,
                issue_date: inv.issue_date,
                due_date: inv.due_date,
                settled_on: on,
            });
        }
        for a in book.steps_of(&inv.invoice_id) {
            let Some(sent) = a.sent_on.filter(|d| *d < day) else {
                continue;
            };
            if a.status != ActionStatus::Sent {
                continue;
            }
            if this {
                reminders_invoice += 1;
            }
            if sent >= window_start {
                reminders_customer += 1;
            }
        }
        let mut accepted = false;
        for e in book.events.get(&inv.invoice_id).into_iter().flatten() {
            if e.date >= day {
                continue;
            }
            match e.kind {
                EventKind::MailOpened if e.date >= window_start => opened += 1,
                EventKind::MailReplied if e.date >= window_start => replied += 1,
                EventKind::PlanAccepted(_) => accepted = true,
                _ => {}
            }
        }
        if !this {
            if accepted {
                plans_accepted += 1;
                if book.plan_state(inv, before) == PlanState::Defaulted {
                    plans_defaulted += 1;
                }
            }
            if dispute_opened_before(book, inv, day) {
                customer_disputes += 1;
            }
        }
    }

    let s: &Settlements = &settled;
    let n = usize::try_from(s.count).unwrap_or(usize::MAX);
    let hist = |v: Option<f64>| if n == 0 { None } else { v };
    let share = |k: f64| (n > 0).then(|| k / n as f64);
    let late_count = usize::try_from(s.late).unwrap_or(usize::MAX);
    let late_share = share(late_count as f64);
    // The latest few, newest first, as a sorted list's tail would give them.
    let recent = s.recent.iter().rev().take(RECENT_SETTLED);
    let recent_late = mean(recent.clone().map(|r| flag(r.days_after_due > 0)));
    let recent_after_due = mean(recent.map(|r| r.days_after_due as f64));
    let known = n + overdue_other as usize;
    let known_late_share =
        (known > 0).then(|| (late_count + overdue_other as usize) as f64 / known as f64);
    let ewm = s.last_settled_on().and_then(|latest| {
        let (mut num, mut den) = (0.0, 0.0);
        for &(on, days_after_due, count) in &s.by_day {
            let age = (latest - on).num_days() as f64;
            let w = (-age * std::f64::consts::LN_2 / HALF_LIFE_DAYS).exp();
            num += w * days_after_due as f64;
            den += w * f64::from(count);
        }
        (den > 0.0).then(|| num / den)
    });

    let amount = money(invoice.amount);
    let usual = median(earlier_amounts).filter(|u| *u > 0.0);
    let amount_vs_usual = usual.filter(|_| amount > 0.0).map(|u| (amount / u).ln());

    let dispute_open = dispute_opened_before(book, invoice, day);
    let promise = book
        .promised_until(invoice, before)
        .is_some_and(|until| until >= day);
    let plan = book.plan_state(invoice, before);

    let credit_limit = customer
        .and_then(|c| c.credit_limit)
        .filter(|l| *l > Decimal::ZERO);
    let due = invoice.due_date;

    vec![
        Some(ln1p(n as f64)),
        hist(late_share),
        hist(share(s.total_days_late as f64)),
        hist(s.max_days_after_due().map(|d| d.max(0) as f64)),
        hist(s.last().map(|r| r.days_after_due.max(0) as f64)),
        hist(share(s.total_days_after_due as f64)),
        hist(share(s.total_days_to_pay as f64)),
        hist(share(f64::from(s.at_most_days_after_due(-EARLY_DAYS)))),
        hist(recent_late),
        hist(recent_after_due),
        hist(s.median_days_after_due()),
        Some((late_count as f64 + 1.0) / (n as f64 + 2.0)),
        hist(s.last_settled_on().map(|d| (day - d).num_days() as f64)),
        Some(ln1p(amount)),
        amount_vs_usual,
        Some((due - invoice.issue_date).num_days() as f64),
        Some((due - day).num_days() as f64),
        Some((day - invoice.issue_date).num_days() as f64),
        Some(f64::from(due.weekday().num_days_from_monday())),
        Some(f64::from(due.month())),
        Some(flag(is_quarter_end(due))),
        Some(f64::from(open_other)),
        Some(f64::from(overdue_other)),
        Some(oldest_overdue as f64),
        known_late_share,
        hist(ewm),
        Some(ln1p(money(open_amount))),
        credit_limit.map(|l| money(open_amount) / money(l)),
        customer.and_then(|c| c.credit_score).map(money),
        customer
            .and_then(|c| c.annual_revenue)
            .map(|r| ln1p(money(r))),
        Some(flag(dispute_open)),
        Some(f64::from(customer_disputes)),
        Some(f64::from(reminders_invoice)),
        Some(f64::from(reminders_customer)),
        Some(f64::from(opened)),
        Some(f64::from(replied)),
        Some(flag(promise)),
        Some(flag(plan == PlanState::Current)),
        Some(flag(plan == PlanState::Defaulted)),
        Some(f64::from(plans_accepted)),
        Some(f64::from(plans_defaulted)),
        Some(ln1p(
            first_issue.map_or(0.0, |f| (day - f).num_days() as f64),
        )),
        Some(ln1p(f64::from(invoices_before))),
    ]
}

/// The settlements of a customer with no folded invoices.
static NO_SETTLEMENTS: Settlements = Settlements::EMPTY;

/// Whether a dispute on `inv` was open at the end of the day before `day`,
/// opened strictly before `day`.
fn dispute_opened_before(book: &Book, inv: &Invoice, day: NaiveDate) -> bool {
    let Some(before) = day.pred_opt() else {
        return false;
    };
    match book.dispute_open(inv, before) {
        (true, Some(opened)) => opened < day,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn the_schema_matches_the_computed_row() {
        let schema = FeatureSchema::current();
        let book = Book::default();
        let inv = Invoice {
            invoice_id: "I1".into(),
            customer_id: "C1".into(),
            number: "1".into(),
            issue_date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            due_date: NaiveDate::from_ymd_opt(2026, 1, 31).unwrap(),
            amount: Decimal::from(100),
            currency: "EUR".into(),
            disputed: false,
            dispute_opened_on: None,
        };
        let raw = compute(&book, &inv, NaiveDate::from_ymd_opt(2026, 1, 20).unwrap());
        assert_eq!(raw.len(), FEATURES.len());
        let row = expand(&raw, &vec![0.5; FEATURES.len()]);
        assert_eq!(row.len(), schema.len());
        // No history, no credit facts: every indicator is on, fills used.
        assert!(row[FEATURES.len()..].iter().all(|v| *v == 1.0));
        assert_eq!(row[1], 0.5);
        let due = FEATURES
            .iter()
            .position(|d| d.name == "days_to_due")
            .unwrap();
        assert_eq!(row[due], 11.0);
    }

    #[test]
    fn quarter_ends() {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        assert!(is_quarter_end(d(3, 31)));
        assert!(is_quarter_end(d(12, 20)));
        assert!(!is_quarter_end(d(12, 10)));
        assert!(!is_quarter_end(d(4, 30)));
    }

    #[test]
    fn schema_difference_names_what_differs() {
        let cur = FeatureSchema::current();
        let mut old = cur.clone();
        old.version = 0;
        old.names.retain(|n| n != "credit_score");
        old.names.push("paperless".into());
        let d = old.difference(&cur).unwrap();
        assert!(d.contains("v0"), "{d}");
        assert!(d.contains("credit_score"), "{d}");
        assert!(d.contains("paperless"), "{d}");
        assert!(cur.difference(&cur).is_none());
    }
}
