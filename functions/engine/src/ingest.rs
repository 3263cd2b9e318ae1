//! The data contract in: the ERP's CSV exports and the JSON events, checked
//! value by value.
//!
//! Finance users fix bad exports themselves, so every refused value becomes
//! a [`Reject`] naming the file, the line, the column and the reason, while
//! the valid rows of the same file still load. Rejects are returned, never
//! dropped: a row that silently disappears is an invoice nobody collects.
//! Only problems that make a whole file untrustworthy (unreadable, not
//! UTF-8, a header without the required columns) stop a file, as an
//! [`IngestError`].
//!
//! One set of field rules serves the CSV files and the JSON events
//! (`events.jsonl` locally, the same payloads on AWS), so a value accepted
//! on one path is accepted on the other. Customers and invoices come out as
//! [`Patch`]es: what the source did not give keeps its stored value, by the
//! one merge rule of [`patch`] that both stores apply.
//!
//! The limits: dates from [`FIRST_DAY`] to [`LAST_DAY`], amounts at most
//! [`MAX_AMOUNT`] either way and with no more decimals than their
//! currency's minor units (ISO 4217), currencies from ISO 4217, addresses
//! that the mailer can send to. A payment is checked against its invoice by
//! [`check_payment`].

mod csv_file;
mod json;
pub mod patch;
mod record;
mod rules;

pub use json::REPORTED_BY_ERP;
pub use patch::{Merge, Patch};
pub use rules::{FIRST_DAY, LAST_DAY, MAX_AMOUNT, language};

/// The columns of the data contract's exports, in their documented order:
/// what a tool that writes them (`collect synth`) writes, and what
/// ingest reads.
pub const CUSTOMER_COLUMNS: &[&str] = csv_file::CUSTOMERS.columns;
/// The columns of `invoices.csv`.
pub const INVOICE_COLUMNS: &[&str] = csv_file::INVOICES.columns;
/// The columns of `payments.csv`.
pub const PAYMENT_COLUMNS: &[&str] = csv_file::PAYMENTS.columns;

use std::fmt;
use std::io::Read;
use std::path::Path;

use crate::domain::{Customer, Event, Invoice, Payment};
use rust_decimal::Decimal;

/// One refused value (or row), with everything needed to find and fix it in
/// the source file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reject {
    /// The file as the user named it, e.g. `customers.csv`.
    pub file: String,
    /// The physical line in the file where the row starts (the header is
    /// line 1), so an editor's "go to line" lands on it even when quoted
    /// values span lines.
    pub line: u64,
    /// The column (CSV) or field (JSON) at fault; `type` or `json` for an
    /// event that is not a usable object; empty when the whole row is at
    /// fault (wrong number of fields).
    pub column: String,
    /// The value as found (trimmed), kept in full.
    pub value: String,
    /// Why it was refused, as a phrase that quotes the value and says what
    /// was expected, e.g. "`12,5k` is not an amount like `12500.00`".
    pub reason: String,
}

impl fmt::Display for Reject {
    /// `customers.csv:14: column `credit_limit`: `12,5k` is not an amount
    /// like `12500.00``: the `file:line:` prefix is what editors and CI logs
    /// turn into links.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.column.is_empty() {
            write!(f, "{}:{}: {}", self.file, self.line, self.reason)
        } else {
            write!(
                f,
                "{}:{}: column `{}`: {}",
                self.file, self.line, self.column, self.reason
            )
        }
    }
}

/// What a file yielded: the records that passed, and a reject for every
/// value that did not. A row with several problems has several rejects and
/// no record.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<T> {
    pub records: Vec<T>,
    /// The line each record came from (same order as `records`), so later
    /// checks (an invoice naming an unknown customer) can name it too.
    pub lines: Vec<u64>,
    pub rejects: Vec<Reject>,
}

