//! The book of receivables and what was known about it on a given day.
//!
//! A [`Book`] holds the whole history (invoices, payments, events, recorded
//! actions). Every question it answers takes the day it is asked for, and
//! only facts dated on or before that day count, so a sweep, a simulation or
//! a backtest for any past day sees exactly what was known then.
//!
//! Recorded actions are held twice over: every one as a compact [`Step`]
//! (where the invoice stands on its ladder, what was sent when), and as full
//! [`ActionRecord`]s. A book loaded for a sweep ([`Book::compact`], e.g.
//! `SqliteStore::load_compact`) keeps full records for the live actions
//! only — those a sweep may write again — so it does not grow with the
//! history of sent and skipped steps; the decisions read steps only.

use crate::contact::ContactHold;
use crate::domain::{
    ActionId, ActionRecord, ActionStatus, Customer, Event, EventKind, Invoice, MessageId, Payment,
    PlanTerms,
};
use crate::history::PaymentHistory;
use chrono::{Days, NaiveDate};
use policy_lang::ast::Channel;
use policy_lang::eval::Contact;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::Arc;

/// How far back the customer-level communication counts of the risk
/// model's features reach: a sweep that scores with a model loads at least
/// this much history ([`crate::sweep::history_since`]).
pub const COMMUNICATION_DAYS: u64 = 90;

#[derive(Debug, Clone, Default)]
pub struct Book {
    pub customers: HashMap<String, Customer>,
    /// Sorted by customer, then invoice id.
    pub invoices: Vec<Invoice>,
    /// By invoice id, sorted by date.
    pub payments: HashMap<String, Vec<Payment>>,
    /// Invoice events by invoice id, sorted by date.
    pub events: HashMap<String, Vec<Event>>,
    /// Recorded actions by invoice id, as full records. In a book loaded
    /// for a sweep ([`Book::compact`]) only the *live* ones (planned,
    /// sending, awaiting approval, approved, deferred: those a sweep may
    /// write again); the others are in `steps` only.
    pub actions: HashMap<String, Vec<ActionRecord>>,
    /// Where each invoice stands on its ladder: every recorded action, in
    /// the compact form the sweep's decisions need ([`Step`]).
    pub steps: HashMap<String, Vec<Step>>,
    /// Mail events that name no invoice (only the action or the message
    /// they answer), sorted by date; those naming an invoice are in `events`.
    pub mail_events: Vec<Event>,
    /// The open contact holds of the book's customers, by customer id
    /// ([`crate::contact`]); filled by the ledger for the checks made just
    /// before sending (a book loaded for planning may leave it empty).
    pub contact_holds: HashMap<String, Vec<ContactHold>>,
    /// The customers' folded invoices, summed ([`crate::history`]), by
    /// customer id: settled invoices wholly before the sweep's `since`,
    /// left out of `invoices`, `payments`, `events` and `steps`. Empty in a
    /// full book; [`Book::customer_stats`] and the model's features read it
    /// and the remaining invoices alike.
    pub history: HashMap<String, PaymentHistory>,
    /// Positions in `invoices`, sorted by invoice id: [`Book::invoice`]
    /// finds one in O(log n) (and checks the hit, so a caller that edits
    /// `invoices` still gets a right answer, by a linear search).
    by_id: Vec<usize>,
}

/// What the sweep needs of a recorded action to know where an invoice
/// stands on its ladder and what the customer was sent: a few fields, with
/// the strings most records share (policy, segment) shared.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub action_id: ActionId,
    pub policy_name: Arc<str>,
    pub segment: Arc<str>,
    pub status: ActionStatus,
    pub step_offset: i64,
    pub channel: Option<Channel>,
    /// `email firm-notice`, `call collections`: what the step did, so a
    /// later segment's ladder does not do it again.
    pub label: Arc<str>,
    pub decided_on: NaiveDate,
    pub sent_on: Option<NaiveDate>,
    pub message_id: Option<MessageId>,
}

