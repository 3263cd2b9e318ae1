//! Action records as rows of the SQLite `actions` table (schema 3): one
//! column per field, no JSON, and the fields every action of a run shares
//! (policy, its revisions, the scorer) stored once in `action_contexts` and
//! named by number. A sweep that records two million actions writes about
//! 200 bytes for each instead of 800, and a book is read without parsing
//! JSON.

use crate::codec::encode;
use crate::error::StoreError;
use chrono::NaiveDate;
use collect_delivery::ledger::LogEntry;
use collect_engine::domain::{ActionRecord, ActionStatus, Channel};
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// The `actions` table and its indexes. The live statuses are indexed
/// alone (a partial index): the millions of skipped and sent steps are not.
/// Clustered by customer and invoice (`WITHOUT ROWID`, keyed by customer,
/// invoice and id; the id is made from the invoice's, so it never moves):
/// a sweep goes customer by customer, so its inserts append and the reads
/// and moves of one customer's actions touch a few neighbouring pages, not
/// one random page each; and the sweep reads the actions of the invoices
/// in its book by key ([`crate::ledger`]'s `load_compact`), not the whole
/// table. Only the id index (small entries) takes inserts at random places. (Keyed by the random-looking action id
/// alone, the first sweep of 1,000,000 invoices took 228 s to record; as a
/// rowid table 87 s, with every later move a random page.)
pub(crate) const ACTIONS_TABLE: &str = "
CREATE TABLE IF NOT EXISTS action_contexts (
    context_id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS actions (
    action_id TEXT NOT NULL, invoice_id TEXT NOT NULL, customer_id TEXT NOT NULL,
    status TEXT NOT NULL, decided_on TEXT NOT NULL, scheduled_for TEXT NOT NULL,
    channel TEXT NOT NULL, label TEXT NOT NULL, target TEXT NOT NULL,
    step_offset INTEGER NOT NULL, requires_approval INTEGER NOT NULL,
    context_id INTEGER NOT NULL, rule TEXT NOT NULL, segment TEXT NOT NULL,
    experiment TEXT, arm TEXT, risk REAL, note TEXT, message_id TEXT,
    decided_by TEXT, decided_at TEXT, sent_on TEXT, call_again_on TEXT,
    trail_len INTEGER NOT NULL DEFAULT 0,
    log_day TEXT, log_status TEXT, log_note TEXT, log_risk REAL,
    sending_seq INTEGER, sending_day TEXT, sending_note TEXT, sending_by TEXT, sending_risk REAL,
    sent_seq INTEGER, sent_day TEXT, sent_note TEXT, sent_by TEXT, sent_risk REAL,
    PRIMARY KEY (customer_id, invoice_id, action_id)) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS actions_by_id ON actions (action_id);
CREATE INDEX IF NOT EXISTS actions_live ON actions (status)
    WHERE status IN ('planned', 'sending', 'awaiting_approval', 'approved', 'deferred');
";

/// The condition of the partial index `actions_live`, word for word (a
/// query repeats it to read the index; its entries carry the key, so the
/// keys of the live actions are read from it alone).
pub(crate) const LIVE_STATUSES: &str =
    "'planned', 'sending', 'awaiting_approval', 'approved', 'deferred'";

/// The open work of the desk (letters awaiting approval, planned calls):
/// a partial index, so the queue reads only them, whatever the history.
/// The condition is [`WORK`]'s, word for word (SQLite uses a partial
/// index only for a query that repeats its condition).
pub(crate) const WORK_INDEX: &str = "
CREATE INDEX IF NOT EXISTS actions_work ON actions (customer_id, action_id)
    WHERE status = 'awaiting_approval' OR (status = 'planned' AND channel = 'call');
";

/// The condition of open work ([`WORK_INDEX`]).
pub(crate) const WORK: &str =
    "(status = 'awaiting_approval' OR (status = 'planned' AND channel = 'call'))";

/// The columns of a full record, in the order [`RowCodec::read`] reads.
pub(crate) const COLUMNS: &str = "action_id, invoice_id, customer_id, status, decided_on, \
    scheduled_for, channel, label, target, step_offset, requires_approval, context_id, rule, \
    segment, experiment, arm, risk, note, message_id, decided_by, decided_at, sent_on";

/// Every column of a row, for copying rows between layouts.
pub(crate) const ALL_COLUMNS: &str = "action_id, invoice_id, customer_id, status, decided_on, \
    scheduled_for, channel, label, target, step_offset, requires_approval, context_id, rule, \
    segment, experiment, arm, risk, note, message_id, decided_by, decided_at, sent_on, \
    call_again_on, trail_len, log_day, log_status, log_note, log_risk, \
    sending_seq, sending_day, sending_note, sending_by, sending_risk, \
    sent_seq, sent_day, sent_note, sent_by, sent_risk";

/// `INSERT OR IGNORE INTO actions (…) VALUES (?1, …, ?22)`: a new record,
/// written only if its id is not recorded yet.
pub(crate) const INSERT: &str = "INSERT OR IGNORE INTO actions (action_id, invoice_id, customer_id, status, \
    decided_on, scheduled_for, channel, label, target, step_offset, requires_approval, \
    context_id, rule, segment, experiment, arm, risk, note, message_id, decided_by, decided_at, \
    sent_on) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
    ?18, ?19, ?20, ?21, ?22)";

