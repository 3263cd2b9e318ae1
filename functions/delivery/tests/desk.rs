//! The desk on the in-memory ledger: each act, each refusal, the reopen
//! rules, a bulk approval whose count changed, the roles (the conformance
//! cases of `collect_testkit::work` run here on memory too; SQLite and
//! DynamoDB run them in their conformance suites).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use collect_delivery::ledger::{Ledger, WorkKind};
use collect_delivery::work::{
    Act, CallOutcome, Desk, DeskError, DeskSettings, NextSweep, Role, Sort, WorkQuery,
    add_business_days,
};
use collect_engine::domain::{EventKind, Invoice};
use collect_testkit::Harness;
use collect_testkit::book::{MemoryHarness, day, event, invoice};
use collect_testkit::conformance::World;
use collect_testkit::work::{self as cases, person, policy_of};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

#[test]
fn the_conformance_cases_pass_on_memory() {
    block_on(cases::run_all(|| async { MemoryHarness::default() }));
}

#[test]
fn roles_allow_what_the_issue_says() {
    use Act::*;
    let may = |r: Role| {
        [Read, Approve, Call, CloseAccount, Export]
            .into_iter()
            .filter(|a| r.may(*a))
            .collect::<Vec<_>>()
    };
    assert_eq!(may(Role::Collector), [Read, Call, CloseAccount]);
    assert_eq!(may(Role::Approver), [Read, Approve, CloseAccount]);
    assert_eq!(may(Role::Auditor), [Read, Export]);
    assert_eq!(
        may(Role::Admin),
        [Read, Approve, Call, CloseAccount, Export]
    );
    assert_eq!(Role::parse(" Approver "), Some(Role::Approver));
    assert_eq!(Role::parse("boss"), None);
}

#[test]
fn business_days_skip_weekends_and_holidays() {
    // 2027-03-10 is a Wednesday.
    assert_eq!(
        add_business_days(day("2027-03-10"), 2, &[]),
        day("2027-03-12")
    );
    assert_eq!(
        add_business_days(day("2027-03-11"), 2, &[]),
        day("2027-03-15")
    );
    assert_eq!(
        add_business_days(day("2027-03-10"), 2, &[day("2027-03-11")]),
        day("2027-03-15")
    );
}

/// Three letters awaiting approval on 2027-03-19 (the legal notice of
/// three invoices 30 days overdue).
async fn three_letters() -> (MemoryHarness, World) {
    let h = MemoryHarness::default();
    let w = World::start(&h).await;
    for (id, c, amount) in [("F1", "C1", "100.00"), ("F2", "C2", "900.00")] {
        let i: Invoice = invoice(id, c, "2027-02-17", amount);
        h.put_invoice(&i).await;
    }
    w.run(&h, day("2027-03-19")).await;
    (h, w)
}

