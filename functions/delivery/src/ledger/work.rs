//! The index of open work: what the ledger keeps, next to each action and
//! contact hold, while it waits for a person — so the desk's queue
//! ([`crate::work`]) is read from an index (SQLite's `work` table,
//! DynamoDB's sparse `GSI1PK = WORK#<queue>`), never from the whole book.
//!
//! [`work_of_action`] and [`work_of_hold`] decide, for every adapter
//! alike, whether a record is open work and what its entry says.

use chrono::NaiveDate;
use collect_engine::contact::{ContactHold, hold_task_id};
use collect_engine::domain::{ActionRecord, ActionStatus, Channel};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What kind of work a person has to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkKind {
    /// A letter (or message) awaiting approval.
    Approval,
    /// A planned call.
    Call,
    /// An address held from mail: fix it, then close the task.
    FixContact,
}

impl WorkKind {
    pub const ALL: [WorkKind; 3] = [WorkKind::Approval, WorkKind::Call, WorkKind::FixContact];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkKind::Approval => "approval",
            WorkKind::Call => "call",
            WorkKind::FixContact => "fix_contact",
        }
    }

    pub fn parse(s: &str) -> Option<WorkKind> {
        WorkKind::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }
}

/// The queue of letters awaiting approval.
pub const APPROVALS: &str = "approvals";
/// The queue of addresses to fix.
pub const CONTACTS: &str = "contacts";

/// One entry of the index of open work: enough for a queue row, its
/// filters and its order without reading the book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkEntry {
    /// The action id, or `hold-<customer>` ([`hold_task_id`]).
    pub task_id: String,
    pub kind: WorkKind,
    /// `approvals`, a call's queue (the action's target), `contacts`.
    pub queue: String,
    pub customer_id: String,
    /// The action's invoice (none for a hold).
    pub invoice_id: Option<String>,
    pub label: String,
    pub segment: String,
    pub risk: Option<f64>,
    pub decided_on: NaiveDate,
    /// The open amount of the invoice as the adapter knows it (SQLite and
    /// memory: live; DynamoDB: when the sweep recorded the action).
    pub balance: Option<Decimal>,
    pub currency: Option<String>,
    /// The invoice's due date, when the adapter knows it (else the
    /// step's scheduled day less its offset).
    pub due_date: Option<NaiveDate>,
    /// After "no answer": hidden from the queue until this day.
    pub call_again_on: Option<NaiveDate>,
}

/// A person's trail line that changes no status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailNote {
    /// The person's id.
    pub by: String,
    /// What they did, in words (`no answer; call again on 2027-03-04`).
    pub note: String,
    /// For "no answer": when the call comes back to the queue. `None`
    /// leaves the day as it is; any later change of the action's status
    /// clears it.
    pub call_again_on: Option<NaiveDate>,
}

/// The work entry of an action, if it is open work: awaiting approval, or
/// a planned call.
pub fn work_of_action(a: &ActionRecord) -> Option<WorkEntry> {
    let (kind, queue) = match (a.status, a.channel) {
        (ActionStatus::AwaitingApproval, _) => (WorkKind::Approval, APPROVALS.to_string()),
        (ActionStatus::Planned, Channel::Call) => (WorkKind::Call, a.target.clone()),
        _ => return None,
    };
    Some(WorkEntry {
        task_id: a.action_id.to_string(),
        kind,
        queue,
        customer_id: a.customer_id.to_string(),
        invoice_id: Some(a.invoice_id.to_string()),
        label: a.label.clone(),
        segment: a.segment.clone(),
        risk: a.risk,
        decided_on: a.decided_on,
        balance: None,
        currency: None,
        due_date: a
            .scheduled_for
            .checked_sub_signed(chrono::Duration::days(a.step_offset)),
        call_again_on: None,
    })
}

/// The work entry of a contact hold, if it is open.
pub fn work_of_hold(h: &ContactHold) -> Option<WorkEntry> {
    if h.ended.is_some() {
        return None;
    }
    Some(WorkEntry {
        task_id: hold_task_id(&h.customer_id),
        kind: WorkKind::FixContact,
        queue: CONTACTS.to_string(),
        customer_id: h.customer_id.to_string(),
        invoice_id: None,
        label: format!("fix the address: {}", h.describe()),
        segment: String::new(),
        risk: None,
        decided_on: h.since,
        balance: None,
        currency: None,
        due_date: None,
        call_again_on: None,
    })
}