/// Shares the strings many steps repeat.
#[derive(Debug, Default)]
pub struct Interner(std::collections::HashSet<Arc<str>>);

impl Interner {
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.0.get(s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        self.0.insert(Arc::clone(&a));
        a
    }
}

impl Step {
    /// The step of an action record.
    pub fn of(a: &ActionRecord, strings: &mut Interner) -> Step {
        Step {
            action_id: a.action_id.clone(),
            policy_name: strings.get(&a.policy_name),
            segment: strings.get(&a.segment),
            status: a.status,
            step_offset: a.step_offset,
            channel: a.channel.contact(),
            label: strings.get(&a.label),
            decided_on: a.decided_on,
            sent_on: a.sent_on,
            message_id: a.message_id.clone(),
        }
    }
}

/// Whether a sweep may write an action again (so a compact book keeps its
/// full record).
pub fn is_live(status: ActionStatus) -> bool {
    matches!(
        status,
        ActionStatus::Planned
            | ActionStatus::Sending
            | ActionStatus::AwaitingApproval
            | ActionStatus::Approved
            | ActionStatus::Deferred
    )
}

/// Steps grouped by invoice id.
#[derive(Debug, Default)]
pub struct StepsByInvoice(pub HashMap<String, Vec<Step>>);

impl StepsByInvoice {
    pub fn push(&mut self, invoice_id: &str, step: Step) {
        match self.0.get_mut(invoice_id) {
            Some(v) => v.push(step),
            None => {
                self.0.insert(invoice_id.to_string(), vec![step]);
            }
        }
    }
}

/// Recorded actions grouped by invoice id, each group in the order given.
#[derive(Debug, Default)]
pub struct ActionsByInvoice(HashMap<String, Vec<ActionRecord>>);

impl ActionsByInvoice {
    pub fn push(&mut self, a: ActionRecord) {
        match self.0.get_mut(a.invoice_id.as_str()) {
            Some(v) => v.push(a),
            None => {
                self.0.insert(a.invoice_id.to_string(), vec![a]);
            }
        }
    }
}

/// An accepted payment plan's schedule: what is due when.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub accepted_on: NaiveDate,
    /// `(due date, amount)`, the down payment first when there is one.
    pub items: Vec<(NaiveDate, Decimal)>,
}

/// How an accepted plan stands on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanState {
    None,
    Current,
    Defaulted,
}

/// A customer's record as of a day: exposure and payment behaviour.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerStats {
    pub open_amount: Decimal,
    pub open_invoices: u32,
    pub overdue_invoices: u32,
    /// Invoices settled before the day, and how many of them late.
    pub settled: u32,
    pub settled_late: u32,
    pub total_days_late: i64,
    pub first_invoice_on: Option<NaiveDate>,
}

impl CustomerStats {
    pub fn late_rate(&self) -> Option<f64> {
        (self.settled > 0).then(|| f64::from(self.settled_late) / f64::from(self.settled))
    }

    pub fn avg_days_late(&self) -> Option<Decimal> {
        (self.settled_late > 0)
            .then(|| Decimal::from(self.total_days_late) / Decimal::from(self.settled_late))
    }
}

impl Book {
    /// Builds a book from records in any order.
    pub fn new(
        customers: Vec<Customer>,
        invoices: Vec<Invoice>,
        payments: Vec<Payment>,
        events: Vec<Event>,
        actions: Vec<ActionRecord>,
    ) -> Book {
        let mut acts = ActionsByInvoice::default();
        for a in actions {
            acts.push(a);
        }
        Book::with_actions(customers, invoices, payments, events, acts)
    }

    /// [`Book::new`] with the actions already grouped (the store streams
    /// them in, so they are never all in one list as well).
    pub fn with_actions(
        customers: Vec<Customer>,
        invoices: Vec<Invoice>,
        payments: Vec<Payment>,
        events: Vec<Event>,
        actions: ActionsByInvoice,
    ) -> Book {
        let mut strings = Interner::default();
        let mut steps = StepsByInvoice::default();
        for (invoice_id, list) in &actions.0 {
            for a in list {
                steps.push(invoice_id, Step::of(a, &mut strings));
            }
        }
        Book::compact(customers, invoices, payments, events, steps, actions)
    }

