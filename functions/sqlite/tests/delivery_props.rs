//! Property tests of the delivery protocol: random books, random ERP
//! changes between runs, random crash points; on the in-memory and the
//! SQLite ledger. Whatever happens:
//! - no message is accepted twice;
//! - nothing goes to a customer who was do-not-contact when the run sent
//!   it, nor for an invoice that was settled or disputed then;
//! - nothing is lost: after a last clean run, every message is finished and
//!   every action sent, deferred or skipped with a reason, or a task —
//!   whatever the mail service failed with on the days before (a failure
//!   of each class, for one recipient or after a first message).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chrono::{Duration, NaiveDate};
use collect_delivery::delivery::CrashPoint;
use collect_delivery::mailer::FailureClass;
use collect_engine::domain::{EventKind, Invoice, InvoiceId, MessageId};
use collect_testkit::Harness;
use collect_testkit::book::{
    Clock, Env, MemoryHarness, SqliteHarness, customer, day, event, invoice, payment,
};
use collect_testkit::conformance::{CrashAt, assert_promises};
use collect_testkit::mailer::{Fault, RecordingMailer};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone)]
struct Book {
    /// (customer, do-not-contact at the start)
    customers: Vec<(String, bool)>,
    invoices: Vec<Invoice>,
}

#[derive(Debug, Clone)]
enum Change {
    ToggleDoNotContact(usize),
    Pay(usize),
    Dispute(usize),
    CloseDispute(usize),
    Promise(usize, i64),
}

#[derive(Debug, Clone)]
struct Day {
    changes: Vec<Change>,
    /// A crash at `(point, nth)`, and whether the same day is run again.
    crash: Option<(usize, usize, bool)>,
    /// The mail service fails this day: with the class `CLASSES[k]`, for
    /// the customer `R{j}` (or, when `j` is past the last customer, after
    /// a first message is accepted).
    fault: Option<(usize, usize)>,
}

const CLASSES: [FailureClass; 3] = [
    FailureClass::Transient,
    FailureClass::Recipient,
    FailureClass::Service,
];

const START: &str = "2027-03-01";

fn book() -> impl Strategy<Value = Book> {
    (1usize..5).prop_flat_map(|n| {
        (
            proptest::collection::vec(proptest::bool::weighted(0.2), n),
            proptest::collection::vec((0..n, -30i64..20, 1u32..5000), 1..10),
        )
            .prop_map(move |(dnc, invs)| Book {
                customers: dnc
                    .into_iter()
                    .enumerate()
                    .map(|(k, d)| (format!("R{k}"), d))
                    .collect(),
                invoices: invs
                    .into_iter()
                    .enumerate()
                    .map(|(k, (c, due, cents))| {
                        let due = day(START) + Duration::days(due);
                        invoice(
                            &format!("I{k}"),
                            &format!("R{c}"),
                            &due.to_string(),
                            &format!("{}.{:02}", cents / 100, cents % 100),
                        )
                    })
                    .collect(),
            })
    })
}

fn days(invoices: usize, customers: usize) -> impl Strategy<Value = Vec<Day>> {
    let change = prop_oneof![
        (0..customers).prop_map(Change::ToggleDoNotContact),
        (0..invoices).prop_map(Change::Pay),
        (0..invoices).prop_map(Change::Dispute),
        (0..invoices).prop_map(Change::CloseDispute),
        ((0..invoices), 1i64..10).prop_map(|(i, d)| Change::Promise(i, d)),
    ];
    let crash =
        proptest::option::weighted(0.5, (0..CrashPoint::ALL.len(), 0usize..3, any::<bool>()));
    let fault = proptest::option::weighted(0.3, (0..CLASSES.len(), 0..=customers));
    proptest::collection::vec(
        (proptest::collection::vec(change, 0..3), crash, fault).prop_map(
            |(changes, crash, fault)| Day {
                changes,
                crash,
                fault,
            },
        ),
        1..12,
    )
}

/// What was true of the book while a run sent.
#[derive(Default, Clone)]
struct Truth {
    dnc: HashSet<String>,
    settled: HashSet<String>,
    disputed: HashSet<String>,
    promised_until: HashMap<String, NaiveDate>,
}

