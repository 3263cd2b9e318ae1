//! Collection effectiveness: what the actions brought, and proof from
//! experiments. Pure functions over a [`Book`], a period and the report's
//! day ("today", passed in; nothing here reads the clock).
//!
//! - `outcomes`: each action (sent, or withheld by design) with what followed
//!   it — payments matched by invoice to the preceding action, promises,
//!   plans, disputes, and mail events matched by action or message id;
//! - `measures`: response and pay rates, days to payment and past due at
//!   payment, by policy step, template, channel, segment, arm and offset;
//!   reminder timing by day relative to the due date and by weekday;
//! - `kpi`: past-due share, DSO, ADD, CEI and aging over time;
//! - `recovery`: the recovery rate (collected ÷ due for the invoices due in
//!   the period) by segment and month, and what was written off or placed
//!   with an agency at the end of the ladder;
//! - `experiments`: each arm's pay rate with its 95% interval, the uplift
//!   against the reference arm with its interval, significance, and a
//!   winner only above a minimum sample size;
//! - `stats`: Wilson and Newcombe intervals and the design effect.
//!
//! Every formula is written out in [`FORMULAS`] (and in each module's docs),
//! so the report can print them next to the figures.

pub mod experiments;
pub mod kpi;
pub mod measures;
pub mod outcomes;
pub mod recovery;
pub mod stats;

use crate::book::Book;
use crate::domain::Invoice;
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::BTreeMap;

pub use experiments::{ArmResult, Experiment, MIN_CUSTOMERS_PER_ARM, MIN_PER_ARM, Minimums};
pub use kpi::{AgingRow, Kpis, Receivables};
pub use measures::{Measures, Timing, TimingRow};
pub use outcomes::{AttributionSummary, CONTROL_GROUP};
pub use recovery::{Recovery, RecoveryRow};

/// The formulas, by the JSON key of the figure.
pub const FORMULAS: [(&str, &str); 14] = [
    (
        "past_due_share",
        "past-due receivables / open receivables, at the end of the period's last day",
    ),
    (
        "dso",
        "DSO = open receivables at the end of the period / amount invoiced in the period × days in the period",
    ),
    (
        "best_possible_dso",
        "best possible DSO = receivables not yet due at the end of the period / amount invoiced in the period × days in the period",
    ),
    (
        "add",
        "ADD (average days delinquent) = DSO − best possible DSO",
    ),
    (
        "cei",
        "CEI = (beginning receivables + invoiced − ending receivables) / (beginning receivables + invoiced − ending current receivables); 1 = 100%",
    ),
    (
        "recovery_rate",
        "recovery rate = collected / due, over the invoices due in the period: due = their amounts; collected = what was paid on them up to the report's day, at most each invoice's amount; by segment (of the invoice's latest step) and by month of the due date. A write-off stays due and is never collected. Reactive dunning recovers about 50–70%, proactive collections 80–90%",
    ),
    (
        "written_off",
        "invoices due in the period whose latest end-of-ladder decision up to the report's day is a write-off (the amount it names, else the balance on its day) or a placement with an agency (the balance on the day it was placed); a later `kept_working` undoes it",
    ),
    (
        "aging",
        "open balance at the end of each snapshot day by days past due: current (not yet due), 1–30, 31–60, 61–90, 90+",
    ),
    (
        "pay_rate_7d",
        "actions after which the invoice was paid in full within 7 days (3, 14 likewise) by a payment matched to that action (the last action before the payment) / actions at least 7 days old",
    ),
    (
        "response_rates",
        "emails with a recorded mail_opened / mail_clicked / mail_replied event (matched by action id or message id) / emails sent; unknown (null) when no mail event was recorded at all",
    ),
    (
        "avg_days_to_payment",
        "days from the action to the payment that settled the invoice, over the actions that payment is matched to; days past due at payment likewise from the due date",
    ),
    ("experiment_pay_rate", experiments::METRIC),
    (
        "intervals",
        "95%: Wilson score interval per arm, Newcombe's hybrid score interval for the uplift (arm − reference), both on the effective sample size (invoices / design effect, the design effect estimated from the spread between customers)",
    ),
    (
        "significant",
        "the uplift's 95% interval leaves out zero, judged only when both arms have at least the minimum number of customers with a known outcome (30 by default; otherwise unknown, never significant); a winner is called only when every arm also has at least the minimum number of invoices with a known outcome (100 by default)",
    ),
];

/// How many days a report covers by default ([`Period::default_for`]).
pub const DEFAULT_PERIOD_DAYS: u64 = 90;

