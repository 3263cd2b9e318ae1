//! The fields of a form or a query string, read with errors that name the
//! field as the page labels it.

use super::Failure;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::str::FromStr;

/// A form's (or query's) fields, in order; a name may repeat (check boxes).
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(bytes: &[u8]) -> Fields {
        Fields(serde_urlencoded::from_bytes(bytes).unwrap_or_default())
    }

    pub fn query(q: Option<&str>) -> Fields {
        Fields(
            q.and_then(|q| serde_urlencoded::from_str(q).ok())
                .unwrap_or_default(),
        )
    }

    /// The field's value, trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every non-blank value of the field.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// A field that must be filled in.
    pub fn required(&self, name: &str) -> Result<&str, Failure> {
        self.get(name)
            .ok_or_else(|| Failure::field(label(name), "this field is required; fill it in"))
    }

    pub fn date(&self, name: &str) -> Result<Option<NaiveDate>, Failure> {
        self.get(name)
            .map(|v| {
                NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
                    Failure::field(
                        label(name),
                        format!("`{v}` is not a date; write it as YYYY-MM-DD, e.g. 2027-03-31"),
                    )
                })
            })
            .transpose()
    }

    pub fn decimal(&self, name: &str) -> Result<Option<Decimal>, Failure> {
        self.get(name)
            .map(|v| {
                Decimal::from_str(&v.replace([',', ' ', '_'], "")).map_err(|_| {
                    Failure::field(
                        label(name),
                        format!("`{v}` is not an amount; write a number like 1500 or 1500.50"),
                    )
                })
            })
            .transpose()
    }

    pub fn whole(&self, name: &str) -> Result<Option<i64>, Failure> {
        self.get(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    Failure::field(
                        label(name),
                        format!("`{v}` is not a whole number of days, e.g. 30"),
                    )
                })
            })
            .transpose()
    }
}

/// A field's name as its form labels it.
pub(crate) fn label(field: &str) -> &str {
    match field {
        "reason" => "Reason",
        "note" | "text" => "Note",
        "until" => "Promised to pay by",
        "email" => "New email",
        "phone" => "New phone",
        "agency" => "Agency",
        "decision" => "Decision",
        "invoice_ids" | "invoice" => "Invoices",
        "outcome" => "What the call gave",
        "min_balance" => "Minimum balance",
        "min_days_overdue" => "Days overdue at least",
        "kind" => "Kind",
        "sort" => "Sort",
        "page" => "Page",
        "confirmed" => "Count confirmed",
        "from" => "From",
        "through" => "Through",
        "day" => "Day",
        other => other,
    }
}