    /// A book for a sweep: every action as a [`Step`], and the full records
    /// of the live ones only (`live`), so its size does not grow with the
    /// history of sent and skipped steps.
    pub fn compact(
        customers: Vec<Customer>,
        mut invoices: Vec<Invoice>,
        payments: Vec<Payment>,
        events: Vec<Event>,
        steps: StepsByInvoice,
        actions: ActionsByInvoice,
    ) -> Book {
        invoices
            .sort_by(|a, b| (&a.customer_id, &a.invoice_id).cmp(&(&b.customer_id, &b.invoice_id)));
        let mut by_invoice: HashMap<String, Vec<Payment>> = HashMap::new();
        for p in payments {
            by_invoice.entry(p.invoice_id.clone()).or_default().push(p);
        }
        for v in by_invoice.values_mut() {
            v.sort_by(|a, b| (a.paid_on, &a.payment_id).cmp(&(b.paid_on, &b.payment_id)));
        }
        let mut ev: HashMap<String, Vec<Event>> = HashMap::new();
        let mut mail_events: Vec<Event> = Vec::new();
        for e in events {
            if let Some(inv) = e.invoice_id.clone() {
                ev.entry(inv).or_default().push(e);
            } else if e.kind.is_mail() {
                mail_events.push(e);
            }
        }
        mail_events.sort_by(|a, b| (a.date, &a.event_id).cmp(&(b.date, &b.event_id)));
        for v in ev.values_mut() {
            v.sort_by(|a, b| (a.date, &a.event_id).cmp(&(b.date, &b.event_id)));
        }
        // Most invoices have a payment or two and a few actions: without
        // the slack of a growing list (room for four), the book is smaller.
        for v in by_invoice.values_mut() {
            v.shrink_to_fit();
        }
        for v in ev.values_mut() {
            v.shrink_to_fit();
        }
        let by_id = index_by_id(&invoices);
        let mut book = Book {
            customers: customers
                .into_iter()
                .map(|c| (c.customer_id.clone(), c))
                .collect(),
            invoices,
            payments: by_invoice,
            events: ev,
            actions: HashMap::new(),
            steps: HashMap::new(),
            mail_events,
            contact_holds: HashMap::new(),
            history: HashMap::new(),
            by_id,
        };
        book.attach(steps, actions);
        book
    }

    /// Indexes `invoices` again after they were edited (e.g. by
    /// [`crate::history::fold`]).
    pub fn reindex(&mut self) {
        self.by_id = index_by_id(&self.invoices);
    }

    /// Gives a book its recorded actions: every one as a step, the full
    /// records of those given (see [`Book::compact`]).
    pub fn attach(&mut self, steps: StepsByInvoice, actions: ActionsByInvoice) {
        let mut acts = actions.0;
        for v in acts.values_mut() {
            v.shrink_to_fit();
        }
        let mut steps = steps.0;
        for v in steps.values_mut() {
            v.shrink_to_fit();
        }
        self.actions = acts;
        self.steps = steps;
    }

    pub fn invoice(&self, invoice_id: &str) -> Option<&Invoice> {
        let id_at = |k: usize| self.invoices.get(k).map(|i| i.invoice_id.as_str());
        let at = self
            .by_id
            .partition_point(|&k| id_at(k).is_some_and(|id| id < invoice_id));
        let hit = self
            .by_id
            .get(at)
            .and_then(|&k| self.invoices.get(k))
            .filter(|i| i.invoice_id == invoice_id);
        // A miss (or an index out of step with `invoices`, edited since
        // `new`) falls back to the linear search.
        match hit {
            Some(i) if self.by_id.len() == self.invoices.len() => Some(i),
            _ => self.invoices.iter().find(|i| i.invoice_id == invoice_id),
        }
    }