/// The period a report covers, both days included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// The period a report covers when none is given: the
    /// [`DEFAULT_PERIOD_DAYS`] days up to the last day an invoice was
    /// issued, when any action or payment is recorded in them. The money
    /// KPIs weigh what is open against what was invoiced, so a period that
    /// runs on after the last sale shows every open invoice past due and a
    /// best possible DSO of zero; with invoices arriving every day this is
    /// simply the last 90 days. When nothing but invoices is recorded in
    /// those days, the 90 days up to the last recorded day. Never before
    /// the first recorded day.
    pub fn default_for(book: &Book) -> Option<Period> {
        let all = Period::everything(book)?;
        let back = |to: NaiveDate| Period {
            from: to
                .checked_sub_days(chrono::Days::new(DEFAULT_PERIOD_DAYS - 1))
                .unwrap_or(all.from)
                .max(all.from),
            to,
        };
        let last_sale = book.invoices.iter().map(|i| i.issue_date).max();
        if let Some(sales) = last_sale.map(back) {
            let inside = |d: NaiveDate| d >= sales.from && d <= sales.to;
            let active = book.payments.values().flatten().any(|p| inside(p.paid_on))
                || book
                    .actions
                    .values()
                    .flatten()
                    .any(|a| inside(a.sent_on.unwrap_or(a.decided_on)));
            if active {
                return Some(sales);
            }
        }
        Some(back(all.to))
    }

    /// Everything recorded: the first to the last dated fact.
    pub fn everything(book: &Book) -> Option<Period> {
        let days = recorded_days(book);
        Some(Period {
            from: days.clone().min()?,
            to: days.max()?,
        })
    }
}

/// Every dated fact of the book: issue dates, payments, events, actions.
fn recorded_days(book: &Book) -> impl Iterator<Item = NaiveDate> + Clone + '_ {
    let issued = book.invoices.iter().map(|i| i.issue_date);
    let paid = book.payments.values().flatten().map(|p| p.paid_on);
    let events = book
        .events
        .values()
        .flatten()
        .chain(book.mail_events.iter())
        .map(|e| e.date);
    let actions = book
        .actions
        .values()
        .flatten()
        .map(|a| a.sent_on.unwrap_or(a.decided_on).max(a.decided_on));
    issued.chain(paid).chain(events).chain(actions)
}

/// The last day anything was recorded: the natural "today" of a report on
/// stored data.
pub fn last_recorded_day(book: &Book) -> Option<NaiveDate> {
    recorded_days(book).max()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The currency of the money KPIs; by default the one most invoices are in.
    pub currency: Option<String>,
    /// Days between aging snapshots.
    pub aging_every_days: u32,
    pub min_per_arm: u32,
    /// Customers with a known outcome each arm needs before a difference is
    /// called significant.
    pub min_customers_per_arm: u32,
    /// The sweep's send time, `HH:MM` UTC, for the timing section.
    pub send_time_utc: Option<String>,
    /// Rows of the timing section need this many known outcomes to be named best.
    pub timing_min_actions: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            currency: None,
            aging_every_days: 7,
            min_per_arm: MIN_PER_ARM,
            min_customers_per_arm: MIN_CUSTOMERS_PER_ARM,
            send_time_utc: None,
            timing_min_actions: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodOut {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: i64,
}

/// Everything the report shows; the JSON keys are the measures' names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectReport {
    pub period: PeriodOut,
    /// Facts dated after this day are not known to the report.
    pub as_of: NaiveDate,
    pub currency: String,
    /// Invoices in other currencies, left out of the money KPIs.
    pub other_currencies: BTreeMap<String, u32>,
    pub past_due_share: Option<f64>,
    pub dso: Option<f64>,
    pub best_possible_dso: Option<f64>,
    pub add: Option<f64>,
    pub cei: Option<f64>,
    pub receivables: Receivables,
    /// The recovery rate of the invoices due in the period, and what was
    /// written off or placed with an agency ([`recovery`]).
    pub recovery: Recovery,
    pub aging: Vec<AgingRow>,
    pub by_step: Vec<Measures>,
    pub by_segment: Vec<Measures>,
    pub by_template: Vec<Measures>,
    pub by_channel: Vec<Measures>,
    pub by_arm: Vec<Measures>,
    pub by_offset: Vec<Measures>,
    pub timing: Timing,
    pub experiments: Vec<Experiment>,
    pub attribution: AttributionSummary,
    pub formulas: BTreeMap<&'static str, &'static str>,
}

/// The currency most invoices are in (the first by name on a tie).
fn main_currency(book: &Book) -> Option<String> {
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for i in &book.invoices {
        *counts.entry(i.currency.as_str()).or_default() += 1;
    }
    counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(c, _)| (*c).to_string())
}

/// The invoices of the money KPIs: those in `currency`, by default the
/// currency most invoices are in; with that currency.
pub fn kpi_invoices<'b>(book: &'b Book, currency: Option<&str>) -> (String, Vec<&'b Invoice>) {
    let currency = currency
        .map(str::to_string)
        .or_else(|| main_currency(book))
        .unwrap_or_default();
    let mine = book
        .invoices
        .iter()
        .filter(|i| i.currency == currency)
        .collect();
    (currency, mine)
}

