//! The work queue of the collections team ("the desk"): what the sweep
//! hands to a person — letters awaiting approval, call tasks, addresses to
//! fix, accounts at the end of their ladder — and what a person does with
//! it, over the [`Ledger`] port, so the web pages (locally on SQLite, on
//! AWS on DynamoDB) and `collect tasks` share one implementation.
//!
//! - [`Desk::queue`]: the open work from the ledger's index of open work
//!   ([`Ledger::open_work`], never a scan of the book), filtered, sorted
//!   (risk × balance by default), paged, with a count per queue;
//! - [`Desk::customer`], [`Desk::task`]: a customer's context and one
//!   task's record and trail;
//! - the acts — [`Desk::approve`] (with the re-checks), [`Desk::reject`],
//!   [`Desk::reopen`], [`Desk::bulk_approve`], [`Desk::record_call`],
//!   [`Desk::close_contact`], [`Desk::decide_account`] — each checked
//!   against the person's [`Role`] first and written with a trail line
//!   naming the person;
//! - [`preview`]: the message exactly as the sweep would send it.
//!
//! A caller makes one [`Desk`] per request: `Desk::new(&ledger, &policy,
//! &settings, today)`, with the policy in force as a
//! [`PolicySource`] (`explain::Recorded` over the bundle store, or
//! `explain::WhatIf` with a policy file) for the approval's re-checks, and
//! "today" passed in. Every method takes the signed-in [`Person`] and
//! refuses by role first ([`DeskError::NotAllowed`]); bad input names its
//! field ([`DeskError::Invalid`]). Task ids are action ids, or
//! `hold-<customer>` for an address to fix; an action is located by its
//! customer too (the queue row carries both).

use crate::explain::PolicySource;
use crate::ledger::{Ledger, LedgerError, LogEntry};
use chrono::{DateTime, NaiveDate, Utc};
use collect_engine::contact::ContactHold;
use collect_engine::domain::{ActionRecord, Customer, Event, Invoice, Payment};
use rust_decimal::Decimal;
use serde::Serialize;

mod acts;
mod read;
pub use acts::{PROMISE_MAX_DAYS, add_business_days};
pub use read::MAX_PER_PAGE;

pub use crate::ledger::{WorkEntry, WorkKind};

mod preview;
pub use preview::{Preview, PreviewError, preview};

/// What a person may be: the groups of the user pool on AWS, `--role`
/// locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Works the calls and the end of the ladder.
    Collector,
    /// Approves and rejects letters; decides the end of the ladder.
    Approver,
    /// Reads everything, downloads the audit; changes nothing.
    Auditor,
    /// Everything.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Collector, Role::Approver, Role::Auditor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Collector => "collector",
            Role::Approver => "approver",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// A role by its name (case-insensitive; a Cognito group name).
    pub fn parse(s: &str) -> Option<Role> {
        let s = s.trim();
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether this role may do `act`.
    pub fn may(self, act: Act) -> bool {
        match self {
            Role::Admin => true,
            Role::Collector => matches!(act, Act::Read | Act::Call | Act::CloseAccount),
            Role::Approver => matches!(act, Act::Read | Act::Approve | Act::CloseAccount),
            Role::Auditor => matches!(act, Act::Read | Act::Export),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a person does, as far as roles go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Act {
    /// See the queue, a customer, a task, a preview, an explanation.
    Read,
    /// Approve, reject, reopen, bulk approve a letter.
    Approve,
    /// Record a call's outcome; fix a contact.
    Call,
    /// Decide the end of the ladder: agency, write-off, keep working.
    CloseAccount,
    /// Download the audit.
    Export,
}

impl Act {
    pub fn as_str(self) -> &'static str {
        match self {
            Act::Read => "read",
            Act::Approve => "approve or reject letters",
            Act::Call => "record calls and fix contacts",
            Act::CloseAccount => "decide the end of the ladder",
            Act::Export => "export the audit",
        }
    }
}

/// The person acting: their id goes into every trail line they cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    /// The email on AWS (the token's claim), `--as NAME` locally.
    pub id: String,
    pub role: Role,
}

/// When the next sweep runs, for "goes out with …" after an approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextSweep {
    /// Locally: the next `collect run`.
    Local,
    /// On AWS: the schedule's next run.
    Scheduled { at: DateTime<Utc> },
}

impl NextSweep {
    /// `the next `collect run`` / `the next scheduled sweep, 2027-03-03 06:00 UTC`.
    pub fn describe(&self) -> String {
        match self {
            NextSweep::Local => "the next `collect run`".to_string(),
            NextSweep::Scheduled { at } => format!(
                "the next scheduled sweep, {}",
                at.format("%Y-%m-%d %H:%M UTC")
            ),
        }
    }
}

