//! Each run of the demo summed up: what the policy did (messages, calls,
//! approvals, deferrals, holds, unreached time zones) and the receivables
//! figures over the quarter's invoices (past-due share, DSO, on-time rate).

use super::generate::{self, Generated};
use super::simulation::Tally;
use chrono::NaiveDate;
use collect_engine::book::Book;
use collect_engine::domain::{ActionRecord, ActionStatus, Channel};
use collect_sqlite::store::{SqliteStore, Store, StoreError};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The receivables figures of one run, over the quarter's invoices.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Figures {
    /// Past-due balance / open balance at the end of the quarter's last day.
    pub past_due_share_at_quarter_end: f64,
    /// The same share, averaged over the quarter's days.
    pub past_due_share_daily_average: f64,
    /// Days sales outstanding over the quarter, the report's definition
    /// (`collect_engine::effect::dso`): open receivables at the end of the
    /// quarter / amount invoiced in it × its days; `None` when nothing was
    /// invoiced.
    pub dso_days: Option<f64>,
    /// Invoices paid in full on or before their due date / all invoices.
    pub on_time_payment_rate: f64,
    pub open_at_quarter_end: Decimal,
    pub past_due_at_quarter_end: Decimal,
    /// Still unpaid on the last day the policy ran.
    pub unpaid_at_run_end: Decimal,
}

fn round(x: f64, places: i32) -> f64 {
    let k = 10f64.powi(places);
    (x * k).round() / k
}

fn ratio(a: Decimal, b: Decimal) -> f64 {
    if b.is_zero() {
        return 0.0;
    }
    (a / b).to_f64().unwrap_or(0.0)
}

fn figures(book: &Book, generated: &Generated) -> Figures {
    let invoices: Vec<&collect_engine::domain::Invoice> =
        generated.plans.iter().map(|p| &p.invoice).collect();
    let start = generate::quarter_start();
    let end = generate::quarter_end();
    let mut shares = 0.0;
    let mut days_with_balance = 0u32;
    let (mut open_end, mut past_due_end) = (Decimal::ZERO, Decimal::ZERO);
    for day in start.iter_days().take_while(|d| *d <= end) {
        let (mut open, mut past_due) = (Decimal::ZERO, Decimal::ZERO);
        for inv in invoices.iter().filter(|i| i.issue_date <= day) {
            let balance = book.balance(inv, day);
            open += balance;
            if inv.due_date < day {
                past_due += balance;
            }
        }
        if !open.is_zero() {
            shares += ratio(past_due, open);
            days_with_balance += 1;
        }
        (open_end, past_due_end) = (open, past_due);
    }
    let on_time = invoices
        .iter()
        .filter(|i| book.settled_on(i).is_some_and(|s| s <= i.due_date))
        .count();
    let run_end = generate::run_end();
    Figures {
        past_due_share_at_quarter_end: round(ratio(past_due_end, open_end), 4),
        past_due_share_daily_average: round(shares / f64::from(days_with_balance.max(1)), 4),
        dso_days: collect_engine::effect::dso(
            book,
            collect_engine::effect::Period {
                from: start,
                to: end,
            },
            None,
        )
        .map(|x| round(x, 1)),
        on_time_payment_rate: round(on_time as f64 / invoices.len().max(1) as f64, 4),
        open_at_quarter_end: open_end,
        past_due_at_quarter_end: past_due_end,
        unpaid_at_run_end: invoices.iter().map(|i| book.balance(i, run_end)).sum(),
    }
}

