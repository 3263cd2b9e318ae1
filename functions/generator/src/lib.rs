//! The one seeded generator of the test kit: customers, their invoices and
//! how each customer pays, drawn from a ChaCha8 stream (`rand_chacha`: the
//! same numbers for a seed on every platform), so a seed always gives the
//! same book. The demo (`collect demo`), the sweep benchmark and the model
//! tests all draw their books here; what differs between them is a
//! [`Spec`] (how many customers, the issue window, the [`Mix`] of payer
//! types, partial payments, disputes, promises and payment plans).
//!
//! Every random choice is made here, up front. What a customer does in
//! answer to a reminder (pay a few days later, promise a date) is decided
//! per invoice before any policy runs ([`InvoicePlan`]); a simulation only
//! applies it on the day the reminder arrives. Two policies run on one
//! generated book therefore meet exactly the same customers. Without a
//! simulation, [`Generated::as_of`] reads the plans as the ERP would have
//! recorded them by a day (nobody reminded), and [`History::day`] gives one
//! later day's ERP changes: the payments and events of that day, and new
//! invoices in place of the ones settled, so the open book keeps its size.
//!
//! One effect is planted on purpose, for `collect report` to find: a
//! friendly reminder before the due date gets would-be late payers among
//! the standard (not strategic) customers to pay on time — 80% of them after
//! the full `friendly-reminder`, 20% after the `friendly-reminder-short` —
//! and nothing else before the due date moves anyone ([`Heed`]). Because
//! each invoice's answer is drawn in advance, the true effect on any set of
//! invoices is known exactly ([`InvoicePlan::paid_on_time`]). How customers
//! treat email (open, click, reply, bounce) is drawn per customer
//! ([`Engagement`]).

use chrono::{Datelike, Days, NaiveDate, Weekday};
use collect_engine::domain::{Customer, Invoice, Payment, PlanTerms};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

mod draw;
mod history;
mod names;

pub use draw::generate;
pub use history::{DayChanges, History, Snapshot};

/// The seeded random number generator of the test kit.
pub type SeededRng = ChaCha8Rng;

/// The generator for `seed`.
pub fn rng(seed: u64) -> SeededRng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// An independent stream of `seed`, e.g. one per simulated day: the draws
/// of stream `n` do not depend on how many were taken from any other.
pub fn stream(seed: u64, n: u64) -> SeededRng {
    let mut rng = rng(seed);
    rng.set_stream(n);
    rng
}

/// How a customer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayerType {
    /// Pays a few days before the due date.
    Early,
    /// Pays on the due date (now and then a day or three late).
    OnTime,
    /// Pays 1–5 days after the first notice, call or letter about an
    /// invoice on or after its due date; without one, 10–40 days late.
    Responsive,
    /// Pays 15–60 days late whatever happens.
    ChronicLate,
    /// Disputes some invoices, settles the dispute 5–20 days later, then
    /// behaves as a responsive customer.
    Disputer,
    /// Asked not to be contacted; pays when it pays.
    DoNotContact,
    /// Never pays.
    NeverPay,
}

impl PayerType {
    pub const ALL: [PayerType; 7] = [
        PayerType::Early,
        PayerType::OnTime,
        PayerType::Responsive,
        PayerType::ChronicLate,
        PayerType::Disputer,
        PayerType::DoNotContact,
        PayerType::NeverPay,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            PayerType::Early => "early payers",
            PayerType::OnTime => "on time",
            PayerType::Responsive => "pay when reminded",
            PayerType::ChronicLate => "chronically late",
            PayerType::Disputer => "disputers",
            PayerType::DoNotContact => "do not contact",
            PayerType::NeverPay => "never pay",
        }
    }

    /// Share of the customers, in percent, in the default [`Mix`].
    pub fn weight(self) -> u32 {
        match self {
            PayerType::Early => 15,
            PayerType::OnTime => 25,
            PayerType::Responsive => 33,
            PayerType::ChronicLate => 12,
            PayerType::Disputer => 8,
            PayerType::DoNotContact => 4,
            PayerType::NeverPay => 3,
        }
    }

    /// The chance that one of last quarter's invoices was paid late: the
    /// history the fallback risk scorer (prior late rate) reads.
    pub fn history_late_rate(self) -> f64 {
        match self {
            PayerType::Early => 0.0,
            PayerType::OnTime => 0.1,
            PayerType::Responsive => 0.5,
            PayerType::ChronicLate => 0.9,
            PayerType::Disputer => 0.3,
            PayerType::DoNotContact => 0.5,
            PayerType::NeverPay => 0.8,
        }
    }
}

