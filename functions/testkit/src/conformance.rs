//! The conformance suite of the delivery protocol: every [`Ledger`]
//! adapter runs these against its real store (see the module docs of
//! [`collect_delivery::delivery`] for the protocol).
//!
//! Each function takes a fresh, empty harness, builds the same small book,
//! drives runs (with crashes injected where it says), and asserts the
//! promises: never a message to a do-not-contact customer, on a held
//! invoice or for a settled balance; never the same message twice; nothing
//! lost — every due step ends sent, deferred with a reason, skipped with a
//! reason, or waiting for a person; a failure of the mail service, of any
//! class, never burns a step (see the `FailureClass` scenarios). And one
//! writer at a time: a run that lost its lease (stopped past it while
//! another took it over) writes and sends nothing more.
//!
//! [`Ledger`]: collect_delivery::ledger::Ledger

use super::Harness;
use super::book::{Clock, Env, customer, day, event, invoice, payment};
use super::mailer::{Fault, RecordingMailer, Refuse};
use chrono::NaiveDate;
use collect_delivery::delivery::{CrashPoint, RunError, RunReport};
use collect_delivery::ledger::{
    Fence, Fenced, LeaseHolder, LeaseOutcome, Ledger, MessageStatus, Move, StoredMessage,
};
use collect_delivery::mailer::{
    Acceptance, FailureClass, MailError, Mailer, RETRY_PAUSES, SendReceipt,
};
use collect_delivery::message::OutgoingMessage;
use collect_engine::domain::{ActionStatus, Channel, EventKind, Invoice};
use collect_engine::sweep::PlannedMessage;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The suite's day: a Wednesday.
pub const DAY: &str = "2027-03-10";

/// The book: on [`DAY`], C1 gets one email for two invoices (a reminder
/// and an urgent notice), C2 a plan offer, C3 a reminder, C4 a call task;
/// C5 is do-not-contact.
pub fn the_book() -> (Vec<collect_engine::domain::Customer>, Vec<Invoice>) {
    let mut c5 = customer("C5");
    c5.do_not_contact = true;
    let customers = vec![
        customer("C1"),
        customer("C2"),
        customer("C3"),
        customer("C4"),
        c5,
    ];
    let invoices = vec![
        invoice("A1", "C1", "2027-03-13", "1200.00"),
        invoice("A2", "C1", "2027-03-10", "300.50"),
        invoice("B1", "C2", "2027-02-24", "999.99"),
        invoice("C1-1", "C3", "2027-03-13", "50.00"),
        invoice("D1", "C4", "2027-02-17", "7000.00"),
        invoice("E1", "C5", "2027-03-13", "10.00"),
    ];
    (customers, invoices)
}

pub async fn load_book<H: Harness>(h: &H) {
    let (customers, invoices) = the_book();
    for c in &customers {
        h.put_customer(c).await;
    }
    for i in &invoices {
        h.put_invoice(i).await;
    }
}

/// One scenario's world: the book loaded, the suite's policy, a recording
/// mail service and a clock.
pub struct World {
    pub env: Env,
    pub mailer: RecordingMailer,
    pub clock: Clock,
}

impl World {
    pub async fn start<H: Harness>(h: &H) -> World {
        load_book(h).await;
        World {
            env: Env::new(),
            mailer: RecordingMailer::default(),
            clock: Clock::at(day(DAY)),
        }
    }

    /// A run of `on` killed the `nth` time it reaches `point`.
    pub async fn crash<H: Harness>(
        &self,
        h: &H,
        on: NaiveDate,
        point: CrashPoint,
        nth: usize,
    ) -> Result<RunReport, RunError> {
        let crash = CrashAt::new(point, nth);
        let hit = |p: CrashPoint, m: Option<&str>| crash.hit(p, m);
        self.env
            .run(h, &self.mailer, &self.clock, on, Some(&hit))
            .await
    }

    /// A run of `on` that must succeed.
    pub async fn run<H: Harness>(&self, h: &H, on: NaiveDate) -> RunReport {
        self.env
            .run(h, &self.mailer, &self.clock, on, None)
            .await
            .unwrap_or_else(|e| panic!("[{}] the run of {on}: {e}", h.name()))
    }
}

/// A crash at the `nth` (0-based) time the run reaches `point`.
pub struct CrashAt {
    pub point: CrashPoint,
    pub nth: usize,
    seen: AtomicUsize,
}

impl CrashAt {
    pub fn new(point: CrashPoint, nth: usize) -> CrashAt {
        CrashAt {
            point,
            nth,
            seen: AtomicUsize::new(0),
        }
    }

    pub fn hit(&self, point: CrashPoint, _message: Option<&str>) -> bool {
        point == self.point && self.seen.fetch_add(1, Ordering::SeqCst) == self.nth
    }
}

/// The promises, checked over what the ledger holds and what the mail
/// service accepted, after a run that finished.
pub async fn assert_promises<H: Harness>(h: &H, mailer: &RecordingMailer) {
    let who = h.name();
    let dup = mailer.duplicates();
    assert!(dup.is_empty(), "[{who}] handed over twice: {dup:?}");
    let actions = h.actions().await;
    let messages = h.messages().await;
    let by_id: HashMap<&str, _> = messages
        .iter()
        .map(|m| (m.message_id.as_str(), m))
        .collect();
    for m in &messages {
        assert!(
            !m.status.is_unfinished(),
            "[{who}] message {} left {}",
            m.message_id,
            m.status.as_str()
        );
    }
    let accepted = mailer.accepted_messages();
    let accepted_ids: HashSet<&str> = accepted.iter().map(|m| m.message_id.as_str()).collect();
    for a in &actions {
        match a.status {
            ActionStatus::Planned | ActionStatus::Sending => assert!(
                a.message_id.is_none() && a.channel == Channel::Call,
                "[{who}] action {} ({}) left {} in message {:?}",
                a.action_id,
                a.label,
                a.status.as_str(),
                a.message_id
            ),
            ActionStatus::Failed => panic!(
                "[{who}] action {} is failed ({:?}): a failure is retried or deferred, never final",
                a.action_id, a.note
            ),
            ActionStatus::Deferred | ActionStatus::Skipped => assert!(
                a.note.as_deref().is_some_and(|n| !n.is_empty()),
                "[{who}] action {} is {} without a reason",
                a.action_id,
                a.status.as_str()
            ),
            ActionStatus::Sent => {
                let mid = a.message_id.as_deref().unwrap_or_default();
                assert!(
                    accepted_ids.contains(mid),
                    "[{who}] action {} is sent in {mid}, which the mail service never accepted",
                    a.action_id
                );
                assert_eq!(
                    by_id.get(mid).map(|m| m.status),
                    Some(MessageStatus::Sent),
                    "[{who}] action {} is sent, its message is not",
                    a.action_id
                );
            }
            _ => {}
        }
    }
    // Whatever was accepted is recorded as sent, with its actions.
    for m in &accepted {
        assert_eq!(
            by_id.get(m.message_id.as_str()).map(|s| s.status),
            Some(MessageStatus::Sent),
            "[{who}] {} was accepted but is not recorded as sent",
            m.message_id
        );
        assert!(
            actions
                .iter()
                .any(|a| a.message_id.as_deref() == Some(m.message_id.as_str())
                    && a.status == ActionStatus::Sent),
            "[{who}] {} was accepted but none of its actions is sent",
            m.message_id
        );
    }
    // One email per customer per day.
    let mut emails: HashSet<(String, NaiveDate)> = HashSet::new();
    for m in accepted
        .iter()
        .filter(|m| m.tags.iter().any(|(k, v)| k == "channel" && v == "email"))
    {
        assert!(
            emails.insert((m.to.email.clone(), m.date)),
            "[{who}] {} got two emails on {}",
            m.to.email,
            m.date
        );
    }
    // Never to a do-not-contact customer of the book.
    assert!(
        !accepted.iter().any(|m| m.to.email == "c5@example.com"),
        "[{who}] a message went to the do-not-contact customer"
    );
}

