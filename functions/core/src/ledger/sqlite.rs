//! The ledger on the local SQLite file (see [`crate::store`] for the
//! tables of the book). Each write is its own transaction, so a process
//! killed at any point leaves every write before it in place and none after.

use super::{
    LIVE, Lease, LeaseHolder, LeaseOutcome, Ledger, LedgerError, MessageStatus, Move, Recorded,
    Scope, StoredMessage, lease_decision, take_over_decision,
};
use crate::book::{ActionsByInvoice, Book, Interner, Step, StepsByInvoice, is_live};
use crate::domain::{ActionId, ActionRecord, ActionStatus, InvoiceId};
use crate::store::{SqliteStore, StoreError, decode, encode, sort_key};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{BTreeMap, HashMap};

/// The schema version this build writes. 1: the first release (no message
/// or lease tables); 2: messages recorded with their content, leases.
pub const SCHEMA_VERSION: u32 = 2;

/// Brings a database written by an earlier release up to
/// [`SCHEMA_VERSION`]. The tables are created by the schema script; this
/// moves the data: a version-1 home may hold messages left over by a crash
/// only as actions (`planned`/`sending` with a message id), so they are
/// recorded as messages, rebuilt from their actions (a plan offer's
/// schedule was never recorded then: the checks before sending cancel it
/// and the next sweep offers it again).
pub(crate) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    add_log_risk(conn)?;
    let version: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let version: u32 = version.and_then(|v| v.parse().ok()).unwrap_or(1);
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.unchecked_transaction()?;
    {
        let mut stmt = tx.prepare(
            "SELECT action_id, body FROM actions WHERE status IN ('planned', 'sending')",
        )?;
        let mut rows = stmt.query([])?;
        let mut groups: BTreeMap<String, Vec<ActionRecord>> = BTreeMap::new();
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let body: String = row.get(1)?;
            let a: ActionRecord = decode("actions", &id, &body)?;
            if let Some(mid) = a.message_id.clone() {
                groups.entry(mid.into()).or_default().push(a);
            }
        }
        let mut put = tx.prepare(
            "INSERT OR IGNORE INTO messages (message_id, customer_id, status, planned_on, body)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (mid, actions) in groups {
            let Some(m) = rebuilt_message(&mid, &actions) else {
                continue;
            };
            put.execute(params![
                m.message_id,
                m.customer_id,
                m.status.as_str(),
                m.planned_on.to_string(),
                encode(&m)?
            ])?;
        }
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [SCHEMA_VERSION.to_string()],
    )?;
    tx.commit()?;
    Ok(())
}

/// The audit trail of earlier releases has no `risk` column: added (empty
/// for the lines written before, whose risk was not kept).
fn add_log_risk(conn: &Connection) -> Result<(), StoreError> {
    let has: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('action_log') WHERE name = 'risk'")?
        .exists([])?;
    if !has {
        conn.execute_batch("ALTER TABLE action_log ADD COLUMN risk REAL")?;
    }
    Ok(())
}

/// A message of an earlier release, from the actions that name it.
fn rebuilt_message(message_id: &str, actions: &[ActionRecord]) -> Option<StoredMessage> {
    let lead = actions
        .iter()
        .max_by_key(|a| (a.step_offset, a.invoice_id.as_str()))?;
    let mut invoice_ids: Vec<InvoiceId> = Vec::new();
    for a in actions {
        if !invoice_ids.contains(&a.invoice_id) {
            invoice_ids.push(a.invoice_id.clone());
        }
    }
    let sending = actions.iter().any(|a| a.status == ActionStatus::Sending);
    Some(StoredMessage {
        message_id: message_id.into(),
        customer_id: lead.customer_id.clone(),
        channel: lead.channel,
        template: lead.target.clone(),
        action_ids: actions.iter().map(|a| a.action_id.clone()).collect(),
        invoice_ids,
        plan: None,
        tags: vec![
            ("channel".to_string(), lead.channel.to_string()),
            ("template".to_string(), lead.target.clone()),
        ],
        planned_on: actions.iter().map(|a| a.decided_on).min()?,
        status: if sending {
            MessageStatus::Sending
        } else {
            MessageStatus::Planned
        },
        sending_since: None,
        sent_on: None,
        provider_message_id: None,
        note: Some("recorded from its actions by the schema upgrade".to_string()),
    })
}