/// [`INSERT`] of a new record with the first line of its trail (number 1,
/// the day `?23`, the record's status, note and risk) in the row itself:
/// recording an action is one write.
pub(crate) const INSERT_LOGGED: &str = "INSERT OR IGNORE INTO actions (action_id, invoice_id, customer_id, status, \
    decided_on, scheduled_for, channel, label, target, step_offset, requires_approval, \
    context_id, rule, segment, experiment, arm, risk, note, message_id, decided_by, decided_at, \
    sent_on, trail_len, log_day, log_status, log_note, log_risk) VALUES (?1, ?2, ?3, ?4, ?5, ?6, \
    ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, 1, ?23, ?4, ?18, ?17)";

/// [`UPDATE`] with the line of the trail the change makes, numbered
/// `trail_len + 1`: a move to `sending` or `sent` is kept in the row's
/// columns for it when they are free (the routine path of a message: one
/// write per action), any other line is returned to be appended to
/// `action_log` by [`append_line`]. The day is `?23`, the person `?24`;
/// callers add their condition (parameters from `?25`). Returns
/// `trail_len` (the line's number) and whether the line went into the row.
pub(crate) const UPDATE_LOGGED: &str = "UPDATE actions SET status = ?4, decided_on = ?5, scheduled_for = ?6, channel = ?7, label = ?8, target = ?9, \
    step_offset = ?10, requires_approval = ?11, context_id = ?12, rule = ?13, segment = ?14, \
    experiment = ?15, arm = ?16, risk = ?17, note = ?18, message_id = ?19, decided_by = ?20, \
    decided_at = ?21, sent_on = ?22, \
    call_again_on = CASE WHEN status = ?4 THEN call_again_on ELSE NULL END, \
    trail_len = trail_len + 1, \
    sending_seq = CASE WHEN ?4 = 'sending' AND sending_seq IS NULL THEN trail_len + 1 ELSE sending_seq END, \
    sending_day = CASE WHEN ?4 = 'sending' AND sending_seq IS NULL THEN ?23 ELSE sending_day END, \
    sending_note = CASE WHEN ?4 = 'sending' AND sending_seq IS NULL THEN ?18 ELSE sending_note END, \
    sending_by = CASE WHEN ?4 = 'sending' AND sending_seq IS NULL THEN ?24 ELSE sending_by END, \
    sending_risk = CASE WHEN ?4 = 'sending' AND sending_seq IS NULL THEN ?17 ELSE sending_risk END, \
    sent_seq = CASE WHEN ?4 = 'sent' AND sent_seq IS NULL THEN trail_len + 1 ELSE sent_seq END, \
    sent_day = CASE WHEN ?4 = 'sent' AND sent_seq IS NULL THEN ?23 ELSE sent_day END, \
    sent_note = CASE WHEN ?4 = 'sent' AND sent_seq IS NULL THEN ?18 ELSE sent_note END, \
    sent_by = CASE WHEN ?4 = 'sent' AND sent_seq IS NULL THEN ?24 ELSE sent_by END, \
    sent_risk = CASE WHEN ?4 = 'sent' AND sent_seq IS NULL THEN ?17 ELSE sent_risk END \
    WHERE customer_id = ?3 AND invoice_id = ?2 AND action_id = ?1";