/// What the suite expects on [`DAY`] of a clean run.
fn expected_first_day(sent: &[OutgoingMessage]) {
    let mut to: Vec<&str> = sent.iter().map(|m| m.to.email.as_str()).collect();
    to.sort_unstable();
    assert_eq!(
        to,
        vec!["c1@example.com", "c2@example.com", "c3@example.com"],
        "the first day's messages"
    );
}

/// A clean run, then the same day again: the rerun changes nothing.
pub async fn rerun_of_a_completed_day_changes_nothing<H: Harness>(h: &H) {
    let w = World::start(h).await;
    let first = w.run(h, day(DAY)).await;
    assert_eq!(first.sent.len(), 3, "[{}] {:?}", h.name(), first.sent);
    expected_first_day(&w.mailer.accepted_messages());
    let mut before = h.actions().await;
    before.sort_by(|a, b| a.action_id.cmp(&b.action_id));
    let handed = w.mailer.handed_count();

    let again = w.run(h, day(DAY)).await;
    assert!(
        again.sent.is_empty(),
        "[{}] rerun sent {:?}",
        h.name(),
        again.sent
    );
    let mut after = h.actions().await;
    after.sort_by(|a, b| a.action_id.cmp(&b.action_id));
    assert_eq!(before, after, "[{}] the rerun changed actions", h.name());
    assert_eq!(w.mailer.handed_count(), handed);
    assert_promises(h, &w.mailer).await;
}

/// A crash at `point` (the `nth` time it is reached), then a run of the
/// same day or the next: the second run finishes what the first left.
pub async fn crash_then_rerun<H: Harness>(h: &H, point: CrashPoint, nth: usize, next_day: bool) {
    let w = World::start(h).await;
    let first = w.crash(h, day(DAY), point, nth).await;
    let crashed = matches!(first, Err(RunError::Crashed(_)));
    let rerun_day = if next_day {
        day(DAY).succ_opt().unwrap_or_default()
    } else {
        day(DAY)
    };
    let second = w.run(h, rerun_day).await;
    if crashed {
        // Once the crash is behind us, every one of the first day's
        // messages went out once, whatever the day of the rerun.
        expected_first_day(&w.mailer.accepted_messages());
    }
    let _ = second;
    assert_promises(h, &w.mailer).await;
}

/// What happens to the book between a crash and the rerun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Every customer is marked do-not-contact.
    DoNotContact,
    /// Every invoice is paid in full.
    Paid,
    /// Every invoice is disputed.
    Disputed,
    /// Every invoice is written off (the end of the ladder).
    WrittenOff,
    /// Every invoice is placed with a collection agency.
    PlacedWithAgency,
}

/// A crash after recording; the ERP changes; the rerun sends nothing that
/// the change forbids, and says why for every action.
pub async fn leftovers_are_checked_again<H: Harness>(h: &H, change: Change) {
    let w = World::start(h).await;
    let first = w.crash(h, day(DAY), CrashPoint::AfterRecording, 0).await;
    assert!(
        matches!(first, Err(RunError::Crashed(_))),
        "[{}] {first:?}",
        h.name()
    );
    let (customers, invoices) = the_book();
    match change {
        Change::DoNotContact => {
            for mut c in customers {
                c.do_not_contact = true;
                h.put_customer(&c).await;
            }
        }
        Change::Paid => {
            for i in &invoices {
                h.put_payment(&payment(i, day(DAY))).await;
            }
        }
        Change::Disputed => {
            for i in &invoices {
                h.put_event(&event(&i.invoice_id, day(DAY), EventKind::DisputeOpened))
                    .await;
            }
        }
        Change::WrittenOff | Change::PlacedWithAgency => {
            let kind = if change == Change::WrittenOff {
                EventKind::WrittenOff { amount: None }
            } else {
                EventKind::PlacedWithAgency {
                    agency: "Acme Recovery".to_string(),
                }
            };
            for i in &invoices {
                let decided = collect_engine::domain::Event {
                    by: Some("ana@example.com".to_string()),
                    reason: Some("end of the ladder".to_string()),
                    ..event(&i.invoice_id, day(DAY), kind.clone())
                };
                h.put_event(&decided).await;
            }
        }
    }
    let second = w.run(h, day(DAY)).await;
    assert_eq!(
        w.mailer.accepted_messages().len(),
        0,
        "[{}] after {change:?}, sent: {:?}",
        h.name(),
        second.sent
    );
    let expected = match change {
        Change::DoNotContact => "do-not-contact",
        Change::Paid => "settled",
        Change::Disputed => "hold `dispute`",
        Change::WrittenOff => {
            "dunning stopped, written off on 2027-03-10 by ana@example.com: end of the ladder"
        }
        Change::PlacedWithAgency => "dunning stopped, placed with agency `Acme Recovery`",
    };
    let dropped: Vec<_> = second.dropped.iter().map(|d| d.reason.clone()).collect();
    assert!(
        !dropped.is_empty() && dropped.iter().all(|r| r.contains(expected)),
        "[{}] {change:?}: {dropped:?}",
        h.name()
    );
    assert_promises(h, &w.mailer).await;
}

/// A plan offer left over by a crash goes out with its plan, as planned.
pub async fn leftover_offer_keeps_its_plan<H: Harness>(h: &H) {
    let w = World::start(h).await;
    let _ = w.crash(h, day(DAY), CrashPoint::AfterRecording, 0).await;
    let next = day(DAY).succ_opt().unwrap_or_default();
    let report = w.run(h, next).await;
    assert!(
        report.failed.is_empty(),
        "[{}] {:?}",
        h.name(),
        report.failed
    );
    let offer = w
        .mailer
        .accepted_messages()
        .into_iter()
        .find(|m| m.to.email == "c2@example.com")
        .unwrap_or_else(|| panic!("[{}] the offer never went out", h.name()));
    assert!(
        offer.text.contains("Down payment:") && offer.text.contains("Installment 3:"),
        "[{}] the offer lost its plan:\n{}",
        h.name(),
        offer.text
    );
    assert_promises(h, &w.mailer).await;
}

