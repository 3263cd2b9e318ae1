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
use collect_engine::domain::{Customer, Event, EventKind, Invoice, Payment, PlanTerms};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

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

#[derive(Clone, Copy)]
struct Region {
    timezone: &'static str,
    countries: &'static [&'static str],
    /// Chance, in percent, that the customer reads German.
    german: u32,
    weight: u32,
}

/// Where customers are. At the default send time (14:00 UTC) customers in
/// Los Angeles and Tokyo are inside the policy's quiet hours.
const REGIONS: [Region; 8] = [
    Region {
        timezone: "America/New_York",
        countries: &["US"],
        german: 0,
        weight: 30,
    },
    Region {
        timezone: "America/Chicago",
        countries: &["US"],
        german: 0,
        weight: 14,
    },
    Region {
        timezone: "America/Los_Angeles",
        countries: &["US"],
        german: 0,
        weight: 4,
    },
    Region {
        timezone: "Europe/Berlin",
        countries: &["DE", "DE", "DE", "AT", "CH"],
        german: 75,
        weight: 20,
    },
    Region {
        timezone: "Europe/London",
        countries: &["GB", "IE"],
        german: 0,
        weight: 10,
    },
    Region {
        timezone: "Europe/Amsterdam",
        countries: &["NL", "BE"],
        german: 10,
        weight: 6,
    },
    Region {
        timezone: "UTC",
        countries: &["PT", "IS", "GH"],
        german: 0,
        weight: 10,
    },
    Region {
        timezone: "Asia/Tokyo",
        countries: &["JP"],
        german: 0,
        weight: 6,
    },
];

const NAMES_EN: [&str; 24] = [
    "Northwind",
    "Bluebird",
    "Summit",
    "Harbor",
    "Ironwood",
    "Maple",
    "Granite",
    "Redwood",
    "Silver Lake",
    "Brightline",
    "Cedar",
    "Falcon",
    "Keystone",
    "Lakeside",
    "Meridian",
    "Oakridge",
    "Pioneer",
    "Riverside",
    "Sterling",
    "Tidewater",
    "Vantage",
    "Westfield",
    "Atlas",
    "Beacon",
];
const KINDS_EN: [&str; 10] = [
    "Supplies",
    "Logistics",
    "Foods",
    "Builders",
    "Medical",
    "Retail",
    "Labs",
    "Print",
    "Hospitality",
    "Motors",
];
const SUFFIX_EN: [&str; 4] = ["Inc.", "LLC", "Ltd", "Co."];
const NAMES_DE: [&str; 16] = [
    "Bergmann", "Hoffmann", "Keller", "Lindner", "Neumann", "Schubert", "Vogel", "Weber", "Brandt",
    "Fischer", "Hartmann", "Krause", "Lorenz", "Richter", "Sommer", "Winter",
];
const KINDS_DE: [&str; 8] = [
    "Maschinenbau",
    "Logistik",
    "Handel",
    "Bau",
    "Elektro",
    "Feinkost",
    "Druck",
    "Medizintechnik",
];
const SUFFIX_DE: [&str; 3] = ["GmbH", "AG", "KG"];
const INDUSTRIES: [&str; 8] = [
    "manufacturing",
    "wholesale",
    "construction",
    "healthcare",
    "retail",
    "hospitality",
    "logistics",
    "software",
];

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        return None;
    }
    items.get(rng.random_range(0..items.len()))
}

