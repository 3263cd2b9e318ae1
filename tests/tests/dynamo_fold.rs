#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The fold on DynamoDB (`collect_aws::dynamo`'s `fold`), on the local
//! endpoint: a sweep reads per customer its live items and its payment
//! history; settled invoices wholly before the sweep's `since` move out of
//! the part of the partition it reads. Here:
//! - over several days of a book with a year of settled history, the
//!   folded book decides exactly what the whole history decides (every
//!   planned record and message, every customer's stats), its aggregate is
//!   the engine's own fold of the whole history, and no record or trail
//!   line is lost;
//! - a fold stopped after each of its steps (a crash point) loses and
//!   duplicates nothing, and the next sweep finishes it;
//! - late data naming a folded invoice unfolds it, and the next sweep
//!   rebuilds the aggregate exactly; a live record of a folded invoice
//!   written behind a fold's back (a race) is found and unfolded too.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Days, NaiveDate};
use collect_aws::dynamo::{Dynamo, FoldFault, FoldStep};
use collect_aws::keys::{DOC, KIND, LIVE_SK, PK, SK};
use collect_delivery::ledger::{Ledger, Scope, StoredMessage};
use collect_e2e::Fixture;
use collect_engine::book::Book;
use collect_engine::domain::{ActionRecord, Customer, Event, EventKind, Invoice, Payment};
use collect_engine::history;
use collect_engine::sweep::{PriorLateRate, SweepOptions, history_since, plan_sweep};
use collect_testkit::Harness;
use collect_testkit::book::{
    Clock, Env, customer, day, event, invoice, money, payment, payment_of,
};
use collect_testkit::mailer::RecordingMailer;

const SHARDS: u32 = 2;
const CUSTOMERS: [&str; 4] = ["C1", "C2", "C3", "C4"];

struct DynamoHarness {
    dynamo: Dynamo,
}

impl DynamoHarness {
    async fn new(prefix: &str) -> DynamoHarness {
        DynamoHarness {
            dynamo: Fixture::table(prefix, SHARDS).await.folding_every_scope(),
        }
    }

    /// Every item of a kind, decoded, once per record: a folded copy only
    /// when its live item is gone.
    async fn all<T: serde::de::DeserializeOwned>(&self, kind: &str) -> Vec<T> {
        let mut by_key: BTreeMap<(String, String), (bool, String)> = BTreeMap::new();
        for it in scan(&self.dynamo).await {
            if it.get(KIND) != Some(&AttributeValue::S(kind.to_string())) {
                continue;
            }
            let text = |n: &str| match it.get(n) {
                Some(AttributeValue::S(v)) => v.clone(),
                _ => String::new(),
            };
            let folded = it.contains_key(LIVE_SK);
            let sk = if folded { text(LIVE_SK) } else { text(SK) };
            let key = (text(PK), sk);
            if folded && by_key.contains_key(&key) {
                continue;
            }
            by_key.insert(key, (folded, text(DOC)));
        }
        by_key
            .into_values()
            .map(|(_, doc)| serde_json::from_str(&doc).unwrap())
            .collect()
    }
}

async fn scan(dynamo: &Dynamo) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = dynamo
            .client()
            .scan()
            .table_name(dynamo.table())
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        out.extend(page.items().iter().cloned());
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    out
}

impl Harness for DynamoHarness {
    type L = Dynamo;
    fn name(&self) -> &str {
        "dynamodb"
    }
    fn ledger(&self) -> &Dynamo {
        &self.dynamo
    }
    async fn put_customer(&self, c: &Customer) {
        self.dynamo.put_customer(c).await.unwrap();
    }
    async fn put_invoice(&self, i: &Invoice) {
        self.dynamo.put_invoice(i).await.unwrap();
    }
    async fn put_payment(&self, p: &Payment) {
        assert!(self.dynamo.put_payment(p).await.unwrap());
    }
    async fn put_event(&self, e: &Event) {
        self.dynamo.put_invoice_event(e).await.unwrap();
    }
    async fn actions(&self) -> Vec<ActionRecord> {
        self.all("action").await
    }
    async fn messages(&self) -> Vec<StoredMessage> {
        self.all("message").await
    }
}