/// A second run while the first holds the lease is refused and records
/// nothing; once the holder's lease has expired, a run goes ahead.
pub async fn one_writer_at_a_time<H: Harness>(h: &H) {
    let w = World::start(h).await;
    let other = LeaseHolder {
        id: "the-other-run".to_string(),
        pid: 777,
        host: "elsewhere".to_string(),
    };
    let taken = h
        .ledger()
        .take_lease(
            "sweep",
            &other,
            w.clock.now(),
            chrono::Duration::minutes(10),
        )
        .await
        .unwrap_or_else(|e| panic!("[{}] {e}", h.name()));
    assert!(matches!(taken, LeaseOutcome::Taken(_)));
    // `Env::run` moves the w.clock 11 minutes after each run: the first
    // attempt is made while the other run's lease is alive.
    let refused = w.env.run(h, &w.mailer, &w.clock, day(DAY), None).await;
    match refused {
        Err(e @ RunError::Busy { .. }) => assert!(
            e.to_string()
                .starts_with("another sweep of this home is running (pid 777 on elsewhere, since "),
            "{e}"
        ),
        other => panic!("[{}] a second run went ahead: {other:?}", h.name()),
    }
    assert!(
        h.actions().await.is_empty(),
        "[{}] recorded while refused",
        h.name()
    );
    assert_eq!(w.mailer.handed_count(), 0);
    // The other run died without releasing: its lease ran out.
    let report = w.run(h, day(DAY)).await;
    assert_eq!(report.sent.len(), 3);
    assert_promises(h, &w.mailer).await;
}

/// A run whose holder is known dead (a killed local process) is taken
/// over at once, without waiting for its lease to run out; a live one is
/// not. (For adapters whose holders can be known dead: the local ones.)
pub async fn a_dead_run_is_taken_over<H: Harness>(h: &H) {
    let clock = Clock::at(day(DAY));
    let ttl = chrono::Duration::minutes(10);
    let dead = LeaseHolder {
        id: "killed".to_string(),
        pid: 1,
        host: "here".to_string(),
    };
    let LeaseOutcome::Taken(lease) = h
        .ledger()
        .take_lease("sweep", &dead, clock.now(), ttl)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    else {
        panic!("[{}] the first lease was refused", h.name())
    };
    let me = LeaseHolder::this_process(clock.now());
    let taken = h
        .ledger()
        .take_over_lease(&lease, &me, clock.now(), ttl)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(&taken, LeaseOutcome::Taken(l) if l.holder == me),
        "[{}] {taken:?}",
        h.name()
    );
    // Taking over again from the same dead holder fails: the lease moved on.
    let third = LeaseHolder::this_process(clock.now());
    let again = h
        .ledger()
        .take_over_lease(&lease, &third, clock.now(), ttl)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(&again, LeaseOutcome::HeldBy(l) if l.holder == me),
        "[{}] {again:?}",
        h.name()
    );
}

/// The mail service refuses for now (a transient failure) every time:
/// each message is handed over again after each of the short pauses, then
/// goes back to `planned` — its steps not taken — and a later run sends it.
pub async fn refused_for_now_then_sent<H: Harness>(h: &H) {
    let who = h.name();
    let w = World::start(h).await;
    w.mailer.refuse(Refuse::ForNow);
    let first = w.run(h, day(DAY)).await;
    assert_eq!(first.retry_later.len(), 3, "[{who}] {first:?}");
    let pauses = RETRY_PAUSES.len();
    assert_eq!(first.retries, 3 * pauses, "[{who}] {first:?}");
    assert_eq!(w.mailer.pauses().len(), 3 * pauses, "[{who}]");
    assert_eq!(w.mailer.handed_count(), 3 * (pauses + 1), "[{who}]");
    assert_waiting(h, 3).await;
    w.mailer.refuse(Refuse::Nothing);
    let second = w.run(h, day(DAY)).await;
    assert_eq!(second.sent.len(), 3, "[{who}] {second:?}");
    assert_promises(h, &w.mailer).await;
}

/// Every message of the first day is `planned` again, with its actions
/// planned (not taken, not failed): `n` messages wait for the next run.
async fn assert_waiting<H: Harness>(h: &H, n: usize) {
    let who = h.name();
    let planned: Vec<_> = h
        .messages()
        .await
        .into_iter()
        .filter(|m| m.status == MessageStatus::Planned)
        .collect();
    assert_eq!(planned.len(), n, "[{who}] {planned:?}");
    for a in h.actions().await {
        assert!(
            !matches!(a.status, ActionStatus::Failed | ActionStatus::Sending),
            "[{who}] action {} is {}",
            a.action_id,
            a.status.as_str()
        );
        if planned
            .iter()
            .any(|m| a.message_id.as_deref() == Some(m.message_id.as_str()))
        {
            assert_eq!(a.status, ActionStatus::Planned, "[{who}] {a:?}");
        }
    }
}

/// A transient failure that passes: the message goes out in the same run,
/// after the pauses, once.
pub async fn a_passing_failure_is_retried_within_the_run<H: Harness>(h: &H) {
    let who = h.name();
    let w = World::start(h).await;
    w.mailer.fail(Fault::new(FailureClass::Transient).times(2));
    let first = w.run(h, day(DAY)).await;
    assert_eq!(first.sent.len(), 3, "[{who}] {first:?}");
    assert!(first.retry_later.is_empty(), "[{who}] {first:?}");
    assert_eq!(first.retries, 2, "[{who}] {first:?}");
    assert_eq!(w.mailer.pauses(), RETRY_PAUSES[..2].to_vec(), "[{who}]");
    assert_promises(h, &w.mailer).await;
}

/// The whole mail service fails after the first message went out (the
/// outbox cannot be written, SES refuses the account): the run stops
/// sending at once and fails; nothing is burned — the message in hand and
/// the rest stay `planned`. With a crash `at` a point of the stopping run,
/// the same. Once the service is healthy, a run sends everything left,
/// once.
pub async fn a_failing_service_stops_the_run<H: Harness>(h: &H, at: Option<(CrashPoint, usize)>) {
    let who = h.name();
    let w = World::start(h).await;
    w.mailer.fail(Fault::new(FailureClass::Service).after(1));
    let first = match at {
        Some((point, nth)) => w.crash(h, day(DAY), point, nth).await,
        None => w.env.run(h, &w.mailer, &w.clock, day(DAY), None).await,
    };
    match (&first, at) {
        (Err(e @ RunError::MailService { unsent, report, .. }), None) => {
            assert_eq!((*unsent, report.sent.len()), (2, 1), "[{who}] {first:?}");
            let e = e.to_string();
            assert!(
                e.contains("nothing more was sent") && e.contains("stay planned"),
                "[{who}] {e}"
            );
            assert_eq!(w.mailer.accepted_messages().len(), 1, "[{who}]");
            assert_waiting(h, 2).await;
        }
        (Err(RunError::Crashed(_) | RunError::MailService { .. }), Some(_)) => {}
        _ => panic!("[{who}] the run did not fail: {first:?}"),
    }
    // Still failing: a rerun sends nothing and burns nothing.
    let again = w.env.run(h, &w.mailer, &w.clock, day(DAY), None).await;
    assert!(
        matches!(again, Err(RunError::MailService { .. })),
        "[{who}] {again:?}"
    );
    assert_eq!(w.mailer.accepted_messages().len(), 1, "[{who}]");
    w.mailer.heal();
    let healthy = w.run(h, day(DAY)).await;
    assert_eq!(healthy.sent.len(), 2, "[{who}] {healthy:?}");
    expected_first_day(&w.mailer.accepted_messages());
    assert_promises(h, &w.mailer).await;
}

