//! The standard receivables KPIs over a period, and aging over time.
//!
//! For a period of `D` days from `from` to `to`, in one currency:
//! - `AR(d)`: the open receivables at the end of day `d` (balances of the
//!   invoices issued on or before `d`); *past due* when the due date is
//!   before `d`, *current* otherwise;
//! - **beginning receivables** `AR(from − 1)`, **ending** `AR(to)`;
//! - **credit sales**: the amount invoiced (issue date in the period);
//! - **past-due share** = past-due AR(to) / AR(to);
//! - **DSO** (days sales outstanding) = AR(to) / credit sales × D — the
//!   one definition used everywhere (report, demo, JSON): [`dso`];
//! - **best possible DSO** = current AR(to) / credit sales × D;
//! - **ADD** (average days delinquent) = DSO − best possible DSO
//!   (= past-due AR(to) / credit sales × D);
//! - **CEI** (collection effectiveness index) =
//!   (beginning + credit sales − ending AR) /
//!   (beginning + credit sales − ending current AR), a share: 1 = everything
//!   that could be collected was;
//! - **aging**: the open balance by days past due (current = not yet due,
//!   1–30, 31–60, 61–90, over 90) at the end of each snapshot day.

use crate::book::Book;
use crate::domain::Invoice;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Receivables {
    /// Open at the end of the day before the period.
    pub beginning: Decimal,
    /// Invoiced in the period (credit sales).
    pub invoiced: Decimal,
    /// Paid in the period.
    pub collected: Decimal,
    /// Open at the end of the period's last day …
    pub ending: Decimal,
    /// … not yet due …
    pub ending_current: Decimal,
    /// … and past due.
    pub ending_past_due: Decimal,
    pub open_invoices: u32,
    pub past_due_invoices: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Kpis {
    pub past_due_share: Option<f64>,
    pub dso: Option<f64>,
    pub best_possible_dso: Option<f64>,
    pub add: Option<f64>,
    pub cei: Option<f64>,
    pub receivables: Receivables,
}

/// Open balances by days past due on one day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgingRow {
    pub date: NaiveDate,
    pub current: Decimal,
    pub d1_30: Decimal,
    pub d31_60: Decimal,
    pub d61_90: Decimal,
    pub d90_plus: Decimal,
    pub total: Decimal,
    pub open_invoices: u32,
    pub past_due_share: Option<f64>,
}

impl AgingRow {
    /// The buckets in order, with their names.
    pub fn buckets(&self) -> [(&'static str, Decimal); 5] {
        [
            ("current", self.current),
            ("1-30", self.d1_30),
            ("31-60", self.d31_60),
            ("61-90", self.d61_90),
            ("90+", self.d90_plus),
        ]
    }
}

pub fn ratio(a: Decimal, b: Decimal) -> Option<f64> {
    if b.is_zero() {
        return None;
    }
    a.checked_div(b).and_then(|r| r.to_f64())
}

fn days_f64(d: i64) -> f64 {
    // Periods are at most a few thousand days: exact in f64.
    d as f64
}

/// The KPIs of `invoices` (one currency) over `from..=to`.
pub fn kpis(book: &Book, invoices: &[&Invoice], from: NaiveDate, to: NaiveDate) -> Kpis {
    let days = (to - from).num_days() + 1;
    let before = from.pred_opt().unwrap_or(from);
    let mut r = Receivables::default();
    for inv in invoices {
        if inv.issue_date <= before {
            r.beginning += book.balance(inv, before);
        }
        if inv.issue_date >= from && inv.issue_date <= to {
            r.invoiced += inv.amount;
        }
        for p in book.payments.get(&inv.invoice_id).into_iter().flatten() {
            if p.paid_on >= from && p.paid_on <= to {
                r.collected = r.collected.saturating_add(p.amount);
            }
        }
        if inv.issue_date <= to {
            let balance = book.balance(inv, to);
            if balance > Decimal::ZERO {
                r.ending = r.ending.saturating_add(balance);
                r.open_invoices += 1;
                if inv.due_date < to {
                    r.ending_past_due = r.ending_past_due.saturating_add(balance);
                    r.past_due_invoices += 1;
                } else {
                    r.ending_current = r.ending_current.saturating_add(balance);
                }
            }
        }
    }
    let per_sales = |amount: Decimal| ratio(amount, r.invoiced).map(|x| x * days_f64(days));
    let dso = per_sales(r.ending);
    let best = per_sales(r.ending_current);
    Kpis {
        past_due_share: ratio(r.ending_past_due, r.ending),
        dso,
        best_possible_dso: best,
        add: per_sales(r.ending_past_due),
        cei: ratio(
            r.beginning + r.invoiced - r.ending,
            r.beginning + r.invoiced - r.ending_current,
        ),
        receivables: r,
    }
}

/// Days sales outstanding of `invoices` (one currency) over `from..=to`:
/// the open receivables at the end of `to` / the amount invoiced in the
/// period × the period's days. `None` when nothing was invoiced in it.
pub fn dso(book: &Book, invoices: &[&Invoice], from: NaiveDate, to: NaiveDate) -> Option<f64> {
    kpis(book, invoices, from, to).dso
}

/// Snapshot days: `from`, every `every` days after it, and `to`.
pub fn snapshot_days(from: NaiveDate, to: NaiveDate, every: u32) -> Vec<NaiveDate> {
    let step = u64::from(every.max(1));
    let mut out = Vec::new();
    let mut day = from;
    while day < to {
        out.push(day);
        match day.checked_add_days(chrono::Days::new(step)) {
            Some(next) => day = next,
            None => break,
        }
    }
    out.push(to);
    out
}

/// The aging of `invoices` at the end of `day`.
pub fn aging(book: &Book, invoices: &[&Invoice], day: NaiveDate) -> AgingRow {
    let mut row = AgingRow {
        date: day,
        ..AgingRow::default()
    };
    for inv in invoices.iter().filter(|i| i.issue_date <= day) {
        let balance = book.balance(inv, day);
        if balance <= Decimal::ZERO {
            continue;
        }
        row.open_invoices += 1;
        row.total = row.total.saturating_add(balance);
        let slot = match (day - inv.due_date).num_days() {
            ..=0 => &mut row.current,
            1..=30 => &mut row.d1_30,
            31..=60 => &mut row.d31_60,
            61..=90 => &mut row.d61_90,
            _ => &mut row.d90_plus,
        };
        *slot = slot.saturating_add(balance);
    }
    row.past_due_share = ratio(row.total - row.current, row.total);
    row
}
