//! The desk's queue over 20,000 open tasks on SQLite: one page, sorted by
//! risk × balance over all of them, timed (`cargo test -p collect-sqlite
//! --release --test desk_queue -- --ignored --nocapture`; figures in
//! BENCHMARKS.md). Also checks, on a small home, that the queue is read
//! through the partial index of open work, not a scan of the actions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use collect_delivery::ledger::{Ledger, WorkKind};
use collect_delivery::work::{Desk, DeskSettings, Role, WorkQuery};
use collect_engine::domain::{ActionRecord, ActionStatus};
use collect_sqlite::store::{SqliteStore, Store};
use collect_testkit::Harness;
use collect_testkit::book::{SqliteHarness, customer, day, invoice};
use collect_testkit::conformance::World;
use collect_testkit::work::{person, policy_of};
use std::collections::HashMap;
use std::time::Instant;

/// The legal letter awaiting approval the suite's book gives on
/// 2027-03-19, as a template for many.
async fn a_letter(h: &SqliteHarness) -> (World, ActionRecord) {
    let w = World::start(h).await;
    w.run(h, day("2027-03-19")).await;
    let e = h.ledger().open_work(Some("approvals")).await.unwrap()[0].clone();
    let a = Ledger::customer_action(h.ledger(), "C4", &e.task_id)
        .await
        .unwrap()
        .unwrap();
    (w, a)
}

fn fill(store: &mut SqliteStore, n: usize) {
    let customers: Vec<_> = (0..n).map(|i| customer(&format!("Q{i:05}"))).collect();
    store.upsert_customers(&customers).unwrap();
    let invoices: Vec<_> = (0..n)
        .map(|i| {
            invoice(
                &format!("QI{i:05}"),
                &format!("Q{i:05}"),
                "2027-02-17",
                &format!("{}.{:02}", 100 + (i * 7919) % 90_000, i % 100),
            )
        })
        .collect();
    store.upsert_invoices(&invoices).unwrap();
}

#[test]
fn the_queue_reads_the_index_of_open_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home.db");
    let h = SqliteHarness::open(&path).unwrap();
    pollster::block_on(a_letter(&h));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let plan: Vec<String> = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT a.action_id FROM actions a WHERE \
             (a.status = 'awaiting_approval' OR (a.status = 'planned' AND a.channel = 'call'))",
        )
        .unwrap()
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        plan.iter().any(|p| p.contains("actions_work")),
        "the queue scans the actions: {plan:?}"
    );
}

#[test]
#[ignore = "a benchmark: run with --release --ignored --nocapture"]
fn a_page_of_twenty_thousand_open_tasks() {
    const N: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home.db");
    let h = SqliteHarness::open(&path).unwrap();
    let (w, template) = pollster::block_on(a_letter(&h));
    {
        let mut store = h.store.lock().unwrap();
        fill(&mut store, N);
    }
    let records: Vec<ActionRecord> = (0..N)
        .map(|i| {
            let mut a = template.clone();
            a.action_id = format!("act-q{i:05}").into();
            a.customer_id = format!("Q{i:05}").into();
            a.invoice_id = format!("QI{i:05}").into();
            a.risk = Some(((i * 31) % 100) as f64 / 100.0);
            a.status = ActionStatus::AwaitingApproval;
            a
        })
        .collect();
    pollster::block_on(
        h.ledger()
            .record_actions(&records, &HashMap::new(), day("2027-03-19")),
    )
    .unwrap();
    let policy = policy_of(&w);
    let settings = DeskSettings::default();
    let desk = Desk::new(h.ledger(), &policy, &settings, day("2027-03-19"));
    let ana = person("ana@example.com", Role::Approver);
    let q = WorkQuery {
        kind: Some(WorkKind::Approval),
        ..WorkQuery::default()
    };
    let mut times = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let page = pollster::block_on(desk.queue(&ana, &q)).unwrap();
        times.push(t.elapsed());
        assert_eq!(page.total, N + 1);
        assert_eq!(page.items.len(), 50);
    }
    times.sort();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!(
        "desk queue, {} open tasks, page of 50 by risk × balance: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        N + 1,
        ms(times[times.len() / 2]),
        ms(times[times.len() * 95 / 100]),
        ms(times[times.len() - 1])
    );
}
