//! The conformance scenarios of contact holds ([`collect_engine::contact`]),
//! run by [`crate::conformance::run_all`] against every ledger adapter: a
//! mail service refusing one recipient holds that customer's address, a
//! person's task, the step not taken, and the step goes out once — after
//! the address changes or the task is closed; a crash right after the hold
//! is written; a bounce event holds once however often it is replayed; an
//! invalid address joins the same path.

use super::Harness;
use super::book::{Env, customer, day};
use super::conformance::{DAY, World, assert_promises};
use super::mailer::RecordingMailer;
use collect_delivery::delivery::holds::{
    MailHoldEvent, MailVerdict, RecipientRefused, hold_from_mail_event,
};
use collect_delivery::delivery::{CrashPoint, RunError};
use collect_delivery::ledger::{ContactHold, HoldEnd, HoldEnding, HoldReason, Ledger};
use collect_delivery::mailer::{Acceptance, MailError, Mailer, SendReceipt};
use collect_delivery::message::OutgoingMessage;
use collect_engine::domain::ActionStatus;
use std::sync::atomic::{AtomicBool, Ordering};

/// A mail service (the recording one) that refuses one recipient, as SES
/// refuses an address on its suppression list, while `refusing` is set.
pub struct RefusesRecipient<'a> {
    pub inner: &'a RecordingMailer,
    pub address: String,
    pub refusing: AtomicBool,
}

impl<'a> RefusesRecipient<'a> {
    pub fn new(inner: &'a RecordingMailer, address: &str) -> RefusesRecipient<'a> {
        RefusesRecipient {
            inner,
            address: address.to_string(),
            refusing: AtomicBool::new(true),
        }
    }
}

impl Mailer for RefusesRecipient<'_> {
    async fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, MailError> {
        if self.refusing.load(Ordering::SeqCst) && msg.to.email == self.address {
            return Err(MailError::Provider {
                message_id: msg.message_id.clone(),
                class: collect_delivery::mailer::FailureClass::Recipient,
                source: Box::new(RecipientRefused {
                    address: self.address.clone(),
                    words: format!("{} is on the suppression list", self.address),
                }),
            });
        }
        self.inner.send(msg).await
    }

    async fn accepted(&self, message_id: &str) -> Result<Acceptance, MailError> {
        self.inner.accepted(message_id).await
    }
}

/// The open holds of a customer.
async fn open_holds<H: Harness>(h: &H, customer_id: &str) -> Vec<ContactHold> {
    h.ledger()
        .contact_holds(customer_id)
        .await
        .unwrap_or_else(|e| panic!("[{}] {e}", h.name()))
        .into_iter()
        .filter(|x| x.ended.is_none())
        .collect()
}

/// Messages the mail service accepted for an address.
fn accepted_for(mailer: &RecordingMailer, address: &str) -> usize {
    mailer
        .accepted_messages()
        .iter()
        .filter(|m| m.to.email == address)
        .count()
}

/// C3's reminder step, as recorded now.
async fn c3_step<H: Harness>(h: &H) -> collect_engine::domain::ActionRecord {
    h.actions()
        .await
        .into_iter()
        .find(|a| a.customer_id == "C3")
        .unwrap_or_else(|| panic!("[{}] C3's step was not recorded", h.name()))
}

/// The mail service refuses C3's address: C3 is held with the service's
/// words, the step is deferred (not taken, not failed) and not tried again
/// while held; the next export brings a corrected address, the hold ends by
/// itself and the step goes out once, to the new address.
pub async fn a_refused_recipient_is_held_until_the_address_changes<H: Harness>(h: &H) {
    let who = h.name().to_string();
    let w = World::start(h).await;
    let mailer = RefusesRecipient::new(&w.mailer, "c3@example.com");
    let first = w
        .env
        .run(h, &mailer, &w.clock, day(DAY), None)
        .await
        .unwrap_or_else(|e| panic!("[{who}] {e}"));
    assert_eq!(first.sent.len(), 2, "[{who}] {first:?}");
    assert_eq!(first.contact_holds.len(), 1, "[{who}] {first:?}");
    let holds = open_holds(h, "C3").await;
    assert_eq!(holds.len(), 1, "[{who}] {holds:?}");
    assert!(
        matches!(&holds[0].reason, HoldReason::Rejected { words } if words.contains("suppression list")),
        "[{who}] {holds:?}"
    );
    let step = c3_step(h).await;
    assert_eq!(step.status, ActionStatus::Deferred, "[{who}] {step:?}");
    let note = step.note.clone().unwrap_or_default();
    assert!(
        note.contains("refused to send to c3@example.com") && note.contains("hold-C3"),
        "[{who}] {note}"
    );
    // Held: the next day's sweep does not hand it to the mail service.
    let handed = w.mailer.handed_count();
    let next = day(DAY).succ_opt().unwrap_or_default();
    let second = w
        .env
        .run(h, &mailer, &w.clock, next, None)
        .await
        .unwrap_or_else(|e| panic!("[{who}] {e}"));
    assert!(
        !second.sent.iter().any(|m| m.customer_id == "C3"),
        "[{who}] {second:?}"
    );
    assert_eq!(
        w.mailer.handed_count(),
        handed,
        "[{who}] the held address was tried again"
    );
    assert!(second.contact_holds.is_empty(), "[{who}] held twice");
    // The ERP's next export corrects the address.
    let mut c3 = customer("C3");
    c3.email = "ap@c3.example".to_string();
    h.put_customer(&c3).await;
    let later = next.succ_opt().unwrap_or_default();
    let third = w
        .env
        .run(h, &mailer, &w.clock, later, None)
        .await
        .unwrap_or_else(|e| panic!("[{who}] {e}"));
    assert!(
        third.sent.iter().any(|m| m.customer_id == "C3"),
        "[{who}] the held step did not go out once the address changed: {third:?}"
    );
    assert_eq!(accepted_for(&w.mailer, "ap@c3.example"), 1, "[{who}]");
    assert_eq!(accepted_for(&w.mailer, "c3@example.com"), 0, "[{who}]");
    let all = h.ledger().contact_holds("C3").await.unwrap_or_default();
    assert!(
        matches!(
            all.first().and_then(|x| x.ended.as_ref()).map(|e| &e.how),
            Some(HoldEnding::AddressChanged { to }) if to == "ap@c3.example"
        ),
        "[{who}] {all:?}"
    );
    assert_promises(h, &w.mailer).await;
}

