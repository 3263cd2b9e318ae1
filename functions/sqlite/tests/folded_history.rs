//! The customers' payment history folded on SQLite (issue 22): a sweep's
//! book (`load_compact`) folds the settled invoices wholly before its
//! `since` into per-customer aggregates (`customer_history`), marks them
//! folded and never reads them again; late data on a folded invoice
//! unfolds its customer, and the next sweep folds it again from the
//! records. Over months of a generated book with settled history, every
//! day's plan, every customer's stats and every open invoice's features are
//! the same from the folded book as from the full records.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chrono::{Days, NaiveDate};
use collect_delivery::ledger::Ledger;
use collect_engine::book::Book;
use collect_engine::domain::{EventKind, Invoice};
use collect_engine::history::{self, PaymentHistory};
use collect_engine::sweep::{PriorLateRate, SweepOptions, history_since, plan_sweep};
use collect_generator::{Spec, generate};
use collect_sqlite::store::{SqliteStore, Store};
use collect_testkit::Harness;
use collect_testkit::book::{
    Clock, Env, SqliteHarness, customer, day, event, invoice, payment, payment_of,
};
use collect_testkit::mailer::RecordingMailer;
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The invoices marked folded in the file, and the stored aggregates.
fn stored(path: &Path) -> (BTreeSet<String>, BTreeMap<String, PaymentHistory>) {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT invoice_id FROM invoices WHERE folded = 1")
        .unwrap();
    let folded = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut stmt = conn
        .prepare("SELECT customer_id, body FROM customer_history")
        .unwrap();
    let histories = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(|r| {
            let (c, body) = r.unwrap();
            (c, PaymentHistory::from_json(&body).unwrap())
        })
        .collect();
    (folded, histories)
}

/// Every customer's stats and every invoice's features, as text (so two
/// books compare exactly, floating point bits included).
fn facts(book: &Book, day: NaiveDate) -> Vec<String> {
    let mut out: Vec<String> = book
        .customers
        .keys()
        .map(|c| format!("{c}: {:?}", book.customer_stats(c, day)))
        .collect();
    for i in book.invoices.iter().filter(|i| book.is_open(i, day)) {
        let row: Vec<Option<u64>> = collect_model::features::compute(book, i, day)
            .into_iter()
            .map(|v| v.map(f64::to_bits))
            .collect();
        out.push(format!("{}: {row:?}", i.invoice_id));
    }
    out.sort();
    out
}

#[test]
fn folded_sweeps_plan_as_the_full_book_day_after_day() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home.db");
    let h = SqliteHarness::open(&path).unwrap();
    let start = day("2027-03-10");
    let generated = generate(&Spec {
        history: (4, 12),
        ..Spec::open_book(22, 240, start)
    });
    let snapshot = generated.as_of(start);
    {
        let mut s = h.store.lock().unwrap();
        s.upsert_customers(&snapshot.customers).unwrap();
        s.upsert_invoices(&snapshot.invoices).unwrap();
        s.upsert_payments(&snapshot.payments).unwrap();
        s.insert_events(&snapshot.events).unwrap();
    }
    let mut erp = generated.history(start);
    let env = Env::new();
    let mailer = RecordingMailer::default();
    let opts = SweepOptions::default();
    let mut most_folded = 0;
    let mut folded_later = false;
    for k in 0..100u64 {
        let today = start + Days::new(k);
        if k > 0 {
            let changes = erp.day(today);
            let mut s = h.store.lock().unwrap();
            s.upsert_invoices(&changes.invoices).unwrap();
            s.upsert_payments(&changes.payments).unwrap();
            s.insert_events(&changes.events).unwrap();
        }
        let since = history_since(&env.policy, today);
        let full = Store::load_book(&*h.store.lock().unwrap()).unwrap();
        assert!(full.history.is_empty(), "the full book has no aggregate");
        let (before, _) = stored(&path);
        let compact = h.ledger().load_compact(today, since).unwrap();
        let (folded, histories) = stored(&path);
        // The sweep's book holds no folded invoice, and the aggregates it
        // reads are the stored ones.
        assert!(
            compact
                .invoices
                .iter()
                .all(|i| !folded.contains(&i.invoice_id)),
            "{today}"
        );
        assert!(compact.payments.keys().all(|i| !folded.contains(i)));
        assert!(compact.events.keys().all(|i| !folded.contains(i)));
        assert!(compact.steps.keys().all(|i| !folded.contains(i)));
        let held: BTreeMap<String, PaymentHistory> = compact
            .history
            .iter()
            .map(|(c, h)| (c.clone(), h.clone()))
            .collect();
        assert_eq!(held, histories, "{today}");
        // Folded now and before: the same aggregates as a fold of the
        // full records.
        let refolded = history::fold(full.clone(), since);
        for (c, h) in &histories {
            let mut h = h.clone();
            let mut r = refolded.history.get(c).cloned().unwrap_or_default();
            // The cutoff differs by the days since the first fold.
            (h.folded_before, r.folded_before) = (since, since);
            assert_eq!(h, r, "{today} {c}");
        }
        folded_later |= folded.len() > before.len() && !before.is_empty();
        most_folded = most_folded.max(folded.len());

        let a = plan_sweep(&full, &env.policy, &PriorLateRate, today, &opts);
        let b = plan_sweep(&compact, &env.policy, &PriorLateRate, today, &opts);
        assert_eq!(a.records, b.records, "{today}");
        assert_eq!(a.messages, b.messages, "{today}");
        let (a, b) = (facts(&full, today), facts(&compact, today));
        let differ: Vec<_> = a.iter().zip(&b).filter(|(x, y)| x != y).take(3).collect();
        assert!(
            a.len() == b.len() && differ.is_empty(),
            "{today}: {differ:#?}"
        );

        // The day's real run (which folds nothing more: the same `since`).
        env.run(&h, &mailer, &Clock::at(today), today, None)
            .await_on()
            .unwrap_or_else(|e| panic!("the run of {today}: {e}"));
        assert_eq!(stored(&path).0, folded, "{today}");
    }
    assert!(most_folded > 50, "only {most_folded} invoices ever folded");
    assert!(folded_later, "no invoice folded after the first fold");
}

