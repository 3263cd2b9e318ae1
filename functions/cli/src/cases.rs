//! Policy test and case files (`*.tests.toml`): a customer, an invoice, a
//! risk and a date, and what the policy must do. `collect test` runs them and
//! `collect explain --case` explains one.
//!
//! Every mistake in a case file is reported with the file, the case's line,
//! and the field, e.g. `standard-net30.tests.toml:41: case "dispute":
//! invoice.amount: `1200` needs a currency, like `1200 USD``.

use anyhow::{Context, Result, anyhow, bail};
use chrono::{Days, NaiveDate, NaiveTime};
use collect_delivery::rehearsal::{CaseBook, CaseRun};
use collect_engine::domain::EventKind;
use policy_lang::ast::Channel;
use policy_lang::{Contact, CustomerFacts, Facts, InvoiceFacts, Policy};
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
    /// The policy the cases test.
    pub policy_path: std::path::PathBuf,
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
        match build_case(&defaults, t, line, currency_hint)
            .and_then(|case| known_labels(&policy_doc, &case).map(|()| case))
        {
            Ok(case) => cases.push(case),
            Err(e) => broken.push((case_name, line, e.to_string())),
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
fn known_labels(policy: &Policy, case: &Case) -> Result<()> {
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
                let known: Vec<&str> = labels.iter().map(String::as_str).collect();
                bail!(
                    "{field}: `{label}` is not something policy `{}` can do; it can do: {}",
                    policy.name,
                    known.join(", ")
                );
            }
        }
    }
    Ok(())
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

/// The currency of the invoices a case adds around the one under test
/// (other open or settled invoices, for the customer's figures): ISO 4217's
/// code for testing, which no policy covers, so they never get actions of
/// their own.
const SIDE_CURRENCY: &str = "XTS";

/// The customer's local time when the sweep sends, unless the case gives
/// one: the local runtime's default send time.
const DEFAULT_LOCAL_TIME: (u32, u32) = (10, 0);

