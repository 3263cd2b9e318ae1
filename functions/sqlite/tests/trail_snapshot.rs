//! The audit trail reads back exactly as it did before the trail was
//! stored compactly (the routine lines as columns of the action's row):
//! a run with every kind of transition — recorded, deferred, taken for
//! sending, put back (refused for now), deferred for a refused recipient,
//! sent, approved by a person, a person's note on a call, skipped when
//! paid — and every action's trail, line by line, compared with the
//! snapshot `snapshots/trail_every_transition.json`, written by the
//! release before the change (schema 3, one row per line). (The in-memory
//! ledger is not compared: it writes the record's `decided_by` as the `by`
//! of a line `record_actions` writes, where SQLite writes none.)
//!
//! `UPDATE_TRAIL_SNAPSHOT=1` writes the snapshot again (only when the
//! history itself is meant to change).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chrono::NaiveDate;
use collect_delivery::ledger::{Ledger, TrailNote};
use collect_delivery::mailer::FailureClass;
use collect_engine::domain::ActionStatus;
use collect_sqlite::store::{SqliteStore, Store};
use collect_testkit::Harness;
use collect_testkit::book::{SqliteHarness, customer, day, invoice, payment};
use collect_testkit::conformance::{DAY, World};
use collect_testkit::mailer::{Fault, Refuse};
use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// Drives a run with every kind of transition (see the module's docs).
async fn scenario<H: Harness>(h: &H) {
    let w = World::start(h).await;
    h.put_customer(&customer("C6")).await;
    for (id, due) in [("F1", "2027-02-17"), ("F2", "2027-02-24"), ("F3", DAY)] {
        h.put_invoice(&invoice(id, "C6", due, "100.00")).await;
    }
    // Refused for now: taken for sending, then put back.
    w.mailer.refuse(Refuse::ForNow);
    w.run(h, day(DAY)).await;
    // A refused recipient: deferred; the others go out.
    w.mailer.refuse(Refuse::Nothing);
    w.mailer
        .fail(Fault::new(FailureClass::Recipient).to("c3@example.com"));
    w.run(h, day(DAY)).await;
    w.mailer.heal();
    let mut noted = std::collections::HashSet::new();
    let mut on: NaiveDate = day(DAY);
    for n in 1..=40 {
        on = on.succ_opt().unwrap();
        if n == 12 {
            // Paid: what waits on the invoice is skipped.
            let (_, invoices) = collect_testkit::conformance::the_book();
            h.put_payment(&payment(&invoices[1], on)).await;
        }
        w.run(h, on).await;
        for a in h.actions().await {
            match a.status {
                ActionStatus::AwaitingApproval => {
                    let mut next = a.clone();
                    next.status = ActionStatus::Approved;
                    next.decided_by = Some("ana@example.com".to_string());
                    next.decided_at = Some(on);
                    next.note = Some(format!("approved by ana@example.com on {on}"));
                    assert!(
                        h.ledger()
                            .move_action(&next, &[ActionStatus::AwaitingApproval], on)
                            .await
                            .unwrap()
                    );
                }
                ActionStatus::Planned
                    if a.channel == collect_engine::domain::Channel::Call
                        && noted.insert(a.action_id.clone()) =>
                {
                    let note = TrailNote {
                        by: "bo@example.com".to_string(),
                        note: format!("no answer; call again on {}", on.succ_opt().unwrap()),
                        call_again_on: on.succ_opt(),
                    };
                    assert!(
                        h.ledger()
                            .note_action(&a, ActionStatus::Planned, &note, on)
                            .await
                            .unwrap()
                    );
                }
                _ => {}
            }
        }
    }
}

/// Every action recorded, by id: the record as JSON, then its trail, one
/// line per entry (`seq day status by risk note`).
async fn dump<H: Harness>(h: &H) -> String {
    let mut actions = h.actions().await;
    actions.sort_by(|a, b| a.action_id.cmp(&b.action_id));
    let mut out = String::new();
    for a in &actions {
        out.push_str(&serde_json::to_string(a).unwrap());
        out.push('\n');
        for e in h.ledger().trail(a).await.unwrap() {
            out.push_str(&format!(
                "  {} {} {} {} {} {}\n",
                e.seq,
                e.day,
                e.status,
                e.by.as_deref().unwrap_or("-"),
                e.risk.map_or("-".to_string(), |r| format!("{r:?}")),
                e.note.as_deref().unwrap_or("-")
            ));
        }
    }
    out
}

fn snapshot_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/trail_every_transition.txt")
}

/// The home the scenario left, as the release before the change wrote it
/// (schema 3: every line a row of `action_log`, keyed by action id).
fn old_home_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/home_schema3_every_transition.db")
}

fn expected() -> String {
    let path = snapshot_path();
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (UPDATE_TRAIL_SNAPSHOT=1 writes it)",
            path.display()
        )
    })
}