fn read_message(conn: &Connection, message_id: &str) -> Result<Option<StoredMessage>, StoreError> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM messages WHERE message_id = ?1")?
        .query_row([message_id], |r| r.get(0))
        .optional()?;
    body.map(|b| decode("messages", message_id, &b)).transpose()
}

fn read_lease(conn: &Connection, name: &str) -> Result<Option<Lease>, StoreError> {
    let body: Option<String> = conn
        .query_row("SELECT body FROM leases WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?;
    body.map(|b| decode("leases", name, &b)).transpose()
}

/// The fields of a stored action a compact book keeps, read from its JSON
/// without building the rest (strings borrowed where they have no escapes).
#[derive(serde::Deserialize)]
struct SlimAction<'a> {
    #[serde(borrow)]
    action_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    invoice_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    policy_name: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    segment: std::borrow::Cow<'a, str>,
    status: ActionStatus,
    step_offset: i64,
    #[serde(borrow)]
    channel: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    label: std::borrow::Cow<'a, str>,
    decided_on: NaiveDate,
    #[serde(default)]
    sent_on: Option<NaiveDate>,
    #[serde(default, borrow)]
    message_id: Option<std::borrow::Cow<'a, str>>,
}

impl SqliteStore {
    /// The book a sweep needs: every action as a compact [`Step`], the full
    /// records of the live ones only (see [`Book::compact`]).
    pub fn load_compact(&self) -> Result<Book, StoreError> {
        let mut strings = Interner::default();
        let mut steps = StepsByInvoice::default();
        let mut live = ActionsByInvoice::default();
        {
            let mut stmt = self
                .conn
                .prepare("SELECT action_id, status, body FROM actions")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let status = row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
                let body = row.get_ref(2)?.as_str().map_err(rusqlite::Error::from)?;
                let corrupt = |source| -> Result<StoreError, rusqlite::Error> {
                    Ok(StoreError::Corrupt {
                        table: "actions",
                        key: row.get::<_, String>(0)?,
                        source,
                    })
                };
                if ActionStatus::parse(status).is_some_and(is_live) {
                    let a: ActionRecord = match serde_json::from_str(body) {
                        Ok(a) => a,
                        Err(e) => return Err(corrupt(e)?),
                    };
                    steps.push(&a.invoice_id, Step::of(&a, &mut strings));
                    live.push(a);
                } else {
                    let a: SlimAction<'_> = match serde_json::from_str(body) {
                        Ok(a) => a,
                        Err(e) => return Err(corrupt(e)?),
                    };
                    let step = Step {
                        action_id: a.action_id.as_ref().into(),
                        policy_name: strings.get(&a.policy_name),
                        segment: strings.get(&a.segment),
                        status: a.status,
                        step_offset: a.step_offset,
                        channel: crate::book::channel(&a.channel),
                        label: strings.get(&a.label),
                        decided_on: a.decided_on,
                        sent_on: a.sent_on,
                        message_id: a.message_id.as_deref().map(Into::into),
                    };
                    steps.push(&a.invoice_id, step);
                }
            }
        }
        Ok(Book::compact(
            self.all("customers", "customer_id")?,
            self.all("invoices", "invoice_id")?,
            self.all("payments", "payment_id")?,
            self.all("events", "event_id")?,
            steps,
            live,
        ))
    }

    /// Every message recorded (for `collect explain` and the tests).
    pub fn all_messages(&self) -> Result<Vec<StoredMessage>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT message_id, body FROM messages ORDER BY planned_on, message_id")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let body: String = row.get(1)?;
            out.push(decode("messages", &id, &body)?);
        }
        Ok(out)
    }

    /// Every action of the given customer, grouped by invoice.
    fn customer_actions(&self, customer_id: &str) -> Result<ActionsByInvoice, StoreError> {
        let mut out = ActionsByInvoice::default();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT action_id, body FROM actions WHERE customer_id = ?1")?;
        let mut rows = stmt.query([customer_id])?;
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let body: String = row.get(1)?;
            out.push(decode("actions", &id, &body)?);
        }
        Ok(out)
    }

    fn rows<T: serde::de::DeserializeOwned>(
        &self,
        table: &'static str,
        sql: &str,
        key: &str,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query([key])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let body: String = row.get(1)?;
            out.push(decode(table, &id, &body)?);
        }
        Ok(out)
    }

    /// The stored status of an action, if it exists.
    fn action_status(&self, action_id: &str) -> Result<Option<ActionStatus>, StoreError> {
        let s: Option<String> = self
            .conn
            .prepare_cached("SELECT status FROM actions WHERE action_id = ?1")?
            .query_row([action_id], |r| r.get(0))
            .optional()?;
        Ok(s.as_deref().and_then(ActionStatus::parse))
    }
}