/// `.await` in a synchronous test.
trait AwaitOn: std::future::Future + Sized {
    fn await_on(self) -> Self::Output {
        pollster::block_on(self)
    }
}
impl<F: std::future::Future> AwaitOn for F {}

/// C1's settled invoices, one of them long ago, and one open invoice.
fn old_customer(store: &mut SqliteStore) -> (Invoice, Invoice, Invoice) {
    store.upsert_customers(&[customer("C1")]).unwrap();
    let old = invoice("OLD-1", "C1", "2026-06-30", "400.00");
    let older = invoice("OLD-0", "C1", "2026-05-31", "250.00");
    let open = invoice("NEW-1", "C1", "2027-03-31", "900.00");
    store
        .upsert_invoices(&[old.clone(), older.clone(), open.clone()])
        .unwrap();
    store
        .upsert_payments(&[
            payment(&old, day("2026-07-20")),
            payment(&older, day("2026-05-29")),
        ])
        .unwrap();
    (older, old, open)
}

/// What the full records fold to before `cutoff`, for C1.
fn expected(store: &SqliteStore, cutoff: NaiveDate) -> PaymentHistory {
    let full = Store::load_book(store).unwrap();
    history::fold(full, cutoff).history["C1"].clone()
}

#[test]
fn late_data_on_a_folded_invoice_unfolds_the_customer_and_folds_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home.db");
    let mut store = SqliteStore::open(&path).unwrap();
    let (older, old, open) = old_customer(&mut store);
    let today = day("2027-03-10");
    let since = day("2026-12-08");
    let book = store.load_compact(today, since).unwrap();
    let (folded, histories) = stored(&path);
    assert_eq!(folded, BTreeSet::from(["OLD-0".into(), "OLD-1".into()]));
    assert_eq!(book.invoices, vec![open.clone()]);
    let first = histories["C1"].clone();
    assert_eq!(first, expected(&store, since));
    assert_eq!(first.invoices, 2);
    assert_eq!(first.settlements.late, 1);

    // The same records again change nothing (an export sent in full).
    store
        .upsert_invoices(&[old.clone(), older.clone(), open.clone()])
        .unwrap();
    store
        .upsert_payments(&[payment(&old, day("2026-07-20"))])
        .unwrap();
    assert_eq!(
        stored(&path).0.len(),
        2,
        "an unchanged record unfolds nothing"
    );

    // A payment of the older invoice comes late: it was paid late in part.
    store
        .upsert_payments(&[payment_of("OLD-0", day("2026-06-15"), "0.00")])
        .unwrap();
    let (folded, histories) = stored(&path);
    assert!(folded.is_empty() && histories.is_empty(), "C1 unfolded");
    let book = store.load_compact(today, since).unwrap();
    assert_eq!(book.invoices, vec![open.clone()]);
    let (folded, histories) = stored(&path);
    assert_eq!(folded.len(), 2);
    // Folded again: as if the payment had always been there (here it
    // changes nothing of the history: the invoice was settled before).
    assert_eq!(histories["C1"], expected(&store, since));
    assert_eq!(histories["C1"], first);

    // A correction of the older invoice's amount: now paid in full only by
    // the late payment's day... it unfolds, and folds to the new truth.
    let mut bigger = older.clone();
    bigger.amount = "260.00".parse().unwrap();
    store.upsert_invoices(&[bigger]).unwrap();
    assert!(stored(&path).1.is_empty(), "an invoice changed: unfolded");
    store
        .upsert_payments(&[payment_of("OLD-0", day("2026-06-15"), "10.00")])
        .unwrap();
    store.load_compact(today, since).unwrap();
    let (folded, histories) = stored(&path);
    assert_eq!(folded.len(), 2);
    assert_eq!(histories["C1"], expected(&store, since));
    assert_ne!(histories["C1"], first, "settled later now");
    assert_eq!(histories["C1"].settlements.late, 2);

    // An event on a folded invoice (a dispute reported late, dated before
    // the cutoff) unfolds it too; one dated after keeps it in the book.
    let late = event("OLD-1", day("2026-11-02"), EventKind::DisputeOpened);
    store.insert_events(&[late]).unwrap();
    assert!(stored(&path).1.is_empty(), "an event: unfolded");
    let book = store.load_compact(today, since).unwrap();
    assert_eq!(histories_of(&path)["C1"], expected(&store, since));
    assert_eq!(book.invoices, vec![open.clone()]);
    let after = event("OLD-1", day("2027-01-05"), EventKind::DisputeClosed);
    store.insert_events(&[after]).unwrap();
    let book = store.load_compact(today, since).unwrap();
    assert_eq!(stored(&path).0, BTreeSet::from(["OLD-0".into()]));
    assert_eq!(book.invoices.len(), 2, "OLD-1 is read again");
    let full = Store::load_book(&store).unwrap();
    assert_eq!(
        book.customer_stats("C1", today),
        full.customer_stats("C1", today)
    );

    // Through the ledger port (the events Lambda's path) as well.
    let mut store = SqliteStore::open(&path).unwrap();
    let later = since + Days::new(60);
    store.load_compact(today + Days::new(60), later).unwrap();
    assert_eq!(stored(&path).0.len(), 2, "both folded again");
    let late = event("OLD-0", day("2026-07-01"), EventKind::DisputeOpened);
    pollster::block_on(Ledger::record_events(&store, "C1", &[late])).unwrap();
    assert!(stored(&path).0.is_empty());
    store = SqliteStore::open(&path).unwrap();
    store.load_compact(today + Days::new(60), later).unwrap();
    assert_eq!(histories_of(&path)["C1"], expected(&store, later));
}