/// The mail service refuses one recipient: that message's steps are
/// deferred with the reason (never failed, never taken), the customer's
/// address is held (a task for a person), the others go out and the run
/// succeeds; the next sweep does not try the held address again (the
/// scenarios of `contact_holds` follow it to the corrected address).
pub async fn a_refused_recipient_is_deferred<H: Harness>(h: &H) {
    let who = h.name();
    let w = World::start(h).await;
    w.mailer
        .fail(Fault::new(FailureClass::Recipient).to("c3@example.com"));
    let first = w.run(h, day(DAY)).await;
    assert_eq!(first.sent.len(), 2, "[{who}] {first:?}");
    assert!(first.failed.is_empty(), "[{who}] {first:?}");
    assert_eq!(first.contact_holds.len(), 1, "[{who}] {first:?}");
    let c3 = |acts: Vec<collect_engine::domain::ActionRecord>| -> Vec<_> {
        acts.into_iter().filter(|a| a.customer_id == "C3").collect()
    };
    let held = c3(h.actions().await);
    assert!(
        !held.is_empty()
            && held.iter().all(|a| a.status == ActionStatus::Deferred
                && a.note
                    .as_deref()
                    .is_some_and(|n| n.contains("refused to send to c3@example.com"))),
        "[{who}] {held:?}"
    );
    w.mailer.heal();
    let next = day(DAY).succ_opt().unwrap_or_default();
    let second = w.run(h, next).await;
    assert!(
        !second.sent.iter().any(|m| m.customer_id == "C3"),
        "[{who}] a held address was mailed again: {second:?}"
    );
    assert!(
        c3(h.actions().await)
            .iter()
            .all(|a| a.status == ActionStatus::Deferred),
        "[{who}] the held step was taken"
    );
    assert_promises(h, &w.mailer).await;
}

/// A home or table of an earlier release, where a send error marked the
/// message and its actions `failed` (and the ladder moved past them): the
/// steps are due again, the messages are planned again, and they go out
/// once.
pub async fn failed_records_of_an_earlier_release_are_retried<H: Harness>(h: &H) {
    let who = h.name();
    let w = World::start(h).await;
    // As an earlier release left it: taken for sending, then failed.
    let first = w
        .crash(h, day(DAY), CrashPoint::AfterMarkedSending, 0)
        .await;
    assert!(
        matches!(first, Err(RunError::Crashed(_))),
        "[{who}] {first:?}"
    );
    let actions = h.actions().await;
    let moves: Vec<Move> = h
        .messages()
        .await
        .into_iter()
        .filter(|m| m.status == MessageStatus::Sending)
        .map(|m| {
            let mut failed = m.clone();
            failed.status = MessageStatus::Failed;
            failed.note = Some("the message could not be sent: refused".to_string());
            let mine = actions
                .iter()
                .filter(|a| a.message_id.as_deref() == Some(m.message_id.as_str()))
                .map(|a| {
                    let mut f = a.clone();
                    f.status = ActionStatus::Failed;
                    f.note = failed.note.clone();
                    f
                })
                .collect();
            Move {
                next: failed,
                from: MessageStatus::Sending,
                actions: mine,
                day: day(DAY),
            }
        })
        .collect();
    assert_eq!(moves.len(), 3, "[{who}]");
    h.ledger()
        .move_batch(&moves)
        .await
        .unwrap_or_else(|e| panic!("[{who}] {e}"));
    assert_eq!(
        h.actions()
            .await
            .iter()
            .filter(|a| a.status == ActionStatus::Failed)
            .count(),
        4,
        "[{who}] the old way: four failed steps"
    );
    // The next day's sweep retries them.
    let next = day(DAY).succ_opt().unwrap_or_default();
    let second = w.run(h, next).await;
    assert_eq!(second.sent.len(), 3, "[{who}] {second:?}");
    assert!(
        h.actions()
            .await
            .iter()
            .all(|a| a.status != ActionStatus::Failed),
        "[{who}] a failed step was left behind"
    );
    assert_promises(h, &w.mailer).await;
}

/// Held at send time (do-not-contact), then released: the step is
/// planned again and goes out — deferred, not lost.
pub async fn held_then_released_goes_out<H: Harness>(h: &H) {
    let w = World::start(h).await;
    let _ = w.crash(h, day(DAY), CrashPoint::AfterRecording, 0).await;
    let mut c3 = customer("C3");
    c3.do_not_contact = true;
    h.put_customer(&c3).await;
    let second = w.run(h, day(DAY)).await;
    assert_eq!(second.sent.len(), 2, "[{}] {second:?}", h.name());
    assert_eq!(second.cancelled.len(), 1, "[{}] {second:?}", h.name());
    h.put_customer(&customer("C3")).await;
    let next = day(DAY).succ_opt().unwrap_or_default();
    let third = w.run(h, next).await;
    assert!(
        third.sent.iter().any(|m| m.customer_id == "C3"),
        "[{}] the deferred reminder was lost: {third:?}",
        h.name()
    );
    assert_promises(h, &w.mailer).await;
}

/// A mail service that cannot tell whether it accepted a message (SES
/// before its events arrive): a message left `sending` waits for the grace
/// period, then goes out once.
pub async fn in_doubt_waits_for_the_grace_period<H: Harness>(h: &H) {
    load_book(h).await;
    let env = Env::new();
    let inner = RecordingMailer::default();
    let mailer = CannotTell(&inner);
    let clock = Clock::at(day(DAY));
    let crash = CrashAt::new(CrashPoint::AfterMarkedSending, 0);
    let hit = |p: CrashPoint, m: Option<&str>| crash.hit(p, m);
    let _ = env.run(h, &mailer, &clock, day(DAY), Some(&hit)).await;
    // `Env::run` moved the clock 11 minutes: within the 30-minute grace.
    let second = env
        .run(h, &mailer, &clock, day(DAY), None)
        .await
        .unwrap_or_else(|e| panic!("[{}] {e}", h.name()));
    // The crash came after the batch was marked `sending`: all of it waits.
    assert_eq!(second.in_doubt.len(), 3, "[{}] {second:?}", h.name());
    assert!(second.sent.is_empty(), "[{}] {second:?}", h.name());
    assert_eq!(inner.handed_count(), 0);
    clock.advance(chrono::Duration::minutes(30));
    let third = env
        .run(h, &mailer, &clock, day(DAY), None)
        .await
        .unwrap_or_else(|e| panic!("[{}] {e}", h.name()));
    assert_eq!(third.sent.len(), 3, "[{}] {third:?}", h.name());
    assert_promises(h, &inner).await;
}