impl Ledger for SqliteStore {
    async fn load_book(&self, _scope: &Scope, _day: NaiveDate) -> Result<Book, LedgerError> {
        Ok(self.load_compact()?)
    }

    async fn customer_book(&self, customer_id: &str) -> Result<Book, LedgerError> {
        let customers = self.rows(
            "customers",
            "SELECT customer_id, body FROM customers WHERE customer_id = ?1",
            customer_id,
        )?;
        let invoices = self.rows(
            "invoices",
            "SELECT invoice_id, body FROM invoices WHERE customer_id = ?1",
            customer_id,
        )?;
        let payments = self.rows(
            "payments",
            "SELECT p.payment_id, p.body FROM payments p JOIN invoices i ON p.invoice_id = i.invoice_id
             WHERE i.customer_id = ?1",
            customer_id,
        )?;
        let events = self.rows(
            "events",
            "SELECT e.event_id, e.body FROM events e JOIN invoices i ON e.invoice_id = i.invoice_id
             WHERE i.customer_id = ?1",
            customer_id,
        )?;
        let actions = self.customer_actions(customer_id)?;
        Ok(Book::with_actions(
            customers, invoices, payments, events, actions,
        ))
    }

    async fn record_actions(
        &self,
        records: &[ActionRecord],
        previous: &HashMap<ActionId, ActionStatus>,
        day: NaiveDate,
    ) -> Result<Recorded, LedgerError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(StoreError::from)?;
        let mut out = Recorded::default();
        {
            let mut add = tx
                .prepare_cached(
                    "INSERT INTO actions (action_id, invoice_id, customer_id, status, body)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (action_id) DO NOTHING",
                )
                .map_err(StoreError::from)?;
            let mut put = tx
                .prepare_cached(
                    "UPDATE actions SET status = ?2, body = ?3 WHERE action_id = ?1 AND status = ?4",
                )
                .map_err(StoreError::from)?;
            let mut get = tx
                .prepare_cached("SELECT status, body FROM actions WHERE action_id = ?1")
                .map_err(StoreError::from)?;
            let mut logged: Vec<&ActionRecord> = Vec::new();
            for r in records {
                let body = encode(r)?;
                let written = match previous.get(&r.action_id) {
                    None => {
                        add.execute(params![
                            r.action_id,
                            r.invoice_id,
                            r.customer_id,
                            r.status.as_str(),
                            body
                        ])
                        .map_err(StoreError::from)?
                            == 1
                    }
                    Some(seen) => {
                        let stored: Option<(String, String)> = get
                            .query_row([&r.action_id], |row| Ok((row.get(0)?, row.get(1)?)))
                            .optional()
                            .map_err(StoreError::from)?;
                        match stored {
                            Some((_, old)) if old == body => {
                                out.written.push(r.action_id.clone());
                                continue;
                            }
                            Some((status, _)) if status == seen.as_str() => {
                                put.execute(params![
                                    r.action_id,
                                    r.status.as_str(),
                                    body,
                                    seen.as_str()
                                ])
                                .map_err(StoreError::from)?
                                    == 1
                            }
                            _ => false,
                        }
                    }
                };
                if written {
                    // Every change is a line of the trail (a retry deferred
                    // again keeps the first deferral's reason and risk).
                    logged.push(r);
                    out.written.push(r.action_id.clone());
                } else {
                    out.conflicts.push(r.action_id.clone());
                }
            }
            // Logged in about the order of the trail's key, so its index
            // grows in order instead of at random: sorted (stably, so the
            // entries of one action keep their order) by eight bytes of the
            // id past the shared `act-`.
            logged.sort_by_key(|r| sort_key(&r.action_id));
            for r in logged {
                SqliteStore::log(&tx, r, day, None)?;
            }
        }
        tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    async fn move_action(
        &self,
        record: &ActionRecord,
        expected: &[ActionStatus],
        day: NaiveDate,
    ) -> Result<bool, LedgerError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(StoreError::from)?;
        let Some(current) = self.action_status(&record.action_id)? else {
            return Ok(false);
        };
        if !expected.contains(&current) {
            return Ok(false);
        }
        tx.prepare_cached("UPDATE actions SET status = ?2, body = ?3 WHERE action_id = ?1")
            .map_err(StoreError::from)?
            .execute(params![
                record.action_id,
                record.status.as_str(),
                encode(record)?
            ])
            .map_err(StoreError::from)?;
        SqliteStore::log(&tx, record, day, record.decided_by.as_deref())?;
        tx.commit().map_err(StoreError::from)?;
        Ok(true)
    }

    async fn put_message(&self, m: &StoredMessage) -> Result<bool, LedgerError> {
        Ok(self
            .put_messages(std::slice::from_ref(m))
            .await?
            .first()
            .copied()
            .unwrap_or(false))
    }

    async fn put_messages(&self, messages: &[StoredMessage]) -> Result<Vec<bool>, LedgerError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(StoreError::from)?;
        let mut out = Vec::with_capacity(messages.len());
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO messages (message_id, customer_id, status, planned_on, body)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (message_id) DO UPDATE
                     SET status = excluded.status, planned_on = excluded.planned_on, body = excluded.body
                     WHERE messages.status = 'cancelled'",
                )
                .map_err(StoreError::from)?;
            for m in messages {
                let n = put
                    .execute(params![
                        m.message_id,
                        m.customer_id,
                        m.status.as_str(),
                        m.planned_on.to_string(),
                        encode(m)?
                    ])
                    .map_err(StoreError::from)?;
                out.push(n == 1);
            }
        }
        tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    async fn message(&self, message_id: &str) -> Result<Option<StoredMessage>, LedgerError> {
        Ok(read_message(&self.conn, message_id)?)
    }

    async fn unfinished_messages(&self, _scope: &Scope) -> Result<Vec<StoredMessage>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT message_id, body FROM messages WHERE status IN ('planned', 'sending')
                 ORDER BY planned_on, message_id",
            )
            .map_err(StoreError::from)?;
        let mut rows = stmt.query([]).map_err(StoreError::from)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(StoreError::from)? {
            let id: String = row.get(0).map_err(StoreError::from)?;
            let body: String = row.get(1).map_err(StoreError::from)?;
            out.push(decode("messages", &id, &body)?);
        }
        Ok(out)
    }

    async fn move_message(
        &self,
        next: &StoredMessage,
        from: MessageStatus,
    ) -> Result<bool, LedgerError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE messages SET status = ?2, body = ?3 WHERE message_id = ?1 AND status = ?4",
            )
            .map_err(StoreError::from)?
            .execute(params![
                next.message_id,
                next.status.as_str(),
                encode(next)?,
                from.as_str()
            ])
            .map_err(StoreError::from)?;
        Ok(n == 1)
    }

    async fn move_batch(&self, moves: &[Move]) -> Result<Vec<Option<Vec<bool>>>, LedgerError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(StoreError::from)?;
        let mut out = Vec::with_capacity(moves.len());
        {
            let mut message = tx
                .prepare_cached(
                    "UPDATE messages SET status = ?2, body = ?3 WHERE message_id = ?1 AND status = ?4",
                )
                .map_err(StoreError::from)?;
            let mut get = tx
                .prepare_cached("SELECT status FROM actions WHERE action_id = ?1")
                .map_err(StoreError::from)?;
            let mut put = tx
                .prepare_cached("UPDATE actions SET status = ?2, body = ?3 WHERE action_id = ?1")
                .map_err(StoreError::from)?;
            for mv in moves {
                // The message's condition first: when it fails, nothing of
                // this move is written.
                let n = message
                    .execute(params![
                        mv.next.message_id,
                        mv.next.status.as_str(),
                        encode(&mv.next)?,
                        mv.from.as_str()
                    ])
                    .map_err(StoreError::from)?;
                if n != 1 {
                    out.push(None);
                    continue;
                }
                let mut moved = Vec::with_capacity(mv.actions.len());
                for a in &mv.actions {
                    let current: Option<String> = get
                        .query_row([&a.action_id], |r| r.get(0))
                        .optional()
                        .map_err(StoreError::from)?;
                    let ok = current
                        .as_deref()
                        .and_then(ActionStatus::parse)
                        .is_some_and(|c| LIVE.contains(&c));
                    if ok {
                        put.execute(params![a.action_id, a.status.as_str(), encode(a)?])
                            .map_err(StoreError::from)?;
                        SqliteStore::log(&tx, a, mv.day, a.decided_by.as_deref())?;
                    }
                    moved.push(ok);
                }
                out.push(Some(moved));
            }
        }
        tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &LeaseHolder,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<LeaseOutcome, LedgerError> {
        self.decide_lease(name, |current| {
            lease_decision(current, name, holder, now, ttl)
        })
    }

    async fn take_over_lease(
        &self,
        dead: &Lease,
        holder: &LeaseHolder,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<LeaseOutcome, LedgerError> {
        self.decide_lease(&dead.name, |current| {
            take_over_decision(current, dead, holder, now, ttl)
        })
    }

    async fn release_lease(&self, name: &str, holder: &LeaseHolder) -> Result<(), LedgerError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(StoreError::from)?;
        if read_lease(&tx, name)?.is_some_and(|l| l.holder.id == holder.id) {
            tx.execute("DELETE FROM leases WHERE name = ?1", [name])
                .map_err(StoreError::from)?;
        }
        tx.commit().map_err(StoreError::from)?;
        Ok(())
    }
}

impl SqliteStore {
    /// Reads the lease and writes what `decide` makes of it, as one step
    /// for every process on this file (BEGIN IMMEDIATE).
    fn decide_lease(
        &self,
        name: &str,
        decide: impl FnOnce(Option<&Lease>) -> LeaseOutcome,
    ) -> Result<LeaseOutcome, LedgerError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(StoreError::from)?;
        let result = (|| -> Result<LeaseOutcome, StoreError> {
            let current = read_lease(&self.conn, name)?;
            let outcome = decide(current.as_ref());
            if let LeaseOutcome::Taken(l) = &outcome {
                self.conn.execute(
                    "INSERT INTO leases (name, body) VALUES (?1, ?2)
                     ON CONFLICT(name) DO UPDATE SET body = excluded.body",
                    params![name, encode(l)?],
                )?;
            }
            Ok(outcome)
        })();
        match result {
            Ok(outcome) => {
                self.conn
                    .execute_batch("COMMIT")
                    .map_err(StoreError::from)?;
                Ok(outcome)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e.into())
            }
        }
    }
}