/// What [`UPDATE_LOGGED`] returns (after the callers' condition).
pub(crate) const RETURNING: &str = " RETURNING trail_len, \
    (status = 'sending' AND sending_seq IS trail_len) OR (status = 'sent' AND sent_seq IS trail_len)";

/// The trail lines kept in an action's row, in the order
/// [`inline_lines`] reads them.
pub(crate) const TRAIL_COLUMNS: &str = "log_day, log_status, log_note, log_risk, \
    sending_seq, sending_day, sending_note, sending_by, sending_risk, \
    sent_seq, sent_day, sent_note, sent_by, sent_risk";

/// `UPDATE actions SET …` of every field but the key, for the record of
/// customer `?3` and invoice `?2` whose id is `?1`; callers add their condition. A change
/// of status clears the desk's "call again on" day.
pub(crate) const UPDATE: &str = "UPDATE actions SET status = ?4, decided_on = ?5, scheduled_for = ?6, channel = ?7, label = ?8, target = ?9, \
    step_offset = ?10, requires_approval = ?11, context_id = ?12, rule = ?13, segment = ?14, \
    experiment = ?15, arm = ?16, risk = ?17, note = ?18, message_id = ?19, decided_by = ?20, \
    decided_at = ?21, sent_on = ?22, \
    call_again_on = CASE WHEN status = ?4 THEN call_again_on ELSE NULL END \
    WHERE customer_id = ?3 AND invoice_id = ?2 AND action_id = ?1";

/// What the actions of one policy, bundle and scorer share.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Context {
    pub policy_name: String,
    pub policy_revision: String,
    pub git_revision: Option<String>,
    pub bundle_revision: Option<String>,
    pub scorer: String,
    pub scorer_version: String,
}

impl Context {
    fn of(r: &ActionRecord) -> Context {
        Context {
            policy_name: r.policy_name.clone(),
            policy_revision: r.policy_revision.clone(),
            git_revision: r.git_revision.clone(),
            bundle_revision: r.bundle_revision.clone(),
            scorer: r.scorer.clone(),
            scorer_version: r.scorer_version.clone(),
        }
    }

    fn matches(&self, r: &ActionRecord) -> bool {
        self.policy_name == r.policy_name
            && self.policy_revision == r.policy_revision
            && self.git_revision == r.git_revision
            && self.bundle_revision == r.bundle_revision
            && self.scorer == r.scorer
            && self.scorer_version == r.scorer_version
    }
}

/// The contexts a connection has read or written, by number, both ways.
/// Contexts are never changed or deleted, and are written outside the
/// transactions of the records that name them (a record rolled back leaves
/// an unused context, never a record naming a missing one), so what is
/// cached here stays true.
#[derive(Default)]
pub(crate) struct RowCodec {
    by_id: RefCell<HashMap<i64, Arc<Context>>>,
    ids: RefCell<Vec<(Arc<Context>, i64)>>,
}

fn bad(key: &str, column: &'static str, value: &str) -> StoreError {
    StoreError::BadValue {
        table: "actions",
        key: key.to_string(),
        column,
        value: value.to_string(),
    }
}

pub(crate) fn day(key: &str, column: &'static str, text: &str) -> Result<NaiveDate, StoreError> {
    text.parse().map_err(|_| bad(key, column, text))
}

fn opt_day(
    key: &str,
    column: &'static str,
    text: Option<String>,
) -> Result<Option<NaiveDate>, StoreError> {
    text.map(|t| day(key, column, &t)).transpose()
}

