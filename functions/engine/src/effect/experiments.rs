//! Experiments: each arm's pay rate with its 95% interval, the difference
//! against the reference arm (the uplift) with its interval, whether it is
//! significant, and a winner only when every arm has enough data.
//!
//! - **Units**: one per experiment and invoice — the invoice's first step in
//!   the experiment, whatever became of it (sent, deferred by a guardrail,
//!   skipped because the invoice was paid first, or withheld by design):
//!   customers are compared as they were assigned, so a guardrail that
//!   holds back one arm's messages cannot bias the comparison.
//! - **Arms**: as recorded on the actions (`experiment`, `arm`). A policy's
//!   control group is the experiment `control-group`: its arm `control` is
//!   the pre-due steps recorded as withheld for control-group customers,
//!   its arm `treatment` the pre-due steps of every other customer of that
//!   policy.
//! - **Outcome** ("paid in time"): the invoice was paid in full by its due
//!   date when the step was scheduled before it, else within 7 days of the
//!   step's scheduled day; units whose deadline is after the report's day
//!   are left out (not yet known).
//! - **Reference arm**: `control` when there is one, otherwise the first arm
//!   by name. **Uplift** = arm's pay rate − reference's, in points.
//! - **Intervals**: Wilson for each arm, Newcombe's hybrid score interval
//!   for the uplift, on effective sample sizes (see `stats`: a customer's
//!   invoices count as fewer independent observations when they are paid
//!   alike). **Significant** = the uplift's 95% interval leaves out zero
//!   *and* both arms have at least [`MIN_CUSTOMERS_PER_ARM`] customers with
//!   a known outcome. Customers, not invoices, are what an experiment
//!   assigns: with fewer of them the interval rests on an estimate of the
//!   spread between customers that a handful cannot give (one customer's
//!   six invoices are one observation, not six), so no significance is
//!   claimed either way and `significant` is `null`.
//! - **Winner**: only when every arm has at least the minimum number of
//!   units with a known outcome; then the arm significantly better than the
//!   reference (the best of them), or the reference when every other arm is
//!   significantly worse; otherwise none.

use super::outcomes::CONTROL_GROUP;
use super::stats::{Interval, Rate, grouped_rate, newcombe};
use crate::book::Book;
use crate::domain::{ActionRecord, Arm, Experiment as Recorded, Invoice};
use chrono::{Days, NaiveDate};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The minimum number of units with a known outcome per arm before a
/// winner is called, unless the caller sets another.
pub const MIN_PER_ARM: u32 = 100;

/// The minimum number of customers with a known outcome per arm before a
/// difference is called significant (better or worse) or a winner named,
/// unless the caller sets another.
pub const MIN_CUSTOMERS_PER_ARM: u32 = 30;

/// Days after the step within which a payment counts, for steps on or after
/// the due date.
pub const AFTER_DUE_WINDOW: u64 = 7;

pub const METRIC: &str = "paid in full by the due date (steps scheduled before it) or within 7 days \
                          of the step (steps on or after it)";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmResult {
    pub arm: String,
    pub is_reference: bool,
    /// Units (invoices) with a known outcome, their customers, and how many paid in time.
    pub n: u32,
    pub customers: u32,
    pub paid: u32,
    /// Units whose deadline has not come yet.
    pub pending: u32,
    pub pay_rate: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// How many invoices count as one independent observation (≥ 1).
    pub design_effect: Option<f64>,
    /// Against the reference arm; `None` for the reference itself.
    pub uplift: Option<f64>,
    pub uplift_ci_low: Option<f64>,
    pub uplift_ci_high: Option<f64>,
    pub significant: Option<bool>,
    /// This arm and the reference both reach the minimum sample size
    /// (invoices and customers).
    pub enough_data: bool,
    /// This arm and the reference both have at least the minimum number of
    /// customers; without it `significant` is `None`.
    pub enough_customers: bool,
    /// In plain words.
    pub statement: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub reference: String,
    pub arms: Vec<ArmResult>,
    pub winner: Option<String>,
    pub verdict: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentComparison {
    pub segment: String,
    #[serde(flatten)]
    pub comparison: Comparison,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Experiment {
    pub experiment: String,
    pub metric: &'static str,
    pub min_per_arm: u32,
    pub min_customers_per_arm: u32,
    #[serde(flatten)]
    pub comparison: Comparison,
    /// The same comparison within each segment.
    pub segments: Vec<SegmentComparison>,
}

/// One invoice's place in one experiment.
#[derive(Debug, Clone)]
pub struct Unit<'b> {
    pub experiment: String,
    pub arm: String,
    pub segment: String,
    pub invoice: &'b Invoice,
    pub customer_id: &'b str,
    /// The scheduled day of the invoice's first step in the experiment.
    pub day: NaiveDate,
    pub action_id: &'b str,
}

impl Unit<'_> {
    /// The last day a payment counts as "in time".
    pub fn deadline(&self) -> NaiveDate {
        if self.day < self.invoice.due_date {
            self.invoice.due_date
        } else {
            self.day
                .checked_add_days(Days::new(AFTER_DUE_WINDOW))
                .unwrap_or(self.day)
        }
    }
}

