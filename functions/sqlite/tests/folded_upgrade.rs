//! A home of the release before the folded payment history (schema 3:
//! actions as rows, no `customer_history` table, invoices without the
//! `folded` mark) opens with this one: upgraded in place, every record,
//! action, trail line and message kept, and its first sweep folds the
//! settled history it finds, planning as the full records do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chrono::Days;
use collect_delivery::ledger::LogEntry;
use collect_engine::book::Book;
use collect_engine::domain::{ActionRecord, Customer, Event, EventKind, Invoice, Payment};
use collect_engine::sweep::{PriorLateRate, SweepOptions, history_since, plan_sweep};
use collect_sqlite::store::{SqliteStore, Store};
use collect_testkit::Harness;
use collect_testkit::book::{SqliteHarness, day, event, invoice, payment};
use collect_testkit::conformance::{DAY, World};
use rusqlite::{Connection, params};

/// The schema of that release, as its `SqliteStore::open` wrote it (its
/// book tables, then its actions table and the desk's index).
const SCHEMA_V3: &str = "
PRAGMA journal_mode = WAL;
CREATE TABLE customers (customer_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE invoices (
    invoice_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, due_date TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX invoices_by_customer ON invoices (customer_id);
CREATE TABLE payments (payment_id TEXT PRIMARY KEY, invoice_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE events (
    event_id TEXT PRIMARY KEY, date TEXT NOT NULL, type TEXT NOT NULL,
    invoice_id TEXT, action_id TEXT, message_id TEXT, body TEXT NOT NULL);
CREATE TABLE action_log (
    action_id TEXT NOT NULL, seq INTEGER NOT NULL, day TEXT NOT NULL, status TEXT NOT NULL,
    note TEXT, by TEXT, risk REAL, PRIMARY KEY (action_id, seq)) WITHOUT ROWID;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX payments_by_invoice ON payments (invoice_id);
CREATE INDEX events_by_invoice ON events (invoice_id);
CREATE TABLE messages (
    message_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, status TEXT NOT NULL,
    planned_on TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX messages_by_status ON messages (status);
CREATE TABLE leases (
    name TEXT PRIMARY KEY, body TEXT NOT NULL, token INTEGER NOT NULL DEFAULT 0);
CREATE TABLE contact_holds (
    customer_id TEXT NOT NULL, address TEXT NOT NULL, open INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (customer_id, address)) WITHOUT ROWID;
CREATE INDEX contact_holds_open ON contact_holds (open, customer_id);
CREATE TABLE record_versions (
    tbl TEXT NOT NULL, key TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (tbl, key)) WITHOUT ROWID;
CREATE TABLE action_contexts (
    context_id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE);
CREATE TABLE actions (
    action_id TEXT NOT NULL, invoice_id TEXT NOT NULL, customer_id TEXT NOT NULL,
    status TEXT NOT NULL, decided_on TEXT NOT NULL, scheduled_for TEXT NOT NULL,
    channel TEXT NOT NULL, label TEXT NOT NULL, target TEXT NOT NULL,
    step_offset INTEGER NOT NULL, requires_approval INTEGER NOT NULL,
    context_id INTEGER NOT NULL, rule TEXT NOT NULL, segment TEXT NOT NULL,
    experiment TEXT, arm TEXT, risk REAL, note TEXT, message_id TEXT,
    decided_by TEXT, decided_at TEXT, sent_on TEXT, call_again_on TEXT,
    PRIMARY KEY (customer_id, action_id)) WITHOUT ROWID;
CREATE UNIQUE INDEX actions_by_id ON actions (action_id);
CREATE INDEX actions_live ON actions (status)
    WHERE status IN ('planned', 'sending', 'awaiting_approval', 'approved', 'deferred');
CREATE INDEX actions_work ON actions (customer_id, action_id)
    WHERE status = 'awaiting_approval' OR (status = 'planned' AND channel = 'call');
INSERT INTO meta (key, value) VALUES ('schema_version', '3');
";

/// What a home holds, read through the store (the full book, every action,
/// each one's trail, every message).
#[derive(Debug, PartialEq)]
struct Contents {
    customers: Vec<Customer>,
    invoices: Vec<Invoice>,
    payments: Vec<Payment>,
    events: Vec<Event>,
    actions: Vec<ActionRecord>,
    trails: Vec<Vec<LogEntry>>,
    messages: Vec<String>,
}

fn contents(store: &SqliteStore) -> Contents {
    let book = Store::load_book(store).unwrap();
    assert!(book.history.is_empty());
    let mut customers: Vec<Customer> = book.customers.values().cloned().collect();
    customers.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
    let mut payments: Vec<Payment> = book.payments.values().flatten().cloned().collect();
    payments.sort_by(|a, b| a.payment_id.cmp(&b.payment_id));
    let mut events: Vec<Event> = book
        .events
        .values()
        .flatten()
        .chain(&book.mail_events)
        .cloned()
        .collect();
    events.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    let actions = store.actions().unwrap();
    let trails = actions
        .iter()
        .map(|a| store.action_log(&a.action_id).unwrap())
        .collect();
    Contents {
        customers,
        invoices: book.invoices.clone(),
        payments,
        events,
        actions,
        trails,
        messages: store
            .all_messages()
            .unwrap()
            .iter()
            .map(|m| serde_json::to_string(m).unwrap())
            .collect(),
    }
}

/// Writes `c` into a file of the old schema, row by row as that release
/// wrote them.
fn write_v3(conn: &Connection, c: &Contents) {
    for x in &c.customers {
        conn.execute(
            "INSERT INTO customers VALUES (?1, ?2)",
            params![x.customer_id, serde_json::to_string(x).unwrap()],
        )
        .unwrap();
    }
    for i in &c.invoices {
        conn.execute(
            "INSERT INTO invoices VALUES (?1, ?2, ?3, ?4)",
            params![
                i.invoice_id,
                i.customer_id,
                i.due_date.to_string(),
                serde_json::to_string(i).unwrap()
            ],
        )
        .unwrap();
    }
    for p in &c.payments {
        conn.execute(
            "INSERT INTO payments VALUES (?1, ?2, ?3)",
            params![
                p.payment_id,
                p.invoice_id,
                serde_json::to_string(p).unwrap()
            ],
        )
        .unwrap();
    }
    for e in &c.events {
        conn.execute(
            "INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                e.event_id,
                e.date.to_string(),
                e.kind.name(),
                e.invoice_id,
                e.action_id,
                e.message_id,
                serde_json::to_string(e).unwrap()
            ],
        )
        .unwrap();
    }
    for (a, trail) in c.actions.iter().zip(&c.trails) {
        let context = serde_json::json!({
            "policy_name": a.policy_name,
            "policy_revision": a.policy_revision,
            "git_revision": a.git_revision,
            "bundle_revision": a.bundle_revision,
            "scorer": a.scorer,
            "scorer_version": a.scorer_version,
        })
        .to_string();
        conn.execute(
            "INSERT OR IGNORE INTO action_contexts (body) VALUES (?1)",
            [&context],
        )
        .unwrap();
        let context_id: i64 = conn
            .query_row(
                "SELECT context_id FROM action_contexts WHERE body = ?1",
                [&context],
                |r| r.get(0),
            )
            .unwrap();
        conn.execute(
            "INSERT INTO actions VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,
             ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, NULL)",
            params![
                a.action_id.as_str(),
                a.invoice_id.as_str(),
                a.customer_id.as_str(),
                a.status.as_str(),
                a.decided_on.to_string(),
                a.scheduled_for.to_string(),
                a.channel.as_str(),
                a.label,
                a.target,
                a.step_offset,
                a.requires_approval,
                context_id,
                a.rule,
                a.segment,
                a.experiment.as_ref().map(|e| e.as_str()),
                a.arm.as_ref().map(|e| e.as_str()),
                a.risk,
                a.note,
                a.message_id.as_deref(),
                a.decided_by,
                a.decided_at.map(|d| d.to_string()),
                a.sent_on.map(|d| d.to_string()),
            ],
        )
        .unwrap();
        for l in trail {
            conn.execute(
                "INSERT INTO action_log VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    a.action_id.as_str(),
                    l.seq,
                    l.day.to_string(),
                    l.status,
                    l.note,
                    l.by,
                    l.risk
                ],
            )
            .unwrap();
        }
    }
    for m in &c.messages {
        let v: serde_json::Value = serde_json::from_str(m).unwrap();
        conn.execute(
            "INSERT INTO messages VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                v["message_id"].as_str().unwrap(),
                v["customer_id"].as_str().unwrap(),
                v["status"].as_str().unwrap(),
                v["planned_on"].as_str().unwrap(),
                m
            ],
        )
        .unwrap();
    }
}

