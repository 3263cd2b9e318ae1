//! The compact book a sweep loads (every action as a step, full records of
//! the live ones only, and nothing older than the sweep looks back at of
//! invoices settled long ago, whose history is folded into their customer's
//! aggregate) decides exactly as the full book: over five months of daily
//! runs, the plan of each day is the same from either.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use collect_delivery::ledger::Ledger;
use collect_engine::book::Book;
use collect_engine::book::is_live;
use collect_engine::domain::ActionRecord;
use collect_engine::sweep::{PriorLateRate, SweepOptions, history_since, plan_sweep};
use collect_sqlite::store::Store;
use collect_testkit::Harness;
use collect_testkit::book::{Env, SqliteHarness, day, payment};
use collect_testkit::conformance::{DAY, World, the_book};

#[test]
fn the_compact_book_plans_as_the_full_one() {
    let dir = tempfile::tempdir().unwrap();
    let h = SqliteHarness::open(&dir.path().join("home.db")).unwrap();
    let w = pollster::block_on(World::start(&h));
    let env = Env::new();
    let (_, invoices) = the_book();
    let mut checked_terminal = false;
    let mut left_out_old = false;
    let mut folded_checks = false;
    for k in 0..150 {
        let today = day(DAY) + chrono::Duration::days(k);
        if k == 20 {
            // One invoice paid on the way: its open steps are closed.
            pollster::block_on(h.put_payment(&payment(&invoices[0], today)));
        }
        let store = h.store.lock().unwrap();
        let full = Store::load_book(&*store).unwrap();
        let since = history_since(&env.policy, today);
        let compact = store.load_compact(today, since).unwrap();
        drop(store);
        let opts = SweepOptions::default();
        let a = plan_sweep(&full, &env.policy, &PriorLateRate, today, &opts);
        let b = plan_sweep(&compact, &env.policy, &PriorLateRate, today, &opts);
        assert_eq!(a.records, b.records, "{today}");
        assert_eq!(a.messages, b.messages, "{today}");
        // The compact book holds every action as a step, full records of
        // live ones only; of an invoice settled before `since`, only the
        // steps from `since` on.
        let all: usize = full.actions.values().map(Vec::len).sum();
        let steps: usize = compact.steps.values().map(Vec::len).sum();
        let old: usize = full
            .invoices
            .iter()
            .filter(|i| full.settled_on(i).is_some_and(|d| d < since))
            .flat_map(|i| full.actions_of(&i.invoice_id))
            .filter(|a| a.decided_on < since && a.sent_on.is_none_or(|d| d < since))
            .count();
        assert_eq!(all - old, steps, "{today}");
        left_out_old |= old > 0;
        assert!(
            compact
                .actions
                .values()
                .flatten()
                .all(|r| is_live(r.status))
        );
        checked_terminal |= steps > compact.actions.values().map(Vec::len).sum::<usize>();
        // The books of the checks before sending, read for a batch of
        // customers at once, are each customer's own book, with whole
        // records only for the live actions and those the batch's
        // messages carry (every action a step).
        let store = h.store.lock().unwrap();
        let mut ids: Vec<&str> = full.customers.keys().map(String::as_str).collect();
        ids.push("no-such-customer");
        let carried: Vec<String> = full
            .actions
            .values()
            .flatten()
            .filter_map(|a| a.message_id.as_ref().map(|m| m.to_string()))
            .take(2)
            .collect();
        let carried: Vec<&str> = carried.iter().map(String::as_str).collect();
        let books = pollster::block_on(Ledger::customer_books(&*store, &ids, &carried)).unwrap();
        assert_eq!(books.len(), ids.len());
        for id in &ids {
            // The customer's whole book, folded as the sweep's read folded
            // it (the checks read the aggregate, not the folded invoices).
            let one = pollster::block_on(Ledger::customer_book(&*store, id)).unwrap();
            let mut one = collect_engine::history::fold(one, since);
            for list in one.actions.values_mut() {
                list.retain(|a| {
                    is_live(a.status)
                        || a.message_id
                            .as_ref()
                            .is_some_and(|m| carried.contains(&m.as_str()))
                });
            }
            one.actions.retain(|_, list| !list.is_empty());
            assert_eq!(shape(&one), shape(&books[*id]), "{today} {id}");
            let history = |b: &Book| {
                b.history.get(*id).cloned().map(|mut h| {
                    h.folded_before = since;
                    h
                })
            };
            assert_eq!(history(&one), history(&books[*id]), "{today} {id}");
            folded_checks |= !books[*id].history.is_empty();
        }
        drop(store);
        pollster::block_on(w.run(&h, today));
    }
    assert!(checked_terminal, "no terminal action was ever left out");
    assert!(
        left_out_old,
        "no old step of a settled invoice was ever left out"
    );
    assert!(folded_checks, "the checks never read a folded history");
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

/// The sweep reads the actions of the invoices in its book, by key, not
/// the whole table: the history of an invoice the book leaves out (as a
/// folded one is) is not read, while a live action of such an invoice
/// still is (it waits for the sweep or a person whatever its invoice).
#[test]
fn the_sweep_reads_only_the_actions_of_its_invoices() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home.db");
    let h = SqliteHarness::open(&path).unwrap();
    let w = pollster::block_on(World::start(&h));
    let env = Env::new();
    let mut today = day(DAY);
    for _ in 0..10 {
        pollster::block_on(w.run(&h, today));
        today = today.succ_opt().unwrap();
    }
    let actions = pollster::block_on(h.actions());
    let of = |invoice: &str| -> Vec<&ActionRecord> {
        actions.iter().filter(|a| a.invoice_id == invoice).collect()
    };
    let done = actions
        .iter()
        .map(|a| a.invoice_id.to_string())
        .find(|i| of(i).iter().all(|a| !is_live(a.status)))
        .expect("an invoice whose actions are all finished");
    let waiting = actions
        .iter()
        .map(|a| a.invoice_id.to_string())
        .find(|i| *i != done && of(i).iter().any(|a| is_live(a.status)))
        .expect("an invoice with a live action");
    let since = history_since(&env.policy, today);
    let before = h.store.lock().unwrap().load_compact(today, since).unwrap();
    assert!(before.steps.contains_key(&done) && before.steps.contains_key(&waiting));
    // Both left out of the book (their rows taken out of `invoices`).
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "DELETE FROM invoices WHERE invoice_id IN (?1, ?2)",
            [&done, &waiting],
        )
        .unwrap();
    let book = h.store.lock().unwrap().load_compact(today, since).unwrap();
    assert!(
        !book.steps.contains_key(&done),
        "{:?}",
        book.steps.get(&done)
    );
    let mut live: Vec<&ActionRecord> = of(&waiting);
    live.retain(|a| is_live(a.status));
    let read: Vec<&ActionRecord> = book.actions.get(&waiting).into_iter().flatten().collect();
    assert_eq!(read, live);
    // Every other invoice's actions as before.
    for (invoice, steps) in &before.steps {
        if *invoice != done && *invoice != waiting {
            assert_eq!(book.steps.get(invoice), Some(steps), "{invoice}");
        }
    }
}