/// Held by the mail service's refusal, then a person closes the task (the
/// address was fixed on the service's side): the step goes out once, to
/// the same address.
pub async fn a_refused_recipient_goes_out_once_the_task_is_closed<H: Harness>(h: &H) {
    let who = h.name().to_string();
    let w = World::start(h).await;
    let mailer = RefusesRecipient::new(&w.mailer, "c3@example.com");
    let _ = w
        .env
        .run(h, &mailer, &w.clock, day(DAY), None)
        .await
        .unwrap_or_else(|e| panic!("[{who}] {e}"));
    assert_eq!(open_holds(h, "C3").await.len(), 1, "[{who}]");
    mailer.refusing.store(false, Ordering::SeqCst);
    let next = day(DAY).succ_opt().unwrap_or_default();
    // Still held: nothing goes to C3 until a person says so.
    let held = w
        .env
        .run(h, &mailer, &w.clock, next, None)
        .await
        .unwrap_or_else(|e| panic!("[{who}] {e}"));
    assert!(
        !held.sent.iter().any(|m| m.customer_id == "C3"),
        "[{who}] {held:?}"
    );
    let closed = HoldEnd {
        on: next,
        how: HoldEnding::Closed {
            by: "maria".to_string(),
            note: Some("removed from the suppression list".to_string()),
        },
    };
    assert!(
        h.ledger()
            .end_contact_hold("C3", "C3@example.com ", &closed)
            .await
            .unwrap_or_default(),
        "[{who}] the open hold was not ended"
    );
    assert!(
        !h.ledger()
            .end_contact_hold("C3", "c3@example.com", &closed)
            .await
            .unwrap_or(true),
        "[{who}] an ended hold was ended again"
    );
    let later = next.succ_opt().unwrap_or_default();
    let third = w
        .env
        .run(h, &mailer, &w.clock, later, None)
        .await
        .unwrap_or_else(|e| panic!("[{who}] {e}"));
    assert!(
        third.sent.iter().any(|m| m.customer_id == "C3"),
        "[{who}] {third:?}"
    );
    assert_eq!(accepted_for(&w.mailer, "c3@example.com"), 1, "[{who}]");
    assert_promises(h, &w.mailer).await;
}

/// A crash right after the hold is written (the message still `sending`):
/// the rerun finds it not accepted, checks it again, and defers it on the
/// hold — held once, never sent, never failed.
pub async fn a_crash_after_the_hold_leaves_it_held<H: Harness>(h: &H) {
    let who = h.name().to_string();
    let w = World::start(h).await;
    let mailer = RefusesRecipient::new(&w.mailer, "c3@example.com");
    let at = super::conformance::CrashAt::new(CrashPoint::AfterHeld, 0);
    let hit = |p: CrashPoint, m: Option<&str>| at.hit(p, m);
    let first = w.env.run(h, &mailer, &w.clock, day(DAY), Some(&hit)).await;
    assert!(
        matches!(first, Err(RunError::Crashed(CrashPoint::AfterHeld))),
        "[{who}] {first:?}"
    );
    assert_eq!(open_holds(h, "C3").await.len(), 1, "[{who}]");
    let second = w
        .env
        .run(h, &mailer, &w.clock, day(DAY), None)
        .await
        .unwrap_or_else(|e| panic!("[{who}] {e}"));
    assert!(second.contact_holds.is_empty(), "[{who}] {second:?}");
    let step = c3_step(h).await;
    assert_eq!(step.status, ActionStatus::Deferred, "[{who}] {step:?}");
    assert!(
        step.note.as_deref().unwrap_or_default().contains("hold-C3"),
        "[{who}] {step:?}"
    );
    assert_eq!(open_holds(h, "C3").await.len(), 1, "[{who}]");
    assert_promises(h, &w.mailer).await;
}

