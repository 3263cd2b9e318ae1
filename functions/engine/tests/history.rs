//! The fold rule and the aggregate: what may fold, what keeps an invoice in
//! the book, and that an aggregate adds in any order and stores as JSON.
//! (That a folded book decides as the full one is
//! `functions/model/tests/history_equivalence.rs`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use collect_engine::book::Book;
use collect_engine::domain::{ActionRecord, ActionStatus, EventKind, Invoice, PlanTerms};
use collect_engine::history::{FoldedInvoice, PaymentHistory, fold, foldable};
use collect_testkit::book::{customer, day, event, invoice, money, payment, payment_of};
use rust_decimal::Decimal;

/// An invoice of C1 due on 2027-01-31 for 100, paid on `paid`.
fn paid_invoice(id: &str, paid: &str) -> (Invoice, collect_engine::domain::Payment) {
    let inv = invoice(id, "C1", "2027-01-31", "100.00");
    let p = payment(&inv, day(paid));
    (inv, p)
}

fn sent_step(inv: &Invoice, on: &str, status: ActionStatus) -> ActionRecord {
    let on = day(on);
    ActionRecord {
        action_id: format!("act-{}-{on}", inv.invoice_id).into(),
        invoice_id: inv.invoice_id.clone().into(),
        customer_id: inv.customer_id.clone().into(),
        decided_on: on,
        scheduled_for: on,
        status,
        channel: collect_engine::domain::Channel::Email,
        label: "email friendly-reminder".into(),
        target: "friendly-reminder".into(),
        step_offset: -3,
        requires_approval: false,
        policy_name: "p".into(),
        policy_revision: "r".into(),
        git_revision: None,
        bundle_revision: None,
        rule: "p.policy:1".into(),
        segment: "standard".into(),
        experiment: None,
        arm: None,
        risk: None,
        scorer: "s".into(),
        scorer_version: "1".into(),
        note: None,
        message_id: None,
        decided_by: None,
        decided_at: None,
        sent_on: (status == ActionStatus::Sent).then_some(on),
    }
}

#[test]
fn a_settled_invoice_folds_once_everything_about_it_is_before_the_cutoff() {
    let (a, pa) = paid_invoice("A", "2027-02-10");
    let open = invoice("B", "C1", "2027-03-31", "50.00");
    let step = sent_step(&a, "2027-01-28", ActionStatus::Sent);
    let book = Book::new(
        vec![customer("C1")],
        vec![a.clone(), open.clone()],
        vec![pa],
        vec![],
        vec![step],
    );
    // On the settlement day itself, or before it: stays.
    assert!(foldable(&book, &a, day("2027-02-10")).is_none());
    let f = foldable(&book, &a, day("2027-02-11")).expect("settled the day before");
    assert_eq!(f.settled_on, day("2027-02-10"));
    assert!(!f.plan_accepted && !f.dispute_open);
    assert!(foldable(&book, &open, day("2027-06-01")).is_none(), "open");

    let folded = fold(book.clone(), day("2027-02-11"));
    assert_eq!(folded.invoices.len(), 1);
    assert!(folded.steps_of("A").is_empty() && folded.payments.is_empty());
    let h = &folded.history["C1"];
    assert_eq!(
        (h.invoices, h.settlements.count, h.settlements.late),
        (1, 1, 1)
    );
    assert_eq!(h.settlements.total_days_late, 10);
    assert_eq!(h.folded_before, day("2027-02-11"));
    // The customer's record reads the same.
    for d in ["2027-02-11", "2027-03-01", "2028-01-01"] {
        assert_eq!(
            book.customer_stats("C1", day(d)),
            folded.customer_stats("C1", day(d)),
            "{d}"
        );
    }
}