struct CannotTell<'a>(&'a RecordingMailer);

impl Mailer for CannotTell<'_> {
    async fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, MailError> {
        self.0.send(msg).await
    }
    async fn accepted(&self, _message_id: &str) -> Result<Acceptance, MailError> {
        Ok(Acceptance::Unknown)
    }
    async fn pause(&self, pause: std::time::Duration) {
        self.0.pause(pause).await;
    }
}

/// The policy of [`a_rerun_keeps_the_caps`]: two contacts a week.
const TWO_A_WEEK: &str = r#"
policy "caps" effective 2027-01-01 currency USD
limits
  at most 2 contacts per customer per 7d
segment standard otherwise
ladder standard
  due        email "urgent-notice"
  due + 14d  offer plan 3 installments every 30d
  due + 21d  call "collections"
"#;

/// A day whose cap defers a plan offer (after an email and a call task),
/// run again: the rerun applies the same cap (the call task counts as a
/// contact) and changes nothing.
pub async fn a_rerun_keeps_the_caps<H: Harness>(h: &H) {
    h.put_customer(&customer("C6")).await;
    for (id, due) in [("F1", "2027-02-17"), ("F2", "2027-02-24"), ("F3", DAY)] {
        h.put_invoice(&invoice(id, "C6", due, "100.00")).await;
    }
    let env = Env::with_policy(TWO_A_WEEK);
    let mailer = RecordingMailer::default();
    let clock = Clock::at(day(DAY));
    let first = env
        .run(h, &mailer, &clock, day(DAY), None)
        .await
        .unwrap_or_else(|e| panic!("[{}] {e}", h.name()));
    let deferred: Vec<_> = first
        .plan
        .records
        .iter()
        .filter(|r| r.status == ActionStatus::Deferred)
        .map(|r| r.label.clone())
        .collect();
    assert_eq!(deferred, vec!["offer plan"], "[{}] {first:?}", h.name());
    let mut before = h.actions().await;
    before.sort_by(|a, b| a.action_id.cmp(&b.action_id));
    let again = env
        .run(h, &mailer, &clock, day(DAY), None)
        .await
        .unwrap_or_else(|e| panic!("[{}] {e}", h.name()));
    assert!(again.sent.is_empty(), "[{}] {:?}", h.name(), again.sent);
    let mut after = h.actions().await;
    after.sort_by(|a, b| a.action_id.cmp(&b.action_id));
    assert_eq!(before, after, "[{}] the rerun changed the day", h.name());
    assert_promises(h, &mailer).await;
}

/// A retry adds to the audit trail, never rewrites it: an action deferred
/// twice, then planned, then taken for sending keeps four lines, each with
/// the note and the risk of its moment (a rerun that changes nothing adds
/// none); the record holds the latest, its note never prefixed twice.
/// Every adapter keeps a trail and reads it through the port.
pub async fn a_retry_adds_to_the_trail<H: Harness>(h: &H) {
    h.put_customer(&customer("C6")).await;
    for (id, due) in [("F1", "2027-02-17"), ("F2", "2027-02-24"), ("F3", DAY)] {
        h.put_invoice(&invoice(id, "C6", due, "100.00")).await;
    }
    let env = Env::with_policy(TWO_A_WEEK);
    let mailer = RecordingMailer::default();
    let first = env
        .run(h, &mailer, &Clock::at(day(DAY)), day(DAY), None)
        .await
        .unwrap_or_else(|e| panic!("[{}] {e}", h.name()));
    let offer = first
        .plan
        .records
        .iter()
        .find(|r| r.status == ActionStatus::Deferred)
        .cloned()
        .unwrap_or_else(|| panic!("[{}] no deferral: {first:?}", h.name()));
    // The next day the cap still holds: deferred again, with that day's reason.
    let next = day("2027-03-11");
    env.run(h, &mailer, &Clock::at(next), next, None)
        .await
        .unwrap_or_else(|e| panic!("[{}] {e}", h.name()));
    let again = h
        .actions()
        .await
        .into_iter()
        .find(|a| a.action_id == offer.action_id)
        .unwrap();
    assert_eq!(again.status, ActionStatus::Deferred, "[{}]", h.name());
    assert_eq!(again.decided_on, next, "[{}]", h.name());
    let note = again.note.clone().unwrap_or_default();
    assert!(
        note.starts_with("deferred: ") && !note.contains("deferred: deferred"),
        "[{}] {note}",
        h.name()
    );
    // The ledger's side, with risks that differ: a retry planned under
    // another risk leaves the first deferral's risk in its line.
    let mut planned = again.clone();
    planned.status = ActionStatus::Planned;
    planned.risk = Some(0.75);
    planned.note = None;
    let previous = HashMap::from([(again.action_id.clone(), ActionStatus::Deferred)]);
    let third = day("2027-03-12");
    let recorded = h
        .ledger()
        .record_actions(std::slice::from_ref(&planned), &previous, third)
        .await
        .unwrap();
    assert_eq!(recorded.written, vec![again.action_id.clone()]);
    let now = h
        .actions()
        .await
        .into_iter()
        .find(|a| a.action_id == offer.action_id)
        .unwrap();
    assert_eq!(
        (now.status, now.risk, now.note),
        (ActionStatus::Planned, Some(0.75), None)
    );
    // Recorded again unchanged (a rerun of the day): written, no new line.
    let previous = HashMap::from([(again.action_id.clone(), ActionStatus::Planned)]);
    let rerun = h
        .ledger()
        .record_actions(std::slice::from_ref(&planned), &previous, third)
        .await
        .unwrap();
    assert_eq!(
        rerun.written,
        vec![again.action_id.clone()],
        "[{}]",
        h.name()
    );
    // Moved by delivery: one more line, the move's.
    let mut sending = planned.clone();
    sending.status = ActionStatus::Sending;
    assert!(
        h.ledger()
            .move_action(&sending, &[ActionStatus::Planned], third)
            .await
            .unwrap(),
        "[{}]",
        h.name()
    );
    let trail = h
        .ledger()
        .trail(&planned)
        .await
        .unwrap_or_else(|e| panic!("[{}] {e}", h.name()));
    let lines: Vec<(NaiveDate, &str, Option<f64>)> = trail
        .iter()
        .map(|e| (e.day, e.status.as_str(), e.risk))
        .collect();
    assert_eq!(
        lines,
        vec![
            (day(DAY), "deferred", offer.risk),
            (next, "deferred", again.risk),
            (third, "planned", Some(0.75)),
            (third, "sending", Some(0.75)),
        ],
        "[{}] {trail:?}",
        h.name()
    );
    assert_eq!(trail[0].note, offer.note, "[{}]", h.name());
    assert_eq!(trail[1].note, again.note, "[{}]", h.name());
    assert_eq!(trail[2].note, None, "[{}]", h.name());
    let seqs: Vec<i64> = trail.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4], "[{}]", h.name());
}