impl Case {
    /// The case as a one-customer book and the days to sweep, for the
    /// production sweep ([`collect_delivery::rehearsal`]). The sweep runs every
    /// day from the invoice's issue date (or the case's first day, if
    /// earlier), as daily production sweeps would have; the case's facts
    /// hold on every one of those days:
    /// - `balance`: a payment of the difference on the issue date;
    /// - `promised_until`, `plan_current`, `plan_defaulted`: a promise or a
    ///   plan accepted on the issue date;
    /// - `history`: contacts recorded as sent on their dates;
    /// - `open_amount`, `open_invoices`, `overdue_invoices`, `late_rate`,
    ///   `avg_days_late`, `first_invoice_on`: other invoices of the
    ///   customer (in `XTS`, which no policy covers) that give these figures.
    pub fn rehearsal(&self) -> std::result::Result<(CaseBook, CaseRun), String> {
        let inv = &self.invoice;
        let cus = &self.customer;
        let days = self.days();
        let (Some(&first), Some(&last)) = (days.first(), days.last()) else {
            return Err("the case has no day to check".to_string());
        };
        let issue = inv
            .issue_date
            .unwrap_or_else(|| inv.due_date - Days::new(30));
        if issue > inv.due_date {
            return Err(format!(
                "invoice.issue_date {issue} is after the due date {}",
                inv.due_date
            ));
        }
        let start = issue.min(first);
        let customer = collect_engine::domain::Customer {
            customer_id: cus.id.clone(),
            name: cus.id.clone(),
            email: "customer@policy-test.example".to_string(),
            phone: None,
            language: cus.language.clone(),
            timezone: "UTC".to_string(),
            country: cus.country.clone(),
            industry: cus.industry.clone(),
            annual_revenue: cus.annual_revenue,
            credit_score: cus.credit_score,
            credit_limit: cus.credit_limit,
            tags: cus.tags.clone(),
            do_not_contact: cus.do_not_contact,
        };
        let invoice = |id: String, issue_date, due_date, amount, currency: &str| {
            collect_engine::domain::Invoice {
                invoice_id: id.clone(),
                customer_id: cus.id.clone(),
                number: id,
                issue_date,
                due_date,
                amount,
                currency: currency.to_string(),
                disputed: false,
                dispute_opened_on: None,
            }
        };
        let mut book = CaseBook {
            customer,
            invoices: vec![collect_engine::domain::Invoice {
                number: if inv.number.is_empty() {
                    inv.id.clone()
                } else {
                    inv.number.clone()
                },
                disputed: inv.disputed,
                dispute_opened_on: inv.dispute_opened_on,
                ..invoice(
                    inv.id.clone(),
                    issue,
                    inv.due_date,
                    inv.amount,
                    &inv.currency,
                )
            }],
            payments: Vec::new(),
            events: Vec::new(),
            actions: Vec::new(),
        };
        let payment =
            |n: usize, invoice_id: &str, paid_on, amount| collect_engine::domain::Payment {
                payment_id: format!("PAY-{n}"),
                invoice_id: invoice_id.to_string(),
                paid_on,
                amount,
            };
        let balance = inv.balance.unwrap_or(inv.amount);
        if balance > inv.amount {
            return Err(format!(
                "invoice.balance {balance} is above the amount {}",
                inv.amount
            ));
        }
        if balance < inv.amount {
            book.payments
                .push(payment(0, &inv.id, issue, inv.amount - balance));
        }
        let event = |n: usize, on, kind| collect_engine::domain::Event {
            event_id: format!("EV-{n}"),
            date: on,
            kind,
            invoice_id: Some(inv.id.clone()),
            action_id: None,
            message_id: None,
        };
        if let Some(until) = inv.promised_until {
            book.events.push(event(
                1,
                issue,
                EventKind::PromiseToPay {
                    promised_until: until,
                },
            ));
        }
        if inv.plan_current || inv.plan_defaulted {
            // Current: the one installment falls after the last day checked.
            // Defaulted: it fell due the day before the issue date, unpaid.
            let (accepted, every_days) = if inv.plan_defaulted {
                (issue - Days::new(2), 1)
            } else {
                (issue, (last - issue).num_days() + 365)
            };
            book.events.push(event(
                2,
                accepted,
                EventKind::PlanAccepted(collect_engine::domain::PlanTerms {
                    installments: 1,
                    every_days,
                    down_payment: Decimal::ZERO,
                }),
            ));
        }
        for (n, c) in self.history.iter().enumerate() {
            book.actions.push(history_action(n, &cus.id, &inv.id, c));
        }

        // The customer's figures, from other invoices.
        let overdue_itself = inv.due_date < first;
        let extra_overdue = cus
            .overdue_invoices
            .saturating_sub(u32::from(overdue_itself));
        let other_amount = match cus.open_amount {
            Some(total) if total < balance => {
                return Err(format!(
                    "customer.open_amount {total} is below the invoice's balance {balance}"
                ));
            }
            Some(total) => total - balance,
            None => Decimal::ZERO,
        };
        let extra_open = cus
            .open_invoices
            .saturating_sub(1)
            .max(extra_overdue)
            .max(u32::from(other_amount > Decimal::ZERO));
        let far = last + Days::new(400);
        for n in 0..extra_open {
            let share = if other_amount > Decimal::ZERO {
                let each = (other_amount / Decimal::from(extra_open)).round_dp(2);
                if n + 1 == extra_open {
                    other_amount - each * Decimal::from(extra_open - 1)
                } else {
                    each
                }
            } else {
                Decimal::ONE
            };
            let due = if n < extra_overdue {
                start - Days::new(1)
            } else {
                far
            };
            let issued = (start - Days::new(31)).min(due);
            book.invoices.push(invoice(
                format!("OTHER-OPEN-{n}"),
                issued,
                due,
                share,
                SIDE_CURRENCY,
            ));
        }
        let first_issue = cus.first_invoice_on.unwrap_or(start - Days::new(400));
        if first_issue > issue {
            return Err(format!(
                "customer.first_invoice_on {first_issue} is after the invoice's issue date {issue}"
            ));
        }
        match (cus.late_rate, cus.avg_days_late) {
            (None, Some(_)) => {
                return Err(
                    "customer.avg_days_late needs customer.late_rate (the share of invoices paid late)"
                        .to_string(),
                );
            }
            (None, None) => {
                if cus.first_invoice_on.is_some() {
                    // Only the date counts: nothing open, nothing settled.
                    book.invoices.push(invoice(
                        "FIRST".to_string(),
                        first_issue,
                        first_issue,
                        Decimal::ZERO,
                        SIDE_CURRENCY,
                    ));
                }
            }
            (Some(rate), avg) => {
                let (settled, late) = ratio(rate).ok_or_else(|| {
                    format!(
                        "customer.late_rate {:.4}% is not a whole number of invoices out of 100 or fewer; round it to a whole percent",
                        rate * 100.0
                    )
                })?;
                let days_late = spread(avg, late)?;
                for n in 0..settled {
                    let issued = first_issue + Days::new(u64::from(n));
                    let due = issued + Days::new(30);
                    let paid = match days_late.get(n as usize) {
                        Some(d) if n < late => due + Days::new(*d),
                        _ => due,
                    };
                    if paid >= start {
                        return Err(format!(
                            "customer.first_invoice_on {first_issue} leaves no room for {settled} settled invoices before {start}"
                        ));
                    }
                    let id = format!("SETTLED-{n}");
                    book.invoices.push(invoice(
                        id.clone(),
                        issued,
                        due,
                        Decimal::ONE,
                        SIDE_CURRENCY,
                    ));
                    book.payments
                        .push(payment(n as usize + 1, &id, paid, Decimal::ONE));
                }
            }
        }
        let local_time = self.time.unwrap_or_else(|| {
            NaiveTime::from_hms_opt(DEFAULT_LOCAL_TIME.0, DEFAULT_LOCAL_TIME.1, 0)
                .unwrap_or_default()
        });
        Ok((
            book,
            CaseRun {
                invoice_id: inv.id.clone(),
                start,
                checked: days,
                risk: self.risk,
                local_time,
            },
        ))
    }
}