#[test]
fn a_home_of_schema_3_is_upgraded_in_place_and_folds_its_history() {
    // What a home of that release holds after three weeks of runs: the
    // conformance book with a history of settled invoices (one of them
    // disputed then closed), run day after day, then an invoice paid.
    let source = tempfile::tempdir().unwrap();
    let h = SqliteHarness::open(&source.path().join("home.db")).unwrap();
    let w = pollster::block_on(World::start(&h));
    let history: Vec<Invoice> = (1..=6)
        .map(|k| {
            let due = day("2026-06-30") + Days::new(30 * k);
            let mut i = invoice(&format!("H{k}"), "C1", &due.to_string(), "120.00");
            i.issue_date = due - Days::new(30);
            i
        })
        .collect();
    for (k, i) in history.iter().enumerate() {
        pollster::block_on(h.put_invoice(i));
        let paid = i.due_date + Days::new(u64::try_from(k).unwrap() * 4);
        pollster::block_on(h.put_payment(&payment(i, paid)));
    }
    pollster::block_on(h.put_event(&event("H2", day("2026-08-20"), EventKind::DisputeOpened)));
    pollster::block_on(h.put_event(&event("H2", day("2026-09-02"), EventKind::DisputeClosed)));
    for k in 0..21 {
        let today = day(DAY) + Days::new(k);
        if k == 9 {
            let (_, invoices) = collect_testkit::conformance::the_book();
            pollster::block_on(h.put_payment(&payment(&invoices[2], today)));
        }
        pollster::block_on(w.run(&h, today));
    }
    let before = contents(&h.store.lock().unwrap());
    assert!(before.actions.len() >= 5, "{}", before.actions.len());
    assert!(before.trails.iter().any(|t| t.len() > 1));
    assert!(!before.messages.is_empty());

    // The same contents in a file of schema 3.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V3).unwrap();
        write_v3(&conn, &before);
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(contents(&store), before, "every record kept");
    // Upgraded in place (the version is the lead's to set at merge).
    let conn = Connection::open(&path).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT COUNT(*) FROM pragma_table_info('invoices') WHERE name = 'folded'"),
        1
    );
    assert_eq!(count("SELECT COUNT(*) FROM invoices WHERE folded = 1"), 0);
    assert_eq!(count("SELECT COUNT(*) FROM customer_history"), 0);
    // Opened again: nothing more to do.
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(contents(&store), before);

    // The next sweep's book folds the settled history, and plans as the
    // full records do.
    let today = day(DAY) + Days::new(21);
    let env = collect_testkit::book::Env::new();
    let since = history_since(&env.policy, today);
    let full = Store::load_book(&store).unwrap();
    let compact = store.load_compact(today, since).unwrap();
    let folded = count("SELECT COUNT(*) FROM invoices WHERE folded = 1");
    assert!(folded >= 5, "{folded} folded");
    assert_eq!(count("SELECT COUNT(*) FROM customer_history"), 1);
    assert_eq!(
        compact.invoices.len() + usize::try_from(folded).unwrap(),
        full.invoices.len()
    );
    let opts = SweepOptions::default();
    let a = plan_sweep(&full, &env.policy, &PriorLateRate, today, &opts);
    let b = plan_sweep(&compact, &env.policy, &PriorLateRate, today, &opts);
    assert_eq!(a.records, b.records);
    assert_eq!(a.messages, b.messages);
    for c in full.customers.keys() {
        assert_eq!(
            full.customer_stats(c, today),
            compact.customer_stats(c, today),
            "{c}"
        );
    }
    // And the full records are all still there, for explain, the desk,
    // simulations and training.
    assert_eq!(contents(&store), before);
    let _: &Book = &compact;
}
