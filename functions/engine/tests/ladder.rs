//! The end of the ladder, on a calendar: an invoice worked day by day by
//! the sweep (messages go out, letters are approved, calls are made), then
//! written off, placed with an agency or kept working.
//!
//! The book: C1 owes I1, 1000 USD due 2027-03-01 (a Monday), under the
//! conformance policy (steps at due − 3d, due, +7d, +14d offer, +21d call,
//! +30d legal letter requiring approval; business days only).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use chrono::NaiveDate;
use collect_engine::book::Book;
use collect_engine::domain::{
    ActionRecord, ActionStatus, Channel, Customer, Event, EventKind, Invoice, Payment,
};
use collect_engine::ladder::{end_of_ladder, stop, written_off_amount};
use collect_engine::sweep::{PriorLateRate, SweepOptions, SweepPlan, plan_sweep};
use collect_testkit::book::{POLICY, compile, customer, day, event, invoice, money, payment_of};
use policy_lang::Policy;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// A book and what a runner would have done with each day's plan.
struct World {
    customers: Vec<Customer>,
    invoices: Vec<Invoice>,
    payments: Vec<Payment>,
    events: Vec<Event>,
    actions: BTreeMap<String, ActionRecord>,
    policy: Policy,
}

impl World {
    fn new() -> World {
        World {
            customers: vec![customer("C1")],
            invoices: vec![invoice("I1", "C1", "2027-03-01", "1000.00")],
            payments: Vec::new(),
            events: Vec::new(),
            actions: BTreeMap::new(),
            policy: compile(POLICY).unwrap(),
        }
    }

    fn book(&self) -> Book {
        Book::new(
            self.customers.clone(),
            self.invoices.clone(),
            self.payments.clone(),
            self.events.clone(),
            self.actions.values().cloned().collect(),
        )
    }

    /// One day's sweep, then what the delivery and the people do the same
    /// day: every planned message goes out, a letter awaiting approval is
    /// approved, a call task is made.
    fn sweep(&mut self, on: NaiveDate) -> SweepPlan {
        let plan = plan_sweep(
            &self.book(),
            &self.policy,
            &PriorLateRate,
            on,
            &SweepOptions::default(),
        );
        for r in &plan.records {
            self.actions.insert(r.action_id.to_string(), r.clone());
        }
        let carried: Vec<String> = plan
            .messages
            .iter()
            .flat_map(|m| m.action_ids.iter().map(ToString::to_string))
            .collect();
        for a in self.actions.values_mut() {
            if carried.contains(&a.action_id.to_string()) {
                a.status = ActionStatus::Sent;
                a.sent_on = Some(on);
            } else if a.status == ActionStatus::AwaitingApproval {
                a.status = ActionStatus::Approved;
                a.decided_by = Some("ana".to_string());
            } else if a.status == ActionStatus::Planned && a.channel == Channel::Call {
                a.status = ActionStatus::Sent;
                a.sent_on = Some(on);
                a.decided_by = Some("bo".to_string());
            }
        }
        plan
    }

    /// Sweeps every day from `from` to `to`, both included.
    fn sweep_days(&mut self, from: &str, to: &str) -> Vec<SweepPlan> {
        day(from)
            .iter_days()
            .take_while(|d| *d <= day(to))
            .map(|d| self.sweep(d))
            .collect()
    }

    fn decide(&mut self, on: &str, kind: EventKind, by: &str, reason: &str) {
        self.events.push(Event {
            by: Some(by.to_string()),
            reason: Some(reason.to_string()),
            ..event("I1", day(on), kind)
        });
    }

    fn labels_sent(&self) -> Vec<String> {
        let mut v: Vec<(NaiveDate, String)> = self
            .actions
            .values()
            .filter(|a| a.status == ActionStatus::Sent)
            .map(|a| (a.sent_on.unwrap(), a.label.clone()))
            .collect();
        v.sort();
        v.into_iter().map(|(_, l)| l).collect()
    }