/// A contact of the case's `history`, recorded as sent under a name no
/// policy has, so it counts for the caps and never for a ladder.
fn history_action(
    n: usize,
    customer_id: &str,
    invoice_id: &str,
    c: &Contact,
) -> collect_engine::domain::ActionRecord {
    let id = format!("history-{n}");
    collect_engine::domain::ActionRecord {
        action_id: id.as_str().into(),
        invoice_id: invoice_id.into(),
        customer_id: customer_id.into(),
        decided_on: c.date,
        scheduled_for: c.date,
        status: collect_engine::domain::ActionStatus::Sent,
        channel: c.channel.into(),
        label: format!("{} (history)", c.channel.as_str()),
        target: String::new(),
        step_offset: 0,
        requires_approval: false,
        policy_name: "case history".to_string(),
        policy_revision: String::new(),
        git_revision: None,
        bundle_revision: None,
        rule: String::new(),
        segment: String::new(),
        experiment: None,
        arm: None,
        risk: None,
        scorer: String::new(),
        scorer_version: String::new(),
        note: Some("a contact of the case's history".to_string()),
        message_id: Some(format!("msg-{id}").into()),
        decided_by: None,
        decided_at: None,
        sent_on: Some(c.date),
    }
}

/// `rate` as `(settled, late)` invoices, the fewest settled (up to 100)
/// that give exactly that share.
fn ratio(rate: f64) -> Option<(u32, u32)> {
    (1..=100u32).find_map(|n| {
        let late = rate * f64::from(n);
        let whole = late.round();
        ((late - whole).abs() < 1e-6 && (0.0..=f64::from(n)).contains(&whole))
            .then_some((n, whole as u32))
    })
}

/// Days late of each late invoice, averaging `avg` exactly.
fn spread(avg: Option<Decimal>, late: u32) -> std::result::Result<Vec<u64>, String> {
    if late == 0 {
        return Ok(Vec::new());
    }
    let avg = avg.unwrap_or(Decimal::from(10));
    let total = avg * Decimal::from(late);
    if avg <= Decimal::ZERO || total.fract() != Decimal::ZERO {
        return Err(format!(
            "customer.avg_days_late {avg} cannot be the average of {late} whole numbers of days above 0"
        ));
    }
    let total = total.to_u64().unwrap_or(0);
    let base = total / u64::from(late);
    let extra = total % u64::from(late);
    Ok((0..u64::from(late))
        .map(|i| base + u64::from(i < extra))
        .collect())
}
