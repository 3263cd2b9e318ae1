//! Contact holds in the delivery protocol ([`collect_engine::contact`]):
//! the mail service refusing a recipient holds the customer's address and
//! defers the message's steps ([`Sweeper::hold_for`]); the checks' new
//! holds (an invalid address) are written with their batch; a hold whose
//! customer has another address now is ended ("address changed"); and a
//! mail event (a permanent bounce, a complaint) becomes a hold
//! ([`hold_from_mail_event`]), locally at ingest and on AWS in the events
//! function.

use super::{Dropped, RunReport, Sweeper, with_status};
use crate::ledger::{Ledger, LedgerError, MessageStatus, Move, StoredMessage};
use crate::mailer::MailError;
use chrono::NaiveDate;
use collect_engine::book::Book;
use collect_engine::contact::{ContactHold, HoldEnd, HoldEnding, HoldReason, same_address};
use collect_engine::domain::{ActionRecord, ActionStatus, Customer, CustomerId};
use std::collections::HashMap;

/// A mail service's refusal of one recipient (the address is on its
/// suppression list, the receiving server said it does not exist): what a
/// mail adapter gives as the source of [`MailError::Provider`] so the
/// delivery protocol holds that customer's address instead of failing the
/// run or the step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{words}")]
pub struct RecipientRefused {
    /// The address refused.
    pub address: String,
    /// What the service said (`SES: … is on the account-level suppression list`).
    pub words: String,
}

/// The words of a refusal of this recipient, if `e` is one: an address the
/// message cannot be sent to, or a mail service's [`RecipientRefused`].
pub fn refused_recipient(e: &MailError) -> Option<String> {
    match e {
        MailError::InvalidAddress { address, reason } => {
            Some(format!("`{address}` is not a valid address: {reason}"))
        }
        MailError::Provider { source, .. } => source
            .downcast_ref::<RecipientRefused>()
            .map(|r| r.words.clone()),
        _ => None,
    }
}

impl Sweeper<'_> {
    /// The mail service refused this recipient: holds the customer's
    /// address with the service's words (a person gets the task to fix it)
    /// and puts the message's steps back, deferred with the hold's reason:
    /// they go out once the address changes or the task is closed. Returns
    /// the message's move (from `sending`, cancelled) for the batch's last
    /// step. The hold is written first: a crash before the move leaves the
    /// message `sending`, which the next run finds not accepted, checks
    /// again and defers on the hold.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn hold_for<L: Ledger>(
        &self,
        ledger: &L,
        m: StoredMessage,
        customer: &Customer,
        sending: &[ActionRecord],
        error: &MailError,
        day: NaiveDate,
        report: &mut RunReport,
    ) -> Result<Move, LedgerError> {
        let words = refused_recipient(error).unwrap_or_else(|| error.to_string());
        let hold = ContactHold {
            customer_id: customer.customer_id.as_str().into(),
            address: customer.email.trim().to_string(),
            reason: match error {
                MailError::InvalidAddress { .. } => HoldReason::InvalidAddress { words },
                _ => HoldReason::Rejected { words },
            },
            since: day,
            source: format!("sweep:{}", m.message_id),
            ended: None,
        };
        if ledger.hold_contact(&hold).await? {
            report.contact_holds.push(hold.clone());
        }
        let reason = hold.deferral_note();
        for a in sending {
            report.dropped.push(Dropped {
                action_id: a.action_id.clone(),
                message_id: m.message_id.clone(),
                invoice_id: a.invoice_id.clone(),
                status: ActionStatus::Deferred,
                reason: reason.clone(),
            });
        }
        report
            .cancelled
            .push((m.message_id.clone(), reason.clone()));
        let mut back = m;
        back.status = MessageStatus::Cancelled;
        back.sending_since = None;
        back.note = Some(reason.clone());
        let mut actions = with_status(sending, ActionStatus::Deferred, Some(&reason));
        for a in &mut actions {
            a.message_id = None;
        }
        Ok(Move {
            day,
            actions,
            next: back,
            from: MessageStatus::Sending,
        })
    }

    /// Before a batch's checks: ends the open holds of customers whose
    /// address is another one now ("address changed"), and takes them out
    /// of the books the checks read.
    pub(super) async fn lift_changed_addresses<L: Ledger>(
        &self,
        ledger: &L,
        books: &mut HashMap<String, Book>,
        day: NaiveDate,
    ) -> Result<(), LedgerError> {
        for book in books.values_mut() {
            let Book {
                customers,
                contact_holds,
                ..
            } = book;
            for (customer_id, holds) in contact_holds.iter_mut() {
                let Some(customer) = customers.get(customer_id.as_str()) else {
                    continue;
                };
                for h in holds.iter() {
                    if same_address(&h.address, &customer.email) {
                        continue;
                    }
                    let end = HoldEnd {
                        on: day,
                        how: HoldEnding::AddressChanged {
                            to: customer.email.trim().to_string(),
                        },
                    };
                    ledger
                        .end_contact_hold(customer_id, &h.address, &end)
                        .await?;
                }
                holds.retain(|h| same_address(&h.address, &customer.email));
            }
        }
        Ok(())
    }

    /// Writes the holds the checks found (invalid addresses), each once.
    pub(super) async fn write_holds<L: Ledger>(
        &self,
        ledger: &L,
        holds: Vec<ContactHold>,
        report: &mut RunReport,
    ) -> Result<(), LedgerError> {
        for hold in holds {
            if ledger.hold_contact(&hold).await? {
                report.contact_holds.push(hold);
            }
        }
        Ok(())
    }
}

