//! Reading one CSV file of the data contract: header, rows, duplicates.

use std::collections::HashMap;

use super::record::{Fields, Problem};
use super::{IngestError, Parsed, Reject, rules};

/// The columns of one CSV file of the data contract.
pub(super) struct Spec {
    /// Every column the contract names; others in the file are ignored.
    pub columns: &'static [&'static str],
    /// Columns the header must have, because their values are required.
    /// Optional columns may be left out of the header altogether: an ERP
    /// that has no industry field need not export an empty one.
    pub required: &'static [&'static str],
    /// The record's own id, which must be unique within the file.
    pub id_column: &'static str,
    /// Whether the optional `updated_at` column (when the ERP last changed
    /// the record: see [`super::patch`]) is read. It is not among
    /// `columns`, which a tool writing the contract writes in full.
    pub versioned: bool,
}

/// The optional column saying when the ERP last changed a customer or an
/// invoice.
const UPDATED_AT: &str = "updated_at";

pub(super) const CUSTOMERS: Spec = Spec {
    columns: &[
        "customer_id",
        "name",
        "email",
        "phone",
        "language",
        "timezone",
        "country",
        "industry",
        "annual_revenue",
        "credit_score",
        "credit_limit",
        "tags",
        "do_not_contact",
        "address_line1",
        "address_line2",
        "postal_code",
        "city",
        "region",
    ],
    required: &["customer_id", "name", "email"],
    id_column: "customer_id",
    versioned: true,
};

pub(super) const INVOICES: Spec = Spec {
    columns: &[
        "invoice_id",
        "customer_id",
        "number",
        "issue_date",
        "due_date",
        "amount",
        "currency",
        "disputed",
        "dispute_opened_on",
    ],
    required: &[
        "invoice_id",
        "customer_id",
        "number",
        "issue_date",
        "due_date",
        "amount",
        "currency",
    ],
    id_column: "invoice_id",
    versioned: true,
};

pub(super) const PAYMENTS: Spec = Spec {
    columns: &["payment_id", "invoice_id", "paid_on", "amount"],
    required: &["payment_id", "invoice_id", "paid_on", "amount"],
    id_column: "payment_id",
    versioned: false,
};

/// A data row seen through the header.
struct CsvRow<'a> {
    index: &'a HashMap<&'static str, usize>,
    record: &'a csv::StringRecord,
}

impl Fields for CsvRow<'_> {
    fn text(&self, column: &str) -> Result<Option<String>, Problem> {
        Ok(self
            .index
            .get(column)
            .and_then(|&i| self.record.get(i))
            .map(|value| value.trim().to_owned()))
    }
}

impl CsvRow<'_> {
    fn raw(&self, column: &str) -> String {
        self.text(column).ok().flatten().unwrap_or_default()
    }
}

/// Physical line numbers, as an editor shows them. The csv crate's own
/// `Position::line` skips blank lines and miscounts `\r\n`, and its byte
/// offset points at the end of the previous record rather than at the
/// record itself, so lines are counted here from the text.
struct Lines<'a> {
    text: &'a [u8],
    /// Byte offset where each line starts; the first is 0.
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let text = text.as_bytes();
        let mut starts = vec![0];
        for (i, &b) in text.iter().enumerate() {
            // `\n`, `\r\n` and a lone `\r` each end a line, as for the csv reader.
            if b == b'\n' || (b == b'\r' && text.get(i + 1) != Some(&b'\n')) {
                starts.push(i + 1);
            }
        }
        Lines { text, starts }
    }

    /// The line on which the record reported at `position` starts.
    fn of(&self, position: Option<&csv::Position>) -> u64 {
        let mut at = position.map_or(0, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX));
        // Skip the line ends (and blank lines) between the previous record
        // and this one.
        while matches!(self.text.get(at), Some(b'\r' | b'\n')) {
            at += 1;
        }
        let line = self.starts.partition_point(|&start| start <= at);
        u64::try_from(line).unwrap_or(u64::MAX)
    }
}