/// A permanent bounce of a message sent to C1 holds C1's address, once
/// however often the event is replayed (and not again after a person
/// closed it); C1's next email step waits.
pub async fn a_bounce_holds_once<H: Harness>(h: &H) {
    let who = h.name().to_string();
    let w = World::start(h).await;
    let first = w.run(h, day(DAY)).await;
    let sent = first
        .sent
        .iter()
        .find(|m| m.customer_id == "C1")
        .unwrap_or_else(|| panic!("[{who}] C1 got nothing: {first:?}"));
    let bounce = MailHoldEvent {
        verdict: MailVerdict::HardBounce,
        date: day(DAY),
        customer_id: None,
        message_id: Some(sent.message_id.to_string()),
        address: Some("C1@example.com".to_string()),
        detail: Some("SES: 550 5.1.1 user unknown".to_string()),
        source: "ses:bounce-1".to_string(),
    };
    let held = hold_from_mail_event(h.ledger(), &bounce)
        .await
        .unwrap_or_else(|e| panic!("[{who}] {e}"));
    assert!(
        matches!(&held, Some((hold, true)) if hold.customer_id == "C1"),
        "[{who}] {held:?}"
    );
    let again = hold_from_mail_event(h.ledger(), &bounce)
        .await
        .unwrap_or_else(|e| panic!("[{who}] {e}"));
    assert!(matches!(again, Some((_, false))), "[{who}] {again:?}");
    assert_eq!(open_holds(h, "C1").await.len(), 1, "[{who}]");
    // An event of a message nobody sent holds nothing.
    let foreign = MailHoldEvent {
        message_id: Some("msg-unknown".to_string()),
        ..bounce.clone()
    };
    let none = hold_from_mail_event(h.ledger(), &foreign)
        .await
        .unwrap_or_else(|e| panic!("[{who}] {e}"));
    assert!(none.is_none(), "[{who}] {none:?}");
    // C1's book, as the checks read it, carries the hold.
    let book = h
        .ledger()
        .customer_book("C1")
        .await
        .unwrap_or_else(|e| panic!("[{who}] {e}"));
    let c1 = customer("C1");
    assert!(book.contact_hold(&c1).is_some(), "[{who}] {book:?}");
    // Closed by a person, the replayed event does not hold again.
    let closed = HoldEnd {
        on: day(DAY),
        how: HoldEnding::Closed {
            by: "maria".to_string(),
            note: None,
        },
    };
    assert!(
        h.ledger()
            .end_contact_hold("C1", "c1@example.com", &closed)
            .await
            .unwrap_or_default()
    );
    let replayed = hold_from_mail_event(h.ledger(), &bounce)
        .await
        .unwrap_or_else(|e| panic!("[{who}] {e}"));
    assert!(matches!(replayed, Some((_, false))), "[{who}] {replayed:?}");
    assert!(open_holds(h, "C1").await.is_empty(), "[{who}]");
    assert_promises(h, &w.mailer).await;
}

/// An address that is not one: the step is deferred with the reason, a
/// hold (a person's task) is created the first time only.
pub async fn an_invalid_address_is_held_once<H: Harness>(h: &H) {
    let who = h.name().to_string();
    let w = World::start(h).await;
    let mut c3 = customer("C3");
    c3.email = "c3 at example".to_string();
    h.put_customer(&c3).await;
    let env = Env::new();
    let first = env
        .run(h, &w.mailer, &w.clock, day(DAY), None)
        .await
        .unwrap_or_else(|e| panic!("[{who}] {e}"));
    assert_eq!(first.contact_holds.len(), 1, "[{who}] {first:?}");
    let holds = open_holds(h, "C3").await;
    assert!(
        matches!(
            holds.first().map(|x| &x.reason),
            Some(HoldReason::InvalidAddress { .. })
        ),
        "[{who}] {holds:?}"
    );
    let next = day(DAY).succ_opt().unwrap_or_default();
    let second = env
        .run(h, &w.mailer, &w.clock, next, None)
        .await
        .unwrap_or_else(|e| panic!("[{who}] {e}"));
    assert!(second.contact_holds.is_empty(), "[{who}] {second:?}");
    assert_eq!(open_holds(h, "C3").await.len(), 1, "[{who}]");
    let step = c3_step(h).await;
    assert_eq!(step.status, ActionStatus::Deferred, "[{who}] {step:?}");
    assert_promises(h, &w.mailer).await;
}
