//! What happened after each action, matched without guesswork:
//!
//! - a **payment** belongs to the invoice it names, and within that invoice
//!   to the latest action on or before its day (the last touch); a payment
//!   made before any action on its invoice is counted as such;
//! - a **promise to pay**, a **plan acceptance** and a **dispute** likewise
//!   belong to the latest action on their invoice on or before their day; a
//!   promise is *kept* when the invoice was paid in full by the promised
//!   day, *broken* when that day passed first; a plan is *defaulted* when
//!   the book says so on the report's day;
//! - a **mail event** (delivered, bounced, complained, opened, clicked,
//!   replied) names the action it answers (the `action_id` tag or header)
//!   or the message that carried it (`message_id`, which carries every
//!   action it consolidated); an event naming neither a known action nor a
//!   known message is counted as unmatched, never assigned by its date.
//!
//! Only facts dated on or before the report's day count.

use crate::book::Book;
use crate::domain::{ActionRecord, ActionStatus, Channel, Event, EventKind, Experiment, Invoice};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::HashMap;

/// The experiment name under which a policy's control group is recorded
/// ([`Experiment::ControlGroup`]) and reported.
pub const CONTROL_GROUP: &str = Experiment::CONTROL_GROUP;

/// One recorded step as the report sees it: an action that went out, or a
/// step withheld by design (a control arm, the control group).
#[derive(Debug, Clone)]
pub struct Exposure<'b> {
    pub action: &'b ActionRecord,
    pub invoice: &'b Invoice,
    /// The day it went out (`sent_on`), or, withheld, the day the sweep
    /// recorded that it would not go out.
    pub day: NaiveDate,
    pub withheld: bool,
}

/// A step withheld on purpose: the control arm of an experiment (channel
/// `none`) or a control-group customer's pre-due step.
pub fn withheld_by_design(a: &ActionRecord) -> bool {
    a.status == ActionStatus::Skipped
        && a.sent_on.is_none()
        && a.arm.is_some()
        && (a.channel == Channel::NoContact || a.experiment == Some(Experiment::ControlGroup))
}

/// What followed one exposure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The day the invoice's payments first covered its amount (any action).
    pub settled_on: Option<NaiveDate>,
    /// The payment that settled the invoice came after this action, with no
    /// other action in between.
    pub settled_here: bool,
    /// Payments matched to this action, and how many of them left a balance.
    pub payments: u32,
    pub partial_payments: u32,
    pub paid_amount: Decimal,
    pub promises: u32,
    pub promises_kept: u32,
    pub promises_broken: u32,
    pub plans_accepted: u32,
    pub plans_defaulted: u32,
    pub disputes: u32,
    pub delivered: bool,
    pub bounced: bool,
    pub complained: bool,
    pub opened: bool,
    pub clicked: bool,
    pub replied: bool,
}

/// How much could be matched, for the report's footnote.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AttributionSummary {
    /// Payments dated in the period.
    pub payments: u32,
    /// … matched to a preceding action on their invoice.
    pub payments_matched: u32,
    /// … made before any action on their invoice.
    pub payments_before_any_action: u32,
    /// Mail events dated in the period.
    pub mail_events: u32,
    pub mail_events_matched: u32,
    /// Naming an action or message the book does not hold.
    pub mail_events_unmatched: u32,
}

/// Every exposure of the book with its outcome, as of `as_of`.
pub struct Attributed<'b> {
    pub exposures: Vec<(Exposure<'b>, Outcome)>,
    pub summary: AttributionSummary,
}

/// The exposures of the book, each with what followed it.
pub fn attribute<'b>(
    book: &'b Book,
    from: NaiveDate,
    to: NaiveDate,
    as_of: NaiveDate,
) -> Attributed<'b> {
    let mut exposures: Vec<(Exposure<'b>, Outcome)> = Vec::new();
    let mut summary = AttributionSummary::default();
    let mut invoice_ids: Vec<&String> = book.actions.keys().collect();
    invoice_ids.sort();
    // Payments of invoices no action ever touched are still counted.
    for inv in &book.invoices {
        if book.actions_of(&inv.invoice_id).is_empty() {
            count_unmatched_payments(book, inv, from, to, as_of, &mut summary);
        }
    }
    for invoice_id in invoice_ids {
        let Some(invoice) = book.invoice(invoice_id) else {
            continue;
        };
        let mut mine: Vec<(Exposure<'b>, Outcome)> = book
            .actions_of(invoice_id)
            .iter()
            .filter_map(|a| exposure(a, invoice, as_of))
            .map(|e| (e, Outcome::default()))
            .collect();
        mine.sort_by(|(a, _), (b, _)| {
            (a.day, a.action.step_offset, &a.action.action_id).cmp(&(
                b.day,
                b.action.step_offset,
                &b.action.action_id,
            ))
        });
        attribute_invoice(book, invoice, &mut mine, from, to, as_of, &mut summary);
        exposures.extend(mine);
    }
    attribute_mail(book, &mut exposures, from, to, as_of, &mut summary);
    Attributed { exposures, summary }
}

fn exposure<'b>(
    a: &'b ActionRecord,
    invoice: &'b Invoice,
    as_of: NaiveDate,
) -> Option<Exposure<'b>> {
    let (day, withheld) = match (a.status, a.sent_on) {
        (ActionStatus::Sent, Some(day)) => (day, false),
        _ if withheld_by_design(a) => (a.decided_on, true),
        _ => return None,
    };
    (day <= as_of).then_some(Exposure {
        action: a,
        invoice,
        day,
        withheld,
    })
}

