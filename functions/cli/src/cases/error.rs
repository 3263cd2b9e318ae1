//! What can be wrong with a case file: the file as a whole
//! ([`CaseFileError`]: nothing in it runs), one case ([`CaseError`]: that
//! case is reported as failed, the others run), or one case's facts that
//! no book can have ([`CaseBookError`]: the case cannot be rehearsed).
//! Each message names the field and shows how to write it.

use crate::policy_files::PolicyFileError;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::path::PathBuf;

/// A case file that cannot be read: none of its cases runs.
#[derive(Debug, thiserror::Error)]
pub enum CaseFileError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not a valid case file: {reason}")]
    Toml {
        file: String,
        reason: toml::de::Error,
    },
    #[error(
        "{file}: unknown top-level key `{key}`; a case file has `policy`, `[defaults]` and `[[case]]`"
    )]
    UnknownKey { file: String, key: String },
    #[error("{file}: `policy` must be the policy file's name in quotes")]
    PolicyNotText { file: String },
    #[error(
        "{file}: `policy = \"{policy}\"` leaves the policy folder; name a policy file beside the \
         case file or in a folder under it (e.g. `policy = \"standard.policy\"`)"
    )]
    PolicyOutside { file: String, policy: String },
    #[error("{file}: `[defaults]` must be a table")]
    DefaultsNotTable { file: String },
    #[error("{file}: cases are written as `[[case]]` tables")]
    CasesNotTables { file: String },
    #[error("{file}:{line}: each case is a `[[case]]` table")]
    CaseNotTable { file: String, line: usize },
    /// The policy the cases test does not load.
    #[error(transparent)]
    Policy(#[from] PolicyFileError),
}

/// One case that cannot be read; the file's other cases still run.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("unknown field `{field}`; {}", hint(suggestion.as_deref(), known))]
    UnknownField {
        /// With its table, e.g. `customer.langauge`.
        field: String,
        suggestion: Option<String>,
        known: &'static [&'static str],
    },
    #[error("`{key}` cannot be a default: it is what a case checks, so write it in each case")]
    NotADefault { key: &'static str },
    #[error("every case needs a `name`")]
    NoName,
    #[error("`from` is after `to`")]
    FromAfterTo,
    #[error("give either `date`, or both `from` and `to`")]
    NoDay,
    #[error("{field} is required, like `{example}`")]
    Required {
        field: &'static str,
        example: &'static str,
    },
    #[error(
        "`expect`, `deferred` and `no_action` need a single `date`; over `from`/`to` use `never` or `segment`"
    )]
    SingleDayOnly,
    #[error("the case checks nothing: add `expect`, `deferred`, `no_action`, `never` or `segment`")]
    ChecksNothing,
    /// A value TOML cannot read (`date = 2026-12-32`, an amount without
    /// quotes): this case fails, the file's other cases still run.
    #[error(
        "line {line}, column {col}: `{source_line}`: {reason}{}",
        toml_hint(found)
    )]
    Unreadable {
        line: usize,
        col: usize,
        source_line: String,
        /// The rest of the line from the column of the mistake.
        found: String,
        reason: String,
    },
    /// A field written the wrong way.
    #[error("{field}: {problem}")]
    Field {
        field: String,
        problem: FieldProblem,
    },
}

impl CaseError {
    pub fn field(field: impl Into<String>, problem: FieldProblem) -> CaseError {
        CaseError::Field {
            field: field.into(),
            problem,
        }
    }
}

/// How to write the values TOML most often refuses in a case.
fn toml_hint(found: &str) -> &'static str {
    let number: String = found
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let rest = found.get(number.len()..).unwrap_or_default();
    if !number.is_empty()
        && (rest.starts_with('%')
            || rest
                .trim_start()
                .starts_with(|c: char| c.is_ascii_uppercase()))
    {
        " (write amounts and percentages in quotes, like `\"1200 USD\"`)"
    } else {
        ""
    }
}

fn hint(suggestion: Option<&str>, known: &[&str]) -> String {
    suggestion.map_or_else(
        || format!("known fields: {}", known.join(", ")),
        |s| format!("did you mean `{s}`?"),
    )
}