/// Parses the text of one CSV file (already checked to be UTF-8) into
/// records and rejects.
pub(super) fn parse<T>(
    text: &str,
    file: &str,
    spec: &Spec,
    build: impl Fn(&dyn Fields) -> Result<T, Vec<Problem>>,
) -> Result<Parsed<T>, IngestError> {
    let expected = || spec.columns.join(",");
    if text.trim().is_empty() {
        return Err(IngestError::Empty {
            file: file.to_owned(),
            expected: expected(),
        });
    }
    // Not `has_headers`: the header is read by hand so that its problems are
    // whole-file errors. `flexible`: a row with a wrong number of fields is
    // a reject of that row, not the end of the file.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let lines = Lines::new(text);
    let malformed = |e: csv::Error| IngestError::Malformed {
        file: file.to_owned(),
        line: lines.of(e.position()),
        message: e.to_string(),
    };

    let mut header = csv::StringRecord::new();
    if !reader.read_record(&mut header).map_err(malformed)? {
        return Err(IngestError::Empty {
            file: file.to_owned(),
            expected: expected(),
        });
    }
    let header_line = lines.of(header.position());
    let mut index: HashMap<&'static str, usize> = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.trim();
        let versioned = (spec.versioned && name == UPDATED_AT).then_some(UPDATED_AT);
        if let Some(known) = spec
            .columns
            .iter()
            .copied()
            .find(|&c| c == name)
            .or(versioned)
        {
            if index.insert(known, i).is_some() {
                return Err(IngestError::DuplicateColumn {
                    file: file.to_owned(),
                    line: header_line,
                    column: known.to_owned(),
                });
            }
        }
    }
    let missing: Vec<String> = spec
        .required
        .iter()
        .filter(|c| !index.contains_key(*c))
        .map(|c| (*c).to_owned())
        .collect();
    if !missing.is_empty() {
        return Err(IngestError::MissingColumns {
            file: file.to_owned(),
            line: header_line,
            missing,
            found: header.iter().map(|h| h.trim().to_owned()).collect(),
        });
    }

    let mut parsed = Parsed {
        records: Vec::new(),
        lines: Vec::new(),
        rejects: Vec::new(),
    };
    // First line of every id seen, valid row or not: which of two rows with
    // one id is right cannot be known, so the later one is refused and the
    // earlier one stands or falls on its own.
    let mut first_seen: HashMap<String, u64> = HashMap::new();
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(malformed)? {
        let line = lines.of(record.position());
        let reject = |column: &str, value: &str, reason: String| Reject {
            file: file.to_owned(),
            line,
            column: column.to_owned(),
            value: value.to_owned(),
            reason,
        };
        // Spreadsheets pad exports with rows of empty cells (`,,,,`); they
        // hold no data, so there is nothing to load or to reject.
        if record.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        if record.len() != header.len() {
            let hint = if record.len() > header.len() {
                " (a value with a comma must be in double quotes)"
            } else {
                ""
            };
            let value: Vec<&str> = record.iter().collect();
            parsed.rejects.push(reject(
                "",
                &value.join(","),
                format!(
                    "the row has {} fields but the header has {}{hint}",
                    record.len(),
                    header.len()
                ),
            ));
            continue;
        }
        let row = CsvRow {
            index: &index,
            record: &record,
        };
        let mut problems = Vec::new();
        let id = row.raw(spec.id_column);
        if !id.is_empty() {
            match first_seen.get(&id) {
                Some(first) => problems.push(Problem::new(
                    spec.id_column,
                    &id,
                    format!(
                        "{} is a duplicate: the same {} is on line {first}",
                        rules::quote(&id),
                        spec.id_column
                    ),
                )),
                None => {
                    first_seen.insert(id, line);
                }
            }
        }
        match build(&row) {
            Ok(built) if problems.is_empty() => {
                parsed.records.push(built);
                parsed.lines.push(line);
            }
            Ok(_) => {}
            Err(found) => problems.extend(found),
        }
        parsed.rejects.extend(
            problems
                .into_iter()
                .map(|p| reject(&p.column, &p.value, p.reason)),
        );
    }
    Ok(parsed)
}