/// A problem with a file as a whole: no row of it can be trusted, so none
/// is loaded. Problems with single rows are [`Reject`]s instead.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{file}: cannot read the file: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A wrong encoding garbles every name and amount, not only the first
    /// bad byte; the usual cause is a spreadsheet saving in its legacy
    /// encoding, which is fixed by exporting again.
    #[error(
        "{file}:{line}: the file is not UTF-8 (first bad byte on this line); export it as UTF-8"
    )]
    NotUtf8 { file: String, line: u64 },
    /// All missing columns at once, so the export is fixed in one go.
    #[error(
        "{file}:{line}: the header lacks the required column(s) {}; it has {}",
        backticked(.missing),
        backticked(.found)
    )]
    MissingColumns {
        file: String,
        line: u64,
        missing: Vec<String>,
        found: Vec<String>,
    },
    /// Two columns with one name: which one holds the data cannot be known.
    #[error("{file}:{line}: the header has the column `{column}` more than once")]
    DuplicateColumn {
        file: String,
        line: u64,
        column: String,
    },
    #[error("{file}: the file is empty; expected a header line like `{expected}`")]
    Empty { file: String, expected: String },
    /// CSV the reader cannot continue past.
    #[error("{file}:{line}: cannot read the CSV: {message}")]
    Malformed {
        file: String,
        line: u64,
        message: String,
    },
}

impl IngestError {
    /// The error as a row of `rejects.csv`, so that a file refused as a
    /// whole is listed where finance looks for what to fix: the file, the
    /// line at fault (1 when the problem is not on one line), no column,
    /// and the reason.
    pub fn reject(&self) -> Reject {
        let (file, line) = match self {
            IngestError::Read { file, .. } | IngestError::Empty { file, .. } => (file, 1),
            IngestError::NotUtf8 { file, line }
            | IngestError::MissingColumns { file, line, .. }
            | IngestError::DuplicateColumn { file, line, .. }
            | IngestError::Malformed { file, line, .. } => (file, *line),
        };
        let text = self.to_string();
        let reason = text
            .strip_prefix(&format!("{file}:{line}: "))
            .or_else(|| text.strip_prefix(&format!("{file}: ")))
            .unwrap_or(&text);
        Reject {
            file: file.clone(),
            line,
            column: String::new(),
            value: String::new(),
            reason: format!("the file was not loaded: {reason}"),
        }
    }
}

fn backticked(names: &[String]) -> String {
    if names.is_empty() {
        return "no columns".to_owned();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one JSON event carries: a record to insert or replace, or an event
/// that happened to an invoice or a message.
// A customer (with its postal address) is the largest variant; an
// `Incoming` lives only while one event is applied, so boxing it would buy
// nothing but a change at every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Customer(Patch<Customer>),
    Invoice(Patch<Invoice>),
    Payment(Payment),
    Event(Event),
}

/// Reads the whole input as UTF-8 text, without a leading byte-order mark
/// (spreadsheets write one, and it would otherwise stick to the first
/// column's name).
fn read_text(mut reader: impl Read, file: &str) -> Result<String, IngestError> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|source| IngestError::Read {
            file: file.to_owned(),
            source,
        })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let good = e.utf8_error().valid_up_to();
        let before = e.as_bytes().get(..good).unwrap_or_default();
        let newlines = before.iter().filter(|&&b| b == b'\n').count();
        IngestError::NotUtf8 {
            file: file.to_owned(),
            line: u64::try_from(newlines)
                .unwrap_or(u64::MAX)
                .saturating_add(1),
        }
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    })
}

/// Reads `customers.csv`. Empty `language` is `en`, empty `timezone` is
/// `UTC`; other empty optionals are `None`. Columns the header lacks (and
/// an empty `do_not_contact`) keep their stored value: see [`patch`].
pub fn customers(reader: impl Read, file: &str) -> Result<Parsed<Patch<Customer>>, IngestError> {
    let text = read_text(reader, file)?;
    csv_file::parse(&text, file, &csv_file::CUSTOMERS, |f| record::customer(f))
}

/// Reads `invoices.csv`. Amounts must be more than zero, and the due date
/// not before the issue date, with no more decimals than the currency has.
/// Without a `disputed` or `dispute_opened_on` column (or with an empty
/// `disputed`), the stored value stays: see [`patch`].
pub fn invoices(reader: impl Read, file: &str) -> Result<Parsed<Patch<Invoice>>, IngestError> {
    let text = read_text(reader, file)?;
    csv_file::parse(&text, file, &csv_file::INVOICES, |f| record::invoice(f))
}

/// Reads `payments.csv`. Amounts must not be negative.
pub fn payments(reader: impl Read, file: &str) -> Result<Parsed<Payment>, IngestError> {
    let text = read_text(reader, file)?;
    csv_file::parse(&text, file, &csv_file::PAYMENTS, |f| record::payment(f))
}