/// When the (first) payment of an invoice comes, unless a friendly
/// reminder before the due date brings it forward (see [`Heed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pays {
    /// On this day, whatever the policy does.
    On(NaiveDate),
    /// `lag` days after the first notice, offer, letter or call about the
    /// invoice made on or after `from` (never before the due date); on
    /// `fallback` when none comes sooner.
    Responds {
        from: NaiveDate,
        lag: i64,
        fallback: NaiveDate,
    },
    Never,
}

/// What the customer says after the firm notice about an unpaid invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Promise {
    /// Days between the notice and the promise.
    pub after_days: i64,
    /// A kept promise names the day the customer pays; a broken one names
    /// a day `window_days` after the promise, and the payment comes later
    /// (or never).
    pub kept: bool,
    pub window_days: i64,
}

/// The planted effect: how a customer answers a friendly reminder that
/// arrives before the due date.
///
/// A standard (not strategic) customer who would otherwise pay late pays the
/// whole invoice `lag` (1–2) days after the reminder, so on time, when its
/// draw `u` falls under the reminder's heed rate ([`heed_rate`]): 80% for
/// the full `friendly-reminder`, 20% for the `friendly-reminder-short`,
/// nothing for any other message. Strategic accounts, chronic late payers,
/// customers who never pay and those who asked not to be contacted are not
/// moved by reminders before the due date (no `Heed`), nor is anyone by a
/// pre-due call. Everything is drawn up front, so both potential outcomes of
/// every invoice are known: see [`InvoicePlan::paid_on_time`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heed {
    pub u: f64,
    pub lag: i64,
}

/// The template of the friendly reminder, and its short variant.
pub const FULL_REMINDER: &str = "friendly-reminder";
pub const SHORT_REMINDER: &str = "friendly-reminder-short";

/// The share of late payers a pre-due reminder with this template gets to
/// pay on time (the planted effect).
pub fn heed_rate(template: &str) -> f64 {
    match template {
        FULL_REMINDER => 0.80,
        SHORT_REMINDER => 0.20,
        _ => 0.0,
    }
}

/// One invoice with everything its customer will do.
#[derive(Debug, Clone)]
pub struct InvoicePlan {
    pub invoice: Invoice,
    pub pays: Pays,
    /// The payments, as days after the first one and amounts summing to the
    /// invoice's amount: one part, or a partial payment and the rest.
    pub parts: Vec<(i64, Decimal)>,
    /// A dispute opened and closed on these days.
    pub dispute: Option<(NaiveDate, NaiveDate)>,
    pub promise: Option<Promise>,
    /// How the customer answers a friendly reminder before the due date.
    pub heed: Option<Heed>,
    /// A payment plan the customer accepts on this day (after the due
    /// date), when the [`Mix`] has plans.
    pub payment_plan: Option<(NaiveDate, PlanTerms)>,
}

impl InvoicePlan {
    /// The day the invoice is paid in full when nothing before its due date
    /// changes the customer's mind, if it ever is.
    pub fn settled_without_reminder(&self) -> Option<NaiveDate> {
        let first = match self.pays {
            Pays::On(day) => day,
            // The first payment answers a contact after the due date, or
            // comes on the fallback day: after the due date either way.
            Pays::Responds { fallback, .. } => fallback,
            Pays::Never => return None,
        };
        let last = self
            .parts
            .iter()
            .map(|(offset, _)| *offset)
            .max()
            .unwrap_or(0);
        Some(if last == 0 {
            first
        } else {
            business_after(plus(first, last))
        })
    }

    /// The day a reminder with `template` sent on `day` gets the invoice
    /// paid in full, if the customer heeds it.
    pub fn heeded_on(&self, day: NaiveDate, template: &str) -> Option<NaiveDate> {
        let heed = self.heed?;
        (day < self.invoice.due_date && heed.u < heed_rate(template))
            .then(|| business_after(plus(day, heed.lag)))
    }

    /// Whether the invoice is paid in full by its due date when these
    /// emails (day sent, template) reach the customer. Every potential
    /// outcome of every invoice is known in advance: the truth the report's
    /// experiments must recover.
    pub fn paid_on_time(&self, emails: &[(NaiveDate, &str)]) -> bool {
        let due = self.invoice.due_date;
        let without = self.settled_without_reminder().is_some_and(|d| d <= due);
        let heeded = emails
            .iter()
            .filter_map(|(day, template)| self.heeded_on(*day, template))
            .any(|d| d <= due);
        without || heeded
    }
}

/// How a customer treats email: the chance that a message is opened, that
/// an opened one has its pay link clicked, that it is answered; and whether
/// the address bounces (then nothing is read, and no reminder is heeded).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Engagement {
    pub open: f64,
    pub click: f64,
    pub reply: f64,
    pub bounces: bool,
}

