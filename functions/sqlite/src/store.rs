//! The state port and its local adapter: an embedded SQLite file.
//!
//! Records are kept as JSON documents beside the key columns the runners
//! query by, so the schema stays as simple as the data contract (actions are
//! rows of columns, see [`crate::rows`]). Every change of an action adds a
//! line to its audit trail in the same write: the routine lines (recorded,
//! taken for sending, sent) as columns of the action's row, the others as
//! rows of `action_log`, keyed by customer; nothing is rewritten.
//! A write that touches an invoice folded into its customer's payment
//! history (late data) unfolds that customer ([`unfold_customers`]); the
//! fold itself is the sweep's read (`SqliteStore::load_compact`).

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use collect_engine::book::{ActionsByInvoice, Book};
use collect_engine::domain::{ActionRecord, ActionStatus, Customer, Event, Invoice, Payment};
use collect_engine::ingest::{Merge, Patch};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use std::path::Path;

use crate::codec::{decode, encode};

pub use crate::error::StoreError;
pub use collect_delivery::ledger::LogEntry;

/// Counts of what an ingest changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Upserted {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Records older (by `updated_at`) than the stored ones: not written.
    pub older: usize,
}

/// The state the runners need. The sweep itself never sees this trait: it
/// works on a [`Book`].
pub trait Store {
    fn upsert_customers(&mut self, records: &[Customer]) -> Result<Upserted, StoreError>;
    fn upsert_invoices(&mut self, records: &[Invoice]) -> Result<Upserted, StoreError>;
    fn upsert_payments(&mut self, records: &[Payment]) -> Result<Upserted, StoreError>;
    /// Upserts customers as an export or an event gave them: the fields a
    /// patch does not give keep their stored value (the partial-update
    /// rule of [`collect_engine::ingest::patch`]). Patches are applied in order, so
    /// a later one for the same customer merges with the earlier one.
    fn merge_customers(&mut self, patches: &[Patch<Customer>]) -> Result<Upserted, StoreError>;
    /// Upserts invoices as given, like [`Store::merge_customers`].
    fn merge_invoices(&mut self, patches: &[Patch<Invoice>]) -> Result<Upserted, StoreError>;
    /// Stores events; an event id seen before is ignored. Returns how many were new.
    fn insert_events(&mut self, events: &[Event]) -> Result<usize, StoreError>;
    /// The full book: every invoice, folded into its customer's payment
    /// history or not, with its payments, events and actions, and no
    /// aggregate (`Book::history` empty). For what reads the whole history
    /// (simulations, backtests, training, reports); a sweep reads
    /// `SqliteStore::load_compact`.
    fn load_book(&self) -> Result<Book, StoreError>;
    /// Replaces a record only if its stored status is one of `expected`:
    /// the guard against two runners moving the same action.
    fn transition(
        &mut self,
        record: &ActionRecord,
        expected: &[ActionStatus],
        day: NaiveDate,
        by: Option<&str>,
    ) -> Result<(), StoreError>;
    fn action(&self, action_id: &str) -> Result<Option<ActionRecord>, StoreError>;
    fn actions(&self) -> Result<Vec<ActionRecord>, StoreError>;
    fn action_log(&self, action_id: &str) -> Result<Vec<LogEntry>, StoreError>;
}

pub struct SqliteStore {
    pub(crate) conn: Connection,
    /// Reads and writes action records as rows (the shared contexts cached).
    pub(crate) rows: crate::rows::RowCodec,
    /// How far back the last sweep's book looked (`load_compact`'s
    /// `since`): the checks before sending read a customer's payment
    /// history as its aggregate when that covers it, and whole otherwise.
    pub(crate) swept_since: std::cell::Cell<Option<NaiveDate>>,
}

/// Wait this long for another process's write to finish (two runs on one
/// home: the second one then finds the lease taken and says so).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// 128 MiB of page cache (see [`SqliteStore::open`]), and the write-ahead
/// log copied back into the database every 10,000 pages (about 40 MB)
/// instead of SQLite's 1,000: a sweep commits a transaction per batch of
/// messages, and each copy rewrote the same hot pages of the actions'
/// indexes (the next day of 1,000,000 invoices: 7 % less CPU, BENCHMARKS.md).
const CACHE: &str = "PRAGMA cache_size = -131072; PRAGMA wal_autocheckpoint = 10000;";