fn weighted<T: Copy>(rng: &mut ChaCha8Rng, items: &[T], weight: impl Fn(&T) -> u32) -> Option<T> {
    let total: u32 = items.iter().map(&weight).sum();
    if total == 0 {
        return items.first().copied();
    }
    let mut roll = rng.random_range(0..total);
    for item in items {
        let w = weight(item);
        if roll < w {
            return Some(*item);
        }
        roll -= w;
    }
    items.last().copied()
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// An invoice amount: log-normal around 1,800 USD, between 150 and 25,000.
fn amount(rng: &mut ChaCha8Rng, scale: f64) -> Decimal {
    let x = (1800.0 * scale * (0.95 * normal(rng)).exp()).clamp(150.0, 25_000.0);
    // Whole cents; the clamp keeps this far inside i64.
    Decimal::new((x * 100.0).round() as i64, 2)
}

fn days(rng: &mut ChaCha8Rng, from: i64, to: i64) -> i64 {
    rng.random_range(from..=to)
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
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

/// Generates the customers of `spec` with their invoices and behaviour.
pub fn generate(spec: &Spec) -> Generated {
    let seed = spec.seed;
    let mix = &spec.mix;
    let mut rng = rng(seed);
    let start = spec.issue_from;
    let mut out = Generated {
        seed,
        customers: Vec::with_capacity(spec.customers),
        payer: BTreeMap::new(),
        engagement: BTreeMap::new(),
        history_invoices: Vec::new(),
        history_payments: Vec::new(),
        plans: Vec::new(),
        spec: spec.clone(),
        issuers: Vec::with_capacity(spec.customers),
        next_invoice: 1,
    };
    let mut next_invoice = 1u32;
    let mut next_history = 1u32;
    for i in 1..=spec.customers {
        let id = format!("C-{i:04}");
        let payer =
            weighted(&mut rng, &PayerType::ALL, |p| mix.weight(*p)).unwrap_or(PayerType::OnTime);
        let region = weighted(&mut rng, &REGIONS, |r| r.weight);
        let timezone = region.map_or("UTC", |r| r.timezone);
        let country = region
            .and_then(|r| pick(&mut rng, r.countries))
            .copied()
            .unwrap_or("US");
        let german = region.map_or(0, |r| r.german);
        let language = if rng.random_range(0..100) < german {
            "de"
        } else {
            "en"
        };
        let name = if language == "de" {
            format!(
                "{} {} {}",
                pick(&mut rng, &NAMES_DE).copied().unwrap_or("Weber"),
                pick(&mut rng, &KINDS_DE).copied().unwrap_or("Handel"),
                pick(&mut rng, &SUFFIX_DE).copied().unwrap_or("GmbH")
            )
        } else {
            format!(
                "{} {} {}",
                pick(&mut rng, &NAMES_EN).copied().unwrap_or("Atlas"),
                pick(&mut rng, &KINDS_EN).copied().unwrap_or("Supplies"),
                pick(&mut rng, &SUFFIX_EN).copied().unwrap_or("Inc.")
            )
        };
        let domain_tld = if language == "de" { "de" } else { "com" };
        let email = format!("ap@{}-{i:04}.example.{domain_tld}", slug(&name));
        // Strategic: a large account, or one tagged so by sales.
        let roll = rng.random_range(0..100);
        let (annual_revenue, mut tags) = match roll {
            0..8 => (
                Some(Decimal::from(rng.random_range(250..2_000) * 1_000)),
                vec!["key-account".to_string()],
            ),
            8..11 => (
                Some(Decimal::from(rng.random_range(60..240) * 1_000)),
                vec!["strategic".to_string()],
            ),
            11..70 => (
                Some(Decimal::from(rng.random_range(20..240) * 1_000)),
                vec![],
            ),
            _ => (None, vec![]),
        };
        let strategic = roll < 11;
        if rng.random_bool(0.15) {
            tags.push("wholesale".to_string());
        }
        let credit_score = rng
            .random_bool(0.7)
            .then(|| Decimal::from(rng.random_range(380..840)));
        let industry = pick(&mut rng, &INDUSTRIES).map(|s| s.to_string());
        let phone = rng
            .random_bool(0.6)
            .then(|| format!("+1 555 {:04}", rng.random_range(0..10_000)));

        let engagement = Engagement {
            open: rng.random_range(0.25..0.85),
            click: rng.random_range(0.10..0.50),
            reply: rng.random_range(0.0..0.08),
            bounces: rng.random_bool(0.02),
        };

        // The window's invoices.
        let (lo, hi) = if strategic {
            spec.strategic_invoices
        } else {
            spec.invoices
        };
        let count = rng.random_range(lo..=hi);
        let scale = if strategic { 2.5 } else { 1.0 };
        let mut mine: Vec<InvoicePlan> = Vec::new();
        for _ in 0..count {
            let issue = business_before(plus(
                start,
                rng.random_range(0..spec.issue_days.max(1) as i64),
            ));
            let terms = match rng.random_range(0..10) {
                0 => 15,
                1 => 45,
                _ => 30,
            };
            let due = plus(issue, terms);
            let invoice = Invoice {
                invoice_id: format!("INV-27-{next_invoice:05}"),
                customer_id: id.clone(),
                number: format!("2027-{next_invoice:05}"),
                issue_date: issue,
                due_date: due,
                amount: amount(&mut rng, scale),
                currency: "USD".to_string(),
                disputed: false,
                dispute_opened_on: None,
            };
            next_invoice += 1;
            mine.push(behaviour(
                &mut rng,
                mix,
                invoice,
                payer,
                strategic || engagement.bounces,
            ));
        }

        // Close to the credit limit for some: the limit is about what the
        // first invoices add up to, so utilisation passes 90% at times.
        let credit_limit = match rng.random_range(0..100) {
            0..14 => {
                let first: Decimal = mine.iter().take(2).map(|p| p.invoice.amount).sum();
                let factor = Decimal::new(rng.random_range(90..125), 2);
                Some(((first * factor) / Decimal::from(500)).round() * Decimal::from(500))
                    .map(|l| l.max(Decimal::from(500)))
            }
            14..60 => Some(Decimal::from(rng.random_range(5..20) * 10_000)),
            _ => None,
        };

        // Before the window: a few invoices, all settled before it starts,
        // late as often as the customer usually is.
        for _ in 0..rng.random_range(spec.history.0..=spec.history.1) {
            let issue = business_before(plus(start, -rng.random_range(80..150)));
            let due = plus(issue, 30);
            let late = rng.random_bool(payer.history_late_rate());
            let paid_on = if late {
                business_after(plus(due, days(&mut rng, 3, 40)))
            } else {
                business_before(plus(due, -days(&mut rng, 0, 5)))
            }
            .min(plus(start, -1));
            let invoice = Invoice {
                invoice_id: format!("INV-26-{next_history:05}"),
                customer_id: id.clone(),
                number: format!("2026-{next_history:05}"),
                issue_date: issue,
                due_date: due,
                amount: amount(&mut rng, scale),
                currency: "USD".to_string(),
                disputed: false,
                dispute_opened_on: None,
            };
            next_history += 1;
            out.history_payments.push(Payment {
                payment_id: format!("PAY-{}", invoice.invoice_id),
                invoice_id: invoice.invoice_id.clone(),
                paid_on,
                amount: invoice.amount,
            });
            out.history_invoices.push(invoice);
        }

        out.customers.push(Customer {
            customer_id: id.clone(),
            name,
            email,
            phone,
            language: language.to_string(),
            timezone: timezone.to_string(),
            country: Some(country.to_string()),
            industry,
            annual_revenue,
            credit_score,
            credit_limit,
            tags,
            do_not_contact: payer == PayerType::DoNotContact,
        });
        out.issuers.push(Issuer {
            customer_id: id.clone(),
            payer,
            unmoved: strategic || engagement.bounces,
            scale,
        });
        out.payer.insert(id.clone(), payer);
        out.engagement.insert(id, engagement);
        out.plans.extend(mine);
    }
    out.next_invoice = next_invoice;
    out.plans.sort_by(|a, b| {
        (a.invoice.issue_date, &a.invoice.invoice_id)
            .cmp(&(b.invoice.issue_date, &b.invoice.invoice_id))
    });
    out
}

/// Decides, for one invoice, everything its customer will do.
/// `unmoved`: the customer is strategic or its mail bounces, so a reminder
/// before the due date changes nothing.
fn behaviour(
    rng: &mut ChaCha8Rng,
    mix: &Mix,
    invoice: Invoice,
    payer: PayerType,
    unmoved: bool,
) -> InvoicePlan {
    let issue = invoice.issue_date;
    let due = invoice.due_date;
    let responds = |rng: &mut ChaCha8Rng, from: NaiveDate| Pays::Responds {
        from: from.max(due),
        lag: days(rng, 1, 5),
        fallback: business_after(plus(due.max(from), days(rng, 10, 40))),
    };
    let mut dispute = None;
    let pays = match payer {
        PayerType::Early => {
            Pays::On(business_before(plus(due, -days(rng, 2, 7))).max(plus(issue, 1)))
        }
        PayerType::OnTime => {
            if rng.random_bool(0.85) {
                Pays::On(business_before(plus(due, -days(rng, 0, 1))).max(plus(issue, 1)))
            } else {
                Pays::On(business_after(plus(due, days(rng, 1, 3))))
            }
        }
        PayerType::Responsive => responds(rng, due),
        PayerType::ChronicLate => Pays::On(business_after(plus(due, days(rng, 15, 60)))),
        PayerType::Disputer => {
            if rng.random_bool(mix.dispute) {
                let opened = plus(issue, days(rng, 3, 20));
                let closed = plus(opened, days(rng, 5, 20));
                dispute = Some((opened, closed));
                Pays::Responds {
                    from: closed.max(due),
                    lag: days(rng, 1, 5),
                    fallback: business_after(plus(due.max(plus(closed, 3)), days(rng, 0, 10))),
                }
            } else {
                responds(rng, due)
            }
        }
        PayerType::DoNotContact => Pays::On(business_after(plus(due, days(rng, 0, 30)))),
        PayerType::NeverPay => Pays::Never,
    };
    // Drawn only when the mix asks, so the demo's stream stays as it was.
    let pays = match (mix.large_late, pays) {
        (Some((above, chance)), Pays::On(day))
            if invoice.amount > above && rng.random_bool(chance) =>
        {
            Pays::On(day.max(business_after(plus(due, days(rng, 5, 40)))))
        }
        (_, pays) => pays,
    };
    let can_split = matches!(
        payer,
        PayerType::Responsive
            | PayerType::ChronicLate
            | PayerType::Disputer
            | PayerType::DoNotContact
    );
    let parts = if can_split && rng.random_bool(mix.partial) {
        let share = Decimal::new(rng.random_range(30..=70), 2);
        let first = (invoice.amount * share).round_dp(2);
        vec![(0, first), (days(rng, 10, 30), invoice.amount - first)]
    } else {
        vec![(0, invoice.amount)]
    };
    let may_promise = matches!(
        payer,
        PayerType::Responsive | PayerType::ChronicLate | PayerType::Disputer | PayerType::NeverPay
    );
    let promise = (may_promise && rng.random_bool(mix.promise)).then(|| Promise {
        after_days: days(rng, 1, 3),
        kept: payer != PayerType::NeverPay && rng.random_bool(0.75),
        window_days: days(rng, 7, 14),
    });
    // Drawn for every invoice, so the stream of draws does not depend on
    // who heeds.
    let u: f64 = rng.random();
    let lag = days(rng, 1, 2);
    let heeds = !unmoved
        && matches!(
            payer,
            PayerType::Early | PayerType::OnTime | PayerType::Responsive | PayerType::Disputer
        );
    // Drawn last, and only when the mix has plans, so a mix without them
    // draws exactly what it always did.
    let payment_plan = (mix.plan > 0.0
        && matches!(
            payer,
            PayerType::Responsive | PayerType::ChronicLate | PayerType::Disputer
        )
        && rng.random_bool(mix.plan))
    .then(|| {
        let accepted = business_after(plus(due, days(rng, 5, 20)));
        let terms = PlanTerms {
            installments: 3,
            every_days: 30,
            down_payment: (invoice.amount / Decimal::TEN).round_dp(2),
        };
        (accepted, terms)
    });
    InvoicePlan {
        invoice,
        pays,
        parts,
        dispute,
        promise,
        heed: heeds.then_some(Heed { u, lag }),
        payment_plan,
    }
}

/// What the ERP records of an invoice when no reminder changes anything:
/// its payments and events, each on its day.
impl InvoicePlan {
    /// The day of the first payment without any contact: an answer to a
    /// contact never comes, so a responsive customer pays on its fallback.
    fn first_payment(&self) -> Option<NaiveDate> {
        match self.pays {
            Pays::On(day) => Some(day),
            Pays::Responds { fallback, .. } => Some(fallback),
            Pays::Never => None,
        }
    }

    /// The payments (part number, day, amount), without allocating.
    fn payment_days(&self) -> impl Iterator<Item = (usize, NaiveDate, Decimal)> + '_ {
        let first = self.first_payment();
        self.parts
            .iter()
            .enumerate()
            .filter_map(move |(k, (offset, amount))| {
                let first = first?;
                let day = if *offset == 0 {
                    first
                } else {
                    business_after(plus(first, *offset))
                };
                Some((k, day, *amount))
            })
    }

    /// The day a promise to pay is made: after the firm notice (a week or
    /// so after the due date), if the invoice is still unpaid then.
    fn promise_made(&self) -> Option<(NaiveDate, NaiveDate)> {
        let promise = self.promise?;
        let made = business_after(plus(self.invoice.due_date, 7 + promise.after_days));
        let first = self.first_payment();
        if first.is_some_and(|f| f <= made) {
            return None;
        }
        let until = match first {
            Some(f) if promise.kept => f,
            _ => plus(made, promise.window_days),
        };
        Some((made, until))
    }

    fn plan_accepted(&self) -> Option<(NaiveDate, &PlanTerms)> {
        let (accepted, terms) = self.payment_plan.as_ref()?;
        let first = self.first_payment();
        first
            .is_none_or(|f| f > *accepted)
            .then_some((*accepted, terms))
    }

    /// The days of the invoice's events (0: dispute opened, 1: closed,
    /// 2: promise, 3: plan accepted).
    fn event_days(&self) -> [Option<NaiveDate>; 4] {
        [
            self.dispute.map(|(opened, _)| opened),
            self.dispute.map(|(_, closed)| closed),
            self.promise_made().map(|(made, _)| made),
            self.plan_accepted().map(|(accepted, _)| accepted),
        ]
    }

    /// The last day anything happens to the invoice, if anything does.
    fn last_day(&self) -> Option<NaiveDate> {
        self.payment_days()
            .map(|(_, d, _)| d)
            .chain(self.event_days().into_iter().flatten())
            .max()
    }

    /// The payments dated inside `days`.
    pub fn payments_within(&self, days: impl Fn(NaiveDate) -> bool) -> Vec<Payment> {
        let id = &self.invoice.invoice_id;
        self.payment_days()
            .filter(|(_, day, _)| days(*day))
            .map(|(k, day, amount)| Payment {
                payment_id: format!("PAY-{id}-{}", k + 1),
                invoice_id: id.clone(),
                paid_on: day,
                amount,
            })
            .collect()
    }

    /// The events dated inside `days`.
    pub fn events_within(&self, days: impl Fn(NaiveDate) -> bool) -> Vec<Event> {
        let id = &self.invoice.invoice_id;
        let event = |tag: &str, date: NaiveDate, kind: EventKind| Event {
            event_id: format!("EV-{id}-{tag}"),
            date,
            kind,
            invoice_id: Some(id.clone()),
            action_id: None,
            message_id: None,
        };
        let mut out = Vec::new();
        if let Some((opened, closed)) = self.dispute {
            if days(opened) {
                out.push(event("dispute", opened, EventKind::DisputeOpened));
            }
            if days(closed) {
                out.push(event("settled", closed, EventKind::DisputeClosed));
            }
        }
        if let Some((made, promised_until)) = self.promise_made().filter(|(m, _)| days(*m)) {
            out.push(event(
                "promise",
                made,
                EventKind::PromiseToPay { promised_until },
            ));
        }
        if let Some((accepted, terms)) = self.plan_accepted().filter(|(a, _)| days(*a)) {
            out.push(event(
                "plan",
                accepted,
                EventKind::PlanAccepted(terms.clone()),
            ));
        }
        out
    }
}

/// The ERP's records on a day: everything issued, paid and reported by then.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub customers: Vec<Customer>,
    pub invoices: Vec<Invoice>,
    pub payments: Vec<Payment>,
    pub events: Vec<Event>,
    /// The invoices not yet paid in full on the day (among `invoices`).
    pub open: usize,
    /// The settled invoices issued before the window (among `invoices`).
    pub settled_history: usize,
}