/// The generated book.
#[derive(Debug, Clone)]
pub struct Generated {
    pub seed: u64,
    pub customers: Vec<Customer>,
    pub payer: BTreeMap<String, PayerType>,
    pub engagement: BTreeMap<String, Engagement>,
    /// Earlier invoices, all settled before the issue window starts: the
    /// payment history the prior-late-rate scorer reads.
    pub history_invoices: Vec<Invoice>,
    pub history_payments: Vec<Payment>,
    /// The invoices of the issue window, by issue date then id.
    pub plans: Vec<InvoicePlan>,
    /// What the generator needs to issue more invoices later ([`History`]).
    spec: Spec,
    issuers: Vec<Issuer>,
    next_invoice: u32,
}

/// What a customer's next invoice needs.
#[derive(Debug, Clone)]
struct Issuer {
    customer_id: String,
    payer: PayerType,
    /// Strategic or bouncing: reminders before the due date change nothing.
    unmoved: bool,
    /// Strategic accounts buy more.
    scale: f64,
}

/// The mix of behaviours. The default is the demo's.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    /// Relative share of each payer type, in the order of [`PayerType::ALL`].
    pub payers: [u32; 7],
    /// Chance that an invoice of a customer who pays late at times is paid
    /// in two parts (a partial payment, then the rest 10–30 days later).
    pub partial: f64,
    /// Chance that a disputer disputes an invoice.
    pub dispute: f64,
    /// Chance that a customer who pays late (or never) promises a date
    /// after the firm notice.
    pub promise: f64,
    /// Chance that a late invoice ends in an accepted payment plan; 0 in
    /// the demo, whose simulation offers plans itself.
    pub plan: f64,
    /// A signal for the risk model beyond the customer's history: an
    /// invoice above this amount (in the currency) is paid 5–40 days late
    /// with chance `large_late.1`, whoever the customer; `None` in the demo.
    pub large_late: Option<(Decimal, f64)>,
}

impl Default for Mix {
    fn default() -> Mix {
        Mix {
            payers: PayerType::ALL.map(PayerType::weight),
            partial: 0.12,
            dispute: 0.4,
            promise: 0.35,
            plan: 0.0,
            large_late: None,
        }
    }
}

impl Mix {
    fn weight(&self, payer: PayerType) -> u32 {
        PayerType::ALL
            .iter()
            .zip(self.payers)
            .find(|(p, _)| **p == payer)
            .map_or(0, |(_, w)| w)
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub seed: u64,
    pub customers: usize,
    /// Invoices are issued over `issue_days` days from `issue_from`
    /// (business days only).
    pub issue_from: NaiveDate,
    pub issue_days: u64,
    /// Invoices per customer in the window, low and high (inclusive), for
    /// standard and for strategic customers.
    pub invoices: (u32, u32),
    pub strategic_invoices: (u32, u32),
    /// Settled invoices per customer before the window.
    pub history: (u32, u32),
    /// When above 0, the settled history is instead one invoice a month
    /// for this many months before the window (four years: 48), the
    /// book of a team that keeps its history (issue 22's history bench).
    pub history_months: u32,
    pub mix: Mix,
}

impl Spec {
    /// The demo's book: `customers` customers, invoices issued over
    /// `days` days from `from`.
    pub fn quarter(seed: u64, customers: usize, from: NaiveDate, days: u64) -> Spec {
        Spec {
            seed,
            customers,
            issue_from: from,
            issue_days: days,
            invoices: (1, 6),
            strategic_invoices: (4, 9),
            history: (2, 4),
            history_months: 0,
            mix: Mix::default(),
        }
    }

