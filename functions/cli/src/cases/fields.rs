//! One `[[case]]` table, merged with `[defaults]`, read field by field
//! into a [`Case`]: every field's type and form is checked, and a mistake
//! names the field and shows how to write it ([`CaseError`]).

use super::{
    CASE_FIELDS, CUSTOMER_FIELDS, Case, CaseError, Customer, FieldProblem, INVOICE_FIELDS, Invoice,
    When,
};
use chrono::{NaiveDate, NaiveTime};
use policy_lang::Contact;
use policy_lang::ast::Channel;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::str::FromStr;
use toml::{Table, Value};

type Result<T> = std::result::Result<T, CaseError>;

fn problem<T>(field: impl Into<String>, problem: FieldProblem) -> Result<T> {
    Err(CaseError::field(field, problem))
}

fn merged(defaults: &Table, case: &Table, key: &str) -> Result<Table> {
    let not_table = || FieldProblem::NotTable {
        key: key.to_string(),
    };
    let mut out = match defaults.get(key) {
        Some(Value::Table(t)) => t.clone(),
        Some(_) => return problem(format!("defaults.{key}"), not_table()),
        None => Table::new(),
    };
    match case.get(key) {
        Some(Value::Table(t)) => out.extend(t.clone()),
        Some(_) => return problem(key, not_table()),
        None => {}
    }
    Ok(out)
}

fn unknown_fields(table: &Table, allowed: &'static [&'static str], prefix: &str) -> Result<()> {
    for key in table.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(CaseError::UnknownField {
                field: format!("{prefix}{key}"),
                suggestion: policy_lang::diagnostic::did_you_mean(key, allowed.iter().copied())
                    .map(str::to_string),
                known: allowed,
            });
        }
    }
    Ok(())
}

