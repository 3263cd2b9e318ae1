//! The records of accounts receivable as the ERP exports them (the data
//! contract in DESIGN.md) and the events that change them over time.
//!
//! Money is `Decimal` in the invoice's currency; days are calendar dates.
//! Every fact that matters for a past day carries its own date, so a book
//! loaded with its whole history can be replayed for any day.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The largest amount, in either direction, an invoice or a payment may
/// have: 10^12 in the currency. Ingest refuses larger values; the sweep
/// sets aside a customer whose records hold one anyway (an older store, a
/// direct write), so the sums it makes can never overflow.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub customer_id: String,
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    /// Language of messages; `en` when the export leaves it empty.
    pub language: String,
    /// IANA time zone, e.g. `Europe/Berlin`; `UTC` when empty.
    pub timezone: String,
    pub country: Option<String>,
    pub industry: Option<String>,
    pub annual_revenue: Option<Decimal>,
    pub credit_score: Option<Decimal>,
    pub credit_limit: Option<Decimal>,
    pub tags: Vec<String>,
    pub do_not_contact: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    pub invoice_id: String,
    pub customer_id: String,
    pub number: String,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub amount: Decimal,
    pub currency: String,
    /// The export's dispute flag. With `dispute_opened_on` the dispute is
    /// open from that day; without it, from the issue date (the export does
    /// not say when, so the engine errs on the side of not dunning).
    pub disputed: bool,
    pub dispute_opened_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub payment_id: String,
    pub invoice_id: String,
    pub paid_on: NaiveDate,
    pub amount: Decimal,
}

/// The terms of an accepted payment plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanTerms {
    pub installments: u32,
    pub every_days: i64,
    /// Paid on acceptance; zero when none.
    #[serde(default)]
    pub down_payment: Decimal,
}

/// What happened, on a given day, to an invoice or a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    DisputeOpened,
    DisputeClosed,
    PromiseToPay { promised_until: NaiveDate },
    PlanAccepted(PlanTerms),
    MailDelivered,
    MailBounced,
    MailComplained,
    MailOpened,
    MailClicked,
    MailReplied,
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::DisputeOpened => "dispute_opened",
            EventKind::DisputeClosed => "dispute_closed",
            EventKind::PromiseToPay { .. } => "promise_to_pay",
            EventKind::PlanAccepted(_) => "plan_accepted",
            EventKind::MailDelivered => "mail_delivered",
            EventKind::MailBounced => "mail_bounced",
            EventKind::MailComplained => "mail_complained",
            EventKind::MailOpened => "mail_opened",
            EventKind::MailClicked => "mail_clicked",
            EventKind::MailReplied => "mail_replied",
        }
    }

    pub fn is_mail(&self) -> bool {
        self.name().starts_with("mail_")
    }
}

/// An event with its date and what it concerns. Invoice events name the
/// invoice; mail events name the action (or the message) they answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Stable id: given by the source, or derived from the event's content,
    /// so a re-delivered event is recognised and applied once.
    pub event_id: String,
    pub date: NaiveDate,
    #[serde(flatten)]
    pub kind: EventKind,
    pub invoice_id: Option<String>,
    pub action_id: Option<String>,
    pub message_id: Option<String>,
}

/// The state of an action, from planning to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// Decided; a call task waiting for a person, or a message about to go.
    Planned,
    /// Being handed to the mail service (see the sending protocol).
    Sending,
    AwaitingApproval,
    Approved,
    Rejected,
    Sent,
    Failed,
    /// Passed over: a later step was due, or the invoice was paid first.
    Skipped,
    /// Held back by a guardrail; retried on the next sweep.
    Deferred,
}

impl ActionStatus {
    pub const ALL: [ActionStatus; 9] = [
        ActionStatus::Planned,
        ActionStatus::Sending,
        ActionStatus::AwaitingApproval,
        ActionStatus::Approved,
        ActionStatus::Rejected,
        ActionStatus::Sent,
        ActionStatus::Failed,
        ActionStatus::Skipped,
        ActionStatus::Deferred,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Planned => "planned",
            ActionStatus::Sending => "sending",
            ActionStatus::AwaitingApproval => "awaiting_approval",
            ActionStatus::Approved => "approved",
            ActionStatus::Rejected => "rejected",
            ActionStatus::Sent => "sent",
            ActionStatus::Failed => "failed",
            ActionStatus::Skipped => "skipped",
            ActionStatus::Deferred => "deferred",
        }
    }

    pub fn parse(s: &str) -> Option<ActionStatus> {
        ActionStatus::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Whether the step counts as taken: the ladder moves past it.
    pub fn is_taken(self) -> bool {
        matches!(
            self,
            ActionStatus::Planned
                | ActionStatus::Sending
                | ActionStatus::AwaitingApproval
                | ActionStatus::Approved
                | ActionStatus::Rejected
                | ActionStatus::Sent
                | ActionStatus::Failed
                | ActionStatus::Skipped
        )
    }
}

/// One recorded action: everything an auditor needs to answer "why did this
/// customer get this letter?".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// Deterministic: the same invoice, policy, segment and step always give
    /// the same id, so re-running a day records nothing twice.
    pub action_id: String,
    pub invoice_id: String,
    pub customer_id: String,
    /// The sweep day that decided it.
    pub decided_on: NaiveDate,
    /// The day the step was scheduled for (due date + offset, business day).
    pub scheduled_for: NaiveDate,
    pub status: ActionStatus,
    /// `email`, `call`, `letter` or `offer`.
    pub channel: String,
    /// `email friendly-reminder`, `call collections`, …
    pub label: String,
    /// Template (email, letter, offer) or queue (call).
    pub target: String,
    pub step_offset: i64,
    pub requires_approval: bool,
    pub policy_name: String,
    /// SHA-256 of the policy text.
    pub policy_revision: String,
    /// Git revision of the policy repository, when known; `-dirty` when
    /// the policy folder had changes not committed.
    pub git_revision: Option<String>,
    /// The bundle revision: SHA-256 over the policy, every template and the
    /// manifest (see [`crate::revision`]), so the words sent are covered
    /// too. `None` on records made before it was recorded.
    #[serde(default)]
    pub bundle_revision: Option<String>,
    /// `file:line` of the rule that fired.
    pub rule: String,
    pub segment: String,
    pub experiment: Option<String>,
    pub arm: Option<String>,
    /// Probability of late payment used for the decision.
    pub risk: Option<f64>,
    pub scorer: String,
    pub scorer_version: String,
    /// Why it was skipped, deferred, rejected or failed; who approved.
    pub note: Option<String>,
    /// The message that carried it (emails consolidate several actions).
    pub message_id: Option<String>,
    /// Who approved, rejected or completed it, and on which day.
    pub decided_by: Option<String>,
    pub decided_at: Option<NaiveDate>,
    /// The day it went out (the contact counted by caps).
    pub sent_on: Option<NaiveDate>,
}