    fn payments_of(&self, invoice_id: &str) -> &[Payment] {
        self.payments.get(invoice_id).map_or(&[], Vec::as_slice)
    }

    fn events_of(&self, invoice_id: &str) -> &[Event] {
        self.events.get(invoice_id).map_or(&[], Vec::as_slice)
    }

    /// The full records of an invoice's actions (in a compact book, the
    /// live ones only).
    pub fn actions_of(&self, invoice_id: &str) -> &[ActionRecord] {
        self.actions.get(invoice_id).map_or(&[], Vec::as_slice)
    }

    /// Every recorded action of an invoice, compact.
    pub fn steps_of(&self, invoice_id: &str) -> &[Step] {
        self.steps.get(invoice_id).map_or(&[], Vec::as_slice)
    }

    /// Paid on or before `day`.
    pub fn paid(&self, invoice: &Invoice, day: NaiveDate) -> Decimal {
        self.payments_of(&invoice.invoice_id)
            .iter()
            .take_while(|p| p.paid_on <= day)
            .map(|p| p.amount)
            .fold(Decimal::ZERO, Decimal::saturating_add)
    }

    /// Still owed at the end of `day`.
    pub fn balance(&self, invoice: &Invoice, day: NaiveDate) -> Decimal {
        invoice
            .amount
            .saturating_sub(self.paid(invoice, day))
            .max(Decimal::ZERO)
    }

    /// Issued on or before `day` and not fully paid by then.
    pub fn is_open(&self, invoice: &Invoice, day: NaiveDate) -> bool {
        invoice.issue_date <= day && self.balance(invoice, day) > Decimal::ZERO
    }

    /// The day the payments first covered the amount, if they ever did.
    pub fn settled_on(&self, invoice: &Invoice) -> Option<NaiveDate> {
        let mut paid = Decimal::ZERO;
        for p in self.payments_of(&invoice.invoice_id) {
            paid = paid.saturating_add(p.amount);
            if paid >= invoice.amount {
                return Some(p.paid_on);
            }
        }
        None
    }

    /// Whether a dispute is open on `day`: the export's flag counts from its
    /// `dispute_opened_on` (or the issue date), then dated events apply in order.
    pub fn dispute_open(&self, invoice: &Invoice, day: NaiveDate) -> (bool, Option<NaiveDate>) {
        let mut open: Option<NaiveDate> = None;
        let export_from = invoice.dispute_opened_on.unwrap_or(invoice.issue_date);
        let mut export_applied = !invoice.disputed;
        for e in self
            .events_of(&invoice.invoice_id)
            .iter()
            .take_while(|e| e.date <= day)
        {
            if !export_applied && export_from <= e.date {
                open = Some(export_from);
                export_applied = true;
            }
            match e.kind {
                EventKind::DisputeOpened => open = open.or(Some(e.date)),
                EventKind::DisputeClosed => open = None,
                _ => {}
            }
        }
        if !export_applied && export_from <= day {
            open = Some(export_from);
        }
        (open.is_some(), open)
    }

    /// The promised date of the latest promise to pay made on or before `day`.
    pub fn promised_until(&self, invoice: &Invoice, day: NaiveDate) -> Option<NaiveDate> {
        self.events_of(&invoice.invoice_id)
            .iter()
            .take_while(|e| e.date <= day)
            .filter_map(|e| match e.kind {
                EventKind::PromiseToPay { promised_until } => Some(promised_until),
                _ => None,
            })
            .last()
    }

    /// The latest plan accepted on or before `day`, with its schedule.
    pub fn plan(&self, invoice: &Invoice, day: NaiveDate) -> Option<Schedule> {
        let (accepted_on, terms) = self
            .events_of(&invoice.invoice_id)
            .iter()
            .take_while(|e| e.date <= day)
            .filter_map(|e| match &e.kind {
                EventKind::PlanAccepted(t) => Some((e.date, t.clone())),
                _ => None,
            })
            .last()?;
        let balance = self.balance(invoice, accepted_on);
        Some(Schedule {
            accepted_on,
            items: schedule(balance, &terms, accepted_on),
        })
    }

