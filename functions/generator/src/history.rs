//! The book as the ERP would have recorded it by a day ([`Snapshot`]), and
//! one later day's changes ([`History`]) for runs over many days.

use chrono::{Datelike, NaiveDate};
use collect_engine::domain::{Customer, Event, Invoice, Payment};
use rand::Rng;
use rust_decimal::Decimal;

use crate::draw::behaviour;
use crate::names::{amount, pick};
use crate::{Generated, InvoicePlan, Issuer, Mix, plus, stream};

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