/// An email the mail service accepted just before a crash counts when the
/// rerun checks the customer's other messages: the day before's leftover,
/// reconciled as sent, and the day's own message never both reach the
/// customer on one day (found by the property test `delivery_props`).
pub async fn a_reconciled_email_counts_for_the_day<H: Harness>(h: &H) {
    let who = h.name();
    h.put_customer(&customer("C6")).await;
    // A reminder due on DAY (three days before its due date), an urgent
    // notice due the day after.
    h.put_invoice(&invoice("G1", "C6", "2027-03-13", "100.00"))
        .await;
    h.put_invoice(&invoice("G2", "C6", "2027-03-11", "200.00"))
        .await;
    let env = Env::new();
    let mailer = RecordingMailer::default();
    let clock = Clock::at(day(DAY));
    let crash = |point: CrashPoint| {
        let at = CrashAt::new(point, 0);
        move |p: CrashPoint, m: Option<&str>| at.hit(p, m)
    };
    // DAY: the reminder is recorded, the run dies before sending it.
    let recorded = crash(CrashPoint::AfterRecording);
    let first = env.run(h, &mailer, &clock, day(DAY), Some(&recorded)).await;
    assert!(
        matches!(first, Err(RunError::Crashed(_))),
        "[{who}] {first:?}"
    );
    assert!(mailer.accepted_messages().is_empty(), "[{who}] sent on DAY");
    // The next day: the leftover goes out first, and the run dies before
    // recording that it did.
    let next = day(DAY).succ_opt().unwrap_or_default();
    let accepted = crash(CrashPoint::AfterAccepted);
    let second = env.run(h, &mailer, &clock, next, Some(&accepted)).await;
    assert!(
        matches!(second, Err(RunError::Crashed(_))),
        "[{who}] {second:?}"
    );
    assert_eq!(mailer.accepted_messages().len(), 1, "[{who}]");
    // The rerun reconciles it and holds the day's own email.
    let rerun = env
        .run(h, &mailer, &clock, next, None)
        .await
        .unwrap_or_else(|e| panic!("[{who}] the rerun: {e}"));
    assert!(rerun.sent.is_empty(), "[{who}] {:?}", rerun.sent);
    let emails = mailer
        .accepted_messages()
        .into_iter()
        .filter(|m| m.to.email == customer("C6").email && m.date == next)
        .count();
    assert_eq!(emails, 1, "[{who}] C6's emails on {next}");
    assert_promises(h, &mailer).await;
}

/// The fencing token of leases: each new holder gets a larger one (a take
/// of a free lease, a take after expiry, after a release, a takeover of a
/// dead holder), a renewal keeps it; a move to `sending` fenced by an old
/// token writes nothing, by the current one goes through.
pub async fn lease_tokens_only_grow_and_fence<H: Harness>(h: &H) {
    let who = h.name();
    let clock = Clock::at(day(DAY));
    let ttl = chrono::Duration::minutes(10);
    let holder = |id: &str| LeaseHolder {
        id: id.to_string(),
        pid: 4242,
        host: "test".to_string(),
    };
    let take = |id: &'static str| {
        let me = holder(id);
        let now = clock.now();
        async move {
            match h.ledger().take_lease("sweep", &me, now, ttl).await {
                Ok(LeaseOutcome::Taken(l)) => Some(l),
                Ok(LeaseOutcome::HeldBy(_)) => None,
                Err(e) => panic!("[{who}] take_lease: {e}"),
            }
        }
    };
    let a = take("run-a")
        .await
        .unwrap_or_else(|| panic!("[{who}] a free lease refused"));
    assert!(a.token >= 1, "[{who}] {a:?}");
    clock.advance(chrono::Duration::minutes(5));
    let renewed = take("run-a")
        .await
        .unwrap_or_else(|| panic!("[{who}] renewal refused"));
    assert_eq!(
        renewed.token, a.token,
        "[{who}] a renewal changed the token"
    );
    assert!(
        take("run-b").await.is_none(),
        "[{who}] a live lease was taken"
    );
    // A's lease runs out: B takes it, with a larger token.
    clock.advance(chrono::Duration::minutes(11));
    let b = take("run-b")
        .await
        .unwrap_or_else(|| panic!("[{who}] an expired lease refused"));
    assert!(b.token > a.token, "[{who}] {b:?} after {a:?}");
    // A, back, cannot renew what is B's now.
    assert!(take("run-a").await.is_none(), "[{who}] A took B's lease");
    // B gives it back: the next holder's token is larger still.
    h.ledger()
        .release_lease("sweep", &holder("run-b"))
        .await
        .unwrap_or_else(|e| panic!("[{who}] release: {e}"));
    let c = take("run-c")
        .await
        .unwrap_or_else(|| panic!("[{who}] a released lease refused"));
    assert!(c.token > b.token, "[{who}] {c:?} after {b:?}");
    // A takeover (adapters that can know a holder dead) bumps it too.
    let d = match h
        .ledger()
        .take_over_lease(&c, &holder("run-d"), clock.now(), ttl)
        .await
        .unwrap_or_else(|e| panic!("[{who}] take_over_lease: {e}"))
    {
        LeaseOutcome::Taken(d) => {
            assert!(d.token > c.token, "[{who}] {d:?} after {c:?}");
            d
        }
        LeaseOutcome::HeldBy(_) => c.clone(),
    };

    // A planned message, moved to `sending` under each fence.
    load_book(h).await;
    let planned = PlannedMessage {
        message_id: "msg-fenced".into(),
        customer_id: "C1".into(),
        channel: Channel::Email,
        template: "reminder".to_string(),
        action_ids: Vec::new(),
        invoice_ids: vec!["A1".into()],
        plan: None,
        tags: Vec::new(),
    };
    let stored = StoredMessage::planned(&planned, day(DAY));
    assert!(h.ledger().put_message(&stored).await.unwrap());
    let mut next = stored.clone();
    next.status = MessageStatus::Sending;
    next.sending_since = Some(clock.now());
    let take_it = [Move {
        next,
        from: MessageStatus::Planned,
        actions: Vec::new(),
        day: day(DAY),
    }];
    for old in [a.token, b.token, c.token]
        .into_iter()
        .filter(|t| *t != d.token)
    {
        let fence = Fence {
            lease: "sweep".to_string(),
            token: old,
        };
        let answer = h
            .ledger()
            .move_batch_fenced(&fence, &take_it)
            .await
            .unwrap_or_else(|e| panic!("[{who}] {e}"));
        assert_eq!(answer, Fenced::LeaseLost, "[{who}] token {old}");
        let now = h.ledger().message("msg-fenced").await.unwrap();
        assert_eq!(
            now.map(|m| m.status),
            Some(MessageStatus::Planned),
            "[{who}] a fenced-out move moved the message"
        );
    }
    let fence = Fence {
        lease: "sweep".to_string(),
        token: d.token,
    };
    let answer = h
        .ledger()
        .move_batch_fenced(&fence, &take_it)
        .await
        .unwrap_or_else(|e| panic!("[{who}] {e}"));
    assert_eq!(answer, Fenced::Written(vec![Some(Vec::new())]), "[{who}]");
    let now = h.ledger().message("msg-fenced").await.unwrap();
    assert_eq!(
        now.map(|m| m.status),
        Some(MessageStatus::Sending),
        "[{who}]"
    );
}