/// The index of the latest exposure on or before `day`.
fn preceding(mine: &[(Exposure<'_>, Outcome)], day: NaiveDate) -> Option<usize> {
    mine.iter().rposition(|(e, _)| e.day <= day)
}

fn count_unmatched_payments(
    book: &Book,
    inv: &Invoice,
    from: NaiveDate,
    to: NaiveDate,
    as_of: NaiveDate,
    summary: &mut AttributionSummary,
) {
    for p in book.payments.get(&inv.invoice_id).into_iter().flatten() {
        if p.paid_on <= as_of && p.paid_on >= from && p.paid_on <= to {
            summary.payments += 1;
            summary.payments_before_any_action += 1;
        }
    }
}

fn attribute_invoice(
    book: &Book,
    invoice: &Invoice,
    mine: &mut [(Exposure<'_>, Outcome)],
    from: NaiveDate,
    to: NaiveDate,
    as_of: NaiveDate,
    summary: &mut AttributionSummary,
) {
    let in_period = |d: NaiveDate| d >= from && d <= to;
    let mut paid = Decimal::ZERO;
    let mut settled_on: Option<NaiveDate> = None;
    for p in book
        .payments
        .get(&invoice.invoice_id)
        .into_iter()
        .flatten()
        .filter(|p| p.paid_on <= as_of)
    {
        let was_open = paid < invoice.amount;
        paid = paid.saturating_add(p.amount);
        let settles = was_open && paid >= invoice.amount;
        if settles {
            settled_on = Some(p.paid_on);
        }
        let at = preceding(mine, p.paid_on);
        if in_period(p.paid_on) {
            summary.payments += 1;
            if at.is_some() {
                summary.payments_matched += 1;
            } else {
                summary.payments_before_any_action += 1;
            }
        }
        if let Some((_, o)) = at.and_then(|i| mine.get_mut(i)) {
            o.payments += 1;
            o.paid_amount = o.paid_amount.saturating_add(p.amount);
            if settles {
                o.settled_here = true;
            } else if paid < invoice.amount {
                o.partial_payments += 1;
            }
        }
    }
    for (_, o) in mine.iter_mut() {
        o.settled_on = settled_on;
    }
    let latest_plan = book.plan(invoice, as_of).map(|s| s.accepted_on);
    let defaulted = book.plan_state(invoice, as_of) == crate::book::PlanState::Defaulted;
    for e in book
        .events
        .get(&invoice.invoice_id)
        .into_iter()
        .flatten()
        .filter(|e| e.date <= as_of)
    {
        let Some((_, o)) = preceding(mine, e.date).and_then(|i| mine.get_mut(i)) else {
            continue;
        };
        match &e.kind {
            EventKind::PromiseToPay { promised_until } => {
                o.promises += 1;
                if settled_on.is_some_and(|s| s <= *promised_until) {
                    o.promises_kept += 1;
                } else if *promised_until < as_of {
                    o.promises_broken += 1;
                }
            }
            EventKind::PlanAccepted(_) => {
                o.plans_accepted += 1;
                if defaulted && latest_plan == Some(e.date) {
                    o.plans_defaulted += 1;
                }
            }
            EventKind::DisputeOpened => o.disputes += 1,
            _ => {}
        }
    }
}

fn attribute_mail(
    book: &Book,
    exposures: &mut [(Exposure<'_>, Outcome)],
    from: NaiveDate,
    to: NaiveDate,
    as_of: NaiveDate,
    summary: &mut AttributionSummary,
) {
    let mut by_action: HashMap<&str, usize> = HashMap::new();
    let mut by_message: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, (e, _)) in exposures.iter().enumerate() {
        by_action.insert(e.action.action_id.as_str(), i);
        if let Some(m) = &e.action.message_id {
            by_message.entry(m.as_str()).or_default().push(i);
        }
    }
    let attached = book.events.values().flatten().filter(|e| e.kind.is_mail());
    let mail: Vec<&Event> = book
        .mail_events
        .iter()
        .chain(attached)
        .filter(|e| e.date <= as_of)
        .collect();
    for e in mail {
        let targets: Vec<usize> = match (&e.action_id, &e.message_id) {
            (Some(a), _) if by_action.contains_key(a.as_str()) => {
                by_action.get(a.as_str()).copied().into_iter().collect()
            }
            (_, Some(m)) => by_message.get(m.as_str()).cloned().unwrap_or_default(),
            _ => Vec::new(),
        };
        if e.date >= from && e.date <= to {
            summary.mail_events += 1;
            if targets.is_empty() {
                summary.mail_events_unmatched += 1;
            } else {
                summary.mail_events_matched += 1;
            }
        }
        for i in targets {
            let Some((_, o)) = exposures.get_mut(i) else {
                continue;
            };
            match e.kind {
                EventKind::MailDelivered => o.delivered = true,
                EventKind::MailBounced => o.bounced = true,
                EventKind::MailComplained => o.complained = true,
                EventKind::MailOpened => o.opened = true,
                EventKind::MailClicked => o.clicked = true,
                EventKind::MailReplied => o.replied = true,
                _ => {}
            }
        }
    }
}