fn histories_of(path: &Path) -> BTreeMap<String, PaymentHistory> {
    stored(path).1
}

/// A read that looks back further than the stored fold (a longer cap
/// window, an earlier day) reads that customer whole, without its
/// aggregate, and folds nothing of it; the checks before sending read the
/// aggregate only when it covers the last sweep's look-back.
#[test]
fn a_read_further_back_than_the_fold_reads_the_customer_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home.db");
    let mut store = SqliteStore::open(&path).unwrap();
    let (_, _, open) = old_customer(&mut store);
    let today = day("2027-03-10");
    let since = day("2026-12-08");
    store.load_compact(today, since).unwrap();
    let (folded, histories) = stored(&path);
    assert_eq!(folded.len(), 2);
    // Read from an earlier `since`: whole, and the stored fold unchanged.
    let earlier = day("2026-07-01");
    let book = store.load_compact(today, earlier).unwrap();
    assert!(book.history.is_empty() || book.history["C1"].invoices == 1);
    assert_eq!(stored(&path), (folded.clone(), histories.clone()));
    let full = Store::load_book(&store).unwrap();
    assert_eq!(
        book.customer_stats("C1", today),
        full.customer_stats("C1", today)
    );
    // The checks of that run read C1 whole as well; after a sweep whose
    // look-back the fold covers, with the aggregate.
    let books = pollster::block_on(Ledger::customer_books(&store, &["C1", "C9"], &[])).unwrap();
    assert_eq!(books["C1"].invoices.len(), 3);
    assert!(books["C1"].history.is_empty());
    assert!(books["C9"].invoices.is_empty());
    store.load_compact(today, since).unwrap();
    let books = pollster::block_on(Ledger::customer_books(&store, &["C1"], &[])).unwrap();
    assert_eq!(books["C1"].invoices, vec![open]);
    assert_eq!(books["C1"].history["C1"], histories["C1"]);
    assert_eq!(
        books["C1"].customer_stats("C1", today),
        full.customer_stats("C1", today)
    );
    // The one customer's whole book (explain, the desk) is whole.
    let one = pollster::block_on(Ledger::customer_book(&store, "C1")).unwrap();
    assert_eq!(one.invoices.len(), 3);
    assert!(one.history.is_empty());
    // A read of a short period (the audit page: `since` close to `day`)
    // folds no further than any sweep of `day` looks back.
    let fresh = tempfile::tempdir().unwrap();
    let mut other = SqliteStore::open(&fresh.path().join("home.db")).unwrap();
    old_customer(&mut other);
    other.load_compact(today, today).unwrap();
    let (_, h) = stored(&fresh.path().join("home.db"));
    assert!(h["C1"].folded_before <= today - Days::new(91));
}
