//! Running a sweep for real: load the book from a store, plan the day,
//! record the actions, render and send the messages.
//!
//! Sending protocol (so a crash never sends a dunning message twice): the
//! actions of a message are recorded `planned`, moved to `sending` just
//! before the mail port is called, and to `sent` after. A message found in
//! `sending` or `planned` on a later run is handed to the mail port again
//! under the same message id; the outbox (and SES, reconciled by the action
//! tag) treats a known id as already delivered.

use crate::book::Book;
use crate::domain::{ActionRecord, ActionStatus, Customer, Invoice};
use crate::message::{
    CompanyCtx, CustomerCtx, InstallmentCtx, InvoiceCtx, Mailbox, Mailer, MessageContext,
    OutgoingMessage, PayLinks, PlanCtx, Templates, format_money,
};
use crate::store::{Store, StoreError};
use crate::sweep::{PlannedMessage, RiskScorer, SweepOptions, SweepPlan, plan_sweep};
use chrono::{Days, NaiveDate};
use policy_lang::Policy;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Who the messages come from.
#[derive(Debug, Clone, Serialize)]
pub struct Sender {
    pub company: String,
    pub email: String,
    pub reply_to: Option<String>,
}

/// Everything a run needs besides the store.
pub struct Runtime<'a> {
    pub policy: &'a Policy,
    pub scorer: &'a dyn RiskScorer,
    pub templates: &'a Templates,
    pub pay_links: &'a PayLinks,
    pub mailer: &'a dyn Mailer,
    pub sender: Sender,
    pub options: SweepOptions,
    /// How long a pay link stays valid.
    pub pay_link_days: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub plan: SweepPlan,
    pub sent: Vec<SentMessage>,
    pub failed: Vec<(String, String)>,
    pub dry_run: bool,
    /// Where the run spent its time (not part of the report's data).
    #[serde(skip)]
    pub timings: RunTimings,
}

/// Wall time of each phase of a run, for benchmarks and diagnostics.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunTimings {
    pub load_book: Duration,
    pub plan_sweep: Duration,
    pub save_actions: Duration,
    /// Rendering, the mail port and the status transitions around it.
    pub sending: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct SentMessage {
    pub message_id: String,
    pub customer_id: String,
    pub to: String,
    pub channel: String,
    pub template: String,
    pub invoices: Vec<String>,
    pub subject: String,
}