/// The units of every experiment, one per experiment and invoice, scheduled
/// in `from..=to` and recorded by `as_of`.
pub fn units<'b>(
    book: &'b Book,
    from: NaiveDate,
    to: NaiveDate,
    as_of: NaiveDate,
) -> Vec<Unit<'b>> {
    let records: Vec<(&'b ActionRecord, &'b Invoice)> = {
        let mut ids: Vec<&String> = book.actions.keys().collect();
        ids.sort();
        ids.into_iter()
            .filter_map(|id| book.invoice(id).map(|inv| (book.actions_of(id), inv)))
            .flat_map(|(acts, inv)| acts.iter().map(move |a| (a, inv)))
            .filter(|(a, _)| a.decided_on <= as_of)
            .collect()
    };
    // Policies with a control group, and the customers recorded in it.
    let mut control: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (a, _) in &records {
        if a.experiment == Some(Recorded::ControlGroup) {
            control
                .entry(a.policy_name.as_str())
                .or_default()
                .insert(a.customer_id.as_str());
        }
    }
    let mut first: BTreeMap<(String, &str), Unit<'b>> = BTreeMap::new();
    let mut keep = |u: Unit<'b>| {
        let key = (u.experiment.clone(), u.invoice.invoice_id.as_str());
        match first.get(&key) {
            Some(old) if (old.day, old.action_id) <= (u.day, u.action_id) => {}
            _ => {
                first.insert(key, u);
            }
        }
    };
    for (a, inv) in &records {
        let unit = |experiment: &str, arm: &str| Unit {
            experiment: experiment.to_string(),
            arm: arm.to_string(),
            segment: a.segment.clone(),
            invoice: inv,
            customer_id: a.customer_id.as_str(),
            day: a.scheduled_for,
            action_id: a.action_id.as_str(),
        };
        if let (Some(e), Some(arm)) = (&a.experiment, &a.arm) {
            keep(unit(e.as_str(), arm.as_str()));
        }
        if a.step_offset < 0
            && a.experiment != Some(Recorded::ControlGroup)
            && control
                .get(a.policy_name.as_str())
                .is_some_and(|c| !c.contains(a.customer_id.as_str()))
        {
            keep(unit(CONTROL_GROUP, "treatment"));
        }
    }
    first
        .into_values()
        .filter(|u| u.day >= from && u.day <= to)
        .collect()
}

/// The day an invoice was first paid in full, as of `as_of`.
fn settled_on(book: &Book, inv: &Invoice, as_of: NaiveDate) -> Option<NaiveDate> {
    let mut paid = rust_decimal::Decimal::ZERO;
    for p in book.payments.get(&inv.invoice_id).into_iter().flatten() {
        if p.paid_on > as_of {
            break;
        }
        paid = paid.saturating_add(p.amount);
        if paid >= inv.amount {
            return Some(p.paid_on);
        }
    }
    None
}

/// Whether a unit was paid in time, or `None` while its deadline is to come.
pub fn paid_in_time(book: &Book, u: &Unit<'_>, as_of: NaiveDate) -> Option<bool> {
    let deadline = u.deadline();
    if deadline > as_of {
        return None;
    }
    Some(settled_on(book, u.invoice, as_of).is_some_and(|s| s <= deadline))
}