#[test]
fn the_queue_filters_sorts_pages_and_counts() {
    block_on(async {
        let (h, w) = three_letters().await;
        let policy = policy_of(&w);
        let settings = DeskSettings::default();
        let desk = Desk::new(h.ledger(), &policy, &settings, day("2027-03-19"));
        let eve = person("eve@example.com", Role::Auditor);
        let all = desk.queue(&eve, &WorkQuery::default()).await.unwrap();
        let approvals: Vec<_> = all
            .items
            .iter()
            .filter(|i| i.kind == WorkKind::Approval)
            .collect();
        assert_eq!(approvals.len(), 3, "{all:?}");
        assert!(
            all.counts.contains(&("approvals".to_string(), 3)),
            "{:?}",
            all.counts
        );
        // Balance, largest first; the row carries what the page shows.
        let q = WorkQuery {
            kind: Some(WorkKind::Approval),
            sort: Sort::Balance,
            ..WorkQuery::default()
        };
        let page = desk.queue(&eve, &q).await.unwrap();
        let balances: Vec<String> = page.items.iter().map(|i| i.balance.to_string()).collect();
        assert_eq!(balances, ["7000.00", "900.00", "100.00"]);
        assert_eq!(page.items[0].customer_name, "Customer C4");
        assert_eq!(page.items[0].days_overdue, 30);
        assert_eq!(page.items[0].currency, "USD");
        // Paged.
        let q2 = WorkQuery {
            per_page: 2,
            page: 2,
            ..q.clone()
        };
        let p2 = desk.queue(&eve, &q2).await.unwrap();
        assert_eq!((p2.total, p2.items.len()), (3, 1));
        assert_eq!(p2.items[0].balance.to_string(), "100.00");
        // Filters.
        let big = WorkQuery {
            min_balance: Some("500".parse().unwrap()),
            ..q.clone()
        };
        assert_eq!(desk.queue(&eve, &big).await.unwrap().total, 2);
        let c2 = WorkQuery {
            customer_id: Some("C2".to_string()),
            ..q.clone()
        };
        assert_eq!(desk.queue(&eve, &c2).await.unwrap().total, 1);
        // Bad paging is named.
        let bad = WorkQuery {
            per_page: 0,
            ..q.clone()
        };
        match desk.queue(&eve, &bad).await {
            Err(DeskError::Invalid { field, .. }) => assert_eq!(field, "per_page"),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn bulk_approval_refuses_a_changed_count_and_reports_each_refusal() {
    block_on(async {
        let (h, w) = three_letters().await;
        let policy = policy_of(&w);
        let settings = DeskSettings {
            next_sweep: NextSweep::Scheduled {
                at: "2027-03-20T06:00:00Z".parse().unwrap(),
            },
            ..DeskSettings::default()
        };
        let on = day("2027-03-19");
        let desk = Desk::new(h.ledger(), &policy, &settings, on);
        let ana = person("ana@example.com", Role::Approver);
        let q = WorkQuery {
            kind: Some(WorkKind::Approval),
            ..WorkQuery::default()
        };
        match desk.bulk_approve(&ana, &q, 2).await {
            Err(DeskError::CountChanged { confirmed, found }) => {
                assert_eq!((confirmed, found), (2, 3))
            }
            other => panic!("{other:?}"),
        }
        let bo = person("bo@example.com", Role::Collector);
        assert!(matches!(
            desk.bulk_approve(&bo, &q, 3).await,
            Err(DeskError::NotAllowed { .. })
        ));
        // F2 disputed since the sweep decided: refused with the reason.
        h.put_event(&event("F2", on, EventKind::DisputeOpened))
            .await;
        let out = desk.bulk_approve(&ana, &q, 3).await.unwrap();
        assert_eq!(out.approved.len(), 2, "{out:?}");
        assert_eq!(out.refused.len(), 1, "{out:?}");
        assert!(out.refused[0].1.contains("disputed"), "{out:?}");
        assert!(
            out.approved[0]
                .said
                .ends_with("goes out with the next scheduled sweep, 2027-03-20 06:00 UTC"),
            "{out:?}"
        );
        let left = h.ledger().open_work(Some("approvals")).await.unwrap();
        assert_eq!(left.len(), 1);
    });
}

#[test]
fn reject_needs_a_reason_and_calls_are_not_approved() {
    block_on(async {
        let (h, w) = three_letters().await;
        let policy = policy_of(&w);
        let settings = DeskSettings::default();
        let on = day("2027-03-19");
        let desk = Desk::new(h.ledger(), &policy, &settings, on);
        let ana = person("ana@example.com", Role::Approver);
        let letter = h.ledger().open_work(Some("approvals")).await.unwrap()[0].clone();
        match desk
            .reject(&ana, &letter.customer_id, &letter.task_id, "  ")
            .await
        {
            Err(DeskError::Invalid { field, .. }) => assert_eq!(field, "reason"),
            other => panic!("{other:?}"),
        }
        let out = desk
            .reject(
                &ana,
                &letter.customer_id,
                &letter.task_id,
                "customer paid by phone",
            )
            .await
            .unwrap();
        assert!(out.said.contains("rejected by ana@example.com"), "{out:?}");
        // An approver cannot work a call; a collector cannot approve.
        let admin = person("root@example.com", Role::Admin);
        let view = desk
            .task(&admin, &letter.customer_id, &letter.task_id)
            .await
            .unwrap();
        assert!(view.reopenable);
        let bo = person("bo@example.com", Role::Collector);
        assert!(matches!(
            desk.reopen(&bo, &letter.customer_id, &letter.task_id, "x")
                .await,
            Err(DeskError::NotAllowed { .. })
        ));
        assert!(matches!(
            desk.record_call(
                &ana,
                &letter.customer_id,
                &letter.task_id,
                &CallOutcome::NoAnswer { note: None }
            )
            .await,
            Err(DeskError::NotAllowed { .. })
        ));
        assert!(matches!(
            desk.record_call(
                &admin,
                &letter.customer_id,
                &letter.task_id,
                &CallOutcome::NoAnswer { note: None }
            )
            .await,
            Err(DeskError::Invalid {
                field: "outcome",
                ..
            })
        ));
        assert!(matches!(
            desk.task(&admin, "C1", "act-nope").await,
            Err(DeskError::NoTask { .. })
        ));
    });
}

#[test]
fn a_wrong_contact_holds_the_address_with_the_new_details() {
    block_on(async {
        let h = MemoryHarness::default();
        let w = World::start(&h).await;
        let on = day(collect_testkit::conformance::DAY);
        w.run(&h, on).await;
        let call = h.ledger().open_work(Some("collections")).await.unwrap()[0].clone();
        let policy = policy_of(&w);
        let settings = DeskSettings::default();
        let desk = Desk::new(h.ledger(), &policy, &settings, on);
        let bo = person("bo@example.com", Role::Collector);
        let bad = CallOutcome::WrongContact {
            email: Some("not an address".to_string()),
            phone: None,
            note: None,
        };
        match desk.record_call(&bo, "C4", &call.task_id, &bad).await {
            Err(DeskError::Invalid { field, .. }) => assert_eq!(field, "email"),
            other => panic!("{other:?}"),
        }
        let good = CallOutcome::WrongContact {
            email: Some("ap@c4.example.com".to_string()),
            phone: Some("+49 30 1234567".to_string()),
            note: None,
        };
        let out = desk
            .record_call(&bo, "C4", &call.task_id, &good)
            .await
            .unwrap();
        assert_eq!(out.task_id, "hold-C4");
        let contacts = h.ledger().open_work(Some("contacts")).await.unwrap();
        assert_eq!(contacts.len(), 1);
        assert!(
            contacts[0].label.contains("ap@c4.example.com"),
            "{contacts:?}"
        );
        let view = desk.task(&bo, "C4", "hold-C4").await.unwrap();
        assert_eq!(view.kind, WorkKind::FixContact);
        let customer = desk.customer(&bo, "C4").await.unwrap();
        assert_eq!(customer.holds.len(), 1);
        assert!(!customer.timeline.is_empty());
        assert!(
            customer
                .timeline
                .iter()
                .flat_map(|t| &t.trail)
                .any(|l| l.by.as_deref() == Some("bo@example.com"))
        );
    });
}

#[test]
fn a_call_reached_is_done_and_leaves_the_queue_once() {
    block_on(async {
        let h = MemoryHarness::default();
        let w = World::start(&h).await;
        let on = day(collect_testkit::conformance::DAY);
        w.run(&h, on).await;
        let call = h.ledger().open_work(Some("collections")).await.unwrap()[0].clone();
        let policy = policy_of(&w);
        let settings = DeskSettings::default();
        let desk = Desk::new(h.ledger(), &policy, &settings, on);
        let bo = person("bo@example.com", Role::Collector);
        let reached = CallOutcome::Reached {
            note: Some("talked to AP; payment run on Friday".to_string()),
        };
        let out = desk
            .record_call(&bo, &call.customer_id, &call.task_id, &reached)
            .await
            .unwrap();
        assert!(out.said.contains("reached by bo@example.com"), "{out:?}");
        assert!(out.said.contains("the call is done"), "{out:?}");
        let open = h.ledger().open_work(Some("collections")).await.unwrap();
        assert!(open.iter().all(|e| e.task_id != call.task_id), "{open:?}");
        // Recorded once: a second person working the same call is told.
        let ana = person("ana@example.com", Role::Collector);
        assert!(
            desk.record_call(&ana, &call.customer_id, &call.task_id, &reached)
                .await
                .is_err()
        );
        let view = desk
            .task(&bo, &call.customer_id, &call.task_id)
            .await
            .unwrap();
        assert!(
            view.trail
                .iter()
                .any(|l| l.by.as_deref() == Some("bo@example.com")),
            "{:?}",
            view.trail
        );
    });
}