impl Runtime<'_> {
    /// One day's sweep: plan, record, send. With `dry_run` nothing is
    /// recorded or sent.
    pub fn run_day(
        &self,
        store: &mut dyn Store,
        day: NaiveDate,
        dry_run: bool,
    ) -> Result<RunReport, RunError> {
        let mut timings = RunTimings::default();
        let started = Instant::now();
        let book = store.load_book()?;
        timings.load_book = started.elapsed();
        let started = Instant::now();
        let plan = plan_sweep(&book, self.policy, self.scorer, day, &self.options);
        timings.plan_sweep = started.elapsed();
        let mut report = RunReport {
            plan,
            dry_run,
            timings,
            ..RunReport::default()
        };
        if dry_run {
            return Ok(report);
        }
        let started = Instant::now();
        store.save_actions(&report.plan.records, day, None)?;
        report.timings.save_actions = started.elapsed();
        let started = Instant::now();
        // Messages of earlier runs that never reached `sent` (a crash).
        let mut messages = unfinished(&book, day);
        {
            let planned: HashSet<&str> = report
                .plan
                .messages
                .iter()
                .map(|p| p.message_id.as_str())
                .collect();
            messages.retain(|m| !planned.contains(m.message_id.as_str()));
        }
        let records = std::mem::take(&mut report.plan.records);
        let planned = std::mem::take(&mut report.plan.messages);
        let saved = Saved::new(&book, &records, messages.iter().chain(&planned));
        let delivered = self.deliver_all(
            store,
            &saved,
            messages.iter().chain(&planned),
            day,
            &mut report,
        );
        report.plan.records = records;
        report.plan.messages = planned;
        delivered?;
        report.timings.sending = started.elapsed();
        Ok(report)
    }

    /// Delivers the messages in order, their status changes grouped in
    /// batches of [`BATCH`] messages (one store transaction each; see
    /// [`Store::begin_batch`]). On an error, what was done before it is
    /// kept, as when every change was committed on its own.
    fn deliver_all<'m>(
        &self,
        store: &mut dyn Store,
        saved: &Saved<'_>,
        messages: impl Iterator<Item = &'m PlannedMessage>,
        day: NaiveDate,
        report: &mut RunReport,
    ) -> Result<(), RunError> {
        store.begin_batch()?;
        for (k, m) in messages.enumerate() {
            if k > 0 && k % BATCH == 0 {
                store.end_batch()?;
                store.begin_batch()?;
            }
            if let Err(e) = self.deliver(store, saved, m, day, report) {
                let _ = store.end_batch();
                return Err(e);
            }
        }
        store.end_batch()?;
        Ok(())
    }

    fn deliver(
        &self,
        store: &mut dyn Store,
        saved: &Saved<'_>,
        planned: &PlannedMessage,
        day: NaiveDate,
        report: &mut RunReport,
    ) -> Result<(), RunError> {
        let book = saved.book;
        let records: Vec<ActionRecord> = planned
            .action_ids
            .iter()
            .filter_map(|id| saved.find(planned, id).cloned())
            .collect();
        let Some(customer) = book.customers.get(&planned.customer_id) else {
            return Ok(());
        };
        for r in &records {
            let mut next = r.clone();
            next.status = ActionStatus::Sending;
            store.transition(
                &next,
                &[ActionStatus::Planned, ActionStatus::Sending],
                day,
                None,
            )?;
        }
        let outcome = self.compose(book, customer, planned, day).and_then(|msg| {
            self.mailer
                .send(&msg)
                .map(|_| msg)
                .map_err(|e| format!("the mail service refused it: {e}"))
        });
        match outcome {
            Ok(msg) => {
                for r in &records {
                    let mut next = r.clone();
                    next.status = ActionStatus::Sent;
                    next.sent_on = Some(day);
                    next.note = None;
                    store.transition(&next, &[ActionStatus::Sending], day, None)?;
                }
                report.sent.push(SentMessage {
                    message_id: planned.message_id.clone(),
                    customer_id: planned.customer_id.clone(),
                    to: customer.email.clone(),
                    channel: planned.channel.clone(),
                    template: planned.template.clone(),
                    invoices: planned.invoice_ids.clone(),
                    subject: msg.subject,
                });
            }
            Err(reason) => {
                for r in &records {
                    let mut next = r.clone();
                    next.status = ActionStatus::Failed;
                    next.note = Some(reason.clone());
                    store.transition(&next, &[ActionStatus::Sending], day, None)?;
                }
                report.failed.push((planned.message_id.clone(), reason));
            }
        }
        Ok(())
    }

    /// Renders a planned message for its customer.
    pub fn compose(
        &self,
        book: &Book,
        customer: &Customer,
        planned: &PlannedMessage,
        day: NaiveDate,
    ) -> Result<OutgoingMessage, String> {
        let ctx = self.context(book, customer, planned, day);
        let rendered = self
            .templates
            .render(&planned.template, &customer.language, &ctx)
            .map_err(|e| e.to_string())?;
        Ok(OutgoingMessage {
            message_id: planned.message_id.clone(),
            date: day,
            from: Mailbox {
                name: self.sender.company.clone(),
                email: self.sender.email.clone(),
            },
            to: Mailbox {
                name: customer.name.clone(),
                email: customer.email.clone(),
            },
            reply_to: self.sender.reply_to.as_ref().map(|r| Mailbox {
                name: self.sender.company.clone(),
                email: r.clone(),
            }),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            action_ids: planned.action_ids.clone(),
            tags: planned.tags.clone(),
        })
    }

    fn context(
        &self,
        book: &Book,
        customer: &Customer,
        planned: &PlannedMessage,
        day: NaiveDate,
    ) -> MessageContext {
        let expires = day
            .checked_add_days(Days::new(self.pay_link_days))
            .unwrap_or(day);
        let invoices: Vec<&Invoice> = planned
            .invoice_ids
            .iter()
            .filter_map(|id| book.invoice(id))
            .collect();
        let currency = invoices
            .first()
            .map_or("", |i| i.currency.as_str())
            .to_string();
        let total: Decimal = invoices.iter().map(|i| book.balance(i, day)).sum();
        MessageContext {
            customer: CustomerCtx {
                id: customer.customer_id.clone(),
                name: customer.name.clone(),
            },
            company: CompanyCtx {
                name: self.sender.company.clone(),
                reply_to: self
                    .sender
                    .reply_to
                    .clone()
                    .unwrap_or_else(|| self.sender.email.clone()),
            },
            today: day.to_string(),
            invoices: invoices
                .iter()
                .map(|i| InvoiceCtx {
                    id: i.invoice_id.clone(),
                    number: i.number.clone(),
                    amount: format_money(i.amount, &i.currency),
                    balance: format_money(book.balance(i, day), &i.currency),
                    due_date: i.due_date.to_string(),
                    days_to_due: (i.due_date - day).num_days(),
                    days_past_due: (day - i.due_date).num_days().max(0),
                    pay_link: self.pay_links.link(&i.invoice_id, expires),
                })
                .collect(),
            total_balance: format_money(total, &currency),
            plan: planned.plan.as_ref().map(|items| {
                let down = if planned.plan.as_ref().is_some_and(|p| p.len() > 1)
                    && items.first().is_some_and(|(d, _)| *d == day)
                {
                    items.first().map_or(Decimal::ZERO, |(_, a)| *a)
                } else {
                    Decimal::ZERO
                };
                let installments: Vec<InstallmentCtx> = items
                    .iter()
                    .filter(|(d, _)| *d != day || down.is_zero())
                    .enumerate()
                    .map(|(k, (d, a))| InstallmentCtx {
                        number: k as u32 + 1,
                        due_date: d.to_string(),
                        amount: format_money(*a, &currency),
                    })
                    .collect();
                let every = match items.as_slice() {
                    [.., (a, _), (b, _)] => (*b - *a).num_days(),
                    _ => 0,
                };
                PlanCtx {
                    down_payment: format_money(down, &currency),
                    installments,
                    every_days: every,
                    total: format_money(items.iter().map(|(_, a)| *a).sum(), &currency),
                }
            }),
        }
    }
}