struct ArmData {
    /// Per customer: (units known, paid in time).
    by_customer: BTreeMap<String, (u32, u32)>,
    pending: u32,
}

fn pct_points(x: f64) -> String {
    format!("{:.1}", x * 100.0)
}

fn signed_points(x: f64) -> String {
    format!("{:+.1}", x * 100.0)
}

/// The minimum sample sizes of an experiment's arms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minimums {
    /// Invoices with a known outcome per arm, before a winner is called.
    pub invoices: u32,
    /// Customers with a known outcome per arm, before anything is called
    /// significant.
    pub customers: u32,
}

impl Default for Minimums {
    fn default() -> Self {
        Minimums {
            invoices: MIN_PER_ARM,
            customers: MIN_CUSTOMERS_PER_ARM,
        }
    }
}

fn customers_known(d: &ArmData) -> u32 {
    u32::try_from(d.by_customer.values().filter(|(m, _)| *m > 0).count()).unwrap_or(u32::MAX)
}

fn compare(
    arms: &BTreeMap<String, ArmData>,
    min: Minimums,
    experiment: &str,
) -> Option<Comparison> {
    let min_per_arm = min.invoices;
    let reference = if arms.contains_key(Arm::CONTROL) {
        Arm::CONTROL.to_string()
    } else {
        arms.keys().next()?.clone()
    };
    let rate = |d: &ArmData| -> Option<Rate> {
        let groups: Vec<(u32, u32)> = d.by_customer.values().copied().collect();
        grouped_rate(&groups)
    };
    let ref_data = arms.get(&reference)?;
    let ref_rate = rate(ref_data);
    let ref_n = ref_rate.map_or(0, |r| r.n);
    let ref_customers = customers_known(ref_data);
    let mut order: Vec<&String> = vec![&reference];
    order.extend(arms.keys().filter(|k| **k != reference));
    let mut results = Vec::new();
    for name in order {
        let Some(d) = arms.get(name) else { continue };
        let r = rate(d);
        let n = r.map_or(0, |r| r.n);
        let is_reference = *name == reference;
        let uplift: Option<Interval> = match (&r, &ref_rate) {
            (Some(a), Some(b)) if !is_reference => Some(newcombe(&a.interval, &b.interval)),
            _ => None,
        };
        let customers = customers_known(d);
        let enough_customers = customers >= min.customers && ref_customers >= min.customers;
        let significant = uplift
            .filter(|_| enough_customers)
            .map(|u| u.low > 0.0 || u.high < 0.0);
        let enough_data = enough_customers && n >= min_per_arm && ref_n >= min_per_arm;
        let statement = match (&r, uplift) {
            (None, _) => format!("{name}: no outcome known yet"),
            (Some(a), None) => format!(
                "{name} (reference): {}% paid in time ({} of {}; 95% CI {}–{}%)",
                pct_points(a.interval.estimate),
                a.successes,
                a.n,
                pct_points(a.interval.low),
                pct_points(a.interval.high)
            ),
            (Some(_), Some(u)) => {
                let direction = if u.estimate >= 0.0 { "more" } else { "fewer" };
                let judged = match significant {
                    Some(true) => "significant at 95%".to_string(),
                    Some(false) => "not significant: the interval includes zero".to_string(),
                    None => format!(
                        "too few customers to judge ({customers} and {ref_customers} \
                         customers with a known outcome; at least {} per arm)",
                        min.customers
                    ),
                };
                let mut s = format!(
                    "{name}: {} points {direction} paid in time than {reference} \
                     (95% CI {} to {} points); {judged}",
                    pct_points(u.estimate.abs()),
                    signed_points(u.low),
                    signed_points(u.high),
                );
                if enough_customers && !enough_data {
                    s.push_str(&format!(
                        "; too few to call ({n} and {ref_n} invoices with a known outcome; \
                         at least {min_per_arm} per arm)"
                    ));
                }
                s
            }
        };
        results.push(ArmResult {
            arm: name.clone(),
            is_reference,
            n,
            customers,
            paid: r.map_or(0, |r| r.successes),
            pending: d.pending,
            pay_rate: r.map(|r| r.interval.estimate),
            ci_low: r.map(|r| r.interval.low),
            ci_high: r.map(|r| r.interval.high),
            design_effect: r.map(|r| r.design_effect),
            uplift: uplift.map(|u| u.estimate),
            uplift_ci_low: uplift.map(|u| u.low),
            uplift_ci_high: uplift.map(|u| u.high),
            significant,
            enough_data,
            enough_customers,
            statement,
        });
    }
    let (winner, verdict) = verdict(&results, &reference, min, experiment);
    Some(Comparison {
        reference,
        arms: results,
        winner,
        verdict,
    })
}