/// Where [`StopsOnce`] stops the run it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Just after the mail service accepted the first message of a batch
    /// (the rest of the batch is `sending`, not yet handed over); another
    /// run then goes through the whole day.
    AfterFirstSend,
    /// While the run asks the mail service about a message a crash left
    /// `sending`, before it moves its batch; another run then takes the
    /// lease (and is itself slow to go on).
    AskingAboutLeftovers,
}

/// A mail service that, once, stops the run it serves as a `SIGSTOP`
/// would, for longer than its lease: the clock moves past it, every
/// customer becomes do-not-contact, and another run takes the lease; then
/// the first run goes on. It counts what it is handed after that.
struct StopsOnce<'a, H: Harness> {
    h: &'a H,
    env: &'a Env,
    clock: &'a Clock,
    inner: &'a RecordingMailer,
    at: Stop,
    stopped: AtomicBool,
    handed_after: AtomicUsize,
}

impl<H: Harness> StopsOnce<'_, H> {
    async fn stop_here(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let who = self.h.name();
        self.clock.advance(chrono::Duration::minutes(11));
        let (customers, _) = the_book();
        for mut c in customers {
            c.do_not_contact = true;
            self.h.put_customer(&c).await;
        }
        match self.at {
            Stop::AfterFirstSend => {
                let second = self
                    .env
                    .run(self.h, self.inner, self.clock, day(DAY), None)
                    .await
                    .unwrap_or_else(|e| panic!("[{who}] the run that took over: {e}"));
                assert!(second.sent.is_empty(), "[{who}] {:?}", second.sent);
            }
            Stop::AskingAboutLeftovers => {
                let other = LeaseHolder {
                    id: "the-run-that-took-over".to_string(),
                    pid: 778,
                    host: "elsewhere".to_string(),
                };
                let taken = self
                    .h
                    .ledger()
                    .take_lease(
                        "sweep",
                        &other,
                        self.clock.now(),
                        chrono::Duration::minutes(10),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("[{who}] {e}"));
                assert!(matches!(taken, LeaseOutcome::Taken(_)), "[{who}] {taken:?}");
            }
        }
    }
}

impl<H: Harness> Mailer for StopsOnce<'_, H> {
    async fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, MailError> {
        if self.stopped.load(Ordering::SeqCst) {
            self.handed_after.fetch_add(1, Ordering::SeqCst);
        }
        let receipt = self.inner.send(msg).await;
        if self.at == Stop::AfterFirstSend {
            self.stop_here().await;
        }
        receipt
    }

    async fn accepted(&self, message_id: &str) -> Result<Acceptance, MailError> {
        if self.at == Stop::AskingAboutLeftovers {
            self.stop_here().await;
        }
        self.inner.accepted(message_id).await
    }
}

/// A run stopped past its lease (a `SIGSTOP`, a frozen machine) while
/// every customer became do-not-contact and another run took the lease
/// over: when it goes on, it hands nothing more to the mail service and
/// fails with `LostLease` — stopped in the middle of its sends (its lease,
/// checked by its own clock before each send, is gone) or before moving
/// its batch to `sending` (the move is fenced by the lease's token). What
/// it left is finished by the next run, nothing twice, nothing to a
/// do-not-contact customer.
pub async fn a_run_stopped_past_its_lease_sends_nothing_more<H: Harness>(h: &H) {
    a_run_stopped_at(h, Stop::AfterFirstSend).await;
}

/// [`a_run_stopped_past_its_lease_sends_nothing_more`], the run stopped
/// before it moves its batch to `sending`: the fenced move writes nothing.
pub async fn a_run_stopped_before_its_move_moves_nothing<H: Harness>(h: &H) {
    a_run_stopped_at(h, Stop::AskingAboutLeftovers).await;
}

async fn a_run_stopped_at<H: Harness>(h: &H, at: Stop) {
    let who = h.name();
    let w = World::start(h).await;
    if at == Stop::AskingAboutLeftovers {
        // A crash leaves the day's batch `sending`: the next run asks the
        // mail service about each message before moving the batch.
        let first = w
            .crash(h, day(DAY), CrashPoint::AfterMarkedSending, 0)
            .await;
        assert!(
            matches!(first, Err(RunError::Crashed(_))),
            "[{who}] {first:?}"
        );
    }
    let mailer = StopsOnce {
        h,
        env: &w.env,
        clock: &w.clock,
        inner: &w.mailer,
        at,
        stopped: AtomicBool::new(false),
        handed_after: AtomicUsize::new(0),
    };
    let stopped = w.env.run(h, &mailer, &w.clock, day(DAY), None).await;
    assert!(
        mailer.stopped.load(Ordering::SeqCst),
        "[{who}] {at:?}: never stopped"
    );
    assert_eq!(
        mailer.handed_after.load(Ordering::SeqCst),
        0,
        "[{who}] {at:?}: messages handed to the mail service after the lease was lost"
    );
    match stopped {
        Err(e @ RunError::LostLease(_)) => assert!(
            e.to_string()
                .starts_with("this run lost its claim on the sweep"),
            "[{who}] {e}"
        ),
        other => panic!("[{who}] {at:?}: the stopped run went on: {other:?}"),
    }
    // The next run (the other's lease run out) finishes: nothing is sent,
    // every message is finished, nothing is left `sending`.
    let last = w.run(h, day(DAY)).await;
    assert!(last.sent.is_empty(), "[{who}] {at:?}: {:?}", last.sent);
    let expected = match at {
        Stop::AfterFirstSend => 1,
        Stop::AskingAboutLeftovers => 0,
    };
    assert_eq!(
        w.mailer.accepted_messages().len(),
        expected,
        "[{who}] {at:?}: {:?}",
        w.mailer.accepted_messages()
    );
    assert_promises(h, &w.mailer).await;
}

/// A policy that segments by the customer's payment history.
const BY_HISTORY: &str = r#"
policy "by-history" effective 2025-01-01 currency USD
limits
  at most 5 contacts per customer per 7d