/// Messages whose status changes share one store transaction.
const BATCH: usize = 1000;

/// The action records as stored once this run's are saved: this run's
/// records (the last one of an id wins, as in the store) over the book's.
struct Saved<'a> {
    book: &'a Book,
    recorded: HashMap<&'a str, &'a ActionRecord>,
}

impl<'a> Saved<'a> {
    /// Indexes the records the messages name (only those: a first sweep
    /// records millions, a few of which go out).
    fn new<'m>(
        book: &'a Book,
        records: &'a [ActionRecord],
        messages: impl Iterator<Item = &'m PlannedMessage>,
    ) -> Saved<'a> {
        let named: HashSet<&str> = messages
            .flat_map(|m| m.action_ids.iter().map(String::as_str))
            .collect();
        Saved {
            book,
            recorded: records
                .iter()
                .filter(|r| named.contains(r.action_id.as_str()))
                .map(|r| (r.action_id.as_str(), r))
                .collect(),
        }
    }

    /// The stored record of `action_id`, among those of the message's invoices.
    fn find(&self, planned: &PlannedMessage, action_id: &str) -> Option<&'a ActionRecord> {
        match self.recorded.get(action_id) {
            Some(r) => planned.invoice_ids.contains(&r.invoice_id).then_some(*r),
            None => planned
                .invoice_ids
                .iter()
                .flat_map(|inv| self.book.actions_of(inv))
                .find(|a| a.action_id == action_id),
        }
    }
}

/// Messages recorded by an earlier run that never reached `sent`.
fn unfinished(book: &Book, day: NaiveDate) -> Vec<PlannedMessage> {
    let mut by_message: std::collections::BTreeMap<String, PlannedMessage> =
        std::collections::BTreeMap::new();
    let mut best: HashMap<String, i64> = HashMap::new();
    for actions in book.actions.values() {
        for a in actions {
            let Some(mid) = &a.message_id else { continue };
            if !matches!(a.status, ActionStatus::Planned | ActionStatus::Sending)
                || a.decided_on > day
            {
                continue;
            }
            let m = by_message
                .entry(mid.clone())
                .or_insert_with(|| PlannedMessage {
                    message_id: mid.clone(),
                    customer_id: a.customer_id.clone(),
                    channel: a.channel.clone(),
                    template: a.target.clone(),
                    action_ids: Vec::new(),
                    invoice_ids: Vec::new(),
                    plan: None,
                    tags: vec![("channel".to_string(), a.channel.clone())],
                });
            // The most advanced step sets the template, as when it was planned.
            m.action_ids.push(a.action_id.clone());
            if a.step_offset >= *best.entry(mid.clone()).or_insert(a.step_offset) {
                best.insert(mid.clone(), a.step_offset);
                m.template.clone_from(&a.target);
            }
            if !m.invoice_ids.contains(&a.invoice_id) {
                m.invoice_ids.push(a.invoice_id.clone());
            }
        }
    }
    by_message.into_values().collect()
}
