//! `collect tasks show ID`, and the checks `collect tasks approve` makes
//! before a letter decided days ago is let go: what a person needs to see
//! and know before deciding.

use crate::args::Format;
use crate::home::HomeError;
use crate::policy_load::LoadError;
use chrono::NaiveDate;
use collect_delivery::message::postal::{AddressBlock, address_block};
use collect_engine::book::Book;
use collect_engine::domain::{ActionRecord, Channel};
use rust_decimal::Decimal;
use serde::Serialize;

/// A decision older than this many days is approved with a warning: the
/// customer's situation may have changed since the sweep decided it.
pub const STALE_AFTER_DAYS: i64 = 14;

/// One task with the facts a person decides on.
#[derive(Debug, Serialize)]
pub struct TaskView<'a> {
    pub action: &'a ActionRecord,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    pub invoice_number: Option<String>,
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    pub due_date: Option<NaiveDate>,
    /// Open balance on `as_of`.
    pub balance: Option<Decimal>,
    pub days_overdue: Option<i64>,
    pub as_of: NaiveDate,
    /// Why approving it now would be wrong (refused).
    pub blockers: Vec<String>,
    /// What to know before approving (warned).
    pub warnings: Vec<String>,
    /// The letter (or email) as it would go out on `as_of`, or why it
    /// cannot be shown; `None` for a call.
    pub letter: Option<Result<Letter, LetterError>>,
}

/// A rendered message.
#[derive(Debug, Serialize)]
pub struct Letter {
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// Why a task's letter cannot be shown (the task is shown all the same).
/// Its message is the whole chain of causes, on one line; in JSON it is
/// that text.
#[derive(Debug, thiserror::Error)]
pub enum LetterError {
    /// The policy given with `--policy`, or its templates, do not load.
    #[error("{}", chain(.0))]
    Policy(LoadError),
    /// The home's settings or pay-link key are not usable.
    #[error("{}", chain(.0))]
    Home(HomeError),
    #[error("customer {customer_id} is not in the book")]
    NoCustomer { customer_id: String },
    /// The templates cannot make this message (from the sweep's composer).
    #[error("{0}")]
    Compose(collect_delivery::message::TemplateError),
}

impl Serialize for LetterError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An error and its causes on one line, `what: why: why`.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        // An error that shows its source as its own text says it once.
        let text = c.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// The task `record` seen on `day`.
pub fn view<'a>(book: &Book, record: &'a ActionRecord, day: NaiveDate) -> TaskView<'a> {
    let invoice = book.invoice(&record.invoice_id);
    let customer = book.customers.get(record.customer_id.as_str());
    let mut blockers = Vec::new();
    let mut warnings = Vec::new();
    let balance = invoice.map(|i| book.balance(i, day));
    if let Some(inv) = invoice {
        if balance.is_some_and(|b| b <= Decimal::ZERO) {
            blockers.push(format!(
                "invoice {} is settled as of {day}: nothing is owed any more",
                inv.number
            ));
        }
        let (disputed, since) = book.dispute_open(inv, day);
        if disputed {
            blockers.push(format!(
                "invoice {} is disputed{}: a dispute holds every reminder",
                inv.number,
                since.map(|d| format!(" since {d}")).unwrap_or_default()
            ));
        }
        if let Some(until) = book.promised_until(inv, day) {
            blockers.push(format!(
                "the customer promised to pay invoice {} by {until}",
                inv.number
            ));
        }
    } else {
        blockers.push(format!(
            "invoice {} is not in the book any more",
            record.invoice_id
        ));
    }
    if customer.is_some_and(|c| c.do_not_contact) {
        blockers.push("the customer asked not to be contacted (do_not_contact)".to_string());
    }
    if record.channel == Channel::Letter {
        if let Some(c) = customer {
            let block = address_block(&c.name, &c.address, c.country.as_deref(), None);
            if let AddressBlock::Missing { missing, .. } = block {
                warnings.push(format!(
                    "no deliverable postal address on file (missing {}): the printed letter \
                     says so in its window and cannot be posted until the customer's record \
                     has it",
                    missing.join(", ")
                ));
            }
        }
    }
    let age = (day - record.decided_on).num_days();
    if age > STALE_AFTER_DAYS {
        warnings.push(format!(
            "decided on {} ({age} days ago, more than {STALE_AFTER_DAYS}): check that it still \
             applies; the amount and days overdue above are as of {day}",
            record.decided_on
        ));
    }
    TaskView {
        action: record,
        customer_name: customer.map(|c| c.name.clone()),
        customer_email: customer.map(|c| c.email.clone()),
        invoice_number: invoice.map(|i| i.number.clone()),
        amount: invoice.map(|i| i.amount),
        currency: invoice.map(|i| i.currency.clone()),
        due_date: invoice.map(|i| i.due_date),
        balance,
        days_overdue: invoice.map(|i| (day - i.due_date).num_days().max(0)),
        as_of: day,
        blockers,
        warnings,
        letter: None,
    }
}

/// Prints a task.
pub fn print(v: &TaskView<'_>, format: Format) -> Result<(), serde_json::Error> {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(v)?);
        return Ok(());
    }
    let a = v.action;
    let money = |x: Option<Decimal>| match (x, &v.currency) {
        (Some(x), Some(c)) => format!("{} {c}", crate::report::money(x)),
        _ => "–".to_string(),
    };
    println!("task {} ({})", a.action_id, a.status.as_str());
    println!(
        "  what:      {} ({} step, rule {})",
        a.label, a.segment, a.rule
    );
    println!(
        "  customer:  {} <{}> ({})",
        v.customer_name.as_deref().unwrap_or("?"),
        v.customer_email.as_deref().unwrap_or("?"),
        a.customer_id
    );
    println!(
        "  invoice:   {} ({}), amount {}, open {} on {}",
        v.invoice_number.as_deref().unwrap_or("?"),
        a.invoice_id,
        money(v.amount),
        money(v.balance),
        v.as_of
    );
    println!(
        "  due:       {}, {} day(s) overdue",
        v.due_date.map_or("?".to_string(), |d| d.to_string()),
        v.days_overdue.unwrap_or(0)
    );
    println!(
        "  decided:   {} by policy {} (revision {})",
        a.decided_on, a.policy_name, a.policy_revision
    );
    if let Some(n) = &a.note {
        println!("  note:      {n}");
    }
    for b in &v.blockers {
        println!("  cannot be approved: {b}");
    }
    for w in &v.warnings {
        println!("  warning:   {w}");
    }
    match &v.letter {
        Some(Ok(l)) => {
            println!("\n--- the letter as it would go out on {} ---", v.as_of);
            println!(
                "To: {}\nSubject: {}\n\n{}",
                l.to,
                l.subject,
                l.text.trim_end()
            );
            println!("--- end of letter ---");
        }
        Some(Err(why)) => println!("\n(the letter cannot be shown: {why})"),
        None => {}
    }
    Ok(())
}
