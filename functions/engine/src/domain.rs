//! The records of accounts receivable as the ERP exports them (the data
//! contract in DESIGN.md) and the events that change them over time.
//!
//! Money is `Decimal` in the invoice's currency; days are calendar dates.
//! Every fact that matters for a past day carries its own date, so a book
//! loaded with its whole history can be replayed for any day.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

pub use crate::ids::{ActionId, CustomerId, InvoiceId, MessageId};

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
    /// Where a printed letter goes; empty when the export has no address
    /// (the letter then says so, for the person who approves it). The
    /// country is [`Customer::country`].
    #[serde(default, skip_serializing_if = "PostalAddress::is_empty")]
    pub address: PostalAddress,
}

/// A customer's postal address, as the ERP exports it (the optional
/// columns `address_line1`, `address_line2`, `postal_code`, `city`,
/// `region` of the data contract). Kept as given: the printed letter lays
/// it out in the order the customer's country expects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalAddress {
    /// Street and number, or a PO box.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line1: Option<String>,
    /// A second line: building, floor, department, c/o.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// State, province or county (`CA`, `ON`), where the country uses one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl PostalAddress {
    /// No part of the address is known.
    pub fn is_empty(&self) -> bool {
        self.line1.is_none()
            && self.line2.is_none()
            && self.postal_code.is_none()
            && self.city.is_none()
            && self.region.is_none()
    }
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
    PromiseToPay {
        promised_until: NaiveDate,
    },
    PlanAccepted(PlanTerms),
    MailDelivered,
    MailBounced,
    MailComplained,
    MailOpened,
    MailClicked,
    MailReplied,
    /// End of the ladder: the balance (or `amount` of it) is written off,
    /// decided by a person at the desk or reported by the ERP. Stops
    /// dunning on the invoice from that day.
    WrittenOff {
        /// The amount written off; the rest of the balance on that day
        /// when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        amount: Option<Decimal>,
    },
    /// End of the ladder: the account is handed to a collection agency.
    /// Stops dunning on the invoice from that day.
    PlacedWithAgency {
        agency: String,
    },
    /// End of the ladder: a person decided to keep working the account
    /// after its last step. Records the decision; dunning goes on.
    KeptWorking,
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
            EventKind::WrittenOff { .. } => "written_off",
            EventKind::PlacedWithAgency { .. } => "placed_with_agency",
            EventKind::KeptWorking => "kept_working",
        }
    }

    pub fn is_mail(&self) -> bool {
        self.name().starts_with("mail_")
    }

    /// An end-of-ladder outcome: written off, placed with an agency, or
    /// kept working (see [`crate::ladder`]).
    pub fn is_end_of_ladder(&self) -> bool {
        matches!(
            self,
            EventKind::WrittenOff { .. }
                | EventKind::PlacedWithAgency { .. }
                | EventKind::KeptWorking
        )
    }

    /// Whether the outcome stops dunning: written off or placed with an
    /// agency (keeping the account worked does not).
    pub fn stops_dunning(&self) -> bool {
        matches!(
            self,
            EventKind::WrittenOff { .. } | EventKind::PlacedWithAgency { .. }
        )
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
    /// Who decided it: the signed-in person (their email on AWS, `--as
    /// NAME` locally) for an end-of-ladder decision or a call's outcome,
    /// `erp` or the source for an ERP-reported one; absent on earlier
    /// records and on events that need none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Why: the reason a person gave (required at the desk for a write-off,
    /// an agency or keeping the account worked), or the ERP's note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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
    /// Written by earlier releases when a send failed. Never taken: the
    /// step is due again on the next sweep (a home or table that holds
    /// such records has them retried). A failure is now retried, deferred
    /// or stops the run by its class; nothing writes this any more.
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

    /// Whether the step counts as taken: the ladder moves past it. A
    /// failed or deferred step is not: it is due again, so a failure never
    /// moves the ladder on. (A person who closes a step gives it another
    /// status, with their name.)
    pub fn is_taken(self) -> bool {
        matches!(
            self,
            ActionStatus::Planned
                | ActionStatus::Sending
                | ActionStatus::AwaitingApproval
                | ActionStatus::Approved
                | ActionStatus::Rejected
                | ActionStatus::Sent
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
    pub action_id: ActionId,
    pub invoice_id: InvoiceId,
    pub customer_id: CustomerId,
    /// The sweep day that decided it.
    pub decided_on: NaiveDate,
    /// The day the step was scheduled for (due date + offset, business day).
    pub scheduled_for: NaiveDate,
    pub status: ActionStatus,
    /// `email`, `call`, `letter` or `offer`; `none` for a step that
    /// contacts nobody (a control arm, an experiment step closed unresolved).
    pub channel: Channel,
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
    /// manifest (see [`collect_delivery::revision`]), so the words sent are covered
    /// too. `None` on records made before it was recorded.
    #[serde(default)]
    pub bundle_revision: Option<String>,
    /// `file:line` of the rule that fired.
    pub rule: String,
    pub segment: String,
    /// The policy's experiment the step belongs to, or its control group.
    pub experiment: Option<Experiment>,
    pub arm: Option<Arm>,
    /// Probability of late payment used for the decision.
    pub risk: Option<f64>,
    pub scorer: String,
    pub scorer_version: String,
    /// Why it was skipped, deferred, rejected or failed; who approved.
    pub note: Option<String>,
    /// The message that carried it (emails consolidate several actions).
    pub message_id: Option<MessageId>,
    /// Who approved, rejected or completed it, and on which day.
    pub decided_by: Option<String>,
    pub decided_at: Option<NaiveDate>,
    /// The day it went out (the contact counted by caps).
    pub sent_on: Option<NaiveDate>,
}

/// The channel of a recorded action or message: one of the policy's
/// contact channels, or no contact at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Call,
    Letter,
    Offer,
    /// No contact: the control arm of an experiment (or a step recorded
    /// before its experiment resolved). Written `none`.
    #[serde(rename = "none")]
    NoContact,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Email,
        Channel::Call,
        Channel::Letter,
        Channel::Offer,
        Channel::NoContact,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Call => "call",
            Channel::Letter => "letter",
            Channel::Offer => "offer",
            Channel::NoContact => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The channel an action of the policy contacts the customer by
    /// (`NoContact` for an experiment, whose arm decides).
    pub fn of(action: &policy_lang::compile::CAction) -> Channel {
        action.channel().map_or(Channel::NoContact, Channel::from)
    }

    /// The policy's channel, as its caps count contacts; `None` for no
    /// contact.
    pub fn contact(self) -> Option<policy_lang::ast::Channel> {
        use policy_lang::ast::Channel as P;
        match self {
            Channel::Email => Some(P::Email),
            Channel::Call => Some(P::Call),
            Channel::Letter => Some(P::Letter),
            Channel::Offer => Some(P::Offer),
            Channel::NoContact => None,
        }
    }
}

/// A policy action's channel. The policy's `contact` (any channel, in caps
/// only) is no action's channel: it is no contact here.
impl From<policy_lang::ast::Channel> for Channel {
    fn from(c: policy_lang::ast::Channel) -> Channel {
        use policy_lang::ast::Channel as P;
        match c {
            P::Email => Channel::Email,
            P::Call => Channel::Call,
            P::Letter => Channel::Letter,
            P::Offer => Channel::Offer,
            P::Contact => Channel::NoContact,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name with one reserved value that means something to the engine,
/// written as the bare string (`control-group`, `control`, or the name).
macro_rules! name_or {
    ($(#[$doc:meta])* $name:ident, $(#[$vdoc:meta])* $special:ident = $text:expr, $konst:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub enum $name {
            $(#[$vdoc])*
            $special,
            /// Any other name (read as the reserved variant when it is
            /// the reserved name: build it with `From`).
            Named(String),
        }

        impl $name {
            pub const $konst: &'static str = $text;

            pub fn as_str(&self) -> &str {
                match self {
                    $name::$special => $text,
                    $name::Named(n) => n,
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> $name {
                if s == $text { $name::$special } else { $name::Named(s) }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> $name {
                if s == $text { $name::$special } else { $name::Named(s.to_string()) }
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                match n {
                    $name::$special => $text.to_string(),
                    $name::Named(n) => n,
                }
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &$name) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl Eq for $name {}

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &$name) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &$name) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
                self.as_str().hash(h);
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                String::deserialize(d).map($name::from)
            }
        }
    };
}

name_or!(
    /// The experiment a recorded step belongs to: one of the policy's, or
    /// its control group (customers who get no steps before the due date).
    Experiment,
    /// The policy's control group, written `control-group`.
    ControlGroup = "control-group",
    CONTROL_GROUP
);

name_or!(
    /// The arm of an experiment a recorded step fell in.
    Arm,
    /// The arm without an action: the control arm of an experiment, and the
    /// arm of the customers in a policy's control group. Written `control`
    /// (the policy's name for that arm).
    Control = policy_lang::compile::CONTROL_ARM,
    CONTROL
);

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used)]
    use super::*;

    /// A control-group record and a control-arm record as earlier releases
    /// wrote them (SQLite bodies, DynamoDB `body` attributes, exported
    /// homes): they read into the typed record and write back unchanged.
    const OLD_RECORDS: [&str; 3] = [
        r#"{"action_id":"act-45c3c17eee097f63feb7","invoice_id":"INV-1","customer_id":"C-1","decided_on":"2026-03-01","scheduled_for":"2026-03-02","status":"skipped","channel":"none","label":"experiment tone","target":"tone","step_offset":-3,"requires_approval":false,"policy_name":"standard-net30","policy_revision":"abc","git_revision":null,"bundle_revision":null,"rule":"policy.collect:12","segment":"standard","experiment":"tone","arm":"control","risk":0.25,"scorer":"heuristic","scorer_version":"1","note":"skipped: control arm of experiment `tone`, no action by design","message_id":null,"decided_by":null,"decided_at":null,"sent_on":null}"#,
        r#"{"action_id":"act-1","invoice_id":"INV-2","customer_id":"C-2","decided_on":"2026-03-01","scheduled_for":"2026-03-01","status":"skipped","channel":"email","label":"email friendly-reminder","target":"friendly-reminder","step_offset":-3,"requires_approval":false,"policy_name":"p","policy_revision":"r","git_revision":"g-dirty","bundle_revision":"b","rule":"p.collect:3","segment":"standard","experiment":"control-group","arm":"control","risk":null,"scorer":"s","scorer_version":"1","note":null,"message_id":null,"decided_by":null,"decided_at":null,"sent_on":null}"#,
        r#"{"action_id":"act-2","invoice_id":"INV-3","customer_id":"C-3","decided_on":"2026-03-01","scheduled_for":"2026-03-01","status":"sent","channel":"offer","label":"offer plan","target":"plan-offer","step_offset":7,"requires_approval":false,"policy_name":"p","policy_revision":"r","git_revision":null,"bundle_revision":null,"rule":"p.collect:4","segment":"standard","experiment":"tone","arm":"email firm","risk":0.5,"scorer":"s","scorer_version":"1","note":null,"message_id":"msg-549d7f34f4db7ad81f76","decided_by":"ana","decided_at":"2026-03-01","sent_on":"2026-03-01"}"#,
    ];

    #[test]
    fn records_of_earlier_releases_read_typed_and_write_back_the_same() {
        let records: Vec<ActionRecord> = OLD_RECORDS
            .iter()
            .map(|json| serde_json::from_str(json))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(records.len(), 3);
        let [arm, group, offer] = [&records[0], &records[1], &records[2]];
        assert_eq!(arm.channel, Channel::NoContact);
        assert_eq!(arm.arm, Some(Arm::Control));
        assert_eq!(arm.experiment, Some(Experiment::Named("tone".to_string())));
        assert_eq!(group.experiment, Some(Experiment::ControlGroup));
        assert_eq!(group.channel, Channel::Email);
        assert_eq!(offer.channel, Channel::Offer);
        assert_eq!(offer.arm.as_ref().map(Arm::as_str), Some("email firm"));
        assert_eq!(
            offer.message_id.as_deref(),
            Some("msg-549d7f34f4db7ad81f76")
        );
        assert_eq!(offer.action_id, "act-2");
        for (json, record) in OLD_RECORDS.iter().zip(&records) {
            assert_eq!(serde_json::to_string(record).ok().as_deref(), Some(*json));
        }
    }

    #[test]
    fn end_of_ladder_events_round_trip_and_old_events_still_read() {
        let old = r#"{"event_id":"e1","date":"2026-03-01","type":"promise_to_pay","promised_until":"2026-03-10","invoice_id":"INV-1","action_id":null,"message_id":null}"#;
        let e: Event = serde_json::from_str(old).unwrap();
        assert_eq!(e.by, None);
        assert_eq!(e.reason, None);
        assert_eq!(serde_json::to_string(&e).unwrap(), old);
        let day = NaiveDate::from_ymd_opt(2027, 3, 2).unwrap();
        for kind in [
            EventKind::WrittenOff { amount: None },
            EventKind::WrittenOff {
                amount: Some(Decimal::new(12_050, 2)),
            },
            EventKind::PlacedWithAgency {
                agency: "Acme Recovery".to_string(),
            },
            EventKind::KeptWorking,
        ] {
            let e = Event {
                event_id: format!("e-{}", kind.name()),
                date: day,
                kind: kind.clone(),
                invoice_id: Some("INV-1".to_string()),
                action_id: None,
                message_id: None,
                by: Some("ana@example.com".to_string()),
                reason: Some("customer insolvent".to_string()),
            };
            let json = serde_json::to_string(&e).unwrap();
            assert!(
                json.contains(&format!("\"type\":\"{}\"", kind.name())),
                "{json}"
            );
            let back: Event = serde_json::from_str(&json).unwrap();
            assert_eq!(back, e);
            assert!(kind.is_end_of_ladder());
            assert_eq!(kind.stops_dunning(), kind != EventKind::KeptWorking);
        }
    }

    #[test]
    fn every_channel_is_written_as_before() {
        for c in Channel::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<Channel>(&json).ok(), Some(c));
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
        assert_eq!(Channel::NoContact.as_str(), "none");
        assert!(serde_json::from_str::<Channel>("\"sms\"").is_err());
    }

    #[test]
    fn a_reserved_name_is_its_variant_however_it_was_built() {
        assert_eq!(Arm::from("control"), Arm::Control);
        assert_eq!(Arm::Named("control".to_string()), Arm::Control);
        assert_eq!(Experiment::from("control-group"), Experiment::ControlGroup);
        assert_eq!(Experiment::from("tone").as_str(), "tone");
    }
}