/// The desk's settings.
#[derive(Debug, Clone)]
pub struct DeskSettings {
    /// After "no answer", the call comes back after this many business days.
    pub call_again_business_days: u32,
    pub next_sweep: NextSweep,
    /// Holidays of the business-day calendar (the policy's, when known).
    pub holidays: Vec<NaiveDate>,
}

impl Default for DeskSettings {
    fn default() -> Self {
        DeskSettings {
            call_again_business_days: 2,
            next_sweep: NextSweep::Local,
            holidays: Vec::new(),
        }
    }
}

/// How the queue is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Risk × balance, largest first.
    #[default]
    Priority,
    /// Balance, largest first.
    Balance,
    /// Days overdue, most first.
    DaysOverdue,
    /// Oldest decision first.
    Age,
}

impl Sort {
    pub const ALL: [Sort; 4] = [Sort::Priority, Sort::Balance, Sort::DaysOverdue, Sort::Age];

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Priority => "priority",
            Sort::Balance => "balance",
            Sort::DaysOverdue => "days_overdue",
            Sort::Age => "age",
        }
    }

    pub fn parse(s: &str) -> Option<Sort> {
        Sort::ALL.into_iter().find(|x| x.as_str() == s.trim())
    }
}

/// A filter of the queue, its order and its page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkQuery {
    pub kind: Option<WorkKind>,
    pub queue: Option<String>,
    pub segment: Option<String>,
    pub customer_id: Option<String>,
    pub min_balance: Option<Decimal>,
    pub min_days_overdue: Option<i64>,
    pub sort: Sort,
    /// 1-based.
    pub page: usize,
    pub per_page: usize,
}

impl Default for WorkQuery {
    fn default() -> Self {
        WorkQuery {
            kind: None,
            queue: None,
            segment: None,
            customer_id: None,
            min_balance: None,
            min_days_overdue: None,
            sort: Sort::Priority,
            page: 1,
            per_page: 50,
        }
    }
}

/// One row of the queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkItem {
    /// The action's id, or `hold-<customer>` for an address to fix.
    pub task_id: String,
    pub kind: WorkKind,
    pub queue: String,
    pub customer_id: String,
    pub customer_name: String,
    pub invoice_ids: Vec<String>,
    /// The open amount when the sweep decided it (the customer and task
    /// pages show the live one).
    pub balance: Decimal,
    pub currency: String,
    pub days_overdue: i64,
    pub risk: Option<f64>,
    pub segment: String,
    pub language: String,
    /// `letter formal-notice`, `call collections`, `fix the address`.
    pub label: String,
    pub decided_on: NaiveDate,
    /// Days since it was decided.
    pub age_days: i64,
    /// After "no answer": hidden from the queue until this day.
    pub call_again_on: Option<NaiveDate>,
}

/// One page of the queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkPage {
    pub items: Vec<WorkItem>,
    /// Rows matching the filter (all pages).
    pub total: usize,
    /// Open work per queue (whatever the filter), by queue name.
    pub counts: Vec<(String, usize)>,
    pub page: usize,
    pub per_page: usize,
}

/// A customer as the desk shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerView {
    pub customer: Customer,
    /// Open invoices with their live balance and days overdue.
    pub open_invoices: Vec<InvoiceLine>,
    /// Every action of the customer, newest first, with its trail.
    pub timeline: Vec<TimelineEntry>,
    /// Promises, disputes, plans, end-of-ladder outcomes, mail events.
    pub events: Vec<Event>,
    pub payments: Vec<Payment>,
    /// Contact holds, open and ended.
    pub holds: Vec<ContactHold>,
    /// Open invoices past their ladder's last step, waiting for a person's
    /// decision ([`Desk::decide_account`]); empty when the policy could not
    /// be had.
    pub end_of_ladder: Vec<collect_engine::ladder::EndOfLadder>,
}

/// An open invoice on the customer page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvoiceLine {
    pub invoice: Invoice,
    pub balance: Decimal,
    pub days_overdue: i64,
    pub disputed: bool,
    pub promised_until: Option<NaiveDate>,
}

/// An action with its trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub action: ActionRecord,
    pub trail: Vec<LogEntry>,
}