async fn scenario<H: Harness>(h: &H, b: &Book, plan: &[Day]) {
    let env = Env::new();
    let mailer = RecordingMailer::default();
    let mut truth = Truth::default();
    for (c, dnc) in &b.customers {
        let mut cust = customer(c);
        cust.do_not_contact = *dnc;
        if *dnc {
            truth.dnc.insert(c.clone());
        }
        h.put_customer(&cust).await;
    }
    for i in &b.invoices {
        h.put_invoice(i).await;
    }
    let clock = Clock::at(day(START));
    let mut seen = 0usize;
    for (k, d) in plan.iter().enumerate() {
        let today = day(START) + Duration::days(k as i64);
        // One promise per invoice a day: a second one the same day would
        // carry the same event id (the event is the ERP's, and the ledger
        // keeps the first), so the model below would disagree with it.
        let mut promised_today = std::collections::HashSet::new();
        for ch in &d.changes {
            match ch {
                Change::ToggleDoNotContact(c) => {
                    let (id, _) = &b.customers[*c];
                    let mut cust = customer(id);
                    cust.do_not_contact = !truth.dnc.contains(id);
                    if cust.do_not_contact {
                        truth.dnc.insert(id.clone());
                    } else {
                        truth.dnc.remove(id);
                    }
                    h.put_customer(&cust).await;
                }
                Change::Pay(i) => {
                    let inv = &b.invoices[*i];
                    if inv.issue_date <= today && truth.settled.insert(inv.invoice_id.clone()) {
                        h.put_payment(&payment(inv, today)).await;
                    }
                }
                Change::Dispute(i) => {
                    let id = &b.invoices[*i].invoice_id;
                    if truth.disputed.insert(id.clone()) {
                        h.put_event(&event(id, today, EventKind::DisputeOpened))
                            .await;
                    }
                }
                Change::CloseDispute(i) => {
                    let id = &b.invoices[*i].invoice_id;
                    if truth.disputed.remove(id) {
                        h.put_event(&event(id, today, EventKind::DisputeClosed))
                            .await;
                    }
                }
                Change::Promise(i, days) => {
                    let id = &b.invoices[*i].invoice_id;
                    if !promised_today.insert(id.clone()) {
                        continue;
                    }
                    let until = today + Duration::days(*days);
                    truth.promised_until.insert(id.clone(), until);
                    h.put_event(&event(
                        id,
                        today,
                        EventKind::PromiseToPay {
                            promised_until: until,
                        },
                    ))
                    .await;
                }
            }
        }
        if let Some((k, j)) = d.fault {
            let fault = Fault::new(CLASSES[k]);
            mailer.fail(match b.customers.get(j) {
                Some((id, _)) => fault.to(&format!("{}@example.com", id.to_lowercase())),
                None => fault.after(1),
            });
        }
        let mut runs = vec![
            d.crash
                .map(|(p, nth, _)| CrashAt::new(CrashPoint::ALL[p], nth)),
        ];
        if d.crash.is_some_and(|(_, _, again)| again) {
            runs.push(None);
        }
        for crash in runs {
            let hit = crash
                .as_ref()
                .map(|c| move |p: CrashPoint, m: Option<&str>| c.hit(p, m));
            let faults: collect_delivery::delivery::Faults<'_> = hit.as_ref().map(|f| f as _);
            let _ = env.run(h, &mailer, &clock, today, faults).await;
            // What went out in this run was allowed by what was true then.
            let accepted = mailer.accepted_messages();
            let stored: HashMap<MessageId, Vec<InvoiceId>> = h
                .messages()
                .await
                .into_iter()
                .map(|m| (m.message_id, m.invoice_ids))
                .collect();
            for m in &accepted[seen..] {
                let owner = m.to.email.trim_end_matches("@example.com").to_uppercase();
                assert!(
                    !truth.dnc.contains(&owner),
                    "[{}] {} went to do-not-contact {owner} on {today}",
                    h.name(),
                    m.message_id
                );
                for inv in stored.get(m.message_id.as_str()).into_iter().flatten() {
                    let inv = inv.as_str();
                    assert!(
                        !truth.settled.contains(inv),
                        "[{}] {} named settled {inv} on {today}",
                        h.name(),
                        m.message_id
                    );
                    assert!(
                        !truth.disputed.contains(inv),
                        "[{}] {} named disputed {inv} on {today}",
                        h.name(),
                        m.message_id
                    );
                    assert!(
                        truth.promised_until.get(inv).is_none_or(|u| *u < today),
                        "[{}] {} named {inv} under a promise on {today}",
                        h.name(),
                        m.message_id
                    );
                }
            }
            seen = accepted.len();
        }
        mailer.heal();
    }
    // A last clean run finishes whatever a crash left.
    let last = day(START) + Duration::days(plan.len() as i64);
    env.run(h, &mailer, &clock, last, None)
        .await
        .unwrap_or_else(|e| panic!("[{}] the last run: {e}", h.name()));
    assert_promises(h, &mailer).await;
}

fn scenario_strategy() -> impl Strategy<Value = (Book, Vec<Day>)> {
    book().prop_flat_map(|b| {
        let n = b.invoices.len();
        let c = b.customers.len();
        (Just(b), days(n, c))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn memory_ledger_keeps_the_promises((b, plan) in scenario_strategy()) {
        pollster::block_on(scenario(&MemoryHarness::default(), &b, &plan));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_ledger_keeps_the_promises((b, plan) in scenario_strategy()) {
        let dir = tempfile::tempdir().unwrap();
        let h = SqliteHarness::open(&dir.path().join("home.db")).unwrap();
        pollster::block_on(scenario(&h, &b, &plan));
    }
}
