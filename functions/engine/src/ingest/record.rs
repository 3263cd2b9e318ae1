//! Building customers, invoices and payments from named fields, whatever
//! format the fields came in.
//!
//! A CSV row and a JSON event both expose their values through [`Fields`];
//! the builders here apply the column rules once for both, and collect every
//! problem of a record instead of stopping at the first, so that a finance
//! user fixes a row in one pass.

use rust_decimal::Decimal;

use super::patch::{CUSTOMER_KEEPABLE, INVOICE_KEEPABLE, Patch};
use super::rules::{self, Reason};
use crate::domain::{Customer, Invoice, Payment, PostalAddress};

/// One refused value of a record: which column, what it held, why.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Problem {
    pub column: String,
    pub value: String,
    pub reason: Reason,
}

impl Problem {
    pub(super) fn new(column: &str, value: &str, reason: Reason) -> Problem {
        Problem {
            column: column.to_owned(),
            value: value.to_owned(),
            reason,
        }
    }
}

/// The named values of one record.
pub(super) trait Fields {
    /// The column's value as text, trimmed; `None` when the record does not
    /// have the column at all. A value that cannot be text (a JSON object)
    /// is a problem.
    fn text(&self, column: &str) -> Result<Option<String>, Problem>;

    /// Whether the record has the column at all (an empty value counts:
    /// it is given, as empty).
    fn has(&self, column: &str) -> bool {
        !matches!(self.text(column), Ok(None))
    }

    /// A list column: `;`-separated text by default (the CSV form).
    fn list(&self, column: &str) -> Result<Vec<String>, Problem> {
        Ok(self
            .text(column)?
            .map(|text| text.split(';').map(str::to_owned).collect())
            .unwrap_or_default())
    }
}

/// Applies rules to the fields of one record and gathers the problems.
///
/// The accessors return `None` both when a value is missing and when it is
/// refused; a refusal is always recorded, so [`Check::finish`] tells them
/// apart.
pub(super) struct Check<'a, F: Fields + ?Sized> {
    fields: &'a F,
    problems: Vec<Problem>,
    /// Optional columns the record does not give (absent; for flags also
    /// empty), which keep their stored value: see [`super::patch`].
    kept: Vec<&'static str>,
}

impl<'a, F: Fields + ?Sized> Check<'a, F> {
    pub(super) fn new(fields: &'a F) -> Self {
        Check {
            fields,
            problems: Vec::new(),
            kept: Vec::new(),
        }
    }

    pub(super) fn problem(&mut self, column: &str, value: &str, reason: Reason) {
        self.problems.push(Problem::new(column, value, reason));
    }

    /// Whether a problem was already recorded for the column, so that a
    /// follow-up rule does not report the same value twice.
    pub(super) fn has_problem(&self, column: &str) -> bool {
        self.problems.iter().any(|p| p.column == column)
    }

    /// The trimmed text (empty when blank or absent) and whether the column
    /// is there at all; `None` when the value itself was refused.
    fn raw(&mut self, column: &str) -> Option<(String, bool)> {
        match self.fields.text(column) {
            Ok(Some(text)) => Some((text, true)),
            Ok(None) => Some((String::new(), false)),
            Err(problem) => {
                self.problems.push(problem);
                None
            }
        }
    }

    fn apply<T>(
        &mut self,
        column: &str,
        value: &str,
        rule: impl FnOnce(&str) -> Result<T, Reason>,
    ) -> Option<T> {
        match rule(value) {
            Ok(parsed) => Some(parsed),
            Err(reason) => {
                self.problem(column, value, reason);
                None
            }
        }
    }

    /// A value the record cannot do without.
    pub(super) fn required<T>(
        &mut self,
        column: &str,
        rule: impl FnOnce(&str) -> Result<T, Reason>,
    ) -> Option<T> {
        let (value, present) = self.raw(column)?;
        if value.is_empty() {
            let reason = if present {
                "is required but empty"
            } else {
                "is required but missing"
            };
            self.problem(column, "", reason.to_owned());
            return None;
        }
        self.apply(column, &value, rule)
    }

    /// A value that may be left empty: empty is `None` (missing), never a
    /// zero or a default, because the risk model treats missing and zero
    /// differently.
    pub(super) fn optional<T>(
        &mut self,
        column: &'static str,
        rule: impl FnOnce(&str) -> Result<T, Reason>,
    ) -> Option<T> {
        let (value, present) = self.raw(column)?;
        if !present {
            self.kept.push(column);
        }
        if value.is_empty() {
            return None;
        }
        self.apply(column, &value, rule)
    }

    /// A flag: `true` or `false`. Absent, empty or `null` is `None`, and
    /// the flag keeps its stored value (`false` for a new record): a flag
    /// like do-not-contact must never be cleared by a value nobody gave.
    pub(super) fn flag(&mut self, column: &'static str) -> Option<bool> {
        let (value, _) = self.raw(column)?;
        if value.is_empty() {
            self.kept.push(column);
            return None;
        }
        self.apply(column, &value, rules::boolean)
    }

    /// A list of tags, trimmed, blanks dropped (`vip;;net30;` has two).
    pub(super) fn tags(&mut self, column: &'static str) -> Vec<String> {
        if !self.fields.has(column) {
            self.kept.push(column);
        }
        match self.fields.list(column) {
            Ok(items) => {
                let mut tags = Vec::new();
                for item in items {
                    let item = item.trim();
                    if item.is_empty() {
                        continue;
                    }
                    if let Some(tag) = self.apply(column, item, rules::text) {
                        tags.push(tag);
                    }
                }
                tags
            }
            Err(problem) => {
                self.problems.push(problem);
                Vec::new()
            }
        }
    }