impl RowCodec {
    /// The number of `r`'s context, stored first if it is new. Call it
    /// outside the transaction that writes `r` (see [`RowCodec`]).
    pub(crate) fn context_id(
        &self,
        conn: &Connection,
        r: &ActionRecord,
    ) -> Result<i64, StoreError> {
        {
            // The records of a run share one context: the one used last is
            // kept first, so a home with many (one per policy revision, Git
            // commit or model) finds it at once.
            let mut ids = self.ids.borrow_mut();
            if let Some(k) = ids.iter().position(|(c, _)| c.matches(r)) {
                if let Some(head) = ids.get_mut(..=k) {
                    head.rotate_right(1);
                }
                if let Some((_, id)) = ids.first() {
                    return Ok(*id);
                }
            }
        }
        let context = Arc::new(Context::of(r));
        let body = encode(&*context)?;
        conn.prepare_cached("INSERT OR IGNORE INTO action_contexts (body) VALUES (?1)")?
            .execute([&body])?;
        let id: i64 = conn
            .prepare_cached("SELECT context_id FROM action_contexts WHERE body = ?1")?
            .query_row([&body], |row| row.get(0))?;
        self.by_id.borrow_mut().insert(id, Arc::clone(&context));
        self.ids.borrow_mut().insert(0, (context, id));
        Ok(id)
    }

    /// Stores the contexts of `records` that are new (outside any
    /// transaction of theirs) and returns each record's number.
    pub(crate) fn context_ids(
        &self,
        conn: &Connection,
        records: &[ActionRecord],
    ) -> Result<Vec<i64>, StoreError> {
        records.iter().map(|r| self.context_id(conn, r)).collect()
    }

    /// A context by number, read once per connection.
    pub(crate) fn context(&self, conn: &Connection, id: i64) -> Result<Arc<Context>, StoreError> {
        if let Some(c) = self.by_id.borrow().get(&id) {
            return Ok(Arc::clone(c));
        }
        let body: Option<String> = conn
            .prepare_cached("SELECT body FROM action_contexts WHERE context_id = ?1")?
            .query_row([id], |row| row.get(0))
            .optional()?;
        let Some(body) = body else {
            return Err(bad(&id.to_string(), "context_id", "a context not recorded"));
        };
        let context: Arc<Context> = Arc::new(crate::codec::decode(
            "action_contexts",
            &id.to_string(),
            &body,
        )?);
        self.by_id.borrow_mut().insert(id, Arc::clone(&context));
        self.ids.borrow_mut().push((Arc::clone(&context), id));
        Ok(context)
    }

    /// The record of a row selected with [`COLUMNS`].
    pub(crate) fn read(
        &self,
        conn: &Connection,
        row: &Row<'_>,
    ) -> Result<ActionRecord, StoreError> {
        let key: String = row.get(0)?;
        let status: String = row.get(3)?;
        let Some(status) = ActionStatus::parse(&status) else {
            return Err(bad(&key, "status", &status));
        };
        let context = self.context(conn, row.get(11)?)?;
        Ok(ActionRecord {
            invoice_id: row.get::<_, String>(1)?.into(),
            customer_id: row.get::<_, String>(2)?.into(),
            status,
            decided_on: day(&key, "decided_on", &row.get::<_, String>(4)?)?,
            scheduled_for: day(&key, "scheduled_for", &row.get::<_, String>(5)?)?,
            channel: {
                let text: String = row.get(6)?;
                Channel::parse(&text).ok_or_else(|| bad(&key, "channel", &text))?
            },
            label: row.get(7)?,
            target: row.get(8)?,
            step_offset: row.get(9)?,
            requires_approval: row.get(10)?,
            policy_name: context.policy_name.clone(),
            policy_revision: context.policy_revision.clone(),
            git_revision: context.git_revision.clone(),
            bundle_revision: context.bundle_revision.clone(),
            rule: row.get(12)?,
            segment: row.get(13)?,
            experiment: row.get::<_, Option<String>>(14)?.map(Into::into),
            arm: row.get::<_, Option<String>>(15)?.map(Into::into),
            risk: row.get(16)?,
            scorer: context.scorer.clone(),
            scorer_version: context.scorer_version.clone(),
            note: row.get(17)?,
            message_id: row.get::<_, Option<String>>(18)?.map(Into::into),
            decided_by: row.get(19)?,
            decided_at: opt_day(&key, "decided_at", row.get(20)?)?,
            sent_on: opt_day(&key, "sent_on", row.get(21)?)?,
            action_id: key.into(),
        })
    }
}