pub(super) fn build_case(
    defaults: &Table,
    case: Table,
    line: usize,
    currency_hint: Option<&str>,
) -> Result<Case> {
    unknown_fields(defaults, CASE_FIELDS, "defaults.")?;
    for key in [
        "name",
        "expect",
        "deferred",
        "no_action",
        "segment",
        "never",
    ] {
        if defaults.contains_key(key) {
            return Err(CaseError::NotADefault { key });
        }
    }
    unknown_fields(&case, CASE_FIELDS, "")?;
    let mut top = defaults.clone();
    top.extend(case.clone());
    let currency = currency_hint.unwrap_or("USD").to_string();
    let get = |k: &str| top.get(k);

    let name = match get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err(CaseError::NoName),
    };
    let day = get("date").map(|v| date(v, "date")).transpose()?;
    let from = get("from").map(|v| date(v, "from")).transpose()?;
    let to = get("to").map(|v| date(v, "to")).transpose()?;
    let when = match (day, from, to) {
        (Some(d), None, None) => When::Day(d),
        (None, Some(f), Some(t)) if f <= t => When::Range(f, t),
        (None, Some(_), Some(_)) => return Err(CaseError::FromAfterTo),
        _ => return Err(CaseError::NoDay),
    };
    let risk = match get("risk") {
        None => None,
        Some(Value::String(s)) if s == "missing" => None,
        Some(v) => Some(percent(v, "risk")?),
    };

    let c = merged(defaults, &case, "customer")?;
    unknown_fields(&c, CUSTOMER_FIELDS, "customer.")?;
    let customer = Customer {
        id: opt_text(&c, "customer.id", "id")?.unwrap_or_else(|| "C-TEST".to_string()),
        country: opt_text(&c, "customer.country", "country")?,
        industry: opt_text(&c, "customer.industry", "industry")?,
        language: opt_text(&c, "customer.language", "language")?
            .unwrap_or_else(|| "en".to_string()),
        tags: match c.get("tags") {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|t| {
                    t.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| CaseError::field("customer.tags", FieldProblem::TagNotText))
                })
                .collect::<Result<_>>()?,
            Some(_) => return problem("customer.tags", FieldProblem::TagsNotList),
        },
        do_not_contact: opt_bool(&c, "customer.do_not_contact", "do_not_contact")?.unwrap_or(false),
        annual_revenue: c
            .get("annual_revenue")
            .map(|v| money(v, "customer.annual_revenue", &currency))
            .transpose()?,
        credit_score: c
            .get("credit_score")
            .map(|v| number(v, "customer.credit_score"))
            .transpose()?,
        credit_limit: c
            .get("credit_limit")
            .map(|v| money(v, "customer.credit_limit", &currency))
            .transpose()?,
        open_amount: c
            .get("open_amount")
            .map(|v| money(v, "customer.open_amount", &currency))
            .transpose()?,
        open_invoices: count(&c, "customer.open_invoices", "open_invoices")?,
        overdue_invoices: count(&c, "customer.overdue_invoices", "overdue_invoices")?,
        late_rate: c
            .get("late_rate")
            .map(|v| percent(v, "customer.late_rate"))
            .transpose()?,
        avg_days_late: c
            .get("avg_days_late")
            .map(|v| number(v, "customer.avg_days_late"))
            .transpose()?,
        first_invoice_on: c
            .get("first_invoice_on")
            .map(|v| date(v, "customer.first_invoice_on"))
            .transpose()?,
    };

    let i = merged(defaults, &case, "invoice")?;
    unknown_fields(&i, INVOICE_FIELDS, "invoice.")?;
    let invoice = Invoice {
        id: opt_text(&i, "invoice.id", "id")?.unwrap_or_else(|| "INV-TEST".to_string()),
        number: opt_text(&i, "invoice.number", "number")?.unwrap_or_default(),
        amount: match i.get("amount") {
            Some(v) => money(v, "invoice.amount", &currency)?,
            None => {
                return Err(CaseError::Required {
                    field: "invoice.amount",
                    example: "amount = \"1200 USD\"",
                });
            }
        },
        balance: i
            .get("balance")
            .map(|v| money(v, "invoice.balance", &currency))
            .transpose()?,
        currency: opt_text(&i, "invoice.currency", "currency")?.unwrap_or_else(|| currency.clone()),
        issue_date: i
            .get("issue_date")
            .map(|v| date(v, "invoice.issue_date"))
            .transpose()?,
        due_date: match i.get("due_date") {
            Some(v) => date(v, "invoice.due_date")?,
            None => {
                return Err(CaseError::Required {
                    field: "invoice.due_date",
                    example: "due_date = 2026-12-15",
                });
            }
        },
        disputed: opt_bool(&i, "invoice.disputed", "disputed")?.unwrap_or(false),
        dispute_opened_on: i
            .get("dispute_opened_on")
            .map(|v| date(v, "invoice.dispute_opened_on"))
            .transpose()?,
        promised_until: i
            .get("promised_until")
            .map(|v| date(v, "invoice.promised_until"))
            .transpose()?,
        plan_current: opt_bool(&i, "invoice.plan_current", "plan_current")?.unwrap_or(false),
        plan_defaulted: opt_bool(&i, "invoice.plan_defaulted", "plan_defaulted")?.unwrap_or(false),
    };

    let expect = labels(&case, "expect")?;
    let deferred = labels(&case, "deferred")?;
    let time = match get("time") {
        None => None,
        Some(Value::String(s)) => Some(
            NaiveTime::parse_from_str(s, "%H:%M")
                .map_err(|_| CaseError::field("time", FieldProblem::BadTime(s.clone())))?,
        ),
        Some(_) => return problem("time", FieldProblem::TimeNotText),
    };
    let history = match get("history") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.iter().map(contact).collect::<Result<Vec<_>>>()?,
        Some(_) => return problem("history", FieldProblem::HistoryNotList),
    };
    let never = match case.get("never") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| CaseError::field("never", FieldProblem::NeverNotText))
            })
            .collect::<Result<Vec<_>>>()?,
        Some(Value::String(s)) => vec![s.clone()],
        Some(_) => return problem("never", FieldProblem::NeverNotList),
    };
    let no_action = opt_text(&case, "no_action", "no_action")?;
    let segment = opt_text(&case, "segment", "segment")?;
    if matches!(when, When::Range(..))
        && (expect.is_some() || no_action.is_some() || deferred.is_some())
    {
        return Err(CaseError::SingleDayOnly);
    }
    if expect.is_none()
        && deferred.is_none()
        && no_action.is_none()
        && never.is_empty()
        && segment.is_none()
    {
        return Err(CaseError::ChecksNothing);
    }
    Ok(Case {
        name,
        line,
        when,
        risk,
        customer,
        invoice,
        expect,
        no_action,
        segment,
        never,
        deferred,
        history,
        time,
    })
}