/// `actual` against the snapshot, with the first lines that differ.
fn assert_snapshot(actual: &str, what: &str) {
    let expected = expected();
    if actual != expected {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .filter(|(a, b)| a != b)
            .take(10)
            .map(|(a, b)| format!("- {a}\n+ {b}"))
            .collect();
        panic!(
            "{what}: the trail differs from the snapshot ({} lines, {} expected):\n{}",
            actual.lines().count(),
            expected.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn the_trail_reads_as_it_did_line_for_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home.db");
    let h = SqliteHarness::open(&path).unwrap();
    pollster::block_on(scenario(&h));
    let sqlite = pollster::block_on(dump(&h));
    if std::env::var_os("UPDATE_TRAIL_SNAPSHOT").is_some() {
        let snapshot = snapshot_path();
        std::fs::create_dir_all(snapshot.parent().unwrap()).unwrap();
        std::fs::write(&snapshot, &sqlite).unwrap();
        let old = old_home_path();
        std::fs::create_dir_all(old.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&old);
        Connection::open(&path)
            .unwrap()
            .execute("VACUUM INTO ?1", [old.to_str().unwrap()])
            .unwrap();
    }
    let expected = expected();
    assert!(
        expected.lines().filter(|l| l.starts_with("  ")).count() > 40,
        "the scenario made too little history to compare"
    );
    for status in [
        "sending", "sent", "planned", "deferred", "approved", "skipped",
    ] {
        assert!(
            expected.contains(&format!(" {status} ")),
            "no `{status}` line in the snapshot"
        );
    }
    assert!(expected.contains(" bo@example.com "), "no person's note");
    assert_snapshot(&sqlite, "sqlite");
    // The routine lines are kept in the rows: no first line and no `sent`
    // line is a row of `action_log`, only the rest (notes, deferrals, a
    // second `sending`…).
    let conn = Connection::open(&path).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT COUNT(*) FROM action_log WHERE seq = 1 OR status = 'sent'"),
        0
    );
    // Exactly: every line is a row but an action's first line, its first
    // `sending` and its `sent`.
    let mut rows = 0;
    for action in sqlite.split('{').skip(1) {
        let lines: Vec<&str> = action.lines().skip(1).collect();
        let status = |s: &str| lines.iter().any(|l| l.split(' ').nth(4) == Some(s));
        rows += lines.len() as i64 - 1 - i64::from(status("sending")) - i64::from(status("sent"));
    }
    assert_eq!(count("SELECT COUNT(*) FROM action_log"), rows);
    // `collect audit` and `explain` read by action id alone, on a new
    // connection: the same lines.
    let store = SqliteStore::open(&path).unwrap();
    for a in pollster::block_on(h.actions()) {
        let by_id = store.action_log(&a.action_id).unwrap();
        let through_port = pollster::block_on(h.ledger().trail(&a)).unwrap();
        assert_eq!(by_id, through_port, "{}", a.action_id);
    }
}

/// A home of the release before (schema 3) opens with every record and
/// every line of its trails as they were, and goes on from there: the
/// next days' lines follow the old ones.
#[test]
fn an_old_home_is_upgraded_with_every_record_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home.db");
    std::fs::copy(old_home_path(), &path).unwrap();
    {
        let conn = Connection::open(&path).unwrap();
        let keyed_by_customer: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('action_log') WHERE name = 'customer_id'")
            .unwrap()
            .exists([])
            .unwrap();
        assert!(!keyed_by_customer, "the fixture is not an old home");
    }
    let h = SqliteHarness::open(&path).unwrap();
    assert_snapshot(&pollster::block_on(dump(&h)), "upgraded home");
    let before: Vec<_> = pollster::block_on(async {
        let mut out = Vec::new();
        for a in h.actions().await {
            out.push((a.clone(), h.ledger().trail(&a).await.unwrap()));
        }
        out
    });
    // Opened again: nothing more to upgrade, nothing changed.
    drop(h);
    let h = SqliteHarness::open(&path).unwrap();
    assert_snapshot(&pollster::block_on(dump(&h)), "upgraded home, opened again");
    // The next days: new lines are numbered after the old ones.
    let w = pollster::block_on(World::start(&h));
    let mut on = day("2027-04-20");
    for _ in 0..10 {
        pollster::block_on(w.run(&h, on));
        on = on.succ_opt().unwrap();
    }
    let mut grew = 0;
    for (a, old) in before {
        let now = pollster::block_on(h.ledger().trail(&a)).unwrap();
        assert_eq!(now.get(..old.len()), Some(&old[..]), "{}", a.action_id);
        let seqs: Vec<i64> = now.iter().map(|e| e.seq).collect();
        let expected: Vec<i64> = (1..=now.len() as i64).collect();
        assert_eq!(seqs, expected, "{}", a.action_id);
        grew += now.len() - old.len();
    }
    assert!(grew > 0, "the days after the upgrade added no line");
}
