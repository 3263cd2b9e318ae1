//! What worked, measured against what was planted: each experiment arm's
//! uplift as `collect report` measures it, next to the uplift the
//! generator planted on the very invoices the report compared (the
//! generator knows each invoice's outcome with and without a reminder).

use super::generate::{self, Generated};
use chrono::NaiveDate;
use collect_engine::book::Book;
use collect_engine::domain::ActionStatus;
use collect_engine::domain::Channel;
use serde::Serialize;
use std::collections::HashMap;

/// One arm of an experiment as the report measured it, next to the effect
/// the generator planted on the same invoices.
#[derive(Debug, Clone, Serialize)]
pub struct Recovered {
    pub experiment: String,
    /// `None` for the whole experiment, else one segment of it.
    pub segment: Option<String>,
    pub arm: String,
    pub reference: String,
    pub n: u32,
    pub reference_n: u32,
    /// Customers with a known outcome in the arm and in the reference: a
    /// difference is judged only with enough of them in both.
    pub customers: u32,
    pub reference_customers: u32,
    pub pay_rate: Option<f64>,
    pub reference_pay_rate: Option<f64>,
    pub uplift: Option<f64>,
    pub uplift_ci_low: Option<f64>,
    pub uplift_ci_high: Option<f64>,
    pub significant: Option<bool>,
    /// The true uplift on these invoices, from the generator's two potential
    /// outcomes of each; `None` when the arms are not something the
    /// generator models (see [`planted_uplift`]).
    pub planted_uplift: Option<f64>,
    pub verdict: String,
}

/// The reminder an arm sends: `Some(template)` for an email, `None` for
/// the control arm and for calls, offers and letters (which, before the
/// due date, move nobody in the generated book).
fn arm_template(arm: &str) -> Option<&str> {
    arm.strip_prefix("email ")
}

/// The emails about an invoice that went out, but `except` (day, template).
pub(super) fn other_emails(
    book: &Book,
    invoice_id: &str,
    except: &str,
) -> Vec<(NaiveDate, String)> {
    book.actions_of(invoice_id)
        .iter()
        .filter(|a| a.action_id != except && a.channel == Channel::Email)
        .filter_map(|a| match (a.status, a.sent_on) {
            (ActionStatus::Sent, Some(d)) => Some((d, a.target.clone())),
            _ => None,
        })
        .collect()
}

/// Whether an invoice is paid on time when its experiment step sends
/// `arm`'s reminder on `day` (if any), its other emails going out as they did.
pub(super) fn outcome_under(
    plan: &generate::InvoicePlan,
    others: &[(NaiveDate, String)],
    day: Option<NaiveDate>,
    arm: &str,
) -> bool {
    let mut emails: Vec<(NaiveDate, &str)> = others.iter().map(|(d, t)| (*d, t.as_str())).collect();
    if let (Some(d), Some(t)) = (day, arm_template(arm)) {
        emails.push((d, t));
    }
    plan.paid_on_time(&emails)
}

/// The uplift the generator planted for `arm` against `reference`, over the
/// invoices the report compared (both arms, outcome known): the mean, over
/// those invoices, of "paid on time with this arm's reminder" minus "with
/// the reference's", both known in advance for every invoice
/// ([`generate::InvoicePlan::paid_on_time`]; the invoice's other emails go
/// out as they did). A reminder goes out on the day it really went out; a
/// withheld step's reminder would have gone out the day it was withheld.
/// Only for steps before the due date, and not for the control group (whose
/// members would have got different reminders).
pub fn planted_uplift(
    generated: &Generated,
    book: &Book,
    units: &[collect_engine::effect::experiments::Unit<'_>],
    as_of: NaiveDate,
    arm: &str,
    reference: &str,
) -> Option<f64> {
    use collect_engine::effect::experiments::paid_in_time;
    use collect_engine::effect::outcomes::withheld_by_design;
    let plans: HashMap<&str, &generate::InvoicePlan> = generated
        .plans
        .iter()
        .map(|p| (p.invoice.invoice_id.as_str(), p))
        .collect();
    let (mut sum, mut n) = (0i64, 0i64);
    for u in units.iter().filter(|u| u.arm == arm || u.arm == reference) {
        if u.experiment == collect_engine::effect::CONTROL_GROUP || u.day >= u.invoice.due_date {
            return None;
        }
        if paid_in_time(book, u, as_of).is_none() {
            continue;
        }
        let plan = plans.get(u.invoice.invoice_id.as_str())?;
        let record = book
            .actions_of(&u.invoice.invoice_id)
            .iter()
            .find(|a| a.action_id == u.action_id)?;
        let day = match (record.status, record.sent_on) {
            (ActionStatus::Sent, Some(d)) => Some(d),
            _ if withheld_by_design(record) => Some(record.decided_on),
            _ => None,
        };
        let others = other_emails(book, &u.invoice.invoice_id, u.action_id);
        let outcome = |a: &str| outcome_under(plan, &others, day, a);
        sum += i64::from(outcome(arm)) - i64::from(outcome(reference));
        n += 1;
    }
    (n > 0).then(|| sum as f64 / n as f64)
}

/// Every non-reference arm of every experiment (and of each of its segments)
/// with its measured and planted uplift.
pub(super) fn what_worked(
    generated: &Generated,
    book: &Book,
    effect: &collect_engine::effect::EffectReport,
) -> Vec<Recovered> {
    let units = collect_engine::effect::experiments::units(
        book,
        effect.period.from,
        effect.period.to,
        effect.as_of,
    );
    let mut out = Vec::new();
    for x in &effect.experiments {
        let mut parts = vec![(None, &x.comparison)];
        if x.segments.len() > 1 {
            parts.extend(
                x.segments
                    .iter()
                    .map(|s| (Some(s.segment.clone()), &s.comparison)),
            );
        }
        for (segment, cmp) in parts {
            let mine: Vec<_> = units
                .iter()
                .filter(|u| {
                    u.experiment == x.experiment && segment.as_ref().is_none_or(|s| *s == u.segment)
                })
                .cloned()
                .collect();
            let reference = cmp.arms.iter().find(|a| a.is_reference);
            for a in cmp.arms.iter().filter(|a| !a.is_reference) {
                out.push(Recovered {
                    experiment: x.experiment.clone(),
                    segment: segment.clone(),
                    arm: a.arm.clone(),
                    reference: cmp.reference.clone(),
                    n: a.n,
                    reference_n: reference.map_or(0, |r| r.n),
                    customers: a.customers,
                    reference_customers: reference.map_or(0, |r| r.customers),
                    pay_rate: a.pay_rate,
                    reference_pay_rate: reference.and_then(|r| r.pay_rate),
                    uplift: a.uplift,
                    uplift_ci_low: a.uplift_ci_low,
                    uplift_ci_high: a.uplift_ci_high,
                    significant: a.significant,
                    planted_uplift: planted_uplift(
                        generated,
                        book,
                        &mine,
                        effect.as_of,
                        &a.arm,
                        &cmp.reference,
                    ),
                    verdict: cmp.verdict.clone(),
                });
            }
        }
    }
    out
}