/// A customer's year of settled monthly invoices (2026), late by a few
/// days or early, one with a dispute opened and closed, one with a dispute
/// left open, one with a promise; an invoice due early in 2027 (dunned in
/// January, paid on 2027-01-20) and one due in May 2027 (open).
async fn seed(h: &DynamoHarness, c: &str, k: usize) {
    h.put_customer(&customer(c)).await;
    for m in 0..12u64 {
        let due = day("2026-01-15") + Days::new(30 * m);
        let mut i = invoice(
            &format!("{c}-H{m:02}"),
            c,
            &due.to_string(),
            &format!("{}.00", 100 + 10 * m),
        );
        i.issue_date = due - Days::new(30);
        h.put_invoice(&i).await;
        let late = ((m as usize * 7 + k * 3) % 40) as i64 - 10;
        let paid_on = due
            .checked_add_signed(chrono::Duration::days(late))
            .unwrap();
        if m == 3 {
            h.put_event(&event(&i.invoice_id, due, EventKind::DisputeOpened))
                .await;
            h.put_event(&event(
                &i.invoice_id,
                due + Days::new(5),
                EventKind::DisputeClosed,
            ))
            .await;
        }
        if m == 7 && k % 2 == 0 {
            h.put_event(&event(&i.invoice_id, due, EventKind::DisputeOpened))
                .await;
        }
        if m == 5 {
            h.put_event(&event(
                &i.invoice_id,
                due,
                EventKind::PromiseToPay {
                    promised_until: due + Days::new(10),
                },
            ))
            .await;
        }
        // Two payments on some: part, then the rest.
        if m % 4 == 1 {
            h.put_payment(&payment_of(&i.invoice_id, paid_on - Days::new(3), "50.00"))
                .await;
            let rest = i.amount - money("50.00");
            h.put_payment(&payment_of(&i.invoice_id, paid_on, &rest.to_string()))
                .await;
        } else {
            h.put_payment(&payment(&i, paid_on)).await;
        }
    }
    let january = invoice(&format!("{c}-J"), c, "2027-01-06", "400.00");
    h.put_invoice(&january).await;
    h.put_payment(&payment(&january, day("2027-01-20"))).await;
    h.put_invoice(&invoice(&format!("{c}-M"), c, "2027-05-10", "250.00"))
        .await;
}

fn ids() -> Vec<String> {
    CUSTOMERS.iter().map(|c| c.to_string()).collect()
}

/// A book's records as sorted text: what "the same records" means.
fn records(book: &Book) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for i in &book.invoices {
        out.insert(format!("{i:?}"));
    }
    for p in book.payments.values().flatten() {
        out.insert(format!("{p:?}"));
    }
    for e in book.events.values().flatten() {
        out.insert(format!("{e:?}"));
    }
    for a in book.actions.values().flatten() {
        out.insert(format!("{a:?}"));
    }
    out
}

