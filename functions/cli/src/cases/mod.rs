//! Policy test and case files (`*.tests.toml`): a customer, an invoice, a
//! risk and a date, and what the policy must do. `collect test` runs them and
//! `collect explain --case` explains one.
//!
//! Every mistake in a case file is reported with the file, the case's line,
//! and the field, e.g. `standard-net30.tests.toml:41: case "dispute":
//! invoice.amount: `1200` needs a currency, like `1200 USD``.
//!
//! This module reads a file into its cases; [`fields`] reads one case's
//! fields, [`rehearsal`] turns a case into the one-customer book the
//! production sweep runs on, and [`error`] says what can be wrong.

mod error;
mod fields;
mod rehearsal;

pub use error::{CaseBookError, CaseError, CaseFileError, FieldProblem};

use crate::policy_files::PolicyFileError;
use chrono::{Days, NaiveDate, NaiveTime};
use policy_lang::{Contact, CustomerFacts, Facts, InvoiceFacts, Policy};
use rust_decimal::Decimal;
use std::path::Path;
use toml::{Table, Value};

/// A case file's cases.
pub struct CaseFile {
    pub cases: Vec<Case>,
    /// Cases that could not be read. The other cases still run; each
    /// broken one counts as failed.
    pub broken: Vec<BrokenCase>,
    /// The policy the cases test.
    pub policy_path: std::path::PathBuf,
}

/// A case that could not be read, where it is and why.
#[derive(Debug)]
pub struct BrokenCase {
    /// Its `name`, or `(unnamed)`.
    pub name: String,
    /// The line of its `[[case]]` header.
    pub line: usize,
    pub problem: CaseError,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub line: usize,
    pub when: When,
    pub risk: Option<f64>,
    pub customer: Customer,
    pub invoice: Invoice,
    pub expect: Option<Vec<String>>,
    pub no_action: Option<String>,
    pub segment: Option<String>,
    pub never: Vec<String>,
    pub deferred: Option<Vec<String>>,
    /// Contacts already made with the customer, for contact caps.
    pub history: Vec<Contact>,
    /// The customer's local time when the sweep sends, for quiet hours.
    pub time: Option<NaiveTime>,
}

#[derive(Debug, Clone, Copy)]
pub enum When {
    Day(NaiveDate),
    Range(NaiveDate, NaiveDate),
}

#[derive(Debug, Clone, Default)]
pub struct Customer {
    pub id: String,
    pub country: Option<String>,
    pub industry: Option<String>,
    pub language: String,
    pub tags: Vec<String>,
    pub do_not_contact: bool,
    pub annual_revenue: Option<Decimal>,
    pub credit_score: Option<Decimal>,
    pub credit_limit: Option<Decimal>,
    pub open_amount: Option<Decimal>,
    pub open_invoices: u32,
    pub overdue_invoices: u32,
    pub late_rate: Option<f64>,
    pub avg_days_late: Option<Decimal>,
    pub first_invoice_on: Option<NaiveDate>,
}

#[derive(Debug, Clone)]
pub struct Invoice {
    pub id: String,
    pub number: String,
    pub amount: Decimal,
    pub balance: Option<Decimal>,
    pub currency: String,
    pub issue_date: Option<NaiveDate>,
    pub due_date: NaiveDate,
    pub disputed: bool,
    pub dispute_opened_on: Option<NaiveDate>,
    pub promised_until: Option<NaiveDate>,
    pub plan_current: bool,
    pub plan_defaulted: bool,
}

const CASE_FIELDS: &[&str] = &[
    "name",
    "date",
    "from",
    "to",
    "time",
    "risk",
    "history",
    "deferred",
    "customer",
    "invoice",
    "expect",
    "no_action",
    "segment",
    "never",
];
const CUSTOMER_FIELDS: &[&str] = &[
    "id",
    "country",
    "industry",
    "language",
    "tags",
    "do_not_contact",
    "annual_revenue",
    "credit_score",
    "credit_limit",
    "open_amount",
    "open_invoices",
    "overdue_invoices",
    "late_rate",
    "avg_days_late",
    "first_invoice_on",
];
const INVOICE_FIELDS: &[&str] = &[
    "id",
    "number",
    "amount",
    "balance",
    "currency",
    "issue_date",
    "due_date",
    "disputed",
    "dispute_opened_on",
    "promised_until",
    "plan_current",
    "plan_defaulted",
];