/// One day's changes in the ERP.
#[derive(Debug, Clone, Default)]
pub struct DayChanges {
    /// Invoices issued that day.
    pub invoices: Vec<Invoice>,
    pub payments: Vec<Payment>,
    pub events: Vec<Event>,
    /// Invoices paid in full that day.
    pub settled: usize,
}

impl Generated {
    /// What the ERP has recorded by the end of `day`, when no reminder
    /// changed anything (a responsive customer pays on its fallback day).
    pub fn as_of(&self, day: NaiveDate) -> Snapshot {
        let by = |d: NaiveDate| d <= day;
        let mut out = Snapshot {
            customers: self.customers.clone(),
            invoices: self.history_invoices.clone(),
            payments: self.history_payments.clone(),
            settled_history: self.history_invoices.len(),
            ..Snapshot::default()
        };
        for plan in self.plans.iter().filter(|p| p.invoice.issue_date <= day) {
            let paid = plan.payments_within(by);
            let sum: Decimal = paid.iter().map(|p| p.amount).sum();
            if sum < plan.invoice.amount {
                out.open += 1;
            }
            out.payments.extend(paid);
            out.events.extend(plan.events_within(by));
            out.invoices.push(plan.invoice.clone());
        }
        out
    }

    /// The days after `day`, one at a time ([`History::day`]). Keeps only
    /// the invoices that still have something to happen after `day`.
    pub fn history(self, day: NaiveDate) -> History {
        let pending = self
            .plans
            .into_iter()
            .filter(|p| p.last_day().is_some_and(|last| last > day))
            .collect();
        History {
            seed: self.seed,
            mix: self.spec.mix,
            issuers: self.issuers,
            pending,
            next_invoice: self.next_invoice,
            last: day,
        }
    }
}