/// A plan as sorted text.
fn plan_text(book: &Book, env: &Env, on: NaiveDate) -> Vec<String> {
    let plan = plan_sweep(
        book,
        &env.policy,
        &PriorLateRate,
        on,
        &SweepOptions::default(),
    );
    let mut out: Vec<String> = plan.records.iter().map(|r| format!("{r:?}")).collect();
    out.extend(plan.messages.iter().map(|m| format!("{m:?}")));
    out.extend(plan.held.iter().map(|h| format!("{h:?}")));
    out.push(format!(
        "open {} not covered {:?} stopped {:?}",
        plan.open_invoices, plan.not_covered, plan.stopped
    ));
    out.sort();
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs a large future on a thread with room for it.
fn on_big_stack(f: impl FnOnce() + Send + 'static) {
    let t = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .unwrap();
    if let Err(panic) = t.join() {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn a_folded_book_decides_as_the_whole_history_and_keeps_every_record() {
    on_big_stack(|| runtime().block_on(folded_equals_whole()));
}

async fn folded_equals_whole() {
    let h = DynamoHarness::new("fold-eq").await;
    for (k, c) in CUSTOMERS.iter().enumerate() {
        seed(&h, c, k).await;
    }
    let env = Env::new();
    let mailer = RecordingMailer::default();
    // January: the 2027 invoices are dunned (actions and trails recorded).
    for on in ["2027-01-04", "2027-01-06", "2027-01-13"] {
        let clock = Clock::at(day(on));
        env.run(&h, &mailer, &clock, day(on), None).await.unwrap();
    }
    let whole_before = h.dynamo.load_book(&ids()).await.unwrap();
    let mut trails_before = BTreeMap::new();
    for a in whole_before.actions.values().flatten() {
        let t = Ledger::trail(&h.dynamo, a).await.unwrap();
        assert!(!t.is_empty(), "{a:?}");
        trails_before.insert(a.action_id.to_string(), format!("{t:?}"));
    }
    assert!(
        !trails_before.is_empty(),
        "January's sweeps recorded nothing"
    );
    let mut folded_some = false;
    for on in [
        "2027-05-03",
        "2027-05-04",
        "2027-05-07",
        "2027-05-10",
        "2027-05-12",
    ] {
        let on = day(on);
        let since = history_since(&env.policy, on);
        // What the sweep of the day reads (and folds on the way) …
        let folded = Ledger::load_book(&h.dynamo, &Scope::All, on, since)
            .await
            .unwrap();
        // … and the whole history.
        let whole = h.dynamo.load_book(&ids()).await.unwrap();
        assert!(whole.history.is_empty());
        folded_some |= !folded.history.is_empty();
        assert_eq!(
            plan_text(&folded, &env, on),
            plan_text(&whole, &env, on),
            "{on}: the folded book plans otherwise"
        );
        for c in CUSTOMERS {
            assert_eq!(
                folded.customer_stats(c, on),
                whole.customer_stats(c, on),
                "{on} {c}"
            );
        }
        // The aggregate is the engine's fold of the whole history.
        let engine = history::fold(whole.clone(), since);
        assert_eq!(folded.history, engine.history, "{on}");
        let left = |b: &Book| -> BTreeSet<String> {
            b.invoices.iter().map(|i| i.invoice_id.clone()).collect()
        };
        assert_eq!(left(&folded), left(&engine), "{on}");
        let clock = Clock::at(on);
        env.run(&h, &mailer, &clock, on, None).await.unwrap();
    }
    assert!(folded_some, "nothing was folded");
    // Each customer's history and January's invoice are folded: 13 each.
    for c in CUSTOMERS {
        let hist = h.dynamo.payment_history(c).await.unwrap().unwrap();
        assert_eq!(hist.invoices, 13, "{c}: {hist:?}");
    }
    // Nothing lost: every record of before is in the whole history, every
    // trail reads as it did (a folded action's trail from its copy).
    let whole_after = h.dynamo.load_book(&ids()).await.unwrap();
    let after = records(&whole_after);
    for r in records(&whole_before) {
        if r.starts_with("ActionRecord") {
            continue; // actions may have moved on since: compared by trail
        }
        assert!(after.contains(&r), "lost: {r}");
    }
    for a in whole_after.actions.values().flatten() {
        let t = Ledger::trail(&h.dynamo, a).await.unwrap();
        if let Some(before) = trails_before.get(a.action_id.as_str()) {
            assert!(
                format!("{t:?}").starts_with(before.trim_end_matches(']')),
                "{}: the trail changed: {before} → {t:?}",
                a.action_id
            );
        }
    }
    let ids_after: BTreeSet<String> = whole_after
        .actions
        .values()
        .flatten()
        .map(|a| a.action_id.to_string())
        .collect();
    for id in trails_before.keys() {
        assert!(ids_after.contains(id), "action {id} lost");
    }
    // Nothing duplicated: each action once among the items (live or copy).
    let actions = h.actions().await;
    assert_eq!(actions.len(), ids_after.len());
}

/// A table with the history of four customers, nothing swept: the fold's
/// cutoff is a May day's `since`.
async fn seeded(prefix: &str) -> (DynamoHarness, NaiveDate) {
    let h = DynamoHarness::new(prefix).await;
    for (k, c) in CUSTOMERS.iter().enumerate() {
        seed(&h, c, k).await;
    }
    let since = history_since(&Env::new().policy, day("2027-05-03"));
    (h, since)
}

/// What the sweep of the cutoff's day must read: the engine's fold of the
/// whole history.
async fn expected(h: &DynamoHarness, since: NaiveDate) -> Book {
    history::fold(h.dynamo.load_book(&ids()).await.unwrap(), since)
}

fn assert_same_fold(got: &Book, want: &Book) {
    assert_eq!(got.history, want.history);
    assert_eq!(records(got), records(want));
}

#[test]
fn a_fold_stopped_after_any_step_loses_nothing_and_the_next_sweep_finishes_it() {
    on_big_stack(|| runtime().block_on(crash_points()));
}

async fn crash_points() {
    for step in [
        FoldStep::Copied,
        FoldStep::Aggregated,
        FoldStep::FirstDeleted,
    ] {
        let (h, since) = seeded("fold-crash").await;
        let whole = records(&h.dynamo.load_book(&ids()).await.unwrap());
        let want = expected(&h, since).await;
        let crashing = h
            .dynamo
            .clone()
            .with_fold_fault(FoldFault(Arc::new(move |c, s| c == "C2" && s == step)));
        let err = crashing.load_live(&ids(), since, true).await.unwrap_err();
        assert!(err.to_string().contains("C2"), "{step:?}: {err}");
        // Nothing lost, nothing twice: the whole history reads the same.
        assert_eq!(
            records(&h.dynamo.load_book(&ids()).await.unwrap()),
            whole,
            "{step:?}: the whole history changed"
        );
        // The checks before sending (no housekeeping) read a consistent book.
        let checks = Ledger::customer_books(&h.dynamo, &["C2"], &[])
            .await
            .unwrap();
        let c2 = &checks["C2"];
        let c2_whole = h.dynamo.load_book(&["C2".to_string()]).await.unwrap();
        let on = day("2027-05-03");
        assert_eq!(
            c2.customer_stats("C2", on),
            c2_whole.customer_stats("C2", on),
            "{step:?}"
        );
        // The next sweep finishes (or redoes) the fold.
        let next = h.dynamo.load_live(&ids(), since, true).await.unwrap();
        assert_same_fold(&next, &want);
        assert_eq!(
            records(&h.dynamo.load_book(&ids()).await.unwrap()),
            whole,
            "{step:?}: the whole history changed after the fold"
        );
        // And again: nothing more to do, the same book.
        let again = h.dynamo.load_live(&ids(), since, true).await.unwrap();
        assert_same_fold(&again, &want);
        // Each record once among the items (live, or its folded copy).
        assert_eq!(h.all::<Invoice>("invoice").await.len(), 4 * 14, "{step:?}");
    }
}

#[test]
fn late_data_on_a_folded_invoice_unfolds_it_and_the_next_sweep_rebuilds_exactly() {
    on_big_stack(|| runtime().block_on(late_data()));
}

async fn late_data() {
    let (h, since) = seeded("fold-late").await;
    let first = h.dynamo.load_live(&ids(), since, true).await.unwrap();
    assert_same_fold(&first, &expected(&h, since).await);
    assert!(first.invoice("C1-H02").is_none(), "C1-H02 was not folded");

    // The ERP reopens an old dispute on a folded invoice (an event dated
    // before the cutoff): the invoice is live again, the aggregate stale.
    let opened = event("C1-H02", day("2026-05-01"), EventKind::DisputeOpened);
    assert_eq!(
        h.dynamo.put_invoice_event(&opened).await.unwrap(),
        Some(true)
    );
    let live = h
        .dynamo
        .load_live(&["C1".to_string()], since, false)
        .await
        .unwrap();
    assert!(
        live.invoice("C1-H02").is_some(),
        "the unfolded invoice is read"
    );
    // The next sweep rebuilds the aggregate and folds it again, with the
    // dispute.
    let want = expected(&h, since).await;
    let next = h.dynamo.load_live(&ids(), since, true).await.unwrap();
    assert_same_fold(&next, &want);
    let before = first.history["C1"].disputes_open;
    assert_eq!(next.history["C1"].disputes_open, before + 1);

    // A refund of a folded invoice written behind a fold's back (the
    // events function checked before the fold, wrote after it): a live
    // record of a folded invoice, which the next sweep unfolds; the invoice
    // is open again and stays live.
    let refund = payment_of("C3-H04", day("2026-06-01"), "-50.00");
    let mut it = std::collections::HashMap::new();
    let s = |v: String| AttributeValue::S(v);
    it.insert(PK.to_string(), s("C#C3".into()));
    it.insert(
        SK.to_string(),
        s(format!(
            "PAYMENT#{}#{}",
            refund.invoice_id, refund.payment_id
        )),
    );
    it.insert(KIND.to_string(), s("payment".into()));
    it.insert(DOC.to_string(), s(serde_json::to_string(&refund).unwrap()));
    h.dynamo.batch_put(vec![it]).await.unwrap();
    let want = expected(&h, since).await;
    let healed = h.dynamo.load_live(&ids(), since, true).await.unwrap();
    assert_same_fold(&healed, &want);
    assert!(
        healed.invoice("C3-H04").is_some(),
        "the refunded invoice is live"
    );
    assert_eq!(
        healed.history["C3"].invoices + 1,
        next.history["C3"].invoices
    );

    // A sweep of an earlier day (a late job) looks back before the
    // aggregate's cutoff: it reads the whole history, and folds nothing.
    let earlier = since - Days::new(10);
    let late_job = h.dynamo.load_live(&ids(), earlier, true).await.unwrap();
    assert!(late_job.history.is_empty());
    assert_eq!(
        records(&late_job),
        records(&h.dynamo.load_book(&ids()).await.unwrap())
    );
}
