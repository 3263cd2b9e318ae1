//! Contact holds: a customer's email address that must not be mailed until
//! a person fixes it — it bounced permanently, the customer complained, the
//! mail service refused it, or it is not an address at all.
//!
//! A hold is about one address of one customer: when the ERP's next export
//! brings a different address, the hold no longer applies and the sweep
//! ends it ("address changed"); a person may also close it (`collect tasks
//! done hold-C…`, with their name and a note). While it applies, the email
//! steps of the customer are deferred with the hold's reason (calls are not
//! blocked); they go out on the first sweep after it ends.
//!
//! The ledger keeps one hold per customer and address (the latest), so a
//! replayed bounce holds once; a book carries only the open ones
//! ([`crate::book::Book::contact_holds`]).

use crate::ids::CustomerId;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an address is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HoldReason {
    /// The receiving server refused it for good (SES `Bounce`,
    /// `bounceType: Permanent`; a `mail_bounced` event).
    HardBounce {
        /// What the receiving server or SES said, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The customer marked the mail as spam (SES `Complaint`; a
    /// `mail_complained` event).
    Complaint {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The mail service refused to send to it (suppression list, rejected
    /// recipient): its words.
    Rejected { words: String },
    /// It is not an address a message can be sent to.
    InvalidAddress { words: String },
}

/// How a hold ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "how", rename_all = "snake_case")]
pub enum HoldEnding {
    /// The ERP brought another address for the customer.
    AddressChanged { to: String },
    /// A person closed the task: the address is fine now (or they fixed
    /// it where the mail service keeps it, e.g. SES's suppression list).
    Closed {
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
}

/// When and how a hold ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldEnd {
    pub on: NaiveDate,
    #[serde(flatten)]
    pub how: HoldEnding,
}

/// A customer's address held from mail, with its reason and its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactHold {
    pub customer_id: CustomerId,
    /// The address held, as it was mailed (compare with [`same_address`]).
    pub address: String,
    pub reason: HoldReason,
    /// The day of the bounce, complaint or refusal.
    pub since: NaiveDate,
    /// What found it: `ses` (the events function), `ingest` (an ERP mail
    /// event), `sweep` (the check or the mail service at send time), with
    /// the event or message id when there is one (`ses:0102…`).
    pub source: String,
    /// `None` while the hold is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<HoldEnd>,
}

/// Whether two addresses are the same mailbox, as far as a hold goes:
/// compared trimmed and without regard to case.
pub fn same_address(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// The key of a hold's address in a store: trimmed, lower case.
pub fn address_key(address: &str) -> String {
    address.trim().to_ascii_lowercase()
}

/// The id of a customer's "fix the address" task (`collect tasks`).
pub fn hold_task_id(customer_id: &str) -> String {
    format!("hold-{customer_id}")
}

/// The customer id of a task id made by [`hold_task_id`].
pub fn customer_of_hold_task(task_id: &str) -> Option<&str> {
    task_id.strip_prefix("hold-").filter(|c| !c.is_empty())
}

impl ContactHold {
    /// Whether the hold stops mail to `email` (the customer's address now):
    /// it is open and about that address.
    pub fn applies_to(&self, email: &str) -> bool {
        self.ended.is_none() && same_address(&self.address, email)
    }

    /// The reason for a person: `mail to a@b.c bounced permanently on
    /// 2026-03-02 (SES: 550 5.1.1 user unknown)`.
    pub fn describe(&self) -> String {
        let to = &self.address;
        let on = self.since;
        let said = |detail: &Option<String>| match detail {
            Some(d) if !d.trim().is_empty() => format!(" ({})", d.trim()),
            _ => String::new(),
        };
        match &self.reason {
            HoldReason::HardBounce { detail } => {
                format!("mail to {to} bounced permanently on {on}{}", said(detail))
            }
            HoldReason::Complaint { detail } => format!(
                "the customer marked mail to {to} as spam on {on}{}",
                said(detail)
            ),
            HoldReason::Rejected { words } => {
                format!("the mail service refused to send to {to} on {on} ({words})")
            }
            HoldReason::InvalidAddress { words } => {
                format!("the address `{to}` is not a valid email address ({words})")
            }
        }
    }

    /// The note of a deferred email step.
    pub fn deferral_note(&self) -> String {
        format!(
            "held when it was about to go out: {}; it goes out once the address is corrected in the ERP or the task `{}` is closed",
            self.describe(),
            hold_task_id(&self.customer_id)
        )
    }
}

impl fmt::Display for HoldEnding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HoldEnding::AddressChanged { to } => write!(f, "the address changed to {to}"),
            HoldEnding::Closed { by, note: None } => write!(f, "closed by {by}"),
            HoldEnding::Closed { by, note: Some(n) } => write!(f, "closed by {by}: {n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn hold() -> ContactHold {
        ContactHold {
            customer_id: "C-1".into(),
            address: "Ap@Example.com".into(),
            reason: HoldReason::HardBounce {
                detail: Some("SES: 550 5.1.1 user unknown".into()),
            },
            since: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
            source: "ses".into(),
            ended: None,
        }
    }

    #[test]
    fn a_hold_applies_to_its_address_only_while_open() {
        let mut h = hold();
        assert!(h.applies_to(" ap@example.com"));
        assert!(!h.applies_to("new@example.com"));
        h.ended = Some(HoldEnd {
            on: h.since,
            how: HoldEnding::Closed {
                by: "maria".into(),
                note: None,
            },
        });
        assert!(!h.applies_to("ap@example.com"));
    }

    #[test]
    fn a_hold_says_what_happened_and_how_it_ends() {
        assert_eq!(
            hold().deferral_note(),
            "held when it was about to go out: mail to Ap@Example.com bounced permanently on 2026-03-02 (SES: 550 5.1.1 user unknown); it goes out once the address is corrected in the ERP or the task `hold-C-1` is closed"
        );
        assert_eq!(customer_of_hold_task("hold-C-1"), Some("C-1"));
        assert_eq!(customer_of_hold_task("act-1"), None);
    }

    #[test]
    fn a_hold_reads_back_as_written() {
        let mut h = hold();
        h.ended = Some(HoldEnd {
            on: h.since,
            how: HoldEnding::AddressChanged {
                to: "b@example.com".into(),
            },
        });
        let text = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<ContactHold>(&text).unwrap(), h);
    }
}
