//! The recovery rate and the end of the ladder, the figures the field
//! compares collections tools by (about 50–70 % for reactive dunning,
//! 80–90 % for proactive collections).
//!
//! For the invoices **due in the period** (due date from `from` to `to`, in
//! one currency), as of the report's day:
//! - **due**: their amounts;
//! - **collected**: what was paid on them up to the report's day, at most
//!   each invoice's amount (an overpayment is not recovery);
//! - **recovery rate** = collected / due;
//! - **written off**: invoices whose latest end-of-ladder decision up to
//!   the report's day is a write-off, and the amount written off (the
//!   amount the event names, else the balance on its day; see
//!   [`crate::ladder::written_off_amount`]);
//! - **placed with an agency**: invoices whose latest decision is a
//!   placement, and their balance on the day they were placed (what the
//!   agency was handed; its collections count as collected).
//!
//! A write-off is not a payment: it stays in *due* and never in
//! *collected*, so writing a balance off lowers the recovery rate instead
//! of hiding it. A later "kept working" decision undoes both counts.
//!
//! The same figures by segment (the segment of the invoice's latest
//! recorded step; `no step` when the policy never took one) and by month
//! of the due date.

use crate::book::Book;
use crate::domain::{EventKind, Invoice};
use crate::ladder;
use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

/// The segment of an invoice the policy never took a step for.
pub const NO_STEP: &str = "no step";

/// What was due in a group of invoices, and what became of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecoveryRow {
    /// `all`, the segment, or the month (`2027-03`).
    pub key: String,
    pub invoices: u32,
    pub due: Decimal,
    pub collected: Decimal,
    /// collected / due; unknown (null) when nothing was due.
    pub recovery_rate: Option<f64>,
    pub written_off: u32,
    pub written_off_amount: Decimal,
    pub placed_with_agency: u32,
    pub placed_with_agency_amount: Decimal,
}

impl RecoveryRow {
    fn named(key: &str) -> RecoveryRow {
        RecoveryRow {
            key: key.to_string(),
            ..RecoveryRow::default()
        }
    }

    fn add(&mut self, one: &RecoveryRow) {
        self.invoices += one.invoices;
        self.due = self.due.saturating_add(one.due);
        self.collected = self.collected.saturating_add(one.collected);
        self.written_off += one.written_off;
        self.written_off_amount = self
            .written_off_amount
            .saturating_add(one.written_off_amount);
        self.placed_with_agency += one.placed_with_agency;
        self.placed_with_agency_amount = self
            .placed_with_agency_amount
            .saturating_add(one.placed_with_agency_amount);
        self.recovery_rate = super::kpi::ratio(self.collected, self.due);
    }
}

/// The recovery of the invoices due in the period: in all, by segment and
/// by month of the due date.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Recovery {
    pub total: RecoveryRow,
    pub by_segment: Vec<RecoveryRow>,
    pub by_month: Vec<RecoveryRow>,
}

/// One invoice's part: due, collected, and its end-of-ladder outcome.
fn one(book: &Book, inv: &Invoice, as_of: NaiveDate) -> RecoveryRow {
    let mut row = RecoveryRow {
        invoices: 1,
        due: inv.amount,
        collected: book.paid(inv, as_of).min(inv.amount).max(Decimal::ZERO),
        ..RecoveryRow::default()
    };
    if let Some(e) = ladder::decision(book, inv, as_of) {
        match &e.kind {
            EventKind::WrittenOff { .. } => {
                row.written_off = 1;
                row.written_off_amount = ladder::written_off_amount(book, inv, e);
            }
            EventKind::PlacedWithAgency { .. } => {
                row.placed_with_agency = 1;
                row.placed_with_agency_amount = book.balance(inv, e.date);
            }
            _ => {}
        }
    }
    row
}

/// The segment of the invoice's latest step recorded up to `as_of`.
fn segment(book: &Book, inv: &Invoice, as_of: NaiveDate) -> String {
    book.steps_of(&inv.invoice_id)
        .iter()
        .filter(|s| s.decided_on <= as_of)
        .max_by_key(|s| (s.decided_on, s.step_offset))
        .map_or_else(|| NO_STEP.to_string(), |s| s.segment.to_string())
}

/// The recovery of `invoices` (one currency) due from `from` to `to`, with
/// the facts known up to `as_of`.
pub fn recovery(
    book: &Book,
    invoices: &[&Invoice],
    from: NaiveDate,
    to: NaiveDate,
    as_of: NaiveDate,
) -> Recovery {
    let mut total = RecoveryRow::named("all");
    let mut by_segment: BTreeMap<String, RecoveryRow> = BTreeMap::new();
    let mut by_month: BTreeMap<String, RecoveryRow> = BTreeMap::new();
    for inv in invoices
        .iter()
        .filter(|i| i.due_date >= from && i.due_date <= to)
    {
        let row = one(book, inv, as_of);
        total.add(&row);
        let seg = segment(book, inv, as_of);
        by_segment
            .entry(seg.clone())
            .or_insert_with(|| RecoveryRow::named(&seg))
            .add(&row);
        let month = format!("{:04}-{:02}", inv.due_date.year(), inv.due_date.month());
        by_month
            .entry(month.clone())
            .or_insert_with(|| RecoveryRow::named(&month))
            .add(&row);
    }
    Recovery {
        total,
        by_segment: by_segment.into_values().collect(),
        by_month: by_month.into_values().collect(),
    }
}