/// What a mail event says of its recipient, for a hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailVerdict {
    /// A permanent bounce.
    HardBounce,
    /// A complaint (marked as spam).
    Complaint,
}

/// A mail event that holds an address (a permanent bounce, a complaint):
/// who it is about and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailHoldEvent {
    pub verdict: MailVerdict,
    pub date: NaiveDate,
    /// The customer, when the caller knows it (locally, from the action
    /// the event names); else the customer of `message_id`.
    pub customer_id: Option<CustomerId>,
    /// The message it answers (its customer is the message's).
    pub message_id: Option<String>,
    /// The address the event names (SES's `bouncedRecipients[].emailAddress`);
    /// `None`: the customer's current address.
    pub address: Option<String>,
    /// What the service or the receiving server said, for the person who fixes it.
    pub detail: Option<String>,
    /// `ses:<event id>`, `ingest:<event id>`.
    pub source: String,
}

/// Holds the address a permanent bounce or a complaint is about: the
/// customer is the one given, or that of the message the event answers; the
/// address is the event's, else the customer's current one. `Ok(None)`
/// when the event names nothing this ledger knows (another sender's mail)
/// or the customer has no address to hold; otherwise the hold and whether
/// it was written: a replayed event (same source) holds once, and never
/// again once its hold ended.
pub async fn hold_from_mail_event<L: Ledger>(
    ledger: &L,
    e: &MailHoldEvent,
) -> Result<Option<(ContactHold, bool)>, LedgerError> {
    let mut customer_id = e.customer_id.clone();
    if let (None, Some(mid)) = (&customer_id, &e.message_id) {
        customer_id = ledger.message(mid).await?.map(|m| m.customer_id);
    }
    let Some(customer_id) = customer_id else {
        return Ok(None);
    };
    let address = match &e.address {
        Some(a) if !a.trim().is_empty() => a.trim().to_string(),
        _ => {
            let book = ledger.customer_book(customer_id.as_str()).await?;
            book.customers
                .get(customer_id.as_str())
                .map(|c| c.email.trim().to_string())
                .unwrap_or_default()
        }
    };
    if address.is_empty() {
        return Ok(None);
    }
    let detail = e.detail.clone().filter(|d| !d.trim().is_empty());
    let hold = ContactHold {
        customer_id,
        address,
        reason: match e.verdict {
            MailVerdict::HardBounce => HoldReason::HardBounce { detail },
            MailVerdict::Complaint => HoldReason::Complaint { detail },
        },
        since: e.date,
        source: e.source.clone(),
        ended: None,
    };
    // The same event again (SES delivers at least once; an export
    // ingested twice) holds nothing new, even after a person closed it.
    let seen = ledger
        .contact_holds(hold.customer_id.as_str())
        .await?
        .iter()
        .any(|h| h.source == hold.source && same_address(&h.address, &hold.address));
    if seen {
        return Ok(Some((hold, false)));
    }
    let written = ledger.hold_contact(&hold).await?;
    Ok(Some((hold, written)))
}

impl MailHoldEvent {
    /// The hold an ERP mail event asks for: `mail_bounced` (the data
    /// contract's bounce is a permanent one; a transient bounce is not
    /// sent as an event) and `mail_complained`; `None` for the others.
    /// `source` names where it came from (`ingest`, `erp`).
    pub fn of_event(e: &collect_engine::domain::Event, source: &str) -> Option<MailHoldEvent> {
        use collect_engine::domain::EventKind;
        let verdict = match e.kind {
            EventKind::MailBounced => MailVerdict::HardBounce,
            EventKind::MailComplained => MailVerdict::Complaint,
            _ => return None,
        };
        Some(MailHoldEvent {
            verdict,
            date: e.date,
            customer_id: None,
            message_id: e.message_id.clone(),
            address: None,
            detail: None,
            source: format!("{source}:{}", e.event_id),
        })
    }
}