    /// A book with about `open` invoices open on `day` (invoices issued
    /// over the 90 days before it, five to six open per customer), with
    /// some payment plans.
    pub fn open_book(seed: u64, open: usize, day: NaiveDate) -> Spec {
        Spec {
            seed,
            customers: (open * 7 / 40).max(1),
            issue_from: plus(day, -89),
            issue_days: 90,
            invoices: (5, 15),
            strategic_invoices: (10, 20),
            history: (1, 3),
            history_months: 0,
            mix: Mix {
                plan: 0.05,
                ..Mix::default()
            },
        }
    }
}

pub fn plus(day: NaiveDate, days: i64) -> NaiveDate {
    if days >= 0 {
        day.checked_add_days(Days::new(days.unsigned_abs()))
    } else {
        day.checked_sub_days(Days::new(days.unsigned_abs()))
    }
    .unwrap_or(day)
}

fn is_weekend(day: NaiveDate) -> bool {
    matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The day itself, or the Friday before a weekend.
pub fn business_before(mut day: NaiveDate) -> NaiveDate {
    while is_weekend(day) {
        day = plus(day, -1);
    }
    day
}

/// The day itself, or the Monday after a weekend.
pub fn business_after(mut day: NaiveDate) -> NaiveDate {
    while is_weekend(day) {
        day = plus(day, 1);
    }
    day
}

/// A draw in `0..1` for one message and one question, fixed by the seed:
/// whether a given message is opened does not depend on the order in which
/// the simulation asks (FNV-1a over the seed, the message id and the question).
pub fn message_draw(seed: u64, message_id: &str, question: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in message_id
        .bytes()
        .chain(std::iter::once(0x1f))
        .chain(question.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // A final mix, then the top 53 bits as a fraction.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use collect_engine::domain::EventKind;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn quarter(seed: u64, n: usize) -> Generated {
        generate(&Spec::quarter(seed, n, day("2027-01-04"), 90))
    }

    #[test]
    fn the_same_seed_gives_the_same_book() {
        let a = quarter(7, 30);
        let b = quarter(7, 30);
        assert_eq!(a.customers, b.customers);
        let ids = |g: &Generated| -> Vec<(String, Decimal)> {
            g.plans
                .iter()
                .map(|p| (p.invoice.invoice_id.clone(), p.invoice.amount))
                .collect()
        };
        assert_eq!(ids(&a), ids(&b));
        assert_ne!(ids(&a), ids(&quarter(8, 30)));
    }

    #[test]
    fn invoices_fall_in_the_window_and_parts_add_up() {
        let g = quarter(42, 60);
        for p in &g.plans {
            assert!(p.invoice.issue_date >= day("2027-01-01"));
            assert!(p.invoice.issue_date <= day("2027-04-03"));
            let total: Decimal = p.parts.iter().map(|(_, a)| *a).sum();
            assert_eq!(total, p.invoice.amount);
            assert!(p.invoice.amount >= Decimal::from(150));
            assert!(p.invoice.amount <= Decimal::from(25_000));
            assert!(p.payment_plan.is_none(), "the demo's mix has no plans");
        }
        for pay in &g.history_payments {
            assert!(pay.paid_on < day("2027-01-04"));
        }
    }

    #[test]
    fn an_open_book_has_about_the_open_invoices_asked_for() {
        let on = day("2027-03-10");
        let snap = generate(&Spec::open_book(3, 5_000, on)).as_of(on);
        assert!(
            (4_000..=6_000).contains(&snap.open),
            "{} open invoices",
            snap.open
        );
        assert!(snap.payments.iter().all(|p| p.paid_on <= on));
        assert!(snap.events.iter().all(|e| e.date <= on));
        let kinds = |f: fn(&EventKind) -> bool| snap.events.iter().filter(|e| f(&e.kind)).count();
        assert!(kinds(|k| matches!(k, EventKind::DisputeOpened)) > 0);
        assert!(kinds(|k| matches!(k, EventKind::PromiseToPay { .. })) > 0);
        assert!(kinds(|k| matches!(k, EventKind::PlanAccepted(_))) > 0);
        assert!(snap.customers.iter().any(|c| c.do_not_contact));
    }

    /// Ninety days on, the open book has kept about its size, every day's
    /// changes fall on that day, and the same seed replays the same days.
    #[test]
    fn history_keeps_the_book_and_replays() {
        let on = day("2027-03-10");
        let spec = Spec::open_book(9, 2_000, on);
        let first = generate(&spec);
        let mut open: BTreeMap<String, Decimal> = BTreeMap::new();
        let snap = first.as_of(on);
        for i in &snap.invoices {
            open.insert(i.invoice_id.clone(), i.amount);
        }
        for p in &snap.payments {
            *open.get_mut(&p.invoice_id).unwrap() -= p.amount;
        }
        open.retain(|_, left| *left > Decimal::ZERO);
        let start = open.len();
        let mut history = first.history(on);
        let mut replay = generate(&spec).history(on);
        let mut paid = 0;
        for n in 1..=90 {
            let today = plus(on, n);
            let changes = history.day(today);
            let again = replay.day(today);
            assert_eq!(changes.invoices, again.invoices);
            assert_eq!(changes.payments, again.payments);
            assert!(changes.payments.iter().all(|p| p.paid_on == today));
            assert!(changes.events.iter().all(|e| e.date == today));
            assert!(changes.invoices.iter().all(|i| i.issue_date == today));
            for i in &changes.invoices {
                open.insert(i.invoice_id.clone(), i.amount);
            }
            for p in &changes.payments {
                *open.get_mut(&p.invoice_id).unwrap() -= p.amount;
                paid += 1;
            }
            open.retain(|_, left| *left > Decimal::ZERO);
        }
        assert!(paid > 1_000, "{paid} payments in 90 days");
        let end = open.len();
        assert!(
            end * 10 >= start * 8 && end * 10 <= start * 12,
            "open book {start} -> {end}"
        );
    }
}
