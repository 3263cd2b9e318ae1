//! Two runs of one home at the same moment, on two threads with their own
//! connections to one SQLite file (as two `collect run` processes): one
//! sweeps, the other is refused (or, starting after the first ended, finds
//! nothing to do). Never a message twice, never an action logged twice.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use collect_delivery::delivery::{RunError, RunRequest};
use collect_delivery::ledger::{LeaseHolder, Scope};
use collect_sqlite::store::{SqliteStore, Store};
use collect_testkit::Harness;
use collect_testkit::book::{Env, SqliteHarness, day};
use collect_testkit::conformance::{DAY, assert_promises, load_book};
use collect_testkit::mailer::RecordingMailer;
use std::sync::Barrier;

#[test]
fn two_runs_at_once_send_once() {
    for round in 0..12 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home.db");
        let h = SqliteHarness::open(&path).unwrap();
        pollster::block_on(load_book(&h));
        let env = Env::new();
        let mailer = RecordingMailer::default();
        let barrier = Barrier::new(2);
        let results: Vec<Result<usize, RunError>> = std::thread::scope(|s| {
            let runs: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let ledger = SqliteStore::open(&path).unwrap();
                        let now = chrono::Utc::now;
                        let req = RunRequest {
                            scope: Scope::All,
                            day: day(DAY),
                            dry_run: false,
                            holder: LeaseHolder::this_process(chrono::Utc::now()),
                            now: &now,
                            faults: None,
                            keep_records: usize::MAX,
                        };
                        barrier.wait();
                        env.sweeper()
                            .run_blocking(&ledger, &mailer, &req)
                            .map(|r| r.sent.len())
                    })
                })
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let sent: usize = results.iter().filter_map(|r| r.as_ref().ok()).sum();
        assert_eq!(sent, 3, "round {round}: {results:?}");
        for r in &results {
            if let Err(e) = r {
                assert!(
                    matches!(e, RunError::Busy { .. }),
                    "round {round}: the second run failed otherwise: {e}"
                );
                assert!(
                    e.to_string()
                        .starts_with("another sweep of this home is running (pid ")
                );
            }
        }
        assert_eq!(mailer.accepted_messages().len(), 3);
        pollster::block_on(assert_promises(&h, &mailer));
        // Each action's trail has each status once.
        let store = SqliteStore::open(&path).unwrap();
        for a in pollster::block_on(h.actions()) {
            let log = store.action_log(&a.action_id).unwrap();
            let mut statuses: Vec<&str> = log.iter().map(|l| l.status.as_str()).collect();
            let n = statuses.len();
            statuses.dedup();
            assert_eq!(
                statuses.len(),
                n,
                "round {round}: {} logged {log:?}",
                a.action_id
            );
        }
    }
}