fn verdict(
    arms: &[ArmResult],
    reference: &str,
    min: Minimums,
    experiment: &str,
) -> (Option<String>, String) {
    let min_per_arm = min.invoices;
    if let Some(few) = arms
        .iter()
        .min_by_key(|a| a.customers)
        .filter(|a| a.customers < min.customers)
    {
        return (
            None,
            format!(
                "Nothing can be concluded from {experiment} yet: {} has {} customer(s) with a \
                 known outcome; at least {} per arm are needed.",
                few.arm, few.customers, min.customers
            ),
        );
    }
    if let Some(small) = arms
        .iter()
        .min_by_key(|a| a.n)
        .filter(|a| a.n < min_per_arm)
    {
        return (
            None,
            format!(
                "No winner called in {experiment}: {} has {} invoice(s) with a known outcome; \
                 at least {min_per_arm} per arm are needed.",
                small.arm, small.n
            ),
        );
    }
    let others: Vec<&ArmResult> = arms.iter().filter(|a| !a.is_reference).collect();
    let better = others
        .iter()
        .filter(|a| a.significant == Some(true) && a.uplift.is_some_and(|u| u > 0.0))
        .max_by(|a, b| {
            a.pay_rate
                .unwrap_or(0.0)
                .total_cmp(&b.pay_rate.unwrap_or(0.0))
        });
    if let Some(w) = better {
        return (
            Some(w.arm.clone()),
            format!(
                "{} wins {experiment}: {} points more invoices paid in time than {reference}, \
                 significant at 95%.",
                w.arm,
                pct_points(w.uplift.unwrap_or(0.0))
            ),
        );
    }
    let all_worse = !others.is_empty()
        && others
            .iter()
            .all(|a| a.significant == Some(true) && a.uplift.is_some_and(|u| u < 0.0));
    if all_worse {
        return (
            Some(reference.to_string()),
            format!(
                "{reference} wins {experiment}: every other arm has significantly fewer invoices \
                 paid in time."
            ),
        );
    }
    (
        None,
        format!("No significant difference between the arms of {experiment} (95%)."),
    )
}

/// Every experiment with units in the period, by name.
pub fn experiments(
    book: &Book,
    units: &[Unit<'_>],
    as_of: NaiveDate,
    min: Minimums,
) -> Vec<Experiment> {
    type Arms = BTreeMap<String, ArmData>;
    let mut all: BTreeMap<&str, (Arms, BTreeMap<&str, Arms>)> = BTreeMap::new();
    for u in units {
        let outcome = paid_in_time(book, u, as_of);
        let (overall, segments) = all.entry(u.experiment.as_str()).or_default();
        for arms in [overall, segments.entry(u.segment.as_str()).or_default()] {
            let d = arms.entry(u.arm.clone()).or_insert_with(|| ArmData {
                by_customer: BTreeMap::new(),
                pending: 0,
            });
            match outcome {
                Some(paid) => {
                    let c = d.by_customer.entry(u.customer_id.to_string()).or_default();
                    c.0 += 1;
                    c.1 += u32::from(paid);
                }
                None => d.pending += 1,
            }
        }
    }
    all.into_iter()
        .filter_map(|(name, (overall, segments))| {
            Some(Experiment {
                experiment: name.to_string(),
                metric: METRIC,
                min_per_arm: min.invoices,
                min_customers_per_arm: min.customers,
                comparison: compare(&overall, min, name)?,
                segments: segments
                    .into_iter()
                    .filter_map(|(segment, arms)| {
                        Some(SegmentComparison {
                            segment: segment.to_string(),
                            comparison: compare(&arms, min, &format!("{name} ({segment})"))?,
                        })
                    })
                    .collect(),
            })
        })
        .collect()
}
