//! Policy test and case files (`*.tests.toml`): a customer, an invoice, a
//! risk and a date, and what the policy must do. `collect test` runs them and
//! `collect explain --case` explains one.
//!
//! Every mistake in a case file is reported with the file, the case's line,
//! and the field, e.g. `standard-net30.tests.toml:41: case "dispute":
//! invoice.amount: `1200` needs a currency, like `1200 USD``.

use anyhow::{Context, Result, anyhow, bail};
use chrono::{Days, NaiveDate, NaiveTime};
use policy_lang::ast::Channel;
use policy_lang::{Contact, Context as GuardContext, CustomerFacts, Facts, InvoiceFacts, Policy};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::path::Path;
use std::str::FromStr;
use toml::{Table, Value};

/// A case file's cases.
pub struct CaseFile {
    pub cases: Vec<Case>,
    /// Cases that could not be read: `(name, line, problem)`. The other
    /// cases still run; each broken one counts as failed.
    pub broken: Vec<(String, usize, String)>,
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

    /// The guardrail context of this case.
    pub fn context(&self) -> GuardContext<'_> {
        GuardContext {
            history: &self.history,
            local_time: self.time,
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
    load_policy: impl FnOnce(&Path) -> Result<Policy>,
) -> Result<(CaseFile, Policy)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.display().to_string();
    let mut table: Table =
        toml::from_str(&text).map_err(|e| anyhow!("{name}: not a valid case file: {e}"))?;
    for key in table.keys() {
        if !["policy", "defaults", "case"].contains(&key.as_str()) {
            bail!(
                "{name}: unknown top-level key `{key}`; a case file has `policy`, `[defaults]` and `[[case]]`"
            );
        }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let policy = match table.remove("policy") {
        Some(Value::String(p)) => dir.join(p),
        Some(_) => bail!("{name}: `policy` must be the policy file's name in quotes"),
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
        Some(_) => bail!("{name}: `[defaults]` must be a table"),
        None => Table::new(),
    };
    let raw_cases: Vec<Value> = match table.remove("case") {
        Some(Value::Array(a)) => a,
        Some(_) => bail!("{name}: cases are written as `[[case]]` tables"),
        None => Vec::new(),
    };
    let policy_doc = load_policy(&policy)?;
    let currency_hint = Some(policy_doc.currency.as_str());
    let lines = case_lines(&text);
    let mut cases = Vec::new();
    let mut broken = Vec::new();
    for (i, raw) in raw_cases.into_iter().enumerate() {
        let line = lines.get(i).copied().unwrap_or(0);
        let Value::Table(t) = raw else {
            bail!("{name}:{line}: each case is a `[[case]]` table");
        };
        let case_name = t
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)")
            .to_string();
        match build_case(&defaults, t, line, currency_hint) {
            Ok(case) => cases.push(case),
            Err(e) => broken.push((case_name, line, e.to_string())),
        }
    }
    Ok((CaseFile { cases, broken }, policy_doc))
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

fn merged(defaults: &Table, case: &Table, key: &str) -> Result<Table> {
    let mut out = match defaults.get(key) {
        Some(Value::Table(t)) => t.clone(),
        Some(_) => bail!("defaults.{key}: must be a table like `{key} = {{ id = \"…\" }}`"),
        None => Table::new(),
    };
    match case.get(key) {
        Some(Value::Table(t)) => out.extend(t.clone()),
        Some(_) => bail!("{key}: must be a table like `{key} = {{ id = \"…\" }}`"),
        None => {}
    }
    Ok(out)
}

fn unknown_fields(table: &Table, allowed: &[&str], prefix: &str) -> Result<()> {
    for key in table.keys() {
        if !allowed.contains(&key.as_str()) {
            let hint = policy_lang::diagnostic::did_you_mean(key, allowed.iter().copied())
                .map_or_else(
                    || format!("known fields: {}", allowed.join(", ")),
                    |s| format!("did you mean `{s}`?"),
                );
            bail!("unknown field `{prefix}{key}`; {hint}");
        }
    }
    Ok(())
}

fn build_case(
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
            bail!(
                "`{key}` cannot be a default: it is what a case checks, so write it in each case"
            );
        }
    }
    unknown_fields(&case, CASE_FIELDS, "")?;
    let mut top = defaults.clone();
    top.extend(case.clone());
    let currency = currency_hint.unwrap_or("USD").to_string();
    let get = |k: &str| top.get(k);

    let name = match get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => bail!("every case needs a `name`"),
    };
    let day = get("date").map(|v| date(v, "date")).transpose()?;
    let from = get("from").map(|v| date(v, "from")).transpose()?;
    let to = get("to").map(|v| date(v, "to")).transpose()?;
    let when = match (day, from, to) {
        (Some(d), None, None) => When::Day(d),
        (None, Some(f), Some(t)) if f <= t => When::Range(f, t),
        (None, Some(_), Some(_)) => bail!("`from` is after `to`"),
        _ => bail!("give either `date`, or both `from` and `to`"),
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
                        .ok_or_else(|| anyhow!("customer.tags: tags are text in quotes"))
                })
                .collect::<Result<_>>()?,
            Some(_) => bail!("customer.tags: write a list like `[\"strategic\"]`"),
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
            None => bail!("invoice.amount is required, like `amount = \"1200 USD\"`"),
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
            None => bail!("invoice.due_date is required, like `due_date = 2026-12-15`"),
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
                .map_err(|_| anyhow!("time: `{s}` is not a time like `21:30`"))?,
        ),
        Some(_) => bail!("time: write the customer's local time in quotes, like `\"21:30\"`"),
    };
    let history = match get("history") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.iter().map(contact).collect::<Result<Vec<_>>>()?,
        Some(_) => {
            bail!("history: write a list like `[{{ date = 2026-12-11, channel = \"email\" }}]`")
        }
    };
    let never = match case.get("never") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| anyhow!("never: write actions as text like \"letter\""))
            })
            .collect::<Result<Vec<_>>>()?,
        Some(Value::String(s)) => vec![s.clone()],
        Some(_) => bail!("never: write a list like `[\"letter\"]`"),
    };
    let no_action = opt_text(&case, "no_action", "no_action")?;
    let segment = opt_text(&case, "segment", "segment")?;
    if matches!(when, When::Range(..))
        && (expect.is_some() || no_action.is_some() || deferred.is_some())
    {
        bail!(
            "`expect`, `deferred` and `no_action` need a single `date`; over `from`/`to` use `never` or `segment`"
        );
    }
    if expect.is_none()
        && deferred.is_none()
        && no_action.is_none()
        && never.is_empty()
        && segment.is_none()
    {
        bail!(
            "the case checks nothing: add `expect`, `deferred`, `no_action`, `never` or `segment`"
        );
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
                x.as_str().map(str::to_string).ok_or_else(|| {
                    anyhow!("{key}: actions are text like \"email friendly-reminder\"")
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(_) => bail!("{key}: write a list like `[\"email friendly-reminder\"]`"),
    }
}

fn contact(v: &Value) -> Result<Contact> {
    let Value::Table(t) = v else {
        bail!("history: each contact is written `{{ date = 2026-12-11, channel = \"email\" }}`");
    };
    let day = match t.get("date") {
        Some(d) => date(d, "history.date")?,
        None => bail!("history: each contact needs a `date`"),
    };
    let channel = match t.get("channel").and_then(Value::as_str) {
        Some("email") => Channel::Email,
        Some("call") => Channel::Call,
        Some("letter") => Channel::Letter,
        Some("offer") => Channel::Offer,
        Some(other) => {
            bail!("history.channel: `{other}` is not `email`, `call`, `letter` or `offer`")
        }
        None => {
            bail!("history: each contact needs a `channel` (`email`, `call`, `letter` or `offer`)")
        }
    };
    Ok(Contact { date: day, channel })
}

fn date(v: &Value, field: &str) -> Result<NaiveDate> {
    let text = match v {
        Value::Datetime(d) => d.to_string(),
        Value::String(s) => s.clone(),
        _ => bail!("{field}: write a date like `2026-12-15`"),
    };
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .map_err(|_| anyhow!("{field}: `{text}` is not a date like `2026-12-15`"))
}

fn number(v: &Value, field: &str) -> Result<Decimal> {
    match v {
        Value::Integer(i) => Ok(Decimal::from(*i)),
        Value::Float(f) => {
            Decimal::from_str(&f.to_string()).map_err(|_| anyhow!("{field}: `{f}` is not a number"))
        }
        Value::String(s) => {
            Decimal::from_str(s.trim()).map_err(|_| anyhow!("{field}: `{s}` is not a number"))
        }
        _ => bail!("{field}: write a number"),
    }
}

fn money(v: &Value, field: &str, currency: &str) -> Result<Decimal> {
    match v {
        Value::String(s) => {
            let mut parts = s.split_whitespace();
            let amount = parts.next().unwrap_or("");
            let cur = parts.next();
            let amount = Decimal::from_str(amount)
                .map_err(|_| anyhow!("{field}: `{s}` is not an amount like `1200 {currency}`"))?;
            match cur {
                Some(c) if c != currency => {
                    bail!("{field}: `{s}` is not in the policy's currency `{currency}`")
                }
                _ => Ok(amount),
            }
        }
        Value::Integer(_) | Value::Float(_) => number(v, field),
        _ => bail!("{field}: write an amount like `\"1200 {currency}\"`"),
    }
}

fn percent(v: &Value, field: &str) -> Result<f64> {
    let ratio = match v {
        Value::String(s) => {
            let Some(p) = s.trim().strip_suffix('%') else {
                bail!("{field}: write a percentage like `\"60%\"`");
            };
            Decimal::from_str(p.trim())
                .ok()
                .and_then(|d| (d / Decimal::ONE_HUNDRED).to_f64())
                .ok_or_else(|| anyhow!("{field}: `{s}` is not a percentage like `60%`"))?
        }
        _ => bail!("{field}: write a percentage in quotes, like `\"60%\"`"),
    };
    if !(0.0..=1.0).contains(&ratio) && field == "risk" {
        bail!("{field}: a probability is between 0% and 100%");
    }
    Ok(ratio)
}

fn opt_text(t: &Table, field: &str, key: &str) -> Result<Option<String>> {
    match t.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => bail!("{field}: write text in quotes"),
    }
}

fn opt_bool(t: &Table, field: &str, key: &str) -> Result<Option<bool>> {
    match t.get(key) {
        None => Ok(None),
        Some(Value::Boolean(b)) => Ok(Some(*b)),
        Some(_) => bail!("{field}: write `true` or `false`"),
    }
}

fn count(t: &Table, field: &str, key: &str) -> Result<u32> {
    match t.get(key) {
        None => Ok(0),
        Some(Value::Integer(i)) => {
            u32::try_from(*i).map_err(|_| anyhow!("{field}: `{i}` is not a count"))
        }
        Some(_) => bail!("{field}: write a whole number"),
    }
}