/// One task: the record, its trail and what a person needs to decide.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskView {
    pub task_id: String,
    pub kind: WorkKind,
    /// The action (none for an address to fix).
    pub action: Option<ActionRecord>,
    pub trail: Vec<LogEntry>,
    /// For an address to fix: the hold.
    pub hold: Option<ContactHold>,
    pub customer: Option<Customer>,
    /// The live balance of the task's invoice(s).
    pub balance: Decimal,
    pub currency: String,
    pub days_overdue: i64,
    /// What would stop an approval now (settled, disputed, promised, …).
    pub blockers: Vec<String>,
    /// What to know before deciding.
    pub warnings: Vec<String>,
    /// What this person may do with it now.
    pub may: Vec<Act>,
    /// A decision taken today that may be reopened.
    pub reopenable: bool,
}

/// What a call gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CallOutcome {
    /// Reached and talked it through; nothing more to record than the
    /// note: the call is done.
    Reached { note: Option<String> },
    /// Reached; they promised to pay by `until`.
    Promised {
        until: NaiveDate,
        note: Option<String>,
    },
    /// Reached; they dispute the invoice.
    Disputed { note: String },
    /// The number or address is wrong or missing: what it should be.
    WrongContact {
        email: Option<String>,
        phone: Option<String>,
        note: Option<String>,
    },
    /// Nobody answered: call again after the settings' business days.
    NoAnswer { note: Option<String> },
    /// Just a note; the task stays as it is.
    Note { text: String },
}

/// What a person decides at the end of the ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum AccountDecision {
    Agency { agency: String, reason: String },
    WriteOff { reason: String },
    KeepWorking { reason: String },
}

/// What an act did, in words for the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub task_id: String,
    /// e.g. `approved by ana@x on 2027-03-02; goes out with the next
    /// scheduled sweep, 2027-03-03 06:00 UTC`.
    pub said: String,
}

/// What a bulk approval did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BulkOutcome {
    pub approved: Vec<Outcome>,
    /// Each one refused, with its reason.
    pub refused: Vec<(String, String)>,
}

/// What the desk refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error("no task `{id}`; it may have been closed, or the id is mistyped")]
    NoTask { id: String },
    #[error("no customer `{id}`")]
    NoCustomer { id: String },
    #[error("a {role} may not {}; ask an approver or an admin", act.as_str())]
    NotAllowed { role: Role, act: Act },
    #[error("task `{id}` is {status}, so it cannot be {verb}")]
    WrongStatus {
        id: String,
        status: String,
        verb: &'static str,
    },
    #[error("task `{id}` is not approved: {}", reasons.join("; "))]
    Blocked { id: String, reasons: Vec<String> },
    #[error(
        "task `{id}` was decided on {}; only a decision taken today can be reopened",
        on.map(|d| d.to_string()).unwrap_or_else(|| "an earlier day".to_string())
    )]
    NotToday { id: String, on: Option<NaiveDate> },
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(
        "the filter now matches {found} tasks, not the {confirmed} you confirmed; look at the list again"
    )]
    CountChanged { confirmed: usize, found: usize },
    #[error("the policy's holds could not be re-checked: {0}")]
    Policy(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// The desk: the use cases of the work queue over a ledger, for one day.
pub struct Desk<'a, L: ?Sized, P: ?Sized> {
    pub ledger: &'a L,
    /// The day acts are dated (passed in, never read from the clock).
    pub today: NaiveDate,
    pub settings: &'a DeskSettings,
    /// The policy whose holds approvals re-check.
    pub policy: &'a P,
}

impl<'a, L: Ledger + ?Sized, P: PolicySource + ?Sized> Desk<'a, L, P> {
    pub fn new(ledger: &'a L, policy: &'a P, settings: &'a DeskSettings, today: NaiveDate) -> Self {
        Desk {
            ledger,
            today,
            settings,
            policy,
        }
    }
}

/// Refuses `act` to a person whose role does not allow it.
pub fn allow(who: &Person, act: Act) -> Result<(), DeskError> {
    if who.role.may(act) {
        Ok(())
    } else {
        Err(DeskError::NotAllowed {
            role: who.role,
            act,
        })
    }
}

/// A required free-text field: trimmed, not empty, at most 2,000 characters.
pub fn required(field: &'static str, text: &str) -> Result<String, DeskError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DeskError::Invalid {
            field,
            reason: "is required; say why, it goes into the audit trail".to_string(),
        });
    }
    optional(field, Some(t)).map(|o| o.unwrap_or_default())
}

/// An optional free-text field: trimmed, empty as none, at most 2,000
/// characters, no control characters but line breaks.
pub fn optional(field: &'static str, text: Option<&str>) -> Result<Option<String>, DeskError> {
    let Some(t) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if t.chars().count() > 2000 {
        return Err(DeskError::Invalid {
            field,
            reason: "is longer than 2,000 characters".to_string(),
        });
    }
    if t.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(DeskError::Invalid {
            field,
            reason: "contains control characters".to_string(),
        });
    }
    Ok(Some(t.to_string()))
}