    fn end(&self, on: &str) -> Option<collect_engine::ladder::EndOfLadder> {
        let book = self.book();
        let inv = book.invoice("I1").unwrap().clone();
        end_of_ladder(&book, &self.policy, &inv, day(on))
    }
}

#[test]
fn an_invoice_runs_off_its_ladder_and_waits_for_a_decision() {
    let mut w = World::new();
    w.sweep_days("2027-02-25", "2027-03-30");
    // Every step but the letter: the letter is due on 03-31.
    assert_eq!(
        w.end("2027-03-30"),
        None,
        "the legal letter is still to come"
    );
    w.sweep_days("2027-03-31", "2027-04-02");
    assert!(
        w.labels_sent()
            .last()
            .is_some_and(|l| l == "letter legal-notice"),
        "{:?}",
        w.labels_sent()
    );
    let end = w.end("2027-04-02").expect("past the last step");
    assert_eq!(end.last_step, "letter legal-notice");
    assert_eq!(end.last_step_offset, 30);
    assert_eq!(end.segment, "standard");
    assert_eq!(end.balance, money("1000.00"));
    assert_eq!(end.days_overdue, 32);
    // Partly paid: still open, still waiting, with the balance left.
    w.payments
        .push(payment_of("I1", day("2027-04-03"), "250.00"));
    assert_eq!(w.end("2027-04-05").unwrap().balance, money("750.00"));
    // A person keeps working it: decided, no longer listed, not stopped.
    w.decide(
        "2027-04-05",
        EventKind::KeptWorking,
        "ana@example.com",
        "promised on the phone",
    );
    assert_eq!(w.end("2027-04-05"), None);
    assert_eq!(w.end("2027-04-04").map(|e| e.days_overdue), Some(34));
    let book = w.book();
    assert!(stop(&book, book.invoice("I1").unwrap(), day("2027-04-06")).is_none());
}

#[test]
fn a_written_off_invoice_gets_no_more_steps_and_what_waited_is_skipped() {
    let mut w = World::new();
    w.sweep_days("2027-02-25", "2027-03-05");
    assert_eq!(
        w.labels_sent(),
        ["email friendly-reminder", "email urgent-notice"]
    );
    w.decide(
        "2027-03-06",
        EventKind::WrittenOff { amount: None },
        "erp",
        "uncollectible",
    );
    let plans = w.sweep_days("2027-03-06", "2027-04-30");
    // Nothing more went out, and every sweep says why.
    assert_eq!(
        w.labels_sent(),
        ["email friendly-reminder", "email urgent-notice"]
    );
    for p in &plans {
        assert!(p.records.is_empty(), "{:?}", p.records);
        assert!(p.messages.is_empty());
        assert_eq!(p.open_invoices, 0);
        assert_eq!(
            p.stopped,
            [(
                "I1".to_string(),
                "dunning stopped: written off on 2027-03-06 by erp: uncollectible".to_string()
            )]
        );
    }
    // Stopped: not at the end of the ladder waiting for anyone.
    assert_eq!(w.end("2027-04-30"), None);
    // The day before the decision, the ladder was still running.
    let book = w.book();
    let inv = book.invoice("I1").unwrap();
    assert!(stop(&book, inv, day("2027-03-05")).is_none());
    assert!(stop(&book, inv, day("2027-03-06")).is_some());
    // The amount written off is the balance on that day.
    let e = &book.events["I1"][0];
    assert_eq!(written_off_amount(&book, inv, e), money("1000.00"));
}