/// The text of an action's columns that are not stored as they are in
/// the record, owned while a statement's parameters borrow them
/// ([`fields`]).
struct Text<'a> {
    action_id: &'a str,
    invoice_id: &'a str,
    customer_id: &'a str,
    status: &'a str,
    decided_on: String,
    scheduled_for: String,
    channel: &'a str,
    experiment: Option<&'a str>,
    arm: Option<&'a str>,
    message_id: Option<&'a str>,
    decided_at: Option<String>,
    sent_on: Option<String>,
}

impl<'a> Text<'a> {
    fn of(r: &'a ActionRecord) -> Text<'a> {
        Text {
            action_id: r.action_id.as_str(),
            invoice_id: r.invoice_id.as_str(),
            customer_id: r.customer_id.as_str(),
            status: r.status.as_str(),
            decided_on: r.decided_on.to_string(),
            scheduled_for: r.scheduled_for.to_string(),
            channel: r.channel.as_str(),
            experiment: r.experiment.as_ref().map(|e| e.as_str()),
            arm: r.arm.as_ref().map(|a| a.as_str()),
            message_id: r.message_id.as_deref(),
            decided_at: r.decided_at.map(|d| d.to_string()),
            sent_on: r.sent_on.map(|d| d.to_string()),
        }
    }
}

/// The parameters of [`COLUMNS`] for `r`, in order, then `extra`.
fn fields<'a>(
    r: &'a ActionRecord,
    t: &'a Text<'a>,
    context_id: &'a i64,
    extra: &[&'a dyn ToSql],
) -> Vec<&'a dyn ToSql> {
    let columns: [&dyn ToSql; 22] = [
        &t.action_id,
        &t.invoice_id,
        &t.customer_id,
        &t.status,
        &t.decided_on,
        &t.scheduled_for,
        &t.channel,
        &r.label,
        &r.target,
        &r.step_offset,
        &r.requires_approval,
        context_id,
        &r.rule,
        &r.segment,
        &t.experiment,
        &t.arm,
        &r.risk,
        &r.note,
        &t.message_id,
        &r.decided_by,
        &t.decided_at,
        &t.sent_on,
    ];
    columns.into_iter().chain(extra.iter().copied()).collect()
}

/// Writes `r` with the statement `stmt` ([`INSERT`] or [`UPDATE`], with any
/// condition's parameters after the 22 of the record in `extra`).
pub(crate) fn write(
    stmt: &mut rusqlite::CachedStatement<'_>,
    r: &ActionRecord,
    context_id: i64,
    extra: &[&dyn ToSql],
) -> Result<usize, StoreError> {
    let text = Text::of(r);
    Ok(stmt.execute(fields(r, &text, &context_id, extra).as_slice())?)
}

/// Writes `r` with [`UPDATE_LOGGED`] (+ the caller's condition and
/// [`RETURNING`]) and the line of its trail for `day` by `by`: in the row
/// when it is a routine one, else appended to `action_log`. `false` when
/// the condition kept the row (nothing written).
pub(crate) fn write_logged(
    conn: &Connection,
    stmt: &mut rusqlite::CachedStatement<'_>,
    r: &ActionRecord,
    context_id: i64,
    day: NaiveDate,
    by: Option<&str>,
    extra: &[&dyn ToSql],
) -> Result<bool, StoreError> {
    let day_text = day.to_string();
    let text = Text::of(r);
    let mut with_line: Vec<&dyn ToSql> = vec![&day_text, &by];
    with_line.extend(extra.iter().copied());
    let mut found = stmt.query(fields(r, &text, &context_id, &with_line).as_slice())?;
    let Some(row) = found.next()? else {
        return Ok(false);
    };
    let seq: i64 = row.get(0)?;
    let inline: bool = row.get(1)?;
    drop(found);
    if !inline {
        append_line(
            conn,
            &Line {
                customer_id: r.customer_id.as_str(),
                action_id: r.action_id.as_str(),
                seq,
                day,
                status: r.status.as_str(),
                note: r.note.as_deref(),
                by,
                risk: r.risk,
            },
        )?;
    }
    Ok(true)
}

