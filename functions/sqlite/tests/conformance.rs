//! The delivery protocol's conformance suite against the local ledgers:
//! in memory, and SQLite on a file (DynamoDB runs the same suite in
//! `tests/tests/ledger_conformance.rs`, against the local AWS endpoint).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use collect_testkit::book::{MemoryHarness, SqliteHarness};
use collect_testkit::conformance;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn memory_ledger_conforms() {
    pollster::block_on(conformance::run_all(|| async { MemoryHarness::default() }));
    pollster::block_on(conformance::a_dead_run_is_taken_over(
        &MemoryHarness::default(),
    ));
}

#[test]
fn sqlite_ledger_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    pollster::block_on(conformance::run_all(|| {
        let path = dir
            .path()
            .join(format!("home-{}.db", n.fetch_add(1, Ordering::SeqCst)));
        async move { SqliteHarness::open(&path).unwrap() }
    }));
    let h = SqliteHarness::open(&dir.path().join("dead.db")).unwrap();
    pollster::block_on(conformance::a_dead_run_is_taken_over(&h));
}