/// The book's life after a day: each [`History::day`] gives that day's
/// payments and events of the invoices already issued, and as many new
/// invoices as were paid in full that day (issued by customers drawn at
/// random, with their behaviour drawn as in [`generate`]), so the open book
/// keeps about its size. The new invoices of a day are drawn from the
/// seed's stream for that day, so a day's changes depend on the seed and
/// the day alone.
#[derive(Debug, Clone)]
pub struct History {
    seed: u64,
    mix: Mix,
    issuers: Vec<Issuer>,
    pending: Vec<InvoicePlan>,
    next_invoice: u32,
    last: NaiveDate,
}

impl History {
    /// The changes of `day`; days are taken in order, one after the other
    /// (a day already taken, or skipped, gives nothing of its own).
    pub fn day(&mut self, day: NaiveDate) -> DayChanges {
        let mut out = DayChanges::default();
        if day <= self.last {
            return out;
        }
        let on = |d: NaiveDate| d > self.last && d <= day;
        for plan in &self.pending {
            out.payments.extend(plan.payments_within(on));
            out.events.extend(plan.events_within(on));
            if plan.payment_days().last().is_some_and(|(_, d, _)| on(d)) {
                out.settled += 1;
            }
        }
        self.pending
            .retain(|p| p.last_day().is_some_and(|last| last > day));
        let mut rng = stream(self.seed, day.num_days_from_ce().unsigned_abs().into());
        for _ in 0..out.settled {
            let Some(issuer) = pick(&mut rng, &self.issuers).cloned() else {
                break;
            };
            let n = self.next_invoice;
            self.next_invoice += 1;
            let terms = match rng.random_range(0..10) {
                0 => 15,
                1 => 45,
                _ => 30,
            };
            let invoice = Invoice {
                invoice_id: format!("INV-27-{n:05}"),
                customer_id: issuer.customer_id.clone(),
                number: format!("2027-{n:05}"),
                issue_date: day,
                due_date: plus(day, terms),
                amount: amount(&mut rng, issuer.scale),
                currency: "USD".to_string(),
                disputed: false,
                dispute_opened_on: None,
            };
            out.invoices.push(invoice.clone());
            let plan = behaviour(&mut rng, &self.mix, invoice, issuer.payer, issuer.unmoved);
            self.pending.push(plan);
        }
        self.last = day;
        out
    }

    /// The invoices that still have a payment or an event to come.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