/// One line of an action's trail, to append.
pub(crate) struct Line<'a> {
    pub customer_id: &'a str,
    pub action_id: &'a str,
    pub seq: i64,
    pub day: NaiveDate,
    pub status: &'a str,
    pub note: Option<&'a str>,
    pub by: Option<&'a str>,
    pub risk: Option<f64>,
}

/// Appends a line to `action_log` (keyed by customer, action and number:
/// a sweep's lines land on its customers' pages).
pub(crate) fn append_line(conn: &Connection, l: &Line<'_>) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO action_log (customer_id, action_id, seq, day, status, note, by, risk)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        l.customer_id,
        l.action_id,
        l.seq,
        l.day.to_string(),
        l.status,
        l.note,
        l.by,
        l.risk
    ])?;
    Ok(())
}

/// The whole trail of an action, oldest first: the lines kept in its row
/// (selected with [`TRAIL_COLUMNS`] from column `at` on) and those of
/// `action_log`, by number.
pub(crate) fn trail(
    conn: &Connection,
    customer_id: &str,
    action_id: &str,
) -> Result<Vec<LogEntry>, StoreError> {
    let mut out = Vec::new();
    {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {TRAIL_COLUMNS} FROM actions WHERE customer_id = ?1 AND action_id = ?2"
        ))?;
        let mut found = stmt.query(params![customer_id, action_id])?;
        if let Some(row) = found.next()? {
            inline_lines(row, 0, action_id, &mut out)?;
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT seq, day, status, note, by, risk FROM action_log
         WHERE customer_id = ?1 AND action_id = ?2 ORDER BY seq",
    )?;
    let mut found = stmt.query(params![customer_id, action_id])?;
    while let Some(row) = found.next()? {
        let text: String = row.get(1)?;
        out.push(LogEntry {
            action_id: action_id.into(),
            seq: row.get(0)?,
            day: log_day(action_id, &text)?,
            status: row.get(2)?,
            note: row.get(3)?,
            by: row.get(4)?,
            risk: row.get(5)?,
        });
    }
    out.sort_by_key(|e| e.seq);
    Ok(out)
}

fn log_day(action_id: &str, text: &str) -> Result<NaiveDate, StoreError> {
    text.parse().map_err(|_| StoreError::BadValue {
        table: "action_log",
        key: action_id.to_string(),
        column: "day",
        value: text.to_string(),
    })
}

/// The lines kept in a row's columns ([`TRAIL_COLUMNS`], from column `at`).
fn inline_lines(
    row: &Row<'_>,
    at: usize,
    action_id: &str,
    out: &mut Vec<LogEntry>,
) -> Result<(), StoreError> {
    if let Some(d) = row.get::<_, Option<String>>(at)? {
        out.push(LogEntry {
            action_id: action_id.into(),
            seq: 1,
            day: log_day(action_id, &d)?,
            status: row.get::<_, Option<String>>(at + 1)?.unwrap_or_default(),
            note: row.get(at + 2)?,
            by: None,
            risk: row.get(at + 3)?,
        });
    }
    for (k, status) in [(at + 4, "sending"), (at + 9, "sent")] {
        let Some(seq) = row.get::<_, Option<i64>>(k)? else {
            continue;
        };
        let d: String = row.get(k + 1)?;
        out.push(LogEntry {
            action_id: action_id.into(),
            seq,
            day: log_day(action_id, &d)?,
            status: status.to_string(),
            note: row.get(k + 2)?,
            by: row.get(k + 3)?,
            risk: row.get(k + 4)?,
        });
    }
    Ok(())
}