impl SqliteStore {
    /// Opens (creating when needed) the database file.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch(crate::schema::SCHEMA)?;
        let rows = crate::rows::RowCodec::default();
        crate::schema::migrate(&conn, &rows)?;
        // 128 MiB of page cache instead of SQLite's 2 MiB: a sweep that
        // records many actions inserts them at random places of the id
        // indexes (about 90 MB for 2.2 million actions), and a smaller cache
        // reads and writes the same pages again and again. SQLite takes the
        // memory only as pages are used.
        conn.execute_batch(CACHE)?;
        Ok(SqliteStore {
            conn,
            rows,
            swept_since: Default::default(),
        })
    }

    /// A private in-memory database, for tests and simulations.
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(crate::schema::SCHEMA)?;
        let rows = crate::rows::RowCodec::default();
        crate::schema::migrate(&conn, &rows)?;
        Ok(SqliteStore {
            conn,
            rows,
            swept_since: Default::default(),
        })
    }

    /// An in-memory copy of this database: simulations replay on it and
    /// leave the real state untouched.
    pub fn copy_in_memory(&self) -> Result<SqliteStore, StoreError> {
        let mut target = Connection::open_in_memory()?;
        {
            let backup = rusqlite::backup::Backup::new(&self.conn, &mut target)?;
            backup.run_to_completion(1024, std::time::Duration::ZERO, None)?;
        }
        Ok(SqliteStore {
            conn: target,
            rows: crate::rows::RowCodec::default(),
            swept_since: Default::default(),
        })
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    fn upsert<T: Serialize + Clone>(
        &mut self,
        table: &'static str,
        key_col: &str,
        extra: &[&str],
        records: &[T],
        columns: impl Fn(&T) -> Vec<String>,
    ) -> Result<Upserted, StoreError> {
        self.write(
            table,
            key_col,
            extra,
            records,
            |r| r,
            |_| None,
            |r, _| Ok(r.clone()),
            columns,
        )
    }

    /// Like [`SqliteStore::upsert`], with each patch merged with the stored
    /// record (read in the same transaction) before it is written; a patch
    /// older than the stored record (`updated_at`, [`Patch::is_older_than`])
    /// is not written.
    fn upsert_patches<T: Serialize + DeserializeOwned + Merge>(
        &mut self,
        table: &'static str,
        key_col: &str,
        extra: &[&str],
        patches: &[Patch<T>],
        columns: impl Fn(&T) -> Vec<String>,
    ) -> Result<Upserted, StoreError> {
        self.write(
            table,
            key_col,
            extra,
            patches,
            |p| &p.record,
            |p| p.updated_at,
            |patch, old| {
                let stored: Option<T> = match old {
                    Some((key, body)) if !patch.kept.is_empty() => Some(decode(table, key, body)?),
                    _ => None,
                };
                Ok(patch.apply(stored.as_ref()))
            },
            columns,
        )
    }

    /// Writes each item's record in one transaction, counting what was new,
    /// changed and unchanged: `resolve` makes the record to store from the
    /// item and the stored body (`(key, body)`), if any. An item whose
    /// `version` (when the ERP changed it) is older than the stored one is
    /// counted as older and not written; a newer one is kept in
    /// `record_versions`, and an item without one clears it there.
    #[allow(clippy::too_many_arguments)]
    fn write<I, T: Serialize>(
        &mut self,
        table: &'static str,
        key_col: &str,
        extra: &[&str],
        items: &[I],
        given: impl Fn(&I) -> &T,
        version: impl Fn(&I) -> Option<DateTime<Utc>>,
        resolve: impl Fn(&I, Option<(&str, &str)>) -> Result<T, StoreError>,
        columns: impl Fn(&T) -> Vec<String>,
    ) -> Result<Upserted, StoreError> {
        let tx = self.conn.transaction()?;
        let mut counts = Upserted::default();
        let mut unfold: BTreeSet<String> = BTreeSet::new();
        {
            let mut get_version =
                tx.prepare("SELECT updated_at FROM record_versions WHERE tbl = ?1 AND key = ?2")?;
            let mut put_version = tx.prepare(
                "INSERT INTO record_versions (tbl, key, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tbl, key) DO UPDATE SET updated_at = excluded.updated_at",
            )?;
            let mut clear_version =
                tx.prepare("DELETE FROM record_versions WHERE tbl = ?1 AND key = ?2")?;
            let select = format!("SELECT body FROM {table} WHERE {key_col} = ?1");
            let mut cols = vec![key_col];
            cols.extend_from_slice(extra);
            cols.push("body");
            let placeholders: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
            let insert = format!(
                "INSERT OR REPLACE INTO {table} ({}) VALUES ({})",
                cols.join(", "),
                placeholders.join(", ")
            );
            let mut get = tx.prepare(&select)?;
            let mut put = tx.prepare(&insert)?;
            for item in items {
                let key = columns(given(item)).first().cloned().unwrap_or_default();
                match version(item) {
                    // Not said: applied as it comes, and the stored time
                    // no longer describes the record.
                    None => {
                        clear_version.execute(params![table, key])?;
                    }
                    Some(mine) => {
                        let stored: Option<String> = get_version
                            .query_row(params![table, key], |r| r.get(0))
                            .optional()?;
                        let stored = stored
                            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                            .map(|t| t.with_timezone(&Utc));
                        if stored.is_some_and(|stored| mine < stored) {
                            counts.older += 1;
                            continue;
                        }
                        put_version.execute(params![
                            table,
                            key,
                            mine.to_rfc3339_opts(SecondsFormat::AutoSi, true)
                        ])?;
                    }
                }
                let old: Option<String> = get.query_row([&key], |r| r.get(0)).optional()?;
                let record = resolve(item, old.as_deref().map(|b| (key.as_str(), b)))?;
                let mut values = columns(&record);
                let body = encode(&record)?;
                match old {
                    Some(o) if o == body => {
                        counts.unchanged += 1;
                        continue;
                    }
                    Some(_) => counts.updated += 1,
                    None => counts.inserted += 1,
                }
                // Late data on a folded invoice (read before the write
                // replaces the row, and with it the mark).
                match table {
                    "invoices" => unfold.extend(folded_customer(&tx, &key)?),
                    "payments" => {
                        let before: Option<String> = tx
                            .prepare_cached(
                                "SELECT invoice_id FROM payments WHERE payment_id = ?1",
                            )?
                            .query_row([&key], |r| r.get(0))
                            .optional()?;
                        for invoice in before.iter().chain(values.get(1)) {
                            unfold.extend(folded_customer(&tx, invoice)?);
                        }
                    }
                    _ => {}
                }
                values.push(body);
                put.execute(rusqlite::params_from_iter(values.iter()))?;
            }
        }
        unfold_customers(&tx, &unfold)?;
        tx.commit()?;
        Ok(counts)
    }

    pub(crate) fn all<T: DeserializeOwned>(
        &self,
        table: &'static str,
        key_col: &str,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.each(table, key_col, |v| out.push(v))?;
        Ok(out)
    }

    /// Decodes every record of a table, in storage order, handing each to `f`.
    pub(crate) fn each<T: DeserializeOwned>(
        &self,
        table: &'static str,
        key_col: &str,
        mut f: impl FnMut(T),
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {key_col}, body FROM {table}"))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            // Decoded straight from SQLite's buffer: no copy of the text.
            let body = row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
            match serde_json::from_str(body) {
                Ok(v) => f(v),
                Err(source) => {
                    return Err(StoreError::Corrupt {
                        table,
                        key: row.get::<_, String>(0)?,
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The customer of `invoice_id` if the invoice is folded into its
/// payment history (`invoices.folded`).
pub(crate) fn folded_customer(
    conn: &Connection,
    invoice_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT customer_id FROM invoices WHERE invoice_id = ?1 AND folded = 1")?
        .query_row([invoice_id], |r| r.get(0))
        .optional()?)
}

/// The customer whose folded invoice an event names (late data: see
/// [`unfold_customers`]). Only an event naming an invoice counts: the fold
/// rule ([`collect_engine::history::foldable`]) reads those alone, and a
/// mail event naming only an action or a message is read by no sweep.
pub(crate) fn folded_customers_of_event(
    conn: &Connection,
    e: &Event,
) -> Result<Option<String>, StoreError> {
    match &e.invoice_id {
        Some(invoice) => folded_customer(conn, invoice),
        None => Ok(None),
    }
}

/// Late data (an invoice, a payment or an event written after the
/// invoice it names was folded into its customer's payment history)
/// unfolds the customer: every invoice of theirs is read again and the
/// aggregate is dropped, so the next sweep folds them again from the
/// records, exactly as if the late data had always been there.
pub(crate) fn unfold_customers(
    conn: &Connection,
    customers: &BTreeSet<String>,
) -> Result<(), StoreError> {
    for c in customers {
        conn.prepare_cached(
            "UPDATE invoices SET folded = 0 WHERE customer_id = ?1 AND folded = 1",
        )?
        .execute([c])?;
        conn.prepare_cached("DELETE FROM customer_history WHERE customer_id = ?1")?
            .execute([c])?;
    }
    Ok(())
}

impl Store for SqliteStore {
    fn upsert_customers(&mut self, records: &[Customer]) -> Result<Upserted, StoreError> {
        self.upsert("customers", "customer_id", &[], records, |c| {
            vec![c.customer_id.clone()]
        })
    }

    fn upsert_invoices(&mut self, records: &[Invoice]) -> Result<Upserted, StoreError> {
        self.upsert(
            "invoices",
            "invoice_id",
            &["customer_id", "due_date"],
            records,
            |i| {
                vec![
                    i.invoice_id.clone(),
                    i.customer_id.clone(),
                    i.due_date.to_string(),
                ]
            },
        )
    }

    fn merge_customers(&mut self, patches: &[Patch<Customer>]) -> Result<Upserted, StoreError> {
        self.upsert_patches("customers", "customer_id", &[], patches, |c| {
            vec![c.customer_id.clone()]
        })
    }

    fn merge_invoices(&mut self, patches: &[Patch<Invoice>]) -> Result<Upserted, StoreError> {
        self.upsert_patches(
            "invoices",
            "invoice_id",
            &["customer_id", "due_date"],
            patches,
            |i| {
                vec![
                    i.invoice_id.clone(),
                    i.customer_id.clone(),
                    i.due_date.to_string(),
                ]
            },
        )
    }

    fn upsert_payments(&mut self, records: &[Payment]) -> Result<Upserted, StoreError> {
        self.upsert("payments", "payment_id", &["invoice_id"], records, |p| {
            vec![p.payment_id.clone(), p.invoice_id.clone()]
        })
    }

    fn insert_events(&mut self, events: &[Event]) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        let mut new = 0;
        {
            let mut stmt = tx.prepare(
                "INSERT OR IGNORE INTO events (event_id, date, type, invoice_id, action_id, message_id, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut unfold = BTreeSet::new();
            for e in events {
                let n = stmt.execute(params![
                    e.event_id,
                    e.date.to_string(),
                    e.kind.name(),
                    e.invoice_id,
                    e.action_id,
                    e.message_id,
                    encode(e)?
                ])?;
                if n == 1 {
                    unfold.extend(folded_customers_of_event(&tx, e)?);
                }
                new += n;
            }
            unfold_customers(&tx, &unfold)?;
        }
        tx.commit()?;
        Ok(new)
    }

    fn load_book(&self) -> Result<Book, StoreError> {
        // Actions, the bulk of a store that has run for a while, go
        // straight into their groups.
        let mut actions = ActionsByInvoice::default();
        self.each_action("", [], |a| actions.push(a))?;
        Ok(Book::with_actions(
            self.all("customers", "customer_id")?,
            self.all("invoices", "invoice_id")?,
            self.all("payments", "payment_id")?,
            self.all("events", "event_id")?,
            actions,
        ))
    }

    fn transition(
        &mut self,
        record: &ActionRecord,
        expected: &[ActionStatus],
        day: NaiveDate,
        by: Option<&str>,
    ) -> Result<(), StoreError> {
        let context = self.rows.context_id(&self.conn, record)?;
        let tx = self.conn.savepoint()?;
        let current: Option<String> = tx
            .prepare_cached("SELECT status FROM actions WHERE action_id = ?1")?
            .query_row([record.action_id.as_str()], |r| r.get(0))
            .optional()?;
        let Some(current) = current else {
            return Err(StoreError::NoSuchAction(record.action_id.to_string()));
        };
        if !expected.iter().any(|s| s.as_str() == current) {
            return Err(StoreError::WrongStatus {
                id: record.action_id.to_string(),
                actual: current,
                expected: expected
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
            });
        }
        crate::rows::write_logged(
            &tx,
            &mut tx.prepare_cached(&format!(
                "{}{}",
                crate::rows::UPDATE_LOGGED,
                crate::rows::RETURNING
            ))?,
            record,
            context,
            day,
            by,
            &[],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn action(&self, action_id: &str) -> Result<Option<ActionRecord>, StoreError> {
        let mut found = None;
        self.each_action("WHERE action_id = ?1", [action_id], |a| found = Some(a))?;
        Ok(found)
    }

    fn actions(&self) -> Result<Vec<ActionRecord>, StoreError> {
        let mut v: Vec<ActionRecord> = Vec::new();
        self.each_action("", [], |a| v.push(a))?;
        v.sort_by(|a, b| {
            (a.decided_on, &a.customer_id, &a.action_id).cmp(&(
                b.decided_on,
                &b.customer_id,
                &b.action_id,
            ))
        });
        Ok(v)
    }

    fn action_log(&self, action_id: &str) -> Result<Vec<LogEntry>, StoreError> {
        // The trail is keyed by customer: found through the action's row
        // (a line whose action is gone is kept under customer '').
        let customer: Option<String> = self
            .conn
            .prepare_cached("SELECT customer_id FROM actions WHERE action_id = ?1")?
            .query_row([action_id], |r| r.get(0))
            .optional()?;
        crate::rows::trail(&self.conn, customer.as_deref().unwrap_or(""), action_id)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use collect_engine::ingest;

    fn customers(store: &mut SqliteStore, text: &str) -> Upserted {
        let parsed = ingest::customers(text.as_bytes(), "customers.csv").unwrap();
        assert_eq!(parsed.rejects, vec![]);
        store.merge_customers(&parsed.records).unwrap()
    }

    /// ERP ordering: a record older (`updated_at`) than the stored one
    /// never overwrites it, whatever order exports arrive in; a record
    /// without `updated_at` is applied as it comes.
    #[test]
    fn an_older_record_never_overwrites_a_newer_one() {
        let mut store = SqliteStore::in_memory().unwrap();
        let newer =
            "customer_id,name,email,updated_at\nC1,Acme AG,ap@acme.example,2027-03-02T10:00:00Z\n";
        let older = "customer_id,name,email,updated_at\nC1,Acme GmbH,old@acme.example,2027-03-01T09:00:00+01:00\n";
        assert_eq!(customers(&mut store, newer).inserted, 1);
        let late = customers(&mut store, older);
        assert_eq!((late.older, late.updated), (1, 0));
        let c1 = &store.load_book().unwrap().customers["C1"];
        assert_eq!(
            (c1.name.as_str(), c1.email.as_str()),
            ("Acme AG", "ap@acme.example")
        );
        // The same time again applies (and changes nothing); a later one wins.
        assert_eq!(customers(&mut store, newer).unchanged, 1);
        let later =
            "customer_id,name,email,updated_at\nC1,Acme SE,ap@acme.example,2027-03-02 10:00:01\n";
        assert_eq!(customers(&mut store, later).updated, 1);
        // Without the column: last writer wins, and the stored time no
        // longer holds, so any versioned record after it applies.
        let plain = "customer_id,name,email\nC1,Acme Plain,ap@acme.example\n";
        assert_eq!(customers(&mut store, plain).updated, 1);
        assert_eq!(customers(&mut store, older).updated, 1);
        assert_eq!(store.load_book().unwrap().customers["C1"].name, "Acme GmbH");

        // Invoices: an old export of an invoice loaded late does not undo
        // a correction of its amount.
        let head = "invoice_id,customer_id,number,issue_date,due_date,amount,currency,updated_at\n";
        let fixed =
            format!("{head}I1,C1,INV-1,2027-02-01,2027-03-03,900.00,EUR,2027-03-02T08:00:00Z\n");
        let stale =
            format!("{head}I1,C1,INV-1,2027-02-01,2027-03-03,9000.00,EUR,2027-02-01T08:00:00Z\n");
        for text in [&fixed, &stale] {
            let parsed = ingest::invoices(text.as_bytes(), "invoices.csv").unwrap();
            assert_eq!(parsed.rejects, vec![]);
            store.merge_invoices(&parsed.records).unwrap();
        }
        let book = store.load_book().unwrap();
        assert_eq!(book.invoices[0].amount.to_string(), "900.00");
    }

    #[test]
    fn an_export_without_do_not_contact_leaves_the_stored_flag() {
        let mut store = SqliteStore::in_memory().unwrap();
        let full = "customer_id,name,email,phone,tags,do_not_contact\nC1,Acme,ap@acme.example,+49 30 1,vip,true\n";
        let first = customers(&mut store, full);
        assert_eq!(first.inserted, 1);
        // The same customer from an export without the flag (and without
        // phone or tags): nothing it did not say changes.
        let partial = "customer_id,name,email\nC1,Acme,ap@acme.example\n";
        let again = customers(&mut store, partial);
        assert_eq!(
            again,
            Upserted {
                inserted: 0,
                updated: 0,
                unchanged: 1,
                older: 0,
            },
            "nothing changed, so nothing is reported as updated"
        );
        let book = store.load_book().unwrap();
        let c1 = &book.customers["C1"];
        assert!(c1.do_not_contact);
        assert_eq!(c1.phone.as_deref(), Some("+49 30 1"));
        assert_eq!(c1.tags, vec!["vip"]);
        // A change of name is an update that keeps the flag.
        let renamed = customers(
            &mut store,
            "customer_id,name,email\nC1,Acme AG,ap@acme.example\n",
        );
        assert_eq!(renamed.updated, 1);
        let book = store.load_book().unwrap();
        assert!(book.customers["C1"].do_not_contact);
        assert_eq!(book.customers["C1"].name, "Acme AG");
        // An explicit false clears it.
        customers(
            &mut store,
            "customer_id,name,email,do_not_contact\nC1,Acme AG,ap@acme.example,false\n",
        );
        assert!(!store.load_book().unwrap().customers["C1"].do_not_contact);
    }

    #[test]
    fn patches_of_one_batch_merge_in_order() {
        let mut store = SqliteStore::in_memory().unwrap();
        let a = ingest::customers(
            "customer_id,name,email,do_not_contact\nC1,Acme,ap@acme.example,true\n".as_bytes(),
            "customers.csv",
        )
        .unwrap();
        let b = ingest::customers(
            "customer_id,name,email,phone\nC1,Acme,ap@acme.example,+1 555\n".as_bytes(),
            "customers.csv",
        )
        .unwrap();
        let patches: Vec<_> = a.records.into_iter().chain(b.records).collect();
        let counts = store.merge_customers(&patches).unwrap();
        assert_eq!((counts.inserted, counts.updated), (1, 1));
        let c1 = store.load_book().unwrap().customers["C1"].clone();
        assert!(c1.do_not_contact);
        assert_eq!(c1.phone.as_deref(), Some("+1 555"));
    }
}