#[test]
fn placing_with_an_agency_closes_the_open_call_task_with_the_reason() {
    let mut w = World::new();
    // Run to the call at +21d (03-22), but nobody makes the call.
    w.sweep_days("2027-02-25", "2027-03-21");
    let plan = plan_sweep(
        &w.book(),
        &w.policy,
        &PriorLateRate,
        day("2027-03-22"),
        &SweepOptions::default(),
    );
    let call = plan
        .records
        .iter()
        .find(|a| a.channel == Channel::Call)
        .expect("the call task")
        .clone();
    assert_eq!(call.status, ActionStatus::Planned);
    w.actions.insert(call.action_id.to_string(), call.clone());
    w.decide(
        "2027-03-23",
        EventKind::PlacedWithAgency {
            agency: "Acme Recovery".to_string(),
        },
        "ana@example.com",
        "no answer in three weeks",
    );
    let plan = w.sweep(day("2027-03-23"));
    assert_eq!(plan.records.len(), 1, "{:?}", plan.records);
    let closed = &plan.records[0];
    assert_eq!(closed.action_id, call.action_id);
    assert_eq!(closed.status, ActionStatus::Skipped);
    assert_eq!(
        closed.note.as_deref(),
        Some(
            "skipped: dunning stopped, placed with agency `Acme Recovery` on 2027-03-23 by \
             ana@example.com: no answer in three weeks (was planned)"
        )
    );
    // The letter at +30d never comes.
    let plans = w.sweep_days("2027-03-24", "2027-04-15");
    assert!(plans.iter().all(|p| p.records.is_empty()));
    assert!(!w.labels_sent().iter().any(|l| l.starts_with("letter")));
}

#[test]
fn keeping_an_account_worked_after_a_write_off_resumes_the_ladder() {
    let mut w = World::new();
    w.sweep_days("2027-02-25", "2027-03-05");
    w.decide(
        "2027-03-06",
        EventKind::WrittenOff {
            amount: Some(money("400.00")),
        },
        "ana@example.com",
        "settled the rest in court",
    );
    w.sweep_days("2027-03-06", "2027-03-08");
    assert_eq!(w.labels_sent().len(), 2);
    // The latest decision counts: kept working on 03-09, the +7d notice
    // (due 03-08) goes out on the next sweep.
    w.decide(
        "2027-03-09",
        EventKind::KeptWorking,
        "bo@example.com",
        "the write-off was a mistake",
    );
    w.sweep_days("2027-03-09", "2027-03-09");
    assert_eq!(w.labels_sent().last().unwrap(), "email firm-notice");
    let book = w.book();
    let inv = book.invoice("I1").unwrap();
    let off = book.events["I1"]
        .iter()
        .find(|e| e.kind.name() == "written_off")
        .unwrap();
    // The amount named, not the balance.
    assert_eq!(written_off_amount(&book, inv, off), money("400.00"));
    // Never more than the balance.
    let too_much = Event {
        kind: EventKind::WrittenOff {
            amount: Some(money("5000")),
        },
        ..off.clone()
    };
    assert_eq!(written_off_amount(&book, inv, &too_much), money("1000.00"));
    assert_eq!(
        written_off_amount(
            &book,
            inv,
            &event("I1", day("2027-03-09"), EventKind::KeptWorking)
        ),
        Decimal::ZERO
    );
}

#[test]
fn a_rejected_last_letter_also_ends_the_ladder_but_one_awaiting_approval_does_not() {
    let mut w = World::new();
    w.sweep_days("2027-02-25", "2027-03-30");
    // 03-31: the legal letter awaits approval; nobody has decided yet.
    let plan = plan_sweep(
        &w.book(),
        &w.policy,
        &PriorLateRate,
        day("2027-03-31"),
        &SweepOptions::default(),
    );
    let mut letter = plan
        .records
        .iter()
        .find(|a| a.channel == Channel::Letter)
        .expect("the legal letter")
        .clone();
    assert_eq!(letter.status, ActionStatus::AwaitingApproval);
    w.actions
        .insert(letter.action_id.to_string(), letter.clone());
    assert_eq!(
        w.end("2027-03-31"),
        None,
        "a person still decides the letter"
    );
    // 04-01: rejected. The ladder has nothing after it: a decision is due.
    letter.status = ActionStatus::Rejected;
    letter.decided_by = Some("ana".to_string());
    w.actions.insert(letter.action_id.to_string(), letter);
    let end = w.end("2027-04-01").expect("past the last step");
    assert_eq!(end.last_step, "letter legal-notice");
    assert_eq!(end.last_step_on, day("2027-03-31"));
}
