//! The compact book a sweep loads (every action as a step, full records of
//! the live ones only) decides exactly as the full book: over six weeks of
//! daily runs, the plan of each day is the same from either.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use collect_core::book::is_live;
use collect_core::store::Store;
use collect_core::sweep::{PriorLateRate, SweepOptions, plan_sweep};
use collect_core::testkit::Harness;
use collect_core::testkit::book::{Env, SqliteHarness, day, payment};
use collect_core::testkit::conformance::{DAY, World, the_book};

#[test]
fn the_compact_book_plans_as_the_full_one() {
    let dir = tempfile::tempdir().unwrap();
    let h = SqliteHarness::open(&dir.path().join("home.db")).unwrap();
    let w = pollster::block_on(World::start(&h));
    let env = Env::new();
    let (_, invoices) = the_book();
    let mut checked_terminal = false;
    for k in 0..42 {
        let today = day(DAY) + chrono::Duration::days(k);
        if k == 20 {
            // One invoice paid on the way: its open steps are closed.
            pollster::block_on(h.put_payment(&payment(&invoices[0], today)));
        }
        let store = h.store.lock().unwrap();
        let full = store.load_book().unwrap();
        let compact = store.load_compact().unwrap();
        drop(store);
        let opts = SweepOptions::default();
        let a = plan_sweep(&full, &env.policy, &PriorLateRate, today, &opts);
        let b = plan_sweep(&compact, &env.policy, &PriorLateRate, today, &opts);
        assert_eq!(a.records, b.records, "{today}");
        assert_eq!(a.messages, b.messages, "{today}");
        // The compact book holds every action as a step, full records of
        // live ones only.
        let all: usize = full.actions.values().map(Vec::len).sum();
        let steps: usize = compact.steps.values().map(Vec::len).sum();
        assert_eq!(all, steps);
        assert!(
            compact
                .actions
                .values()
                .flatten()
                .all(|r| is_live(r.status))
        );
        checked_terminal |= steps > compact.actions.values().map(Vec::len).sum::<usize>();
        pollster::block_on(w.run(&h, today));
    }
    assert!(checked_terminal, "no terminal action was ever left out");
}