    /// Current while every amount due before `day` has been paid (payments
    /// made on or after acceptance count); defaulted once one is missed.
    pub fn plan_state(&self, invoice: &Invoice, day: NaiveDate) -> PlanState {
        let Some(plan) = self.plan(invoice, day) else {
            return PlanState::None;
        };
        let paid: Decimal = self
            .payments_of(&invoice.invoice_id)
            .iter()
            .filter(|p| p.paid_on >= plan.accepted_on && p.paid_on <= day)
            .map(|p| p.amount)
            .fold(Decimal::ZERO, Decimal::saturating_add);
        let owed: Decimal = plan
            .items
            .iter()
            .filter(|(d, _)| *d < day)
            .map(|(_, a)| *a)
            .fold(Decimal::ZERO, Decimal::saturating_add);
        if paid >= owed {
            PlanState::Current
        } else {
            PlanState::Defaulted
        }
    }

    /// Why the sweep cannot work on this customer's records, if it cannot:
    /// an invoice or payment amount beyond [`crate::domain::MAX_AMOUNT`] either way.
    pub fn money_problem(&self, customer_id: &str) -> Option<String> {
        let limit = crate::domain::MAX_AMOUNT;
        for inv in self.invoices_of(customer_id) {
            if inv.amount.abs() > limit {
                return Some(format!(
                    "invoice `{}` has the amount {} {}, beyond the limit of 1000000000000; correct it in the ERP and ingest it again",
                    inv.invoice_id, inv.amount, inv.currency
                ));
            }
            if let Some(p) = self
                .payments_of(&inv.invoice_id)
                .iter()
                .find(|p| p.amount.abs() > limit)
            {
                return Some(format!(
                    "payment `{}` of invoice `{}` has the amount {}, beyond the limit of 1000000000000; correct it in the ERP and ingest it again",
                    p.payment_id, inv.invoice_id, p.amount
                ));
            }
        }
        None
    }

    /// The open contact hold that stops mail to the customer's current
    /// address, if one does ([`crate::contact`]).
    pub fn contact_hold(&self, customer: &Customer) -> Option<&ContactHold> {
        self.contact_holds
            .get(customer.customer_id.as_str())?
            .iter()
            .find(|h| h.applies_to(&customer.email))
    }

    /// A customer's exposure and history on `day`: its folded invoices
    /// ([`Book::history`], settled before any day a sweep reads it for)
    /// and its remaining ones. `first_invoice_on` counts every invoice,
    /// even one issued after `day`.
    pub fn customer_stats(&self, customer_id: &str, day: NaiveDate) -> CustomerStats {
        let mut s = CustomerStats::default();
        if let Some(h) = self.history.get(customer_id) {
            s.settled = h.settlements.count;
            s.settled_late = h.settlements.late;
            s.total_days_late = h.settlements.total_days_late;
            s.first_invoice_on = h.first_issue;
        }
        for inv in self.invoices_of(customer_id) {
            s.first_invoice_on = Some(
                s.first_invoice_on
                    .map_or(inv.issue_date, |f| f.min(inv.issue_date)),
            );
            if inv.issue_date > day {
                continue;
            }
            let balance = self.balance(inv, day);
            if balance > Decimal::ZERO {
                s.open_amount = s.open_amount.saturating_add(balance);
                s.open_invoices += 1;
                if inv.due_date < day {
                    s.overdue_invoices += 1;
                }
            } else if let Some(settled) = self.settled_on(inv).filter(|d| *d < day) {
                s.settled += 1;
                let late = (settled - inv.due_date).num_days();
                if late > 0 {
                    s.settled_late += 1;
                    s.total_days_late += late;
                }
            }
        }
        s
    }