    /// The record as a patch: the columns among `keepable` that were not
    /// given keep their stored value.
    pub(super) fn finish_patch<T>(
        mut self,
        record: Option<T>,
        keepable: &[&'static str],
    ) -> Result<Patch<T>, Vec<Problem>> {
        let updated_at = self.optional("updated_at", rules::timestamp);
        let kept: Vec<&'static str> = self
            .kept
            .iter()
            .copied()
            .filter(|c| keepable.contains(c))
            .collect();
        self.finish(record).map(|record| Patch {
            record,
            kept,
            updated_at,
        })
    }

    /// The record if nothing was refused, else every problem found.
    pub(super) fn finish<T>(self, record: Option<T>) -> Result<T, Vec<Problem>> {
        match record {
            Some(record) if self.problems.is_empty() => Ok(record),
            // A missing record always comes with a problem; the fallback
            // only guards against a builder that forgot to record one.
            _ if self.problems.is_empty() => Err(vec![Problem::new(
                "",
                "",
                "the record could not be read".to_owned(),
            )]),
            _ => Err(self.problems),
        }
    }
}

/// A row of `customers.csv` or a `customer_upserted` event.
pub(super) fn customer(fields: &(impl Fields + ?Sized)) -> Result<Patch<Customer>, Vec<Problem>> {
    let mut c = Check::new(fields);
    let customer_id = c.required("customer_id", rules::id);
    let name = c.required("name", rules::text);
    let email = c.required("email", rules::email);
    let phone = c.optional("phone", rules::text);
    let language = c.optional("language", rules::language);
    let timezone = c.optional("timezone", rules::timezone);
    let country = c.optional("country", rules::text);
    let industry = c.optional("industry", rules::text);
    let annual_revenue = c.optional("annual_revenue", rules::not_negative);
    let credit_score = c.optional("credit_score", rules::number);
    let credit_limit = c.optional("credit_limit", rules::not_negative);
    let tags = c.tags("tags");
    let do_not_contact = c.flag("do_not_contact").unwrap_or(false);
    let mut part = |column, max| c.optional(column, |v| rules::address_part(v, max));
    let address = PostalAddress {
        line1: part("address_line1", rules::ADDRESS_LINE_MAX),
        line2: part("address_line2", rules::ADDRESS_LINE_MAX),
        postal_code: part("postal_code", rules::POSTAL_CODE_MAX),
        city: part("city", rules::CITY_MAX),
        region: part("region", rules::CITY_MAX),
    };
    let record = match (customer_id, name, email) {
        (Some(customer_id), Some(name), Some(email)) => Some(Customer {
            customer_id,
            name,
            email,
            phone,
            language: language.unwrap_or_else(|| "en".to_owned()),
            timezone: timezone.unwrap_or_else(|| "UTC".to_owned()),
            country,
            industry,
            annual_revenue,
            credit_score,
            credit_limit,
            tags,
            do_not_contact,
            address,
        }),
        _ => None,
    };
    c.finish_patch(record, &CUSTOMER_KEEPABLE)
}

/// A row of `invoices.csv` or an `invoice_upserted` event.
pub(super) fn invoice(fields: &(impl Fields + ?Sized)) -> Result<Patch<Invoice>, Vec<Problem>> {
    let mut c = Check::new(fields);
    let invoice_id = c.required("invoice_id", rules::id);
    let customer_id = c.required("customer_id", rules::id);
    let number = c.required("number", rules::text);
    let issue_date = c.required("issue_date", rules::date);
    let due_date = c.required("due_date", rules::date);
    let amount = c.required("amount", rules::invoice_amount);
    let currency = c.required("currency", rules::currency);
    let disputed = c.flag("disputed").unwrap_or(false);
    let dispute_opened_on = c.optional("dispute_opened_on", rules::date);
    if let (Some(issue), Some(due)) = (issue_date, due_date) {
        if let Err(reason) = rules::not_before(&due.to_string(), due, issue, "issue date") {
            c.problem("due_date", &due.to_string(), reason);
        }
    }
    if let (Some(amount), Some(currency)) = (amount, &currency) {
        let value = amount.to_string();
        if let Err(reason) = rules::fits_currency(&value, amount, currency) {
            c.problem("amount", &value, reason);
        }
    }
    let record = match (
        invoice_id,
        customer_id,
        number,
        issue_date,
        due_date,
        amount,
        currency,
    ) {
        (
            Some(invoice_id),
            Some(customer_id),
            Some(number),
            Some(issue_date),
            Some(due_date),
            Some(amount),
            Some(currency),
        ) => Some(Invoice {
            invoice_id,
            customer_id,
            number,
            issue_date,
            due_date,
            amount,
            currency,
            disputed,
            dispute_opened_on,
        }),
        _ => None,
    };
    c.finish_patch(record, &INVOICE_KEEPABLE)
}

/// A row of `payments.csv` or a `payment_received` event: more than zero.
pub(super) fn payment(fields: &(impl Fields + ?Sized)) -> Result<Payment, Vec<Problem>> {
    let mut c = Check::new(fields);
    let payment_id = c.required("payment_id", rules::id);
    let invoice_id = c.required("invoice_id", rules::id);
    let paid_on = c.required("paid_on", rules::date);
    let amount: Option<Decimal> = c.required("amount", rules::payment_amount);
    let record = match (payment_id, invoice_id, paid_on, amount) {
        (Some(payment_id), Some(invoice_id), Some(paid_on), Some(amount)) => Some(Payment {
            payment_id,
            invoice_id,
            paid_on,
            amount,
        }),
        _ => None,
    };
    c.finish(record)
}