segment late_payers when customer.late_rate >= 50%
segment standard otherwise
ladder late_payers
  due - 7d   email "friendly-reminder"
  due        email "urgent-notice"
ladder standard
  due - 3d   email "friendly-reminder"
  due + 7d   email "firm-notice"
"#;

/// A customer's settled history, reminded a year ago, decides today as its
/// records say, whatever the adapter keeps of it (the invoices settled and
/// wholly before the sweep's `since` may be read as one aggregate,
/// `collect_engine::history`): late data that reopens one of them (a
/// refund dated last year) counts the next day, and its payment again the
/// day after.
pub async fn folded_history_decides_as_the_records<H: Harness>(h: &H) {
    let name = h.name().to_string();
    h.put_customer(&customer("C7")).await;
    // Due monthly in 2026; two of four paid late: a late rate of 50%.
    let history = [
        ("H1", "2026-03-01", "2026-03-10"),
        ("H2", "2026-03-31", "2026-03-25"),
        ("H3", "2026-04-30", "2026-05-15"),
        ("H4", "2026-05-31", "2026-05-31"),
    ];
    for (id, due, paid) in history {
        let inv = invoice(id, "C7", due, "100.00");
        h.put_invoice(&inv).await;
        h.put_payment(&payment(&inv, day(paid))).await;
    }
    let env = Env::with_policy(BY_HISTORY);
    let mailer = RecordingMailer::default();
    let clock = Clock::at(day(DAY));
    let run = |on: &'static str| {
        let (env, mailer, clock, name) = (&env, &mailer, &clock, name.clone());
        async move {
            env.run(h, mailer, clock, day(on), None)
                .await
                .unwrap_or_else(|e| panic!("[{name}] {on}: {e}"))
        }
    };
    // Last year's reminders: steps a year old.
    for on in [
        "2026-02-26",
        "2026-03-08",
        "2026-03-28",
        "2026-04-27",
        "2026-05-07",
        "2026-05-28",
    ] {
        run(on).await;
    }
    let old_steps = h
        .actions()
        .await
        .iter()
        .filter(|a| a.status == ActionStatus::Sent)
        .count();
    assert!(old_steps >= 4, "[{name}] {old_steps} steps sent in 2026");
    let step = |report: &RunReport, invoice_id: &str| {
        report
            .plan
            .records
            .iter()
            .find(|r| r.invoice_id.as_str() == invoice_id)
            .map(|r| (r.segment.clone(), r.label.clone(), r.risk))
    };
    let half = Some(0.5);
    // Today: a late payer (2 of 4), reminded a week before the due date.
    h.put_invoice(&invoice("N1", "C7", "2027-03-17", "200.00"))
        .await;
    let today = run(DAY).await;
    assert_eq!(
        step(&today, "N1"),
        Some((
            "late_payers".to_string(),
            "email friendly-reminder".to_string(),
            half
        )),
        "[{name}] {today:?}"
    );
    assert_eq!(today.plan.open_invoices, 1, "[{name}]");
    // A refund of H3 dated last year: H3 is open again, and the customer
    // paid 1 of 3 late.
    h.put_payment(&super::book::payment_of("H3", day("2026-05-20"), "-100.00"))
        .await;
    h.put_invoice(&invoice("N2", "C7", "2027-03-14", "80.00"))
        .await;
    let next = run("2027-03-11").await;
    assert_eq!(
        next.plan.open_invoices, 3,
        "[{name}] N1, N2 and H3: {next:?}"
    );
    assert_eq!(
        step(&next, "N2"),
        Some((
            "standard".to_string(),
            "email friendly-reminder".to_string(),
            Some(1.0 / 3.0)
        )),
        "[{name}] {next:?}"
    );
    // Paid again (dated before H4 settled): settled on its first payment's
    // day, as before; 2 of 4 late again.
    h.put_payment(&super::book::payment_of("H3", day("2026-05-25"), "100.00"))
        .await;
    h.put_invoice(&invoice("N3", "C7", "2027-03-19", "90.00"))
        .await;
    let after = run("2027-03-12").await;
    assert_eq!(
        after.plan.open_invoices, 3,
        "[{name}] N1, N2, N3: {after:?}"
    );
    assert_eq!(
        step(&after, "N3"),
        Some((
            "late_payers".to_string(),
            "email friendly-reminder".to_string(),
            half
        )),
        "[{name}] {after:?}"
    );
    assert_promises(h, &mailer).await;
}

/// Every scenario above, in one call, each on a fresh harness from `make`.
pub async fn run_all<H: Harness, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = H>,
{
    rerun_of_a_completed_day_changes_nothing(&make().await).await;
    a_rerun_keeps_the_caps(&make().await).await;
    a_retry_adds_to_the_trail(&make().await).await;
    for point in CrashPoint::ALL {
        for nth in 0..2 {
            for next_day in [false, true] {
                crash_then_rerun(&make().await, point, nth, next_day).await;
            }
        }
    }
    for change in [
        Change::DoNotContact,
        Change::Paid,
        Change::Disputed,
        Change::WrittenOff,
        Change::PlacedWithAgency,
    ] {
        leftovers_are_checked_again(&make().await, change).await;
    }
    leftover_offer_keeps_its_plan(&make().await).await;
    one_writer_at_a_time(&make().await).await;
    refused_for_now_then_sent(&make().await).await;
    a_passing_failure_is_retried_within_the_run(&make().await).await;
    a_failing_service_stops_the_run(&make().await, None).await;
    for point in [
        CrashPoint::AfterMarkedSending,
        CrashPoint::AfterAccepted,
        CrashPoint::AfterRefused,
        CrashPoint::AfterMarkedSent,
    ] {
        a_failing_service_stops_the_run(&make().await, Some((point, 0))).await;
    }
    a_refused_recipient_is_deferred(&make().await).await;
    failed_records_of_an_earlier_release_are_retried(&make().await).await;
    held_then_released_goes_out(&make().await).await;
    in_doubt_waits_for_the_grace_period(&make().await).await;
    a_reconciled_email_counts_for_the_day(&make().await).await;
    lease_tokens_only_grow_and_fence(&make().await).await;
    a_run_stopped_past_its_lease_sends_nothing_more(&make().await).await;
    a_run_stopped_before_its_move_moves_nothing(&make().await).await;
    folded_history_decides_as_the_records(&make().await).await;
    // Contact holds: the recipient class of the mail service's failures.
    use super::contact_holds as holds;
    holds::a_refused_recipient_is_held_until_the_address_changes(&make().await).await;
    holds::a_refused_recipient_goes_out_once_the_task_is_closed(&make().await).await;
    holds::a_crash_after_the_hold_leaves_it_held(&make().await).await;
    holds::a_bounce_holds_once(&make().await).await;
    holds::an_invalid_address_is_held_once(&make().await).await;
    // The desk's index of open work and its conditional decisions.
    super::work::run_all(&make).await;
    // The folded payment history: crashes after a fold, late data.
    super::folded_history::run_all(&make).await;
}
