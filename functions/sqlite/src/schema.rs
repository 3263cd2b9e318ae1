//! The schema of a home's `collect.db`, and the upgrade of a home written
//! by an earlier release (run when the file is opened).

use collect_delivery::ledger::{MessageStatus, StoredMessage};
use collect_engine::domain::{ActionRecord, ActionStatus, InvoiceId};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;

use crate::codec::{decode, encode};
use crate::error::StoreError;
use crate::rows::{self, RowCodec};

/// The tables of the book, the trail, messages, leases and contact holds
/// (the actions table is [`rows::ACTIONS_TABLE`]). The trail (`action_log`)
/// holds the lines that are not kept in their action's row (see
/// [`rows::UPDATE_LOGGED`]), keyed by customer, action and number. A table
/// added since an earlier release (`contact_holds`, `customer_history`) is
/// created, empty, when a home of that release is opened.
///
/// `customer_history` holds each customer's payment history folded into
/// one aggregate ([`collect_engine::history::PaymentHistory`], as JSON), and
/// `invoices.folded` marks the invoices it holds: the sweep reads neither
/// them nor their payments and events ([`crate::ledger`], `load_compact`).
pub(crate) const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS customers (customer_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invoices (
    invoice_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, due_date TEXT NOT NULL, body TEXT NOT NULL,
    folded INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS invoices_by_customer ON invoices (customer_id);
CREATE TABLE IF NOT EXISTS payments (payment_id TEXT PRIMARY KEY, invoice_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY, date TEXT NOT NULL, type TEXT NOT NULL,
    invoice_id TEXT, action_id TEXT, message_id TEXT, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS action_log (
    customer_id TEXT NOT NULL, action_id TEXT NOT NULL, seq INTEGER NOT NULL, day TEXT NOT NULL,
    status TEXT NOT NULL, note TEXT, by TEXT, risk REAL,
    PRIMARY KEY (customer_id, action_id, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS payments_by_invoice ON payments (invoice_id);
CREATE INDEX IF NOT EXISTS events_by_invoice ON events (invoice_id);
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, status TEXT NOT NULL,
    planned_on TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_status ON messages (status);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY, body TEXT NOT NULL, token INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS contact_holds (
    customer_id TEXT NOT NULL, address TEXT NOT NULL, open INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (customer_id, address)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS contact_holds_open ON contact_holds (open, customer_id);
CREATE TABLE IF NOT EXISTS customer_history (customer_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS record_versions (
    tbl TEXT NOT NULL, key TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (tbl, key)) WITHOUT ROWID;
";

/// The schema version this build writes. 1: the first release (no message
/// or lease tables); 2: messages recorded with their content, leases;
/// 3: actions as rows with shared contexts, no JSON (see [`crate::rows`]);
/// 4: the trail's routine lines in the action's row, the trail and the
/// actions keyed by customer (and invoice), the folded payment history
/// (`customer_history`, `invoices.folded`). The steps that bring a home up
/// to 4 are idempotent and run at every open (`compact_trail`,
/// `key_actions_by_invoice`, `add_history`).
pub const SCHEMA_VERSION: u32 = 4;

/// Brings a database written by an earlier release up to
/// [`SCHEMA_VERSION`]. The tables are created by the schema script; this
/// moves the data: a version-1 home may hold messages left over by a crash
/// only as actions (`planned`/`sending` with a message id), so they are
/// recorded as messages, rebuilt from their actions (a plan offer's
/// schedule was never recorded then: the checks before sending cancel it
/// and the next sweep offers it again).
pub(crate) fn migrate(conn: &Connection, codec: &RowCodec) -> Result<(), StoreError> {
    conn.execute_batch(rows::ACTIONS_TABLE)?;
    add_log_risk(conn)?;
    add_lease_token(conn)?;
    add_work(conn)?;
    compact_trail(conn)?;
    key_actions_by_invoice(conn)?;
    add_history(conn)?;
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
    let old_actions: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('actions') WHERE name = 'body'")?
        .exists([])?;
    if version < 2 && old_actions {
        messages_from_actions(conn)?;
    }
    rows::upgrade(conn, codec)?;
    add_work(conn)?;
    compact_trail(conn)?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [SCHEMA_VERSION.to_string()],
    )?;
    Ok(())
}

/// Schema 2: the messages a crash left in a schema-1 home, recorded as
/// messages from their actions.
fn messages_from_actions(conn: &Connection) -> Result<(), StoreError> {
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
                m.message_id.as_str(),
                m.customer_id.as_str(),
                m.status.as_str(),
                m.planned_on.to_string(),
                encode(&m)?
            ])?;
        }
    }
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

/// The folded payment history (issue 22): invoices of earlier releases
/// gain the `folded` mark (0: every invoice is read until a sweep folds
/// it), and the indexes the sweep's read goes by: the unfolded invoices by
/// customer, and the mail events that name no invoice by date. The
/// `customer_history` table itself is in [`SCHEMA`].
fn add_history(conn: &Connection) -> Result<(), StoreError> {
    let has: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('invoices') WHERE name = 'folded'")?
        .exists([])?;
    if !has {
        conn.execute_batch("ALTER TABLE invoices ADD COLUMN folded INTEGER NOT NULL DEFAULT 0")?;
    }
    conn.execute_batch(HISTORY_INDEXES)?;
    Ok(())
}

/// The indexes of [`add_history`]: the sweep reads the unfolded invoices
/// (a partial index, so its read does not grow with the folded ones), and
/// the recent mail events that name no invoice.
const HISTORY_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS invoices_unfolded ON invoices (customer_id, invoice_id) WHERE folded = 0;
CREATE INDEX IF NOT EXISTS events_unlinked ON events (date) WHERE invoice_id IS NULL;
";

/// The leases of earlier releases had no fencing token: the column is
/// added, 0 for a lease already there (its next holder gets 1).
/// The desk's open work: the "call again on" day of a call nobody
/// answered, and the partial index of open work.
fn add_work(conn: &Connection) -> Result<(), StoreError> {
    let old_layout: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('actions') WHERE name = 'body'")?
        .exists([])?;
    if old_layout {
        // Upgraded first (rows::upgrade), then given the column.
        return Ok(());
    }
    let has: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('actions') WHERE name = 'call_again_on'")?
        .exists([])?;
    if !has {
        conn.execute_batch("ALTER TABLE actions ADD COLUMN call_again_on TEXT")?;
    }
    conn.execute_batch(rows::WORK_INDEX)?;
    Ok(())
}

/// The trail of earlier releases: one row per line, keyed by action id
/// (random pages), and nothing of it in the action's row. Upgraded in
/// place, in one transaction: the actions gain the columns of their
/// routine lines (empty: the lines already written stay rows) and the
/// count of their lines; the trail is keyed by customer first, every line
/// kept as it was (a line whose action is gone, under customer `''`).
fn compact_trail(conn: &Connection) -> Result<(), StoreError> {
    let column = |table: &str, name: &str| -> Result<bool, StoreError> {
        Ok(conn
            .prepare(&format!(
                "SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"
            ))?
            .exists([name])?)
    };
    if column("actions", "body")? {
        // Upgraded first (rows::upgrade), then given the columns.
        return Ok(());
    }
    let has_columns = column("actions", "trail_len")?;
    let keyed = column("action_log", "customer_id")?;
    if has_columns && keyed {
        return Ok(());
    }
    let tx = conn.unchecked_transaction()?;
    if !has_columns {
        for def in [
            "trail_len INTEGER NOT NULL DEFAULT 0",
            "log_day TEXT",
            "log_status TEXT",
            "log_note TEXT",
            "log_risk REAL",
            "sending_seq INTEGER",
            "sending_day TEXT",
            "sending_note TEXT",
            "sending_by TEXT",
            "sending_risk REAL",
            "sent_seq INTEGER",
            "sent_day TEXT",
            "sent_note TEXT",
            "sent_by TEXT",
            "sent_risk REAL",
        ] {
            tx.execute_batch(&format!("ALTER TABLE actions ADD COLUMN {def}"))?;
        }
    }
    if !keyed {
        tx.execute_batch(
            "ALTER TABLE action_log RENAME TO action_log_v3;
             CREATE TABLE action_log (
                 customer_id TEXT NOT NULL, action_id TEXT NOT NULL, seq INTEGER NOT NULL,
                 day TEXT NOT NULL, status TEXT NOT NULL, note TEXT, by TEXT, risk REAL,
                 PRIMARY KEY (customer_id, action_id, seq)) WITHOUT ROWID;
             INSERT INTO action_log (customer_id, action_id, seq, day, status, note, by, risk)
                 SELECT COALESCE(a.customer_id, ''), l.action_id, l.seq, l.day, l.status,
                        l.note, l.by, l.risk
                 FROM action_log_v3 l LEFT JOIN actions a ON a.action_id = l.action_id
                 ORDER BY 1, 2, 3;
             DROP TABLE action_log_v3;",
        )?;
    }
    tx.execute_batch(
        "UPDATE actions SET trail_len = COALESCE((SELECT MAX(l.seq) FROM action_log l
             WHERE l.customer_id = actions.customer_id AND l.action_id = actions.action_id), 0)
         WHERE log_day IS NULL AND sending_seq IS NULL AND sent_seq IS NULL;",
    )?;
    tx.commit()?;
    Ok(())
}

/// The actions of earlier releases, keyed by customer and id: rebuilt in
/// place, keyed by customer, invoice and id (a sweep reads the actions of
/// its book's invoices by key), every row copied as it is.
fn key_actions_by_invoice(conn: &Connection) -> Result<(), StoreError> {
    let key: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('actions') WHERE pk > 0 ORDER BY pk")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let has_trail = conn
        .prepare("SELECT 1 FROM pragma_table_info('actions') WHERE name = 'trail_len'")?
        .exists([])?;
    if key != ["customer_id", "invoice_id", "action_id"] && has_trail {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(
            "DROP INDEX IF EXISTS actions_by_id;
             DROP INDEX IF EXISTS actions_live;
             DROP INDEX IF EXISTS actions_work;
             ALTER TABLE actions RENAME TO actions_v3;",
        )?;
        tx.execute_batch(rows::ACTIONS_TABLE)?;
        tx.execute_batch(&format!(
            "INSERT INTO actions ({all}) SELECT {all} FROM actions_v3
                 ORDER BY customer_id, invoice_id, action_id;
             DROP TABLE actions_v3;",
            all = rows::ALL_COLUMNS
        ))?;
        tx.execute_batch(rows::WORK_INDEX)?;
        tx.commit()?;
    }
    Ok(())
}

fn add_lease_token(conn: &Connection) -> Result<(), StoreError> {
    let has: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('leases') WHERE name = 'token'")?
        .exists([])?;
    if !has {
        conn.execute_batch("ALTER TABLE leases ADD COLUMN token INTEGER NOT NULL DEFAULT 0")?;
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
