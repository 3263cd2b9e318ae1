//! A home written by the first release (schema 1: no message or lease
//! tables), left with messages a crash interrupted, opens with this one:
//! the schema is upgraded in place, the leftovers are recorded as messages
//! and finished by the next run — checked again like any other.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use collect_delivery::delivery::RunRequest;
use collect_delivery::ledger::{LeaseHolder, MessageStatus, Scope};
use collect_engine::book::Book;
use collect_engine::domain::{ActionRecord, ActionStatus, Channel, Customer, Invoice};
use collect_engine::sweep::{PriorLateRate, SweepOptions, plan_sweep};
use collect_sqlite::ledger::SCHEMA_VERSION;
use collect_sqlite::store::{SqliteStore, Store};
use collect_testkit::book::{Env, day};
use collect_testkit::conformance::{DAY, the_book};
use collect_testkit::mailer::RecordingMailer;
use rusqlite::{Connection, params};

/// The schema of the first release, as its `SqliteStore::open` wrote it.
const SCHEMA_V1: &str = "
PRAGMA journal_mode = WAL;
CREATE TABLE customers (customer_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE invoices (
    invoice_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, due_date TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX invoices_by_customer ON invoices (customer_id);
CREATE TABLE payments (payment_id TEXT PRIMARY KEY, invoice_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE events (
    event_id TEXT PRIMARY KEY, date TEXT NOT NULL, type TEXT NOT NULL,
    invoice_id TEXT, action_id TEXT, message_id TEXT, body TEXT NOT NULL);
CREATE TABLE actions (
    action_id TEXT PRIMARY KEY, invoice_id TEXT NOT NULL, customer_id TEXT NOT NULL,
    status TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX actions_by_status ON actions (status);
CREATE TABLE action_log (
    action_id TEXT NOT NULL, seq INTEGER NOT NULL, day TEXT NOT NULL, status TEXT NOT NULL,
    note TEXT, by TEXT, PRIMARY KEY (action_id, seq));
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// The customers and invoices as the earlier releases stored them (one
/// JSON body each).
fn write_book(conn: &Connection, customers: &[Customer], invoices: &[Invoice]) {
    for c in customers {
        conn.execute(
            "INSERT INTO customers VALUES (?1, ?2)",
            params![c.customer_id, serde_json::to_string(c).unwrap()],
        )
        .unwrap();
    }
    for i in invoices {
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
}

/// An action as schemas 1 and 2 stored it: keys, status and a JSON body.
fn write_action(conn: &Connection, r: &ActionRecord) {
    conn.execute(
        "INSERT INTO actions VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            r.action_id.as_str(),
            r.invoice_id.as_str(),
            r.customer_id.as_str(),
            r.status.as_str(),
            serde_json::to_string(r).unwrap()
        ],
    )
    .unwrap();
}

#[test]
fn a_first_release_home_is_upgraded_and_its_leftovers_finished() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let env = Env::new();
    let (customers, invoices) = the_book();
    // What the first release recorded before it was killed while sending:
    // the day's actions, `planned` (one message already `sending`).
    let book = Book::new(customers.clone(), invoices.clone(), vec![], vec![], vec![]);
    let plan = plan_sweep(
        &book,
        &env.policy,
        &PriorLateRate,
        day(DAY),
        &SweepOptions::default(),
    );
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        write_book(&conn, &customers, &invoices);
        let first_message = plan.messages[0].message_id.clone();
        for r in &plan.records {
            let mut r = r.clone();
            if r.message_id.as_deref() == Some(first_message.as_str()) {
                r.status = ActionStatus::Sending;
            }
            write_action(&conn, &r);
        }
    }

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.meta("schema_version").unwrap(),
        Some(SCHEMA_VERSION.to_string())
    );
    let messages = store.all_messages().unwrap();
    assert_eq!(messages.len(), plan.messages.len());
    assert!(messages.iter().any(|m| m.status == MessageStatus::Sending));

    // The next run (the same day) finishes them.
    let mailer = RecordingMailer::default();
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
    let report = env.sweeper().run_blocking(&store, &mailer, &req).unwrap();
    // The emails go out; the plan offer, whose schedule the first release
    // never recorded, is deferred and offered again by the next sweep.
    assert_eq!(report.sent.len(), 2, "{report:?}");
    assert_eq!(report.dropped.len(), 1, "{report:?}");
    assert!(report.dropped[0].reason.contains("offers it again"));
    let next = day(DAY).succ_opt().unwrap();
    let req = RunRequest { day: next, ..req };
    let report = env.sweeper().run_blocking(&store, &mailer, &req).unwrap();
    assert_eq!(report.sent.len(), 1, "{report:?}");
    assert_eq!(report.sent[0].channel, Channel::Offer);
    // Opening again changes nothing.
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert!(
        store
            .all_messages()
            .unwrap()
            .iter()
            .all(|m| !m.status.is_unfinished())
    );
}

/// The schema of the release before this one (schema 2): actions and their
/// trail in rowid tables, each action one JSON body.
const SCHEMA_V2: &str = "
PRAGMA journal_mode = WAL;
CREATE TABLE customers (customer_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE invoices (
    invoice_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, due_date TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX invoices_by_customer ON invoices (customer_id);
CREATE TABLE payments (payment_id TEXT PRIMARY KEY, invoice_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE events (
    event_id TEXT PRIMARY KEY, date TEXT NOT NULL, type TEXT NOT NULL,
    invoice_id TEXT, action_id TEXT, message_id TEXT, body TEXT NOT NULL);
CREATE TABLE actions (
    action_id TEXT PRIMARY KEY, invoice_id TEXT NOT NULL, customer_id TEXT NOT NULL,
    status TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX actions_by_status ON actions (status);
CREATE TABLE action_log (
    action_id TEXT NOT NULL, seq INTEGER NOT NULL, day TEXT NOT NULL, status TEXT NOT NULL,
    note TEXT, by TEXT, risk REAL, PRIMARY KEY (action_id, seq));
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX payments_by_invoice ON payments (invoice_id);
CREATE INDEX events_by_invoice ON events (invoice_id);
CREATE INDEX actions_by_customer ON actions (customer_id);
CREATE TABLE messages (
    message_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, status TEXT NOT NULL,
    planned_on TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX messages_by_status ON messages (status);
CREATE TABLE leases (name TEXT PRIMARY KEY, body TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('schema_version', '2');
";

#[test]
fn a_home_of_the_last_release_is_upgraded_with_its_actions_and_trail_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let env = Env::new();
    let (customers, invoices) = the_book();
    let book = Book::new(customers.clone(), invoices.clone(), vec![], vec![], vec![]);
    let options = SweepOptions {
        git_revision: Some("abc123-dirty".to_string()),
        bundle_revision: Some("bundle-1".to_string()),
        ..SweepOptions::default()
    };
    let plan = plan_sweep(&book, &env.policy, &PriorLateRate, day(DAY), &options);
    // What the last release left after a completed day: the messages sent,
    // the rest as decided, each with a line of trail (one with two).
    let mut records = plan.records.clone();
    for r in &mut records {
        if r.message_id.is_some() {
            r.status = ActionStatus::Sent;
            r.sent_on = Some(day(DAY));
        }
    }
    records[0].note = Some("a note with \"quotes\" and ünïcode".to_string());
    records[0].decided_by = Some("ana@example.com".to_string());
    records[0].decided_at = Some(day(DAY));
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V2).unwrap();
        write_book(&conn, &customers, &invoices);
        for r in &records {
            write_action(&conn, r);
            conn.execute(
                "INSERT INTO action_log VALUES (?1, 1, ?2, ?3, ?4, NULL, ?5)",
                params![r.action_id.as_str(), DAY, r.status.as_str(), r.note, r.risk],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO action_log VALUES (?1, 2, ?2, 'approved', NULL, 'ana@example.com', NULL)",
            params![records[0].action_id.as_str(), DAY],
        )
        .unwrap();
        // The lease of a killed run of that release: no fencing token.
        conn.execute(
            "INSERT INTO leases VALUES ('sweep', ?1)",
            [r#"{"name":"sweep","holder":{"id":"killed-run","pid":1,"host":"h"},"since":"2020-01-01T00:00:00Z","expires":"2020-01-01T00:02:00Z"}"#],
        )
        .unwrap();
    }

    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.meta("schema_version").unwrap(),
        Some(SCHEMA_VERSION.to_string())
    );
    // Every record reads back exactly as written, and so does the trail.
    let mut expected = records.clone();
    expected.sort_by(|a, b| a.action_id.cmp(&b.action_id));
    let mut stored = Store::actions(&store).unwrap();
    stored.sort_by(|a, b| a.action_id.cmp(&b.action_id));
    assert_eq!(stored, expected);
    let trail = store.action_log(&records[0].action_id).unwrap();
    assert_eq!(trail.len(), 2);
    assert_eq!(trail[1].by.as_deref(), Some("ana@example.com"));
    assert_eq!(trail[0].note, records[0].note);

    // The same day again changes nothing; the next day goes on from it.
    let mailer = RecordingMailer::default();
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
    let mut sweeper = env.sweeper();
    sweeper.options = options;
    let report = sweeper.run_blocking(&store, &mailer, &req).unwrap();
    assert!(report.sent.is_empty(), "{report:?}");
    assert_eq!(report.recorded, 0, "{report:?}");
    let next = day(DAY).succ_opt().unwrap();
    let report = sweeper
        .run_blocking(&store, &mailer, &RunRequest { day: next, ..req })
        .unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    // The old lease gained a token column (0); the runs (one holder, so
    // the second run's take is a renewal) took it with token 1 and gave
    // it back, kept with its token.
    let token: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT token FROM leases WHERE name = 'sweep'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(token, 1);
    // A transition by a person is written as a row and read back.
    let mut r = Store::action(&store, &records[1].action_id)
        .unwrap()
        .unwrap();
    let from = r.status;
    r.status = ActionStatus::Rejected;
    store.transition(&r, &[from], next, Some("bo")).unwrap();
    assert_eq!(Store::action(&store, &r.action_id).unwrap().unwrap(), r);
}

/// Customers are stored as one JSON body each, so the postal address needs
/// no new column and no schema version: a home whose customers were written
/// before the address existed (bodies without `address`) opens as it is,
/// its customers read with no address, and an export that brings one
/// stores it beside the values it leaves alone.
#[test]
fn customers_stored_before_the_postal_address_read_without_one_and_take_one() {
    use collect_engine::domain::PostalAddress;
    use collect_engine::ingest;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (customers, invoices) = the_book();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V2).unwrap();
        write_book(&conn, &customers, &invoices);
        let body: String = conn
            .query_row("SELECT body FROM customers LIMIT 1", [], |r| r.get(0))
            .unwrap();
        assert!(!body.contains("address"), "an old body: {body}");
    }
    let mut store = SqliteStore::open(&path).unwrap();
    let book = store.load_book().unwrap();
    assert_eq!(book.customers.len(), customers.len());
    assert!(book.customers.values().all(|c| c.address.is_empty()));

    let first = &customers[0];
    let csv = format!(
        "customer_id,name,email,address_line1,postal_code,city\n{},{},{},Hauptstraße 5,10115,Berlin\n",
        first.customer_id, first.name, first.email
    );
    let parsed = ingest::customers(csv.as_bytes(), "customers.csv").unwrap();
    assert_eq!(parsed.rejects, vec![]);
    store.merge_customers(&parsed.records).unwrap();
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    let book = store.load_book().unwrap();
    let stored = &book.customers[&first.customer_id];
    assert_eq!(
        stored.address,
        PostalAddress {
            line1: Some("Hauptstraße 5".into()),
            postal_code: Some("10115".into()),
            city: Some("Berlin".into()),
            ..PostalAddress::default()
        }
    );
    assert_eq!(stored.language, first.language, "the rest kept");
    assert_eq!(stored.tags, first.tags);
}

#[test]
fn a_home_without_contact_holds_gets_the_table_and_keeps_holds() {
    use collect_delivery::ledger::{ContactHold, HoldReason, Ledger};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (customers, invoices) = the_book();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        write_book(&conn, &customers, &invoices);
    }
    let store = SqliteStore::open(&path).unwrap();
    let hold = ContactHold {
        customer_id: "C1".into(),
        address: "c1@example.com".to_string(),
        reason: HoldReason::HardBounce { detail: None },
        since: day(DAY),
        source: "ingest:b-1".to_string(),
        ended: None,
    };
    assert!(pollster::block_on(store.hold_contact(&hold)).unwrap());
    assert!(!pollster::block_on(store.hold_contact(&hold)).unwrap());
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    let book = pollster::block_on(store.customer_book("C1")).unwrap();
    assert_eq!(book.contact_holds.get("C1"), Some(&vec![hold]));
}