#[test]
fn what_keeps_an_invoice_in_the_book() {
    let cutoff = day("2027-06-01");
    let (a, pa) = paid_invoice("A", "2027-02-10");
    let with = |payments: Vec<_>, events: Vec<_>, actions: Vec<_>, inv: &Invoice| {
        let book = Book::new(
            vec![customer("C1")],
            vec![inv.clone()],
            payments,
            events,
            actions,
        );
        foldable(&book, inv, cutoff)
    };
    assert!(with(vec![pa.clone()], vec![], vec![], &a).is_some());
    // A payment, an event or a step on or after the cutoff.
    let refund = payment_of("A", cutoff, "-10.00");
    assert!(with(vec![pa.clone(), refund], vec![], vec![], &a).is_none());
    let opened = event("A", cutoff, EventKind::MailOpened);
    assert!(with(vec![pa.clone()], vec![opened], vec![], &a).is_none());
    let late_step = sent_step(&a, "2027-06-02", ActionStatus::Sent);
    assert!(with(vec![pa.clone()], vec![], vec![late_step], &a).is_none());
    // A step a sweep may still write (a call task, an approval).
    for status in [
        ActionStatus::Planned,
        ActionStatus::AwaitingApproval,
        ActionStatus::Deferred,
    ] {
        let waiting = sent_step(&a, "2027-01-28", status);
        assert!(
            with(vec![pa.clone()], vec![], vec![waiting], &a).is_none(),
            "{status:?}"
        );
    }
    // Paid, then refunded: open again.
    let refund = payment_of("A", day("2027-03-01"), "-10.00");
    assert!(with(vec![pa.clone(), refund], vec![], vec![], &a).is_none());
    // A dispute the export dates after the cutoff.
    let mut disputed = a.clone();
    disputed.disputed = true;
    disputed.dispute_opened_on = Some(day("2027-07-01"));
    assert!(with(vec![pa.clone()], vec![], vec![], &disputed).is_none());
    // A dispute open for ever is carried.
    disputed.dispute_opened_on = Some(day("2027-01-20"));
    let f = with(vec![pa.clone()], vec![], vec![], &disputed).unwrap();
    assert!(f.dispute_open);
    // A plan accepted on a settled invoice: its schedule is paid, so it is
    // current for ever, even when an installment was late.
    let plan = |installments| {
        event(
            "A",
            day("2027-02-01"),
            EventKind::PlanAccepted(PlanTerms {
                installments,
                every_days: 30,
                down_payment: Decimal::ZERO,
            }),
        )
    };
    let f = with(vec![pa.clone()], vec![plan(2)], vec![], &a).unwrap();
    assert!(f.plan_accepted && !f.plan_defaulted);
    let first = payment_of("A", day("2027-02-01"), "10.00");
    let rest = payment_of("A", day("2027-05-20"), "90.00");
    let f = with(vec![first, rest], vec![plan(2)], vec![], &a).unwrap();
    assert!(f.plan_accepted && !f.plan_defaulted, "{f:?}");
    // An amount beyond the limit is for the records to report.
    let huge = invoice("A", "C1", "2027-01-31", "2000000000000");
    let p = payment(&huge, day("2027-02-10"));
    assert!(with(vec![p], vec![], vec![], &huge).is_none());
}

fn folded(id: &str, settled: &str, due: &str, amount: &str) -> FoldedInvoice {
    FoldedInvoice {
        invoice_id: id.into(),
        issue_date: day("2026-01-01"),
        due_date: day(due),
        amount: money(amount),
        settled_on: day(settled),
        plan_accepted: id.ends_with('7'),
        plan_defaulted: id.ends_with("17"),
        dispute_open: id.ends_with('3'),
    }
}

#[test]
fn an_aggregate_adds_in_any_order_and_stores_as_json() {
    let all: Vec<FoldedInvoice> = (0..20)
        .map(|k| {
            folded(
                &format!("I{k:02}"),
                &format!("2026-{:02}-{:02}", 2 + k % 9, 1 + (k * 7) % 27),
                &format!("2026-{:02}-15", 2 + k % 9),
                &format!("{}.50", 100 + (k % 4) * 10),
            )
        })
        .collect();
    let forward = PaymentHistory::rebuild(&all, day("2027-01-01"));
    let mut reversed = all.clone();
    reversed.reverse();
    let mut shuffled = all.clone();
    shuffled.sort_by_key(|f| (f.amount, f.invoice_id.bytes().rev().collect::<Vec<_>>()));
    assert_eq!(
        forward,
        PaymentHistory::rebuild(&reversed, day("2027-01-01"))
    );
    assert_eq!(
        forward,
        PaymentHistory::rebuild(&shuffled, day("2027-01-01"))
    );
    assert_eq!(forward.invoices, 20);
    assert_eq!(forward.amounts.len(), 4);
    assert_eq!(forward.settlements.recent.len(), 5);
    let last = forward.settlements.last().unwrap();
    assert!(
        all.iter()
            .all(|f| (f.settled_on, &f.due_date, &f.invoice_id)
                <= (last.settled_on, &last.due_date, &last.invoice_id))
    );
    let back = PaymentHistory::from_json(&forward.to_json()).unwrap();
    assert_eq!(back, forward);
    assert!(forward.covers(day("2027-01-01")) && !forward.covers(day("2026-12-31")));
}

#[test]
fn the_median_of_a_histogram_is_the_median_of_the_list() {
    let mut h = PaymentHistory::default();
    let days = [3i64, -10, 0, 25, 3, 7];
    for (k, d) in days.iter().enumerate() {
        let settled = collect_generator_free_plus(day("2026-03-01"), *d);
        h.add(&FoldedInvoice {
            invoice_id: format!("I{k}"),
            issue_date: day("2026-02-01"),
            due_date: day("2026-03-01"),
            amount: money("1"),
            settled_on: settled,
            plan_accepted: false,
            plan_defaulted: false,
            dispute_open: false,
        });
    }
    // Sorted: -10 0 3 3 7 25 → (3 + 3) / 2.
    assert_eq!(h.settlements.median_days_after_due(), Some(3.0));
    assert_eq!(h.settlements.max_days_after_due(), Some(25));
    assert_eq!(h.settlements.at_most_days_after_due(-7), 1);
    assert_eq!(h.settlements.late, 4);
    assert_eq!(h.settlements.total_days_late, 38);
}

fn collect_generator_free_plus(d: chrono::NaiveDate, days: i64) -> chrono::NaiveDate {
    d + chrono::Duration::days(days)
}
