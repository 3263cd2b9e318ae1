//! Conformance of the desk's port methods ([`Ledger::open_work`],
//! [`Ledger::customer_action`], [`Ledger::record_events`], [`Ledger::note_action`]):
//! the index of open work is kept right through every status transition —
//! the sweep's own (a call planned, a letter awaiting approval, a letter
//! approved then sent) and a person's (approved, rejected, reopened, a
//! call done, "no answer") — and each decision is conditional (taken
//! twice, recorded once). Run on every adapter by
//! [`crate::conformance::run_all`].

use super::Harness;
use super::book::day;
use super::conformance::{DAY, World};
use collect_delivery::explain::{Basis, InForce, WhatIf};
use collect_delivery::ledger::{ContactHold, HoldReason, Ledger, WorkEntry, WorkKind};
use collect_delivery::work::{
    AccountDecision, CallOutcome, Desk, DeskError, DeskSettings, NextSweep, Person, Role,
    WorkQuery, preview,
};
use collect_engine::domain::{ActionStatus, Channel, EventKind};
use rust_decimal::Decimal;
use std::rc::Rc;

pub fn person(id: &str, role: Role) -> Person {
    Person {
        id: id.to_string(),
        role,
    }
}

/// The policy in force, for the desk's re-checks.
pub fn policy_of(w: &World) -> WhatIf {
    WhatIf(Rc::new(InForce {
        policy: w.env.policy.clone(),
        bundle_revision: None,
        basis: Basis::WhatIf,
        source: "conformance.policy".to_string(),
    }))
}

async fn work<H: Harness>(h: &H) -> Vec<WorkEntry> {
    let mut v = h.ledger().open_work(None).await.unwrap();
    v.sort_by(|a, b| a.task_id.cmp(&b.task_id));
    v
}