/// What is wrong with one field, and how to write it.
#[derive(Debug, thiserror::Error)]
pub enum FieldProblem {
    #[error("write text in quotes")]
    NotText,
    #[error("write `true` or `false`")]
    NotBool,
    #[error("`{0}` is not a count")]
    NotCount(i64),
    #[error("write a whole number")]
    NotWhole,
    #[error("write a date like `2026-12-15`")]
    NotDate,
    #[error("`{0}` is not a date like `2026-12-15`")]
    BadDate(String),
    #[error("write a number")]
    NotNumber,
    #[error("`{0}` is not a number")]
    BadNumber(String),
    #[error("write an amount like `\"1200 {currency}\"`")]
    NotAmount { currency: String },
    #[error("`{text}` is not an amount like `1200 {currency}`")]
    BadAmount { text: String, currency: String },
    #[error("`{text}` is not in the policy's currency `{currency}`")]
    OtherCurrency { text: String, currency: String },
    #[error("write a percentage like `\"60%\"`")]
    NoPercentSign,
    #[error("`{0}` is not a percentage like `60%`")]
    BadPercent(String),
    #[error("write a percentage in quotes, like `\"60%\"`")]
    PercentNotText,
    #[error("a probability is between 0% and 100%")]
    NotProbability,
    #[error("must be a table like `{key} = {{ id = \"…\" }}`")]
    NotTable { key: String },
    #[error("tags are text in quotes")]
    TagNotText,
    #[error("write a list like `[\"strategic\"]`")]
    TagsNotList,
    #[error("`{0}` is not a time like `21:30`")]
    BadTime(String),
    #[error("write the customer's local time in quotes, like `\"21:30\"`")]
    TimeNotText,
    #[error("write a list like `[{{ date = 2026-12-11, channel = \"email\" }}]`")]
    HistoryNotList,
    #[error("each contact is written `{{ date = 2026-12-11, channel = \"email\" }}`")]
    ContactNotTable,
    #[error("each contact needs a `date`")]
    ContactNoDate,
    #[error("each contact needs a `channel` (`email`, `call`, `letter` or `offer`)")]
    ContactNoChannel,
    #[error("`{0}` is not `email`, `call`, `letter` or `offer`")]
    BadChannel(String),
    #[error("write actions as text like \"letter\"")]
    NeverNotText,
    #[error("write a list like `[\"letter\"]`")]
    NeverNotList,
    #[error("actions are text like \"email friendly-reminder\"")]
    LabelNotText,
    #[error("write a list like `[\"email friendly-reminder\"]`")]
    LabelsNotList,
    /// A label no step of the policy can produce: a check that cannot fail.
    #[error("`{label}` is not something policy `{policy}` can do; it can do: {}", known.join(", "))]
    Unproducible {
        label: String,
        policy: String,
        known: Vec<String>,
    },
}

/// Facts of a case that no book can have together, so the case cannot be
/// rehearsed through the production sweep.
#[derive(Debug, thiserror::Error)]
pub enum CaseBookError {
    #[error("the case has no day to check")]
    NoDay,
    #[error("invoice.issue_date {issue} is after the due date {due}")]
    IssuedAfterDue { issue: NaiveDate, due: NaiveDate },
    #[error("invoice.balance {balance} is above the amount {amount}")]
    BalanceAboveAmount { balance: Decimal, amount: Decimal },
    #[error("customer.open_amount {total} is below the invoice's balance {balance}")]
    OpenBelowBalance { total: Decimal, balance: Decimal },
    #[error("customer.first_invoice_on {first} is after the invoice's issue date {issue}")]
    FirstInvoiceAfterIssue { first: NaiveDate, issue: NaiveDate },
    #[error("customer.avg_days_late needs customer.late_rate (the share of invoices paid late)")]
    AverageWithoutRate,
    #[error(
        "customer.late_rate {:.4}% is not a whole number of invoices out of 100 or fewer; round it to a whole percent",
        rate * 100.0
    )]
    LateRateNotWhole { rate: f64 },
    #[error(
        "customer.first_invoice_on {first} leaves no room for {settled} settled invoices before {start}"
    )]
    NoRoomForHistory {
        first: NaiveDate,
        settled: u32,
        start: NaiveDate,
    },
    #[error(
        "customer.avg_days_late {average} cannot be the average of {late} whole numbers of days above 0"
    )]
    AverageNotWhole { average: Decimal, late: u32 },
}