/// One policy's run, summed up.
#[derive(Debug, Clone, Serialize)]
pub(super) struct RunSummary {
    pub policy: String,
    pub messages_sent: usize,
    pub messages_by_channel: BTreeMap<String, usize>,
    pub call_tasks_created: usize,
    /// Letters still waiting for a person at the end.
    pub approvals_waiting: usize,
    /// Final status of every recorded action, by label.
    pub actions_by_kind: BTreeMap<String, BTreeMap<String, usize>>,
    /// Final status of every recorded action, by segment.
    pub actions_by_segment: BTreeMap<String, BTreeMap<String, usize>>,
    /// Actions a guardrail held back at least once, by the first reason.
    pub deferred_by_reason: BTreeMap<String, usize>,
    /// Time zones whose customers were due emails, offers or calls and got
    /// none: their local time is inside the quiet hours at the send time.
    pub unreached_timezones: BTreeMap<String, usize>,
    /// Invoices a hold stopped at least once, by hold.
    pub invoices_held: BTreeMap<String, usize>,
    pub promises_to_pay: usize,
    /// Invoices paid sooner because a contact reached the customer.
    pub invoices_paid_sooner: usize,
    pub failed_messages: usize,
    pub figures: Figures,
    /// An invoice that got a legal letter, and the day, for `explain`.
    #[serde(skip)]
    pub letter: Option<(String, NaiveDate)>,
}

/// Time zones where no email, offer or call went out though some were due,
/// with the number of such actions.
fn unreached(actions: &[ActionRecord], generated: &Generated) -> BTreeMap<String, usize> {
    let zone: HashMap<&str, &str> = generated
        .customers
        .iter()
        .map(|c| (c.customer_id.as_str(), c.timezone.as_str()))
        .collect();
    let mut due: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for a in actions
        .iter()
        .filter(|a| matches!(a.channel, Channel::Email | Channel::Offer | Channel::Call))
    {
        let Some(tz) = zone.get(a.customer_id.as_str()) else {
            continue;
        };
        let e = due.entry((*tz).to_string()).or_default();
        e.0 += 1;
        if a.status == ActionStatus::Sent {
            e.1 += 1;
        }
    }
    due.into_iter()
        .filter(|(_, (n, sent))| *n > 0 && *sent == 0)
        .map(|(tz, (n, _))| (tz, n))
        .collect()
}

pub(super) fn summarize(
    store: &SqliteStore,
    generated: &Generated,
    tally: Tally,
) -> Result<RunSummary, StoreError> {
    let book = store.load_book()?;
    let actions: Vec<ActionRecord> = store.actions()?;
    let mut by_kind: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut by_segment: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for a in &actions {
        let status = a.status.as_str().to_string();
        *by_kind
            .entry(a.label.clone())
            .or_default()
            .entry(status.clone())
            .or_default() += 1;
        *by_segment
            .entry(a.segment.clone())
            .or_default()
            .entry(status)
            .or_default() += 1;
    }
    let letters = || actions.iter().filter(|a| a.channel == Channel::Letter);
    let letter = letters()
        .find(|a| a.status == ActionStatus::AwaitingApproval)
        .or_else(|| letters().next())
        .map(|a| (a.invoice_id.to_string(), a.decided_on));
    Ok(RunSummary {
        policy: actions
            .first()
            .map(|a| a.policy_name.clone())
            .unwrap_or_default(),
        messages_sent: tally.messages,
        messages_by_channel: tally.messages_by_channel,
        call_tasks_created: tally.call_tasks,
        approvals_waiting: actions
            .iter()
            .filter(|a| a.status == ActionStatus::AwaitingApproval)
            .count(),
        actions_by_kind: by_kind,
        actions_by_segment: by_segment,
        deferred_by_reason: tally.deferred.into_values().fold(
            BTreeMap::new(),
            |mut m: BTreeMap<String, usize>, reason| {
                *m.entry(reason).or_default() += 1;
                m
            },
        ),
        unreached_timezones: unreached(&actions, generated),
        invoices_held: tally.held.into_iter().map(|(k, v)| (k, v.len())).collect(),
        promises_to_pay: tally.promises,
        invoices_paid_sooner: tally.paid_sooner,
        failed_messages: tally.failed,
        figures: figures(&book, generated),
        letter,
    })
}