/// Parses one JSON event: the one parser for `events.jsonl` lines and for
/// events arriving on AWS.
///
/// The object has a `type`: `customer_upserted`, `invoice_upserted` or
/// `payment_received` with the CSV column names as fields (money as JSON
/// numbers or strings, tags as an array or `;`-separated text), or an event
/// kind (`dispute_opened`, `promise_to_pay`, `plan_accepted`,
/// `mail_bounced`, …) with a `date`. The event id is `event_id` if given,
/// else the SHA-256 of the event's canonical JSON, so a re-delivered event
/// is recognised. The error lists every problem with its field
/// ([`RefusedEvent`]).
pub fn incoming_from_json(value: &serde_json::Value) -> Result<Incoming, RefusedEvent> {
    json::incoming(value).map_err(|problems| RefusedEvent {
        problems: problems
            .into_iter()
            .map(|p| FieldProblem {
                field: p.column,
                value: p.value,
                reason: p.reason,
            })
            .collect(),
    })
}

/// A JSON event or record refused, with every problem found in it. Its
/// message lists them as "field `date`: …", separated by `; ` (a problem of
/// the whole object, e.g. "not a JSON object", without a field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.problems))]
pub struct RefusedEvent {
    pub problems: Vec<FieldProblem>,
}

/// One problem of a refused event: the field (`json` for the object as a
/// whole), the value found there and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub value: String,
    pub reason: String,
}