/// DSO over `period` in `currency` (by default the main one): the one
/// definition the report, the demo and every other figure use; see
/// [`kpi::dso`].
pub fn dso(book: &Book, period: Period, currency: Option<&str>) -> Option<f64> {
    let (_, mine) = kpi_invoices(book, currency);
    kpi::dso(book, &mine, period.from, period.to)
}

/// The whole report for `period`, knowing the facts dated up to `as_of`.
pub fn report(book: &Book, period: Period, as_of: NaiveDate, options: &Options) -> EffectReport {
    let Period { from, to } = period;
    let (currency, mine) = kpi_invoices(book, options.currency.as_deref());
    let mut other_currencies: BTreeMap<String, u32> = BTreeMap::new();
    for i in book.invoices.iter().filter(|i| i.currency != currency) {
        *other_currencies.entry(i.currency.clone()).or_default() += 1;
    }
    let k = kpi::kpis(book, &mine, from, to);
    let recovery = recovery::recovery(book, &mine, from, to, as_of);
    let aging = kpi::snapshot_days(from, to, options.aging_every_days)
        .into_iter()
        .map(|d| kpi::aging(book, &mine, d))
        .collect();

    let attributed = outcomes::attribute(book, from, to, as_of);
    let in_period: Vec<(outcomes::Exposure<'_>, outcomes::Outcome)> = attributed
        .exposures
        .into_iter()
        .filter(|(e, _)| e.day >= from && e.day <= to)
        .collect();
    let policies: std::collections::BTreeSet<&str> = in_period
        .iter()
        .map(|(e, _)| e.action.policy_name.as_str())
        .collect();
    let several = policies.len() > 1;
    let sent = || in_period.iter().filter(|(e, _)| !e.withheld);
    let by_step = measures::group_by(sent(), as_of, |e| {
        let a = e.action;
        let name = format!("{} {}", a.segment, measures::offset_text(a.step_offset));
        let name = if several {
            format!("{}: {name}", a.policy_name)
        } else {
            name
        };
        Some((
            (a.policy_name.clone(), a.segment.clone(), a.step_offset),
            name,
        ))
    });
    let by_segment = measures::group_by(sent(), as_of, |e| {
        Some((e.action.segment.clone(), e.action.segment.clone()))
    });
    let by_template = measures::group_by(sent(), as_of, |e| {
        Some((e.action.label.clone(), e.action.label.clone()))
    });
    let by_channel = measures::group_by(sent(), as_of, |e| {
        Some((e.action.channel.as_str(), e.action.channel.to_string()))
    });
    let by_arm = measures::group_by(in_period.iter(), as_of, |e| {
        let (Some(x), Some(arm)) = (&e.action.experiment, &e.action.arm) else {
            return None;
        };
        Some(((x.clone(), arm.clone()), format!("{x}: {arm}")))
    });
    let by_offset = measures::group_by(sent(), as_of, |e| {
        Some((
            e.action.step_offset,
            measures::offset_text(e.action.step_offset),
        ))
    });
    let timing = measures::timing(
        &in_period,
        as_of,
        options.send_time_utc.clone(),
        options.timing_min_actions,
    );
    // No mail event at all: the mail service's events are not connected, so
    // response rates are unknown rather than zero.
    let mail_tracked = book
        .mail_events
        .iter()
        .chain(book.events.values().flatten())
        .any(|e| e.kind.is_mail() && e.date <= as_of);
    let mut by_step = by_step;
    let mut by_segment = by_segment;
    let mut by_template = by_template;
    let mut by_channel = by_channel;
    let mut by_arm = by_arm;
    let mut by_offset = by_offset;
    if !mail_tracked {
        for m in by_step
            .iter_mut()
            .chain(by_segment.iter_mut())
            .chain(by_template.iter_mut())
            .chain(by_channel.iter_mut())
            .chain(by_arm.iter_mut())
            .chain(by_offset.iter_mut())
        {
            m.open_rate = None;
            m.click_rate = None;
            m.reply_rate = None;
        }
    }
    let units = experiments::units(book, from, to, as_of);
    let minimums = Minimums {
        invoices: options.min_per_arm,
        customers: options.min_customers_per_arm,
    };
    let experiments = experiments::experiments(book, &units, as_of, minimums);

    EffectReport {
        period: PeriodOut {
            from,
            to,
            days: period.days(),
        },
        as_of,
        currency,
        other_currencies,
        past_due_share: k.past_due_share,
        dso: k.dso,
        best_possible_dso: k.best_possible_dso,
        add: k.add,
        cei: k.cei,
        receivables: k.receivables,
        recovery,
        aging,
        by_step,
        by_segment,
        by_template,
        by_channel,
        by_arm,
        by_offset,
        timing,
        experiments,
        attribution: attributed.summary,
        formulas: FORMULAS.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests;
