//! The compact book a sweep loads (every action as a step, full records of
//! the live ones only) decides exactly as the full book: over six weeks of
//! daily runs, the plan of each day is the same from either.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use collect_core::book::Book;
use collect_core::book::is_live;
use collect_core::ledger::Ledger;
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
        let full = Store::load_book(&*store).unwrap();
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
        // The books of the checks before sending, read for a batch of
        // customers at once, are each customer's own book.
        let store = h.store.lock().unwrap();
        let mut ids: Vec<&str> = full.customers.keys().map(String::as_str).collect();
        ids.push("no-such-customer");
        let books = pollster::block_on(Ledger::customer_books(&*store, &ids)).unwrap();
        assert_eq!(books.len(), ids.len());
        for id in &ids {
            let one = pollster::block_on(Ledger::customer_book(&*store, id)).unwrap();
            assert_eq!(shape(&one), shape(&books[*id]), "{today} {id}");
        }
        drop(store);
        pollster::block_on(w.run(&h, today));
    }
    assert!(checked_terminal, "no terminal action was ever left out");
}

/// A book's contents in a fixed order (its maps sorted), to compare two.
fn shape(b: &Book) -> Vec<String> {
    fn sorted<V: std::fmt::Debug>(m: &std::collections::HashMap<String, V>) -> Vec<String> {
        let mut v: Vec<String> = m.iter().map(|(k, v)| format!("{k}: {v:?}")).collect();
        v.sort();
        v
    }
    let mut out = sorted(&b.customers);
    out.push(format!("{:?}", b.invoices));
    out.extend(sorted(&b.payments));
    out.extend(sorted(&b.events));
    out.extend(sorted(&b.actions));
    out.extend(sorted(&b.steps));
    out.push(format!("{:?}", b.mail_events));
    out
}