fn describe(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(|p| {
            if p.field == "json" {
                p.reason.clone()
            } else {
                format!("field `{}`: {}", p.field, p.reason)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Reads `events.jsonl`: one JSON object a line, blank lines ignored. A bad
/// line yields a reject per problem, with the field as the column (`json`
/// when the line is not JSON at all).
pub fn events(reader: impl Read, file: &str) -> Result<Parsed<Incoming>, IngestError> {
    let text = read_text(reader, file)?;
    let mut parsed = Parsed {
        records: Vec::new(),
        lines: Vec::new(),
        rejects: Vec::new(),
    };
    for (line, content) in (1u64..).zip(text.lines()) {
        let content = content.trim();
        if content.is_empty() {
            continue;
        }
        let reject = |column: &str, value: &str, reason: String| Reject {
            file: file.to_owned(),
            line,
            column: column.to_owned(),
            value: value.to_owned(),
            reason,
        };
        match serde_json::from_str::<serde_json::Value>(content) {
            Err(e) => parsed.rejects.push(reject(
                "json",
                content,
                format!("the line is not valid JSON: {e}"),
            )),
            Ok(value) => match json::incoming(&value) {
                Ok(incoming) => {
                    parsed.records.push(incoming);
                    parsed.lines.push(line);
                }
                Err(problems) => parsed.rejects.extend(
                    problems
                        .into_iter()
                        .map(|p| reject(&p.column, &p.value, p.reason)),
                ),
            },
        }
    }
    Ok(parsed)
}

/// The reject of a row whose id an earlier row of the same file has: the
/// rule every CSV file is read by (the later row is refused, the earlier
/// one stands or falls on its own), for a reader that sees a file in
/// parts (the chunks of a CSV drop on AWS), with the reader's own words.
pub fn duplicate(file: &str, line: u64, id_column: &str, id: &str, first: u64) -> Reject {
    Reject {
        file: file.to_owned(),
        line,
        column: id_column.to_owned(),
        value: id.to_owned(),
        reason: format!(
            "{} is a duplicate: the same {id_column} is on line {first}",
            rules::quote(id)
        ),
    }
}

/// A refused value of a record checked against another record (a payment
/// against its invoice); the caller knows the file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub column: &'static str,
    pub value: String,
    pub reason: String,
}

impl Refusal {
    /// The refusal as a reject of the record at `file:line`.
    pub fn at(self, file: &str, line: u64) -> Reject {
        Reject {
            file: file.to_owned(),
            line,
            column: self.column.to_owned(),
            value: self.value,
            reason: self.reason,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.column, self.reason)
    }
}

/// Checks a payment against the invoice it pays; every problem found. A
/// payment is refused when it is dated before the invoice was issued, when
/// it has more decimals than the invoice's currency, or when it alone is
/// more than the whole invoice amount (a misposting, a wrong invoice id or
/// a missing decimal point: taken as it is, it would settle the invoice
/// and hide the error). Several payments that together overpay an invoice
/// are accepted: the invoice is settled.
pub fn check_payment(payment: &Payment, invoice: &Invoice) -> Vec<Refusal> {
    let mut refusals = Vec::new();
    if payment.paid_on < invoice.issue_date {
        refusals.push(Refusal {
            column: "paid_on",
            value: payment.paid_on.to_string(),
            reason: format!(
                "`{}` is before invoice `{}` was issued on {}",
                payment.paid_on, invoice.invoice_id, invoice.issue_date
            ),
        });
    }
    let value = payment.amount.to_string();
    if let Err(reason) = rules::fits_currency(&value, payment.amount, &invoice.currency) {
        refusals.push(Refusal {
            column: "amount",
            value: value.clone(),
            reason,
        });
    }
    if payment.amount > invoice.amount {
        let times = payment
            .amount
            .checked_div(invoice.amount)
            .unwrap_or(Decimal::MAX)
            .round_dp(1)
            .normalize();
        refusals.push(Refusal {
            column: "amount",
            value: value.clone(),
            reason: format!(
                "`{value}` is more than the whole amount {} {} of invoice `{}` ({times}×)",
                invoice.amount, invoice.currency, invoice.invoice_id
            ),
        });
    }
    refusals
}

/// Checks a `dispute_closed` event against its invoice and the events known
/// before it (stored, or earlier in the same batch; in any order, the ones
/// dated after it are ignored): the reason when it closes no open dispute.
/// Such an event is kept (the dispute may have been opened before the
/// exports began) but reported as a warning naming its line, so a closing
/// sent to the wrong invoice is not lost silently. Open means what
/// [`crate::book::Book::dispute_open`] means: the export's `disputed` flag
/// from its `dispute_opened_on`, then dated events in order.
pub fn check_dispute_closed(
    invoice: &Invoice,
    earlier: &[&Event],
    event: &Event,
) -> Option<String> {
    if event.kind != crate::domain::EventKind::DisputeClosed {
        return None;
    }
    let mut before: Vec<&Event> = earlier
        .iter()
        .copied()
        .filter(|e| e.date <= event.date && e.event_id != event.event_id)
        .collect();
    before.sort_by_key(|e| e.date);
    let export_from = invoice.dispute_opened_on.unwrap_or(invoice.issue_date);
    let mut export_applied = !invoice.disputed;
    let mut open = false;
    for e in before {
        if !export_applied && export_from <= e.date {
            open = true;
            export_applied = true;
        }
        match e.kind {
            crate::domain::EventKind::DisputeOpened => open = true,
            crate::domain::EventKind::DisputeClosed => open = false,
            _ => {}
        }
    }
    if !export_applied && export_from <= event.date {
        open = true;
    }
    (!open).then(|| {
        format!(
            "`dispute_closed` on {} closes no open dispute of invoice `{}` (no `dispute_opened` \
             before it, and the invoice is not marked disputed); it was kept: check the invoice id",
            event.date, invoice.invoice_id
        )
    })
}

/// A cell as it may go into a CSV file that finance opens in a
/// spreadsheet: a value starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return gets a leading `'`, so the spreadsheet shows it as text
/// instead of running it as a formula (OWASP's rule against CSV
/// injection). The value itself stays readable after the `'`.
pub fn spreadsheet_safe(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// Writes rejects as CSV (`file,line,column,value,reason`), creating the
/// file or replacing an earlier one, so that it always describes the last
/// run. The header is written even when there are no rejects: an empty
/// rejects file says "nothing was refused" rather than "nothing ran", and
/// no reject of an earlier ingest is left behind. Cells that a spreadsheet
/// would take for a formula are escaped ([`spreadsheet_safe`]).
pub fn write_rejects(path: &Path, rejects: &[Reject]) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_path(path)?;
    writer.write_record(["file", "line", "column", "value", "reason"])?;
    for r in rejects {
        writer.write_record([
            spreadsheet_safe(&r.file).as_ref(),
            &r.line.to_string(),
            &spreadsheet_safe(&r.column),
            &spreadsheet_safe(&r.value),
            &spreadsheet_safe(&r.reason),
        ])?;
    }
    writer.flush()
}

#[cfg(test)]
mod tests;