    /// The invoices of one customer (the book keeps them together).
    pub fn invoices_of<'a>(&'a self, customer_id: &str) -> &'a [Invoice] {
        let start = self
            .invoices
            .partition_point(|i| i.customer_id.as_str() < customer_id);
        let end = self
            .invoices
            .partition_point(|i| i.customer_id.as_str() <= customer_id);
        self.invoices.get(start..end).unwrap_or(&[])
    }

    /// The customer's contacts on or before `day`, any invoice: messages
    /// sent, and call tasks from the day they were created (open or done),
    /// as the sweep counted them when it created them — so a rerun of the
    /// day applies the same caps. One consolidated email is one contact,
    /// however many invoices it named.
    pub fn contacts(&self, customer_id: &str, day: NaiveDate) -> Vec<Contact> {
        let mut messages = std::collections::HashSet::new();
        let mut out = Vec::new();
        for inv in self.invoices_of(customer_id) {
            for a in self.steps_of(&inv.invoice_id) {
                let date = match (a.status, a.channel) {
                    (ActionStatus::Sent, _) => a.sent_on,
                    (ActionStatus::Planned, Some(Channel::Call)) => Some(a.decided_on),
                    _ => None,
                };
                let (Some(channel), Some(date)) = (a.channel, date) else {
                    continue;
                };
                if date > day
                    || a.message_id
                        .as_ref()
                        .is_some_and(|m| !messages.insert(&**m))
                {
                    continue;
                }
                out.push(Contact { date, channel });
            }
        }
        out.sort_by_key(|c| (c.date, c.channel.as_str()));
        out
    }
}

/// Positions in `invoices`, sorted by invoice id.
fn index_by_id(invoices: &[Invoice]) -> Vec<usize> {
    let mut by_id: Vec<usize> = (0..invoices.len()).collect();
    // Stable: among equal ids the first in `invoices` comes first, as a
    // linear search would find it.
    by_id.sort_by(|&a, &b| {
        let id = |k: usize| invoices.get(k).map(|i| i.invoice_id.as_str());
        id(a).cmp(&id(b))
    });
    by_id
}

/// The contact channel of a recorded action's channel as written (`none`,
/// or a name no release writes, is no contact).
pub fn channel(name: &str) -> Option<Channel> {
    crate::domain::Channel::parse(name).and_then(crate::domain::Channel::contact)
}

/// A plan's schedule in exact money: the down payment (when any) on the day
/// of acceptance, then `installments` equal amounts every `every_days`, the
/// last one absorbing the rounding so the schedule sums to the balance.
pub fn schedule(
    balance: Decimal,
    terms: &PlanTerms,
    start: NaiveDate,
) -> Vec<(NaiveDate, Decimal)> {
    let mut items = Vec::new();
    let balance = balance.max(Decimal::ZERO);
    let down = terms.down_payment.clamp(Decimal::ZERO, balance).round_dp(2);
    if down > Decimal::ZERO {
        items.push((start, down));
    }
    let n = terms.installments.max(1);
    let rest = balance - down;
    let each =
        (rest / Decimal::from(n)).round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero);
    let mut allotted = Decimal::ZERO;
    for k in 1..=n {
        let amount = if k == n { rest - allotted } else { each };
        allotted = allotted.saturating_add(amount);
        let days = u64::try_from(terms.every_days.max(1))
            .unwrap_or(30)
            .saturating_mul(u64::from(k));
        let date = start.checked_add_days(Days::new(days)).unwrap_or(start);
        items.push((date, amount));
    }
    items
}

/// A down payment for an offer: the larger of the policy's minimum share and
/// amount, never more than the balance.
pub fn down_payment(balance: Decimal, down: Option<&policy_lang::ast::DownPayment>) -> Decimal {
    use policy_lang::ast::DownPayment;
    match down {
        Some(DownPayment::Percent(p)) => (balance.checked_mul(*p).unwrap_or(balance)
            / Decimal::ONE_HUNDRED)
            .round_dp(2)
            .min(balance),
        Some(DownPayment::Money { amount, .. }) => (*amount).min(balance),
        None => Decimal::ZERO,
    }
}
