//! The end of the ladder: what becomes of an invoice once its dunning
//! ladder has no step left. A person decides — hand the account to a
//! collection agency, write the balance off, or keep working it — or the
//! ERP reports a write-off. Each is an event on the invoice
//! ([`EventKind::WrittenOff`], [`EventKind::PlacedWithAgency`],
//! [`EventKind::KeptWorking`]) with who decided and why.
//!
//! - [`stop`]: whether dunning has stopped for an invoice on a day. The
//!   latest end-of-ladder event on or before the day counts: written off or
//!   placed with an agency stops every step (the sweep's built-in stop, like
//!   a settled invoice; the checks before sending stop a message too); a
//!   later "kept working" resumes the ladder where it stood.
//! - [`end_of_ladder`]: whether an invoice has run off its ladder's end and
//!   waits for a person's decision (the desk lists it).
//! - [`written_off_amount`]: what a write-off takes off the books, for the
//!   effectiveness report.
//!
//! Pure: a book, a policy and a day in; nothing here reads the clock.

use crate::book::Book;
use crate::domain::{Event, EventKind, Invoice};
use chrono::NaiveDate;
use policy_lang::Policy;
use rust_decimal::Decimal;
use serde::Serialize;

/// The latest end-of-ladder decision on the invoice made on or before `day`
/// (written off, placed with an agency, or kept working), if any.
pub fn decision<'b>(book: &'b Book, invoice: &Invoice, day: NaiveDate) -> Option<&'b Event> {
    book.events
        .get(&invoice.invoice_id)?
        .iter()
        .take_while(|e| e.date <= day)
        .filter(|e| e.kind.is_end_of_ladder())
        .last()
}

/// Why dunning has stopped for an invoice: the decision that stopped it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop<'b> {
    pub event: &'b Event,
}

impl Stop<'_> {
    /// One line for people, e.g. `written off on 2027-03-02 by
    /// ana@example.com: customer insolvent` or `placed with agency
    /// `Acme Recovery` on 2027-03-02 (reported by the ERP)`.
    pub fn why(&self) -> String {
        let e = self.event;
        let what = match &e.kind {
            EventKind::WrittenOff { amount: Some(a) } => format!("{a} written off"),
            EventKind::WrittenOff { amount: None } => "written off".to_string(),
            EventKind::PlacedWithAgency { agency } => format!("placed with agency `{agency}`"),
            other => other.name().to_string(),
        };
        let by =
            e.by.as_deref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_default();
        let reason = e
            .reason
            .as_deref()
            .filter(|r| !r.trim().is_empty())
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        format!("{what} on {}{by}{reason}", e.date)
    }
}

/// Whether dunning has stopped for `invoice` on `day`: its latest
/// end-of-ladder decision wrote it off or placed it with an agency.
pub fn stop<'b>(book: &'b Book, invoice: &Invoice, day: NaiveDate) -> Option<Stop<'b>> {
    decision(book, invoice, day)
        .filter(|e| e.kind.stops_dunning())
        .map(|event| Stop { event })
}

/// What a write-off takes off the books: its `amount`, or the balance on
/// its day when it names none; never more than that balance, never less
/// than zero. Zero for any other event.
pub fn written_off_amount(book: &Book, invoice: &Invoice, event: &Event) -> Decimal {
    let EventKind::WrittenOff { amount } = &event.kind else {
        return Decimal::ZERO;
    };
    let balance = book.balance(invoice, event.date);
    amount
        .map_or(balance, |a| a.min(balance))
        .max(Decimal::ZERO)
}

/// An invoice past its ladder's last step, waiting for a person's decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndOfLadder {
    pub invoice_id: String,
    pub customer_id: String,
    pub policy_name: String,
    pub segment: String,
    /// The ladder's last step, as recorded (`letter legal-notice`).
    pub last_step: String,
    pub last_step_offset: i64,
    /// The day that step went out or was closed.
    pub last_step_on: NaiveDate,
    pub balance: Decimal,
    pub currency: String,
    pub days_overdue: i64,
}

/// Whether `invoice` has run off the end of its ladder under `policy` on
/// `day` and has no decision yet — the end-of-ladder work for a person.
///
/// It has when all of these hold:
/// - it is open on `day` and dunning has not stopped ([`stop`]);
/// - the latest step taken under the policy (in the segment it was taken
///   in) is the last step of that segment's ladder — no step has a later
///   offset — and it is done: sent, rejected, closed by a person or passed
///   over, not waiting for a person or for the next sweep;
/// - no end-of-ladder decision (including "kept working") was recorded on
///   or after the day that step was decided, up to `day`.
pub fn end_of_ladder(
    book: &Book,
    policy: &Policy,
    invoice: &Invoice,
    day: NaiveDate,
) -> Option<EndOfLadder> {
    if !book.is_open(invoice, day) || stop(book, invoice, day).is_some() {
        return None;
    }
    let latest = book
        .steps_of(&invoice.invoice_id)
        .iter()
        .filter(|s| *s.policy_name == *policy.name && s.status.is_taken() && s.decided_on <= day)
        .max_by_key(|s| (s.step_offset, s.decided_on))?;
    let ladder = policy
        .ladders
        .iter()
        .find(|l| *l.segment == *latest.segment)?;
    let last_offset = ladder.steps.iter().map(|s| s.offset).max()?;
    if latest.step_offset < last_offset {
        return None;
    }
    use crate::domain::ActionStatus as S;
    if !matches!(latest.status, S::Sent | S::Rejected | S::Skipped) {
        return None;
    }
    let since = latest.decided_on;
    if decision(book, invoice, day).is_some_and(|e| e.date >= since) {
        return None;
    }
    Some(EndOfLadder {
        invoice_id: invoice.invoice_id.clone(),
        customer_id: invoice.customer_id.clone(),
        policy_name: policy.name.clone(),
        segment: latest.segment.to_string(),
        last_step: latest.label.to_string(),
        last_step_offset: latest.step_offset,
        last_step_on: latest.sent_on.unwrap_or(latest.decided_on),
        balance: book.balance(invoice, day),
        currency: invoice.currency.clone(),
        days_overdue: (day - invoice.due_date).num_days().max(0),
    })
}