fn labels(case: &Table, key: &str) -> Result<Option<Vec<String>>> {
    match case.get(key) {
        None => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| CaseError::field(key, FieldProblem::LabelNotText))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(_) => problem(key, FieldProblem::LabelsNotList),
    }
}

fn contact(v: &Value) -> Result<Contact> {
    let Value::Table(t) = v else {
        return problem("history", FieldProblem::ContactNotTable);
    };
    let day = match t.get("date") {
        Some(d) => date(d, "history.date")?,
        None => return problem("history", FieldProblem::ContactNoDate),
    };
    let channel = match t.get("channel").and_then(Value::as_str) {
        Some("email") => Channel::Email,
        Some("call") => Channel::Call,
        Some("letter") => Channel::Letter,
        Some("offer") => Channel::Offer,
        Some(other) => {
            return problem(
                "history.channel",
                FieldProblem::BadChannel(other.to_string()),
            );
        }
        None => return problem("history", FieldProblem::ContactNoChannel),
    };
    Ok(Contact { date: day, channel })
}

fn date(v: &Value, field: &str) -> Result<NaiveDate> {
    let text = match v {
        Value::Datetime(d) => d.to_string(),
        Value::String(s) => s.clone(),
        _ => return problem(field, FieldProblem::NotDate),
    };
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .map_err(|_| CaseError::field(field, FieldProblem::BadDate(text.clone())))
}

fn number(v: &Value, field: &str) -> Result<Decimal> {
    match v {
        Value::Integer(i) => Ok(Decimal::from(*i)),
        Value::Float(f) => Decimal::from_str(&f.to_string())
            .map_err(|_| CaseError::field(field, FieldProblem::BadNumber(f.to_string()))),
        Value::String(s) => Decimal::from_str(s.trim())
            .map_err(|_| CaseError::field(field, FieldProblem::BadNumber(s.clone()))),
        _ => problem(field, FieldProblem::NotNumber),
    }
}

fn money(v: &Value, field: &str, currency: &str) -> Result<Decimal> {
    match v {
        Value::String(s) => {
            let mut parts = s.split_whitespace();
            let amount = parts.next().unwrap_or("");
            let cur = parts.next();
            let amount = Decimal::from_str(amount).map_err(|_| {
                CaseError::field(
                    field,
                    FieldProblem::BadAmount {
                        text: s.clone(),
                        currency: currency.to_string(),
                    },
                )
            })?;
            match cur {
                Some(c) if c != currency => problem(
                    field,
                    FieldProblem::OtherCurrency {
                        text: s.clone(),
                        currency: currency.to_string(),
                    },
                ),
                _ => Ok(amount),
            }
        }
        Value::Integer(_) | Value::Float(_) => number(v, field),
        _ => problem(
            field,
            FieldProblem::NotAmount {
                currency: currency.to_string(),
            },
        ),
    }
}

fn percent(v: &Value, field: &str) -> Result<f64> {
    let ratio = match v {
        Value::String(s) => {
            let Some(p) = s.trim().strip_suffix('%') else {
                return problem(field, FieldProblem::NoPercentSign);
            };
            Decimal::from_str(p.trim())
                .ok()
                .and_then(|d| (d / Decimal::ONE_HUNDRED).to_f64())
                .ok_or_else(|| CaseError::field(field, FieldProblem::BadPercent(s.clone())))?
        }
        _ => return problem(field, FieldProblem::PercentNotText),
    };
    if !(0.0..=1.0).contains(&ratio) && field == "risk" {
        return problem(field, FieldProblem::NotProbability);
    }
    Ok(ratio)
}

fn opt_text(t: &Table, field: &str, key: &str) -> Result<Option<String>> {
    match t.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => problem(field, FieldProblem::NotText),
    }
}

fn opt_bool(t: &Table, field: &str, key: &str) -> Result<Option<bool>> {
    match t.get(key) {
        None => Ok(None),
        Some(Value::Boolean(b)) => Ok(Some(*b)),
        Some(_) => problem(field, FieldProblem::NotBool),
    }
}

fn count(t: &Table, field: &str, key: &str) -> Result<u32> {
    match t.get(key) {
        None => Ok(0),
        Some(Value::Integer(i)) => {
            u32::try_from(*i).map_err(|_| CaseError::field(field, FieldProblem::NotCount(*i)))
        }
        Some(_) => problem(field, FieldProblem::NotWhole),
    }
}