impl Case {
    /// The facts of this case on one day.
    pub fn facts(&self, today: NaiveDate) -> Facts<'_> {
        let inv = &self.invoice;
        let cus = &self.customer;
        let balance = inv.balance.unwrap_or(inv.amount);
        Facts {
            today,
            risk: self.risk,
            invoice: InvoiceFacts {
                id: &inv.id,
                number: &inv.number,
                amount: inv.amount,
                balance,
                currency: &inv.currency,
                issue_date: inv
                    .issue_date
                    .unwrap_or_else(|| inv.due_date - Days::new(30)),
                due_date: inv.due_date,
                disputed: inv.disputed,
                dispute_opened_on: inv.dispute_opened_on,
                promised_until: inv.promised_until,
                plan_current: inv.plan_current,
                plan_defaulted: inv.plan_defaulted,
            },
            customer: CustomerFacts {
                id: &cus.id,
                country: cus.country.as_deref(),
                industry: cus.industry.as_deref(),
                language: &cus.language,
                tags: &cus.tags,
                do_not_contact: cus.do_not_contact,
                annual_revenue: cus.annual_revenue,
                credit_score: cus.credit_score,
                credit_limit: cus.credit_limit,
                open_amount: cus.open_amount.unwrap_or(balance),
                open_invoices: cus.open_invoices.max(1),
                overdue_invoices: if today > inv.due_date {
                    cus.overdue_invoices.max(1)
                } else {
                    cus.overdue_invoices
                },
                late_rate: cus.late_rate,
                avg_days_late: cus.avg_days_late,
                first_invoice_on: cus.first_invoice_on,
            },
        }
    }

    /// The days the case is checked on.
    pub fn days(&self) -> Vec<NaiveDate> {
        match self.when {
            When::Day(d) => vec![d],
            When::Range(from, to) => from.iter_days().take_while(|d| *d <= to).collect(),
        }
    }
}

/// Reads a case file. `policy = "…"` in the file names the policy, relative
/// to the file; without it, the policy with the same stem is used.
pub fn read(
    path: &Path,
    load_policy: impl FnOnce(&Path) -> Result<Policy, PolicyFileError>,
) -> Result<(CaseFile, Policy), CaseFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| CaseFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.display().to_string();
    // A value TOML cannot read (`date = 2026-12-32`, `amount = 1200 USD`)
    // makes the whole file unreadable to TOML; read it again case by case
    // so that only the case holding it fails.
    let (mut table, unreadable) = match toml::from_str::<Table>(&text) {
        Ok(table) => (table, Vec::new()),
        Err(reason) => by_case(&text).map_err(|()| CaseFileError::Toml {
            file: name.clone(),
            reason,
        })?,
    };
    if let Some(key) = table
        .keys()
        .find(|key| !["policy", "defaults", "case"].contains(&key.as_str()))
    {
        return Err(CaseFileError::UnknownKey {
            file: name,
            key: key.clone(),
        });
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let policy = match table.remove("policy") {
        Some(Value::String(p)) => {
            // The policy a case file tests is in the policy folder: a path
            // that leaves it (`..`, absolute) could test another policy
            // than the one reviewed beside it.
            let inside = Path::new(&p).components().all(|c| {
                matches!(
                    c,
                    std::path::Component::Normal(_) | std::path::Component::CurDir
                )
            });
            if !inside || p.contains('\\') {
                return Err(CaseFileError::PolicyOutside {
                    file: name,
                    policy: p,
                });
            }
            dir.join(p)
        }
        Some(_) => return Err(CaseFileError::PolicyNotText { file: name }),
        None => {
            let stem = path
                .file_name()
                .map(|f| {
                    f.to_string_lossy()
                        .trim_end_matches(".tests.toml")
                        .to_string()
                })
                .unwrap_or_default();
            dir.join(format!("{stem}.policy"))
        }
    };
    let defaults = match table.remove("defaults") {
        Some(Value::Table(t)) => t,
        Some(_) => return Err(CaseFileError::DefaultsNotTable { file: name }),
        None => Table::new(),
    };
    let raw_cases: Vec<Value> = match table.remove("case") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(CaseFileError::CasesNotTables { file: name }),
        None => Vec::new(),
    };
    let policy_doc = load_policy(&policy)?;
    let currency_hint = Some(policy_doc.currency.as_str());
    let lines: Vec<usize> = case_lines(&text)
        .into_iter()
        .filter(|line| !unreadable.iter().any(|u| u.header == *line))
        .collect();
    let mut cases = Vec::new();
    let mut broken: Vec<BrokenCase> = unreadable
        .into_iter()
        .map(|u| BrokenCase {
            name: u.name,
            line: u.line,
            problem: u.problem,
        })
        .collect();
    for (i, raw) in raw_cases.into_iter().enumerate() {
        let line = lines.get(i).copied().unwrap_or(0);
        let Value::Table(t) = raw else {
            return Err(CaseFileError::CaseNotTable { file: name, line });
        };
        let case_name = t
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)")
            .to_string();
        match fields::build_case(&defaults, t, line, currency_hint)
            .and_then(|case| known_labels(&policy_doc, &case).map(|()| case))
        {
            Ok(case) => cases.push(case),
            Err(problem) => broken.push(BrokenCase {
                name: case_name,
                line,
                problem,
            }),
        }
    }
    Ok((
        CaseFile {
            cases,
            broken,
            policy_path: policy,
        },
        policy_doc,
    ))
}

