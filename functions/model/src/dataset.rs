//! Training rows from history: one row per invoice and prediction day, the
//! label being whether the invoice was paid after its due date.
//!
//! A row for day `D` exists when the invoice was open at the end of `D`
//! (the sweep scores exactly those) and its outcome was known before the
//! as-of date: either it was settled before then, or its due date had passed
//! (unpaid at the end of the due date is late, whether or not it was settled
//! since). Features only see facts up to `D`, and `D` is always before the
//! as-of date, so a training set built "as of" a past date is exactly what
//! could have been built on that date.
//!
//! Splits are by time, never random: invoices are ordered by due date, the
//! earliest train the model, the next ones validate and calibrate it, and the
//! latest test it. All rows of one invoice fall in the same part.

use crate::features::{self, RawFeatures};
use chrono::{Days, NaiveDate};
use collect_engine::book::Book;
use collect_engine::domain::Invoice;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Which days before the due date make rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetConfig {
    pub min_days_before_due: u32,
    pub max_days_before_due: u32,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        DatasetConfig {
            min_days_before_due: 7,
            max_days_before_due: 14,
        }
    }
}

/// One training (or scoring) example.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub invoice_id: String,
    pub customer_id: String,
    /// The prediction day.
    pub day: NaiveDate,
    pub due_date: NaiveDate,
    pub raw: RawFeatures,
    /// Paid after the due date; `false` for scoring rows whose outcome is unknown.
    pub late: bool,
    /// The transparent baseline on the same day: the customer's share of
    /// invoices settled before the day that were late (`None` without history).
    pub prior_late_rate: Option<f64>,
}

/// Whether `invoice` was paid late, when that was known before `as_of`.
pub fn label(book: &Book, invoice: &Invoice, as_of: NaiveDate) -> Option<bool> {
    if invoice.due_date < as_of {
        return Some(book.balance(invoice, invoice.due_date) > Decimal::ZERO);
    }
    match book.settled_on(invoice) {
        Some(on) if on < as_of => Some(on > invoice.due_date),
        _ => None,
    }
}

/// A row for `invoice` on `day` (whatever its openness), with `late` as given.
pub fn row(book: &Book, invoice: &Invoice, day: NaiveDate, late: bool) -> Row {
    Row {
        invoice_id: invoice.invoice_id.clone(),
        customer_id: invoice.customer_id.clone(),
        day,
        due_date: invoice.due_date,
        raw: features::compute(book, invoice, day),
        late,
        prior_late_rate: book.customer_stats(&invoice.customer_id, day).late_rate(),
    }
}

/// Every row whose label was known before `as_of`, ordered by due date,
/// invoice and day.
pub fn build(book: &Book, as_of: NaiveDate, config: &DatasetConfig) -> Vec<Row> {
    build_where(book, as_of, config, |_| true)
}

/// As [`build`], for the invoices `keep` accepts.
pub fn build_where(
    book: &Book,
    as_of: NaiveDate,
    config: &DatasetConfig,
    keep: impl Fn(&Invoice) -> bool,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for inv in book.invoices.iter().filter(|i| keep(i)) {
        let Some(late) = label(book, inv, as_of) else {
            continue;
        };
        for k in (config.min_days_before_due..=config.max_days_before_due).rev() {
            let Some(day) = inv.due_date.checked_sub_days(Days::new(u64::from(k))) else {
                continue;
            };
            if day < as_of && book.is_open(inv, day) {
                rows.push(row(book, inv, day, late));
            }
        }
    }
    sort(&mut rows);
    rows
}

/// The open invoices on `day` due between `min` and `max` days later (all
/// open invoices when `window` is `None`), as scoring rows.
pub fn scoring_rows(book: &Book, day: NaiveDate, window: Option<(i64, i64)>) -> Vec<Row> {
    book.invoices
        .iter()
        .filter(|inv| book.is_open(inv, day))
        .filter(|inv| {
            window.is_none_or(|(lo, hi)| {
                let d = (inv.due_date - day).num_days();
                lo <= d && d <= hi
            })
        })
        .map(|inv| row(book, inv, day, false))
        .collect()
}

fn sort(rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        (a.due_date, &a.invoice_id, a.day).cmp(&(b.due_date, &b.invoice_id, b.day))
    });
}

/// The shares of invoices that validate and test (the rest, the earliest, train).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitConfig {
    pub valid_fraction: f64,
    pub test_fraction: f64,
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            valid_fraction: 0.2,
            test_fraction: 0.2,
        }
    }
}

/// Indices into the rows, by part.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    pub train: Vec<usize>,
    pub valid: Vec<usize>,
    pub test: Vec<usize>,
}

/// Splits rows by time: invoices ordered by (due date, id); the first
/// `1 - valid - test` of them train, then validation, then test.
pub fn split(rows: &[Row], config: &SplitConfig) -> Split {
    let mut invoices: Vec<(NaiveDate, &str)> = rows
        .iter()
        .map(|r| (r.due_date, r.invoice_id.as_str()))
        .collect();
    invoices.sort();
    invoices.dedup();
    let n = invoices.len();
    let frac = |x: f64| ((x.clamp(0.0, 1.0) * n as f64).round() as usize).min(n);
    let n_test = frac(config.test_fraction);
    let n_valid = frac(config.valid_fraction).min(n - n_test);
    let train_end = n - n_test - n_valid;
    let valid_end = n - n_test;
    let part = |key: (NaiveDate, &str)| -> u8 {
        let pos = invoices.partition_point(|k| *k < key);
        if pos < train_end {
            0
        } else if pos < valid_end {
            1
        } else {
            2
        }
    };
    let mut out = Split::default();
    for (i, r) in rows.iter().enumerate() {
        match part((r.due_date, r.invoice_id.as_str())) {
            0 => out.train.push(i),
            1 => out.valid.push(i),
            _ => out.test.push(i),
        }
    }
    out
}