fn money(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// The call of C4 (D1, 7,000.00 due 2027-02-17) through no answer, a
/// note, a promise, a reopen and a dispute.
pub async fn the_index_follows_a_call<H: Harness>(h: &H) {
    let who = h.name().to_string();
    let w = World::start(h).await;
    w.run(h, day(DAY)).await;
    let open = work(h).await;
    let calls: Vec<&WorkEntry> = open.iter().filter(|e| e.kind == WorkKind::Call).collect();
    assert_eq!(calls.len(), 1, "[{who}] {open:?}");
    let call = calls[0].clone();
    assert_eq!(call.queue, "collections", "[{who}]");
    assert_eq!(call.customer_id, "C4", "[{who}]");
    assert_eq!(call.invoice_id.as_deref(), Some("D1"), "[{who}]");
    assert_eq!(call.balance, Some(money("7000.00")), "[{who}]");
    assert_eq!(call.due_date, Some(day("2027-02-17")), "[{who}]");
    assert_eq!(call.call_again_on, None, "[{who}]");
    assert_eq!(
        h.ledger()
            .open_work(Some("collections"))
            .await
            .unwrap()
            .len(),
        1,
        "[{who}] one queue"
    );
    assert!(
        h.ledger()
            .open_work(Some("approvals"))
            .await
            .unwrap()
            .is_empty(),
        "[{who}]"
    );

    // One action by its ids; the customer locates it.
    let record = h
        .ledger()
        .customer_action("C4", &call.task_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, ActionStatus::Planned, "[{who}]");
    assert!(
        h.ledger()
            .customer_action("C1", &call.task_id)
            .await
            .unwrap()
            .is_none(),
        "[{who}]"
    );
    assert!(
        h.ledger()
            .customer_action("C4", "act-none")
            .await
            .unwrap()
            .is_none(),
        "[{who}]"
    );

    let settings = DeskSettings::default();
    let policy = policy_of(&w);
    let today = day(DAY);
    let desk = Desk::new(h.ledger(), &policy, &settings, today);
    let bo = person("bo@example.com", Role::Collector);
    let id = call.task_id.as_str();

    // No answer: out of the queue until two business days later (Friday).
    let said = desk
        .record_call(&bo, "C4", id, &CallOutcome::NoAnswer { note: None })
        .await
        .unwrap()
        .said;
    assert!(said.contains("call again on 2027-03-12"), "[{who}] {said}");
    let entry = work(h).await.into_iter().find(|e| e.task_id == id).unwrap();
    assert_eq!(entry.call_again_on, Some(day("2027-03-12")), "[{who}]");
    let page = desk.queue(&bo, &WorkQuery::default()).await.unwrap();
    assert!(page.items.iter().all(|i| i.task_id != id), "[{who}] hidden");
    // A note keeps it hidden; every line names the person.
    desk.record_call(
        &bo,
        "C4",
        id,
        &CallOutcome::Note {
            text: "left a voicemail".to_string(),
        },
    )
    .await
    .unwrap();
    let entry = work(h).await.into_iter().find(|e| e.task_id == id).unwrap();
    assert_eq!(entry.call_again_on, Some(day("2027-03-12")), "[{who}]");
    let trail = h.ledger().trail(&record).await.unwrap();
    let mine: Vec<_> = trail
        .iter()
        .filter(|l| l.by.as_deref() == Some("bo@example.com"))
        .collect();
    assert_eq!(mine.len(), 2, "[{who}] {trail:?}");
    assert!(
        mine.iter().all(|l| l.status == "planned"),
        "[{who}] {trail:?}"
    );
    let later = Desk::new(h.ledger(), &policy, &settings, day("2027-03-12"));
    let page = later.queue(&bo, &WorkQuery::default()).await.unwrap();
    let row = page.items.iter().find(|i| i.task_id == id);
    let row = row.unwrap_or_else(|| panic!("[{who}] not back: {page:?}"));
    assert_eq!(row.customer_name, "Customer C4", "[{who}]");
    assert_eq!(row.balance, money("7000.00"), "[{who}]");
    assert_eq!(row.days_overdue, 23, "[{who}]");
    assert_eq!(row.kind, WorkKind::Call, "[{who}]");

    // A promise: the call leaves the index, the event is in the book.
    let promised = CallOutcome::Promised {
        until: day("2027-03-31"),
        note: Some("pays with the next run".to_string()),
    };
    desk.record_call(&bo, "C4", id, &promised).await.unwrap();
    assert!(
        work(h).await.iter().all(|e| e.task_id != id),
        "[{who}] left"
    );
    let book = h.ledger().customer_book("C4").await.unwrap();
    let events = book.events.get("D1").cloned().unwrap_or_default();
    let promise = events
        .iter()
        .find(|e| matches!(e.kind, EventKind::PromiseToPay { .. }))
        .unwrap_or_else(|| panic!("[{who}] no promise in {events:?}"));
    assert_eq!(promise.by.as_deref(), Some("bo@example.com"), "[{who}]");
    // Taken twice (another tab): recorded once.
    match desk.record_call(&bo, "C4", id, &promised).await {
        Err(DeskError::WrongStatus { status, .. }) => {
            assert!(status.contains("bo@example.com"), "[{who}] {status}")
        }
        other => panic!("[{who}] a second promise: {other:?}"),
    }
    // An event recorded twice is written once.
    let again = h
        .ledger()
        .record_events("C4", std::slice::from_ref(promise))
        .await
        .unwrap();
    assert_eq!(again, [false], "[{who}]");

    // Reopened today: back in the index, with no call-again day.
    desk.reopen(&bo, "C4", id, "wrong customer on the phone")
        .await
        .unwrap();
    let entry = work(h).await.into_iter().find(|e| e.task_id == id);
    assert_eq!(
        entry.map(|e| (e.kind, e.call_again_on)),
        Some((WorkKind::Call, None)),
        "[{who}]"
    );
    desk.record_call(
        &bo,
        "C4",
        id,
        &CallOutcome::Disputed {
            note: "says the goods never arrived".to_string(),
        },
    )
    .await
    .unwrap();
    assert!(work(h).await.iter().all(|e| e.task_id != id), "[{who}]");
    let book = h.ledger().customer_book("C4").await.unwrap();
    assert!(
        book.dispute_open(book.invoice("D1").unwrap(), today).0,
        "[{who}] disputed"
    );
    // Not reopened on another day.
    let tomorrow = Desk::new(h.ledger(), &policy, &settings, day("2027-03-11"));
    assert!(
        matches!(
            tomorrow.reopen(&bo, "C4", id, "too late").await,
            Err(DeskError::NotToday { .. })
        ),
        "[{who}]"
    );
}

/// D1's legal letter (due + 30d: 2027-03-19) awaits approval; refused to
/// a collector, approved, approved again (refused), reopened, approved,
/// sent by the next sweep — which leaves the index — and then not
/// reopened.
pub async fn the_index_follows_a_letter<H: Harness>(h: &H) {
    let who = h.name().to_string();
    let w = World::start(h).await;
    let on = day("2027-03-19");
    w.run(h, on).await;
    let approvals = h.ledger().open_work(Some("approvals")).await.unwrap();
    assert_eq!(approvals.len(), 1, "[{who}] {approvals:?}");
    let letter = approvals[0].clone();
    assert_eq!(letter.kind, WorkKind::Approval, "[{who}]");
    assert_eq!(letter.customer_id, "C4", "[{who}]");
    assert_eq!(letter.balance, Some(money("7000.00")), "[{who}]");
    let id = letter.task_id.as_str();
    let record = h.ledger().customer_action("C4", id).await.unwrap().unwrap();
    assert_eq!(record.channel, Channel::Letter, "[{who}]");

    // The preview is what would be sent, with its PDF.
    let book = h.ledger().customer_book("C4").await.unwrap();
    let p = preview(&w.env.sweeper(), &book, &record, on).unwrap();
    assert!(!p.subject.is_empty(), "[{who}]");
    assert!(
        p.pdf.as_deref().is_some_and(|b| b.starts_with(b"%PDF")),
        "[{who}] a letter has its PDF"
    );

    let settings = DeskSettings {
        next_sweep: NextSweep::Local,
        ..DeskSettings::default()
    };
    let policy = policy_of(&w);
    let desk = Desk::new(h.ledger(), &policy, &settings, on);
    let ana = person("ana@example.com", Role::Approver);
    let bo = person("bo@example.com", Role::Collector);
    assert!(
        matches!(
            desk.approve(&bo, "C4", id).await,
            Err(DeskError::NotAllowed { .. })
        ),
        "[{who}]"
    );
    let said = desk.approve(&ana, "C4", id).await.unwrap().said;
    assert!(
        said.contains("approved by ana@example.com on 2027-03-19; goes out with the next"),
        "[{who}] {said}"
    );
    assert!(
        work(h).await.iter().all(|e| e.task_id != id),
        "[{who}] left"
    );
    assert!(
        matches!(
            desk.approve(&ana, "C4", id).await,
            Err(DeskError::WrongStatus { .. })
        ),
        "[{who}] twice"
    );
    desk.reopen(&ana, "C4", id, "check the address first")
        .await
        .unwrap();
    assert!(
        work(h).await.iter().any(|e| e.task_id == id),
        "[{who}] back"
    );
    let trail = h.ledger().trail(&record).await.unwrap();
    assert!(
        trail.iter().any(|l| l
            .note
            .as_deref()
            .is_some_and(|n| n.contains("reopened by ana"))),
        "[{who}] {trail:?}"
    );
    desk.approve(&ana, "C4", id).await.unwrap();

    // The next sweep sends it: out of the index, not reopened.
    w.run(h, day("2027-03-22")).await;
    let now = h.ledger().customer_action("C4", id).await.unwrap().unwrap();
    assert_eq!(now.status, ActionStatus::Sent, "[{who}]");
    assert!(work(h).await.iter().all(|e| e.task_id != id), "[{who}]");
    let sent_day = Desk::new(h.ledger(), &policy, &settings, day("2027-03-22"));
    assert!(
        sent_day.reopen(&ana, "C4", id, "oops").await.is_err(),
        "[{who}] a sent letter is not reopened"
    );
    // Written off: dunning stops from the next sweep.
    let out = sent_day
        .decide_account(
            &ana,
            "C4",
            &["D1".to_string()],
            &AccountDecision::WriteOff {
                reason: "insolvent".to_string(),
            },
        )
        .await
        .unwrap();
    assert!(
        out.said.contains("written off by ana@example.com"),
        "[{who}]"
    );
    assert!(
        matches!(
            sent_day
                .decide_account(
                    &ana,
                    "C4",
                    &["D1".to_string()],
                    &AccountDecision::WriteOff {
                        reason: "insolvent".to_string()
                    }
                )
                .await,
            Err(DeskError::WrongStatus { .. })
        ),
        "[{who}] twice"
    );
}

/// An address held from mail is open work (`hold-<customer>` in
/// `contacts`) until it is closed.
pub async fn the_index_follows_a_hold<H: Harness>(h: &H) {
    let who = h.name().to_string();
    let w = World::start(h).await;
    let hold = ContactHold {
        customer_id: "C3".into(),
        address: "c3@example.com".to_string(),
        reason: HoldReason::HardBounce { detail: None },
        since: day(DAY),
        source: "ses:1".to_string(),
        ended: None,
    };
    assert!(h.ledger().hold_contact(&hold).await.unwrap());
    let contacts = h.ledger().open_work(Some("contacts")).await.unwrap();
    assert_eq!(contacts.len(), 1, "[{who}] {contacts:?}");
    assert_eq!(contacts[0].task_id, "hold-C3", "[{who}]");
    assert_eq!(contacts[0].kind, WorkKind::FixContact, "[{who}]");
    let settings = DeskSettings::default();
    let policy = policy_of(&w);
    let desk = Desk::new(h.ledger(), &policy, &settings, day(DAY));
    let auditor = person("eve@example.com", Role::Auditor);
    assert!(
        matches!(
            desk.close_contact(&auditor, "hold-C3", "fixed").await,
            Err(DeskError::NotAllowed { .. })
        ),
        "[{who}]"
    );
    let bo = person("bo@example.com", Role::Collector);
    desk.close_contact(&bo, "hold-C3", "fixed in SES")
        .await
        .unwrap();
    assert!(
        work(h).await.iter().all(|e| e.task_id != "hold-C3"),
        "[{who}]"
    );
    assert!(
        desk.close_contact(&bo, "hold-C3", "again").await.is_err(),
        "[{who}] closed once"
    );
}

/// Every case of this module.
pub async fn run_all<H: Harness, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = H>,
{
    the_index_follows_a_call(&make().await).await;
    the_index_follows_a_letter(&make().await).await;
    the_index_follows_a_hold(&make().await).await;
}