/// What the policy's steps can do: each action's label (every arm of an
/// experiment) and its channel word, e.g. `email friendly-reminder` and
/// `email`.
pub fn producible_labels(policy: &Policy) -> std::collections::BTreeSet<String> {
    let mut labels = std::collections::BTreeSet::new();
    let mut add = |a: &policy_lang::compile::CAction| {
        if let Some(ch) = a.channel() {
            labels.insert(ch.as_str().to_string());
            labels.insert(a.label());
        }
    };
    for ladder in &policy.ladders {
        for step in &ladder.steps {
            match &step.action {
                policy_lang::compile::CAction::Experiment { arms, .. } => {
                    for arm in arms {
                        if let Some(a) = &arm.action {
                            add(a);
                        }
                    }
                }
                other => add(other),
            }
        }
    }
    labels
}

/// A label in `never`, `expect` or `deferred` that no step of the policy
/// can produce makes a test that cannot fail (`never = ["emails"]`), so it
/// is an error that lists the labels there are.
fn known_labels(policy: &Policy, case: &Case) -> Result<(), CaseError> {
    let labels = producible_labels(policy);
    let lists = [
        ("never", Some(&case.never)),
        ("expect", case.expect.as_ref()),
        ("deferred", case.deferred.as_ref()),
    ];
    for (field, list) in lists {
        for label in list.into_iter().flatten() {
            let bare = label.strip_suffix(" requires approval").unwrap_or(label);
            if !labels.contains(bare) {
                return Err(CaseError::field(
                    field,
                    FieldProblem::Unproducible {
                        label: label.clone(),
                        policy: policy.name.clone(),
                        known: labels.iter().cloned().collect(),
                    },
                ));
            }
        }
    }
    Ok(())
}

/// A case TOML cannot read, found by [`by_case`].
struct Unreadable {
    /// The line of its `[[case]]` header.
    header: usize,
    /// The line of the value TOML cannot read.
    line: usize,
    name: String,
    problem: CaseError,
}

/// Reads a file that TOML refuses one `[[case]]` at a time: the part before
/// the first case (`policy`, `[defaults]`) must read, or the whole file is
/// refused (`Err`); a case that does not read is returned as unreadable
/// with the line of its mistake, and every other case is kept.
fn by_case(text: &str) -> Result<(Table, Vec<Unreadable>), ()> {
    let headers = case_lines(text);
    // Byte offsets of the start of each line (1-based line n at index n-1).
    let mut starts = vec![0];
    starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    let offset = |line: usize| starts.get(line - 1).copied().unwrap_or(text.len());
    let mut bounds: Vec<(usize, usize)> = Vec::new();
    let mut prev = (1, 0);
    for &h in &headers {
        bounds.push((prev.0, offset(h)));
        prev = (h, offset(h));
    }
    bounds.push((prev.0, text.len()));
    let mut table = Table::new();
    let mut cases: Vec<Value> = Vec::new();
    let mut unreadable = Vec::new();
    let mut from = 0;
    for (i, (first_line, end)) in bounds.into_iter().enumerate() {
        let part = text.get(from..end).unwrap_or_default();
        from = end;
        match toml::from_str::<Table>(part) {
            Ok(mut t) => {
                if let Some(Value::Array(a)) = t.remove("case") {
                    cases.extend(a);
                }
                for (k, v) in t {
                    if table.contains_key(&k) {
                        return Err(());
                    }
                    table.insert(k, v);
                }
            }
            // The preamble does not read: nothing can run.
            Err(_) if i == 0 => return Err(()),
            Err(e) => {
                let at = e.span().map_or(0, |s| s.start);
                let before = part.get(..at).unwrap_or_default();
                let line = first_line + before.matches('\n').count();
                let col = before.len() - before.rfind('\n').map_or(0, |n| n + 1) + 1;
                let source_line = part
                    .get(at.saturating_sub(col - 1)..)
                    .and_then(|l| l.lines().next())
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                unreadable.push(Unreadable {
                    header: first_line,
                    line,
                    name: case_name(part),
                    problem: CaseError::Unreadable {
                        line,
                        col,
                        source_line,
                        found: part
                            .get(at..)
                            .and_then(|l| l.lines().next())
                            .unwrap_or_default()
                            .to_string(),
                        reason: e.message().trim().to_string(),
                    },
                });
            }
        }
    }
    table.insert("case".to_string(), Value::Array(cases));
    Ok((table, unreadable))
}

/// The `name = "…"` of a case TOML cannot read, as far as it can be seen.
fn case_name(part: &str) -> String {
    part.lines()
        .filter_map(|l| l.trim().strip_prefix("name"))
        .filter_map(|rest| rest.trim_start().strip_prefix('='))
        .filter_map(|v| toml::from_str::<Table>(&format!("name = {}", v.trim())).ok())
        .find_map(|t| t.get("name").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "(unnamed)".to_string())
}

/// Line numbers of each `[[case]]` header, in order.
fn case_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            l.split_whitespace()
                .collect::<String>()
                .starts_with("[[case]]")
        })
        .map(|(i, _)| i + 1)
        .collect()
}