/// Whether the stored row of `r.action_id` already holds exactly `r`.
pub(crate) fn same_as_stored(
    codec: &RowCodec,
    conn: &Connection,
    r: &ActionRecord,
) -> Result<Option<(ActionStatus, bool)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM actions WHERE customer_id = ?2 AND invoice_id = ?3 AND action_id = ?1"
    ))?;
    let mut rows = stmt.query(params![
        r.action_id.as_str(),
        r.customer_id.as_str(),
        r.invoice_id.as_str()
    ])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let stored = codec.read(conn, row)?;
    Ok(Some((stored.status, stored == *r)))
}

/// Schema 3: the actions of a home written by schema 1 or 2 (one JSON body
/// per action) moved to [`ACTIONS_TABLE`], and the trail made a table
/// without rowid (its rows are small). Runs once, in one transaction.
pub(crate) fn upgrade(conn: &Connection, codec: &RowCodec) -> Result<(), StoreError> {
    let has_body: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('actions') WHERE name = 'body'")?
        .exists([])?;
    if !has_body {
        return Ok(());
    }
    let tx = conn.unchecked_transaction()?;
    tx.execute_batch(
        "DROP INDEX IF EXISTS actions_by_status;
         DROP INDEX IF EXISTS actions_by_customer;
         DROP INDEX IF EXISTS actions_live;
         DROP INDEX IF EXISTS actions_by_id;
         ALTER TABLE actions RENAME TO actions_v2;",
    )?;
    tx.execute_batch(ACTIONS_TABLE)?;
    {
        let mut read = tx.prepare("SELECT action_id, body FROM actions_v2")?;
        let mut rows = read.query([])?;
        let mut insert = tx.prepare_cached(INSERT)?;
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let body: String = row.get(1)?;
            let r: ActionRecord = crate::codec::decode("actions", &id, &body)?;
            let context = codec.context_id(&tx, &r)?;
            write(&mut insert, &r, context, &[])?;
        }
    }
    tx.execute_batch(
        "DROP TABLE actions_v2;
         ALTER TABLE action_log RENAME TO action_log_v2;
         CREATE TABLE action_log (
             action_id TEXT NOT NULL, seq INTEGER NOT NULL, day TEXT NOT NULL,
             status TEXT NOT NULL, note TEXT, by TEXT, risk REAL,
             PRIMARY KEY (action_id, seq)) WITHOUT ROWID;
         INSERT INTO action_log (action_id, seq, day, status, note, by, risk)
             SELECT action_id, seq, day, status, note, by, risk FROM action_log_v2;
         DROP TABLE action_log_v2;",
    )?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn record(revision: &str) -> ActionRecord {
        serde_json::from_value(serde_json::json!({
            "action_id": "act-1", "invoice_id": "INV-1", "customer_id": "C1",
            "decided_on": "2027-03-10", "scheduled_for": "2027-03-10", "status": "planned",
            "channel": "email", "label": "email friendly-reminder", "target": "friendly-reminder",
            "step_offset": -3, "requires_approval": false, "policy_name": "p",
            "policy_revision": revision, "git_revision": null, "rule": "p:1", "segment": "s",
            "experiment": null, "arm": null, "risk": null, "scorer": "s", "scorer_version": "1",
            "note": null, "message_id": null, "decided_by": null, "decided_at": null,
            "sent_on": null
        }))
        .unwrap()
    }

    #[test]
    fn each_context_is_stored_once_and_found_again_in_any_order() {
        let store = crate::store::SqliteStore::in_memory().unwrap();
        let codec = RowCodec::default();
        let revisions = ["r1", "r2", "r3", "r2", "r1", "r1", "r3"];
        let ids: Vec<i64> = revisions
            .iter()
            .map(|r| codec.context_id(&store.conn, &record(r)).unwrap())
            .collect();
        for (r, id) in revisions.iter().zip(&ids) {
            let first = revisions.iter().position(|x| x == r).unwrap();
            assert_eq!(*id, ids[first], "{r}");
            // A fresh codec reads the same context back by number.
            let fresh = RowCodec::default().context(&store.conn, *id).unwrap();
            assert_eq!(fresh.policy_revision, *r);
        }
        let distinct: std::collections::HashSet<i64> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), 3);
        let stored: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM action_contexts", [], |row| row.get(0))
            .unwrap();
        assert_eq!(stored, 3);
    }
}
