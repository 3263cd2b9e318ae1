//! The ledger on the local SQLite file (see [`crate::store`] for the
//! tables of the book). Each write is its own transaction, so a process
//! killed at any point leaves every write before it in place and none after.

use crate::codec::{decode, encode};
use crate::error::StoreError;
use crate::rows;
pub use crate::schema::SCHEMA_VERSION;
use crate::store::SqliteStore;
use chrono::{DateTime, NaiveDate, Utc};
use collect_delivery::ledger::{APPROVALS, CONTACTS, TrailNote, WorkEntry, WorkKind, work_of_hold};
use collect_delivery::ledger::{
    ContactHold, Fence, Fenced, HoldEnd, LIVE, Lease, LeaseHolder, LeaseOutcome, Ledger,
    LedgerError, MessageStatus, Move, Recorded, Scope, StoredMessage, lease_decision,
    take_over_decision,
};
use collect_engine::book::{
    ActionsByInvoice, Book, COMMUNICATION_DAYS, Interner, Step, StepsByInvoice, is_live,
};
use collect_engine::contact::address_key;
use collect_engine::domain::{ActionId, ActionRecord, ActionStatus, Customer, Event};
use collect_engine::history::{self, PaymentHistory};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use rust_decimal::Decimal;
use std::collections::{HashMap, HashSet};

/// The status column of an action row.
fn row_status(row: &rusqlite::Row<'_>) -> Result<ActionStatus, StoreError> {
    let status = row.get_ref(3)?.as_str().map_err(rusqlite::Error::from)?;
    ActionStatus::parse(status).ok_or_else(|| {
        let key = row.get::<_, String>(0).unwrap_or_default();
        StoreError::BadValue {
            table: "actions",
            key,
            column: "status",
            value: status.to_string(),
        }
    })
}

fn read_message(conn: &Connection, message_id: &str) -> Result<Option<StoredMessage>, StoreError> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM messages WHERE message_id = ?1")?
        .query_row([message_id], |r| r.get(0))
        .optional()?;
    body.map(|b| decode("messages", message_id, &b)).transpose()
}

/// A lease as stored; its token is the `token` column's (the one fenced
/// writes check).
fn read_lease(conn: &Connection, name: &str) -> Result<Option<Lease>, StoreError> {
    let row: Option<(String, i64)> = conn
        .query_row(
            "SELECT body, token FROM leases WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    row.map(|(body, token)| {
        let mut lease: Lease = decode("leases", name, &body)?;
        lease.token = u64::try_from(token).unwrap_or(0);
        Ok(lease)
    })
    .transpose()
}

/// How many invoices' actions one statement of [`SqliteStore::load_compact`]
/// reads (their keys are its JSON parameter).
const PART: usize = 4096;

/// The actions of the invoices whose `[customer, invoice]` keys are the
/// JSON array `?1`: one search of the primary key per invoice.
fn book_actions() -> String {
    format!(
        "SELECT {} FROM json_each(?1) AS j CROSS JOIN actions
         ON customer_id = j.value ->> 0 AND invoice_id = j.value ->> 1",
        rows::COLUMNS
    )
}

/// Writes a fold: the newly `folded` invoices (customer, invoice) marked,
/// their customers' aggregates as `book` holds them now.
fn keep_fold(tx: &Connection, book: &Book, folded: &[(String, String)]) -> Result<(), StoreError> {
    let mut mark = tx.prepare_cached("UPDATE invoices SET folded = 1 WHERE invoice_id = ?1")?;
    let mut put = tx.prepare_cached(
        "INSERT INTO customer_history (customer_id, body) VALUES (?1, ?2)
         ON CONFLICT (customer_id) DO UPDATE SET body = excluded.body",
    )?;
    let mut customers: Vec<&str> = Vec::new();
    for (customer, invoice) in folded {
        mark.execute([invoice])?;
        customers.push(customer);
    }
    customers.sort_unstable();
    customers.dedup();
    for c in customers {
        if let Some(h) = book.history.get(c) {
            put.execute(params![c, h.to_json()])?;
        }
    }
    Ok(())
}

/// Decodes each `(key, JSON body)` row of `sql` as a record of `table`.
fn read_each<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    table: &'static str,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
    mut f: impl FnMut(T),
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    while let Some(row) = rows.next()? {
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

impl SqliteStore {
    /// The book a sweep of `day` needs, looking back to `since` (see
    /// [`Ledger::load_book`]), with the customers' payment history folded
    /// ([`collect_engine::history`]):
    ///
    /// 1. It reads the customers, the invoices not folded yet with their
    ///    payments and events, the mail events naming no invoice from
    ///    `since` on, every action as a compact [`Step`] (the full records of
    ///    the live ones only, see [`Book::compact`]) and each customer's
    ///    aggregate (`customer_history`), all in one read transaction.
    /// 2. It folds what may now fold ([`history::fold`]) before the
    ///    cutoff: `since`, and never later than `day` minus the shortest
    ///    look-back of any sweep (so a caller that reads a short period, such
    ///    as the audit page, never folds further than a later sweep reads).
    /// 3. In the same transaction it marks those invoices folded and writes
    ///    the aggregates, so the next sweep reads neither them nor their
    ///    payments and events. When another writer came first (the file is
    ///    busy), nothing is written: the book is the same, and the next
    ///    load folds them.
    ///
    /// A customer whose stored aggregate was folded before a later cutoff
    /// than `since` (a longer look-back, an earlier day) is read whole,
    /// without it, and is not folded by this read.
    ///
    /// Every caller of [`Ledger::load_book`] folds: a dry run too, and the
    /// audit page (which reads a period as `since`). A fold changes no
    /// decision, and the records stay: `Store::load_book`, `customer_book`
    /// and the trail read them whole.
    pub fn load_compact(&self, day: NaiveDate, since: NaiveDate) -> Result<Book, StoreError> {
        let shortest = COMMUNICATION_DAYS.saturating_add(1);
        let cutoff = since.min(
            day.checked_sub_days(chrono::Days::new(shortest))
                .unwrap_or(NaiveDate::MIN),
        );
        let tx = self.conn.unchecked_transaction()?;
        let mut histories: HashMap<String, PaymentHistory> = HashMap::new();
        let mut whole: Vec<String> = Vec::new();
        {
            let mut stmt = tx.prepare("SELECT customer_id, body FROM customer_history")?;
            let mut found = stmt.query([])?;
            while let Some(row) = found.next()? {
                let customer: String = row.get(0)?;
                let body = row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
                let h = PaymentHistory::from_json(body).map_err(|source| StoreError::Corrupt {
                    table: "customer_history",
                    key: customer.clone(),
                    source,
                })?;
                if h.covers(since) {
                    histories.insert(customer, h);
                } else {
                    whole.push(customer);
                }
            }
        }
        let whole_ids = encode(&whole)?;
        // The invoices the sweep reads (not folded, or of a customer read
        // whole), and the payments and events of those, by the invoices.
        const UNFOLDED: &str = "i.folded = 0";
        const WHOLE: &str = "i.folded = 1 AND i.customer_id IN (SELECT value FROM json_each(?1))";
        let mut invoices = Vec::new();
        let mut payments = Vec::new();
        let mut events = Vec::new();
        for filter in [UNFOLDED, WHOLE] {
            let ids: &[&dyn rusqlite::ToSql] = if filter == WHOLE {
                if whole.is_empty() {
                    continue;
                }
                &[&whole_ids]
            } else {
                &[]
            };
            read_each(
                &tx,
                "invoices",
                &format!("SELECT i.invoice_id, i.body FROM invoices i WHERE {filter}"),
                ids,
                |v| invoices.push(v),
            )?;
            // The invoices drive the join (CROSS JOIN keeps that order), so
            // the payments of folded invoices are never visited.
            read_each(
                &tx,
                "payments",
                &format!(
                    "SELECT p.payment_id, p.body FROM invoices i CROSS JOIN payments p
                     ON p.invoice_id = i.invoice_id WHERE {filter}"
                ),
                ids,
                |v| payments.push(v),
            )?;
            read_each(
                &tx,
                "events",
                &format!(
                    "SELECT e.event_id, e.body FROM invoices i CROSS JOIN events e
                     ON e.invoice_id = i.invoice_id WHERE {filter}"
                ),
                ids,
                |v| events.push(v),
            )?;
        }
        read_each(
            &tx,
            "events",
            "SELECT event_id, body FROM events WHERE invoice_id IS NULL AND date >= ?1",
            &[&since.to_string()],
            |v| events.push(v),
        )?;
        let mut book = Book::compact(
            self.all("customers", "customer_id")?,
            invoices,
            payments,
            events,
            StepsByInvoice::default(),
            ActionsByInvoice::default(),
        );
        let settled_before: HashSet<&str> = book
            .invoices
            .iter()
            .filter(|i| book.settled_on(i).is_some_and(|d| d < cutoff) && !book.is_open(i, day))
            .map(|i| i.invoice_id.as_str())
            .collect();
        let mut strings = Interner::default();
        let mut steps = StepsByInvoice::default();
        let mut live = ActionsByInvoice::default();
        // The actions of the book's invoices, read by key a part at a time
        // (the table is keyed by customer and invoice: the history of
        // invoices not in the book is not read); then the live actions of
        // invoices not in the book, found by the keys of the partial index.
        let mut keys: Vec<[&str; 2]> = Vec::with_capacity(PART);
        for part in book.invoices.chunks(PART) {
            keys.clear();
            keys.extend(
                part.iter()
                    .map(|i| [i.customer_id.as_str(), i.invoice_id.as_str()]),
            );
            let mut stmt = self.conn.prepare_cached(&book_actions())?;
            let mut found = stmt.query([encode(&keys)?])?;
            while let Some(row) = found.next()? {
                self.take_row(
                    row,
                    cutoff,
                    &settled_before,
                    &mut strings,
                    &mut steps,
                    &mut live,
                )?;
            }
        }
        {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT customer_id, invoice_id, action_id FROM actions WHERE status IN ({})",
                rows::LIVE_STATUSES
            ))?;
            let mut found = stmt.query([])?;
            let mut whole = self.conn.prepare_cached(&format!(
                "SELECT {} FROM actions WHERE customer_id = ?1 AND invoice_id = ?2 AND action_id = ?3",
                rows::COLUMNS
            ))?;
            while let Some(row) = found.next()? {
                let text = |k: usize| -> Result<&str, StoreError> {
                    Ok(row.get_ref(k)?.as_str().map_err(rusqlite::Error::from)?)
                };
                // Read above when the book has the invoice under the same
                // customer (an invoice the ERP moved to another customer
                // keeps its actions under the first one).
                let (customer, invoice) = (text(0)?, text(1)?);
                if book
                    .invoice(invoice)
                    .is_some_and(|i| i.customer_id == customer)
                {
                    continue;
                }
                let mut one = whole.query([customer, invoice, text(2)?])?;
                while let Some(row) = one.next()? {
                    self.take_row(
                        row,
                        cutoff,
                        &settled_before,
                        &mut strings,
                        &mut steps,
                        &mut live,
                    )?;
                }
            }
        }
        drop(keys);
        drop(settled_before);
        book.attach(steps, live);
        book.history = histories;
        // What may fold now: the settled invoices (candidates) of the
        // customers whose fold is kept (not those read whole).
        let whole: HashSet<String> = whole.into_iter().collect();
        let candidates: Vec<(String, String)> = book
            .invoices
            .iter()
            .filter(|i| !whole.contains(&i.customer_id))
            .filter(|i| book.settled_on(i).is_some_and(|d| d < cutoff))
            .map(|i| (i.customer_id.clone(), i.invoice_id.clone()))
            .collect();
        let book = history::fold(book, cutoff);
        // Which candidates the fold took: a set of what is left (a miss of
        // `Book::invoice` is a linear search, once per candidate).
        let left: HashSet<&str> = book
            .invoices
            .iter()
            .map(|i| i.invoice_id.as_str())
            .collect();
        let folded: Vec<(String, String)> = candidates
            .into_iter()
            .filter(|(_, id)| !left.contains(id.as_str()))
            .collect();
        drop(left);
        self.swept_since.set(Some(since));
        if folded.is_empty() {
            return Ok(book);
        }
        match keep_fold(&tx, &book, &folded) {
            Ok(()) => tx.commit()?,
            // Another writer came first: its data may touch what this read
            // folded, so nothing is kept (the book itself is this read's).
            Err(e) if e.retryable() => drop(tx),
            Err(e) => return Err(e),
        }
        Ok(book)
    }

    /// An action row of the sweep's book: a live record whole, any other
    /// as its step, unless it is an old step of an invoice settled before
    /// `since` (see [`SqliteStore::load_compact`]).
    fn take_row(
        &self,
        row: &rusqlite::Row<'_>,
        since: NaiveDate,
        settled_before: &HashSet<&str>,
        strings: &mut Interner,
        steps: &mut StepsByInvoice,
        live: &mut ActionsByInvoice,
    ) -> Result<(), StoreError> {
        let status = row_status(row)?;
        if is_live(status) {
            let a = self.rows.read(&self.conn, row)?;
            steps.push(&a.invoice_id, Step::of(&a, strings));
            live.push(a);
        } else {
            let (invoice_id, step) = self.row_step(row, status, strings)?;
            if step.decided_on < since
                && step.sent_on.is_none_or(|d| d < since)
                && settled_before.contains(invoice_id)
            {
                return Ok(());
            }
            steps.push(invoice_id, step);
        }
        Ok(())
    }

    /// The step of an action row, read from its columns without building
    /// the record; with the row's invoice id.
    fn row_step<'r>(
        &self,
        row: &'r rusqlite::Row<'_>,
        status: ActionStatus,
        strings: &mut Interner,
    ) -> Result<(&'r str, Step), StoreError> {
        let text = |k: usize| -> Result<&'r str, StoreError> {
            Ok(row.get_ref(k)?.as_str().map_err(rusqlite::Error::from)?)
        };
        let optional = |k: usize| -> Result<Option<&'r str>, StoreError> {
            Ok(row
                .get_ref(k)?
                .as_str_or_null()
                .map_err(rusqlite::Error::from)?)
        };
        let context = self.rows.context(&self.conn, row.get(11)?)?;
        let step = Step {
            action_id: text(0)?.into(),
            policy_name: strings.get(&context.policy_name),
            segment: strings.get(text(13)?),
            status,
            step_offset: row.get(9)?,
            channel: collect_engine::book::channel(text(6)?),
            label: strings.get(text(7)?),
            decided_on: rows::day(text(0)?, "decided_on", text(4)?)?,
            sent_on: optional(21)?
                .map(|d| rows::day(text(0)?, "sent_on", d))
                .transpose()?,
            message_id: optional(18)?.map(Into::into),
        };
        Ok((text(1)?, step))
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

    /// The books of several customers, each table read once for all of
    /// them (`customer_id IN` a JSON array of the ids).
    /// With `carried` (the checks before sending), only the live records
    /// and those the named messages carry are read whole, every other
    /// action as its step; and a customer whose payment history is folded
    /// (and covers the last sweep's look-back) comes with its aggregate
    /// ([`Book::history`]) instead of its folded invoices, their payments,
    /// events and steps. Without it, every record whole and no aggregate.
    fn books_of(
        &self,
        customer_ids: &[&str],
        carried: Option<&HashSet<&str>>,
    ) -> Result<HashMap<String, Book>, StoreError> {
        #[derive(Default)]
        struct Parts {
            customers: Vec<collect_engine::domain::Customer>,
            invoices: Vec<collect_engine::domain::Invoice>,
            payments: Vec<collect_engine::domain::Payment>,
            events: Vec<collect_engine::domain::Event>,
            actions: ActionsByInvoice,
            steps: StepsByInvoice,
            history: Option<PaymentHistory>,
        }
        let ids = encode(&customer_ids)?;
        let mut parts: HashMap<String, Parts> = customer_ids
            .iter()
            .map(|id| ((*id).to_string(), Parts::default()))
            .collect();
        const IN: &str = "IN (SELECT value FROM json_each(?1))";
        // Rows of `(customer id, key, JSON body)` decoded into each
        // customer's part.
        fn each<T: serde::de::DeserializeOwned>(
            conn: &Connection,
            ids: &str,
            parts: &mut HashMap<String, Parts>,
            (table, sql): (&'static str, String),
            into: fn(&mut Parts) -> &mut Vec<T>,
        ) -> Result<(), StoreError> {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query([ids])?;
            while let Some(row) = rows.next()? {
                let text = |k: usize| -> Result<&str, StoreError> {
                    Ok(row.get_ref(k)?.as_str().map_err(rusqlite::Error::from)?)
                };
                if let Some(p) = parts.get_mut(text(0)?) {
                    into(p).push(decode(table, text(1)?, text(2)?)?);
                }
            }
            Ok(())
        }
        let c = &self.conn;
        let customers =
            format!("SELECT customer_id, customer_id, body FROM customers WHERE customer_id {IN}");
        each(c, &ids, &mut parts, ("customers", customers), |p| {
            &mut p.customers
        })?;
        // The customers read with their aggregate, and those read whole.
        let mut folded: Vec<&str> = Vec::new();
        if let (Some(_), Some(since)) = (carried, self.swept_since.get()) {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT customer_id, body FROM customer_history WHERE customer_id {IN}"
            ))?;
            let mut found = stmt.query([&ids])?;
            while let Some(row) = found.next()? {
                let customer = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
                let body = row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
                let h = PaymentHistory::from_json(body).map_err(|source| StoreError::Corrupt {
                    table: "customer_history",
                    key: customer.to_string(),
                    source,
                })?;
                if h.covers(since)
                    && let Some(p) = parts.get_mut(customer)
                {
                    p.history = Some(h);
                    folded.extend(customer_ids.iter().copied().find(|c| *c == customer));
                }
            }
        }
        let whole: Vec<&str> = customer_ids
            .iter()
            .copied()
            .filter(|c| !folded.contains(c))
            .collect();
        for (list, only_unfolded) in [(&folded, true), (&whole, false)] {
            if list.is_empty() {
                continue;
            }
            let ids = encode(list)?;
            let unfolded = if only_unfolded {
                " AND i.folded = 0"
            } else {
                ""
            };
            let invoices = format!(
                "SELECT i.customer_id, i.invoice_id, i.body FROM invoices i
                 WHERE i.customer_id {IN}{unfolded}"
            );
            each(c, &ids, &mut parts, ("invoices", invoices), |p| {
                &mut p.invoices
            })?;
            let payments = format!(
                "SELECT i.customer_id, p.payment_id, p.body FROM invoices i
                 JOIN payments p ON p.invoice_id = i.invoice_id WHERE i.customer_id {IN}{unfolded}"
            );
            each(c, &ids, &mut parts, ("payments", payments), |p| {
                &mut p.payments
            })?;
            let events = format!(
                "SELECT i.customer_id, e.event_id, e.body FROM invoices i
                 JOIN events e ON e.invoice_id = i.invoice_id WHERE i.customer_id {IN}{unfolded}"
            );
            each(c, &ids, &mut parts, ("events", events), |p| &mut p.events)?;
            // The actions of a folded invoice stay out with it.
            let not_folded = if only_unfolded {
                " AND NOT EXISTS (SELECT 1 FROM invoices i
                   WHERE i.invoice_id = actions.invoice_id AND i.folded = 1)"
            } else {
                ""
            };
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT {} FROM actions WHERE customer_id {IN}{not_folded}",
                rows::COLUMNS
            ))?;
            let mut found = stmt.query([&ids])?;
            let mut strings = Interner::default();
            while let Some(row) = found.next()? {
                let customer = row.get_ref(2)?.as_str().map_err(rusqlite::Error::from)?;
                let Some(p) = parts.get_mut(customer) else {
                    continue;
                };
                let status = row_status(row)?;
                let whole = carried.is_none_or(|carried| {
                    is_live(status)
                        || row
                            .get_ref(18)
                            .ok()
                            .and_then(|m| m.as_str_or_null().ok().flatten())
                            .is_some_and(|m| carried.contains(m))
                });
                if whole {
                    let a = self.rows.read(&self.conn, row)?;
                    p.steps.push(&a.invoice_id, Step::of(&a, &mut strings));
                    p.actions.push(a);
                } else {
                    let (invoice_id, step) = self.row_step(row, status, &mut strings)?;
                    p.steps.push(invoice_id, step);
                }
            }
        }
        let mut holds: HashMap<String, Vec<ContactHold>> = HashMap::new();
        {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT customer_id, address, body FROM contact_holds
                 WHERE open = 1 AND customer_id {IN}"
            ))?;
            let mut found = stmt.query([&ids])?;
            while let Some(row) = found.next()? {
                let customer: String = row.get(0)?;
                let address: String = row.get(1)?;
                let body: String = row.get(2)?;
                let key = format!("{customer} {address}");
                holds
                    .entry(customer)
                    .or_default()
                    .push(decode("contact_holds", &key, &body)?);
            }
        }
        Ok(parts
            .into_iter()
            .map(|(id, p)| {
                let mut book = Book::compact(
                    p.customers,
                    p.invoices,
                    p.payments,
                    p.events,
                    p.steps,
                    p.actions,
                );
                book.contact_holds.extend(holds.remove_entry(&id));
                book.history.extend(p.history.map(|h| (id.clone(), h)));
                (id, book)
            })
            .collect())
    }

    /// Every contact hold of the home, open and ended (the latest per
    /// customer and address), by customer and address: `collect tasks`
    /// lists the open ones.
    pub fn all_contact_holds(&self) -> Result<Vec<ContactHold>, StoreError> {
        self.read_holds("", [])
    }

    fn read_holds(
        &self,
        filter: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<ContactHold>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT customer_id, address, body FROM contact_holds {filter}
             ORDER BY customer_id, address"
        ))?;
        let mut found = stmt.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = found.next()? {
            let customer: String = row.get(0)?;
            let address: String = row.get(1)?;
            let body: String = row.get(2)?;
            out.push(decode(
                "contact_holds",
                &format!("{customer} {address}"),
                &body,
            )?);
        }
        Ok(out)
    }

    /// Each action record the `filter` (a `WHERE` clause) selects.
    pub(crate) fn each_action(
        &self,
        filter: &str,
        params: impl rusqlite::Params,
        mut f: impl FnMut(ActionRecord),
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {} FROM actions {filter}", rows::COLUMNS))?;
        let mut found = stmt.query(params)?;
        while let Some(row) = found.next()? {
            f(self.rows.read(&self.conn, row)?);
        }
        Ok(())
    }

    /// The stored status of an action, if it exists.
    fn action_status(
        &self,
        customer_id: &str,
        action_id: &str,
    ) -> Result<Option<ActionStatus>, StoreError> {
        let s: Option<String> = self
            .conn
            .prepare_cached("SELECT status FROM actions WHERE customer_id = ?1 AND action_id = ?2")?
            .query_row([customer_id, action_id], |r| r.get(0))
            .optional()?;
        Ok(s.as_deref().and_then(ActionStatus::parse))
    }
}

impl Ledger for SqliteStore {
    async fn load_book(
        &self,
        _scope: &Scope,
        day: NaiveDate,
        since: NaiveDate,
    ) -> Result<Book, LedgerError> {
        Ok(self.load_compact(day, since)?)
    }

    async fn customer_book(&self, customer_id: &str) -> Result<Book, LedgerError> {
        Ok(self
            .books_of(&[customer_id], None)?
            .remove(customer_id)
            .unwrap_or_default())
    }

    async fn customer_books(
        &self,
        customer_ids: &[&str],
        carried: &[&str],
    ) -> Result<HashMap<String, Book>, LedgerError> {
        let carried: HashSet<&str> = carried.iter().copied().collect();
        Ok(self.books_of(customer_ids, Some(&carried))?)
    }

    async fn hold_contact(&self, hold: &ContactHold) -> Result<bool, LedgerError> {
        // Written unless an open hold of the address is kept: one statement.
        let n = self
            .conn
            .prepare_cached(
                "INSERT INTO contact_holds (customer_id, address, open, body)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(customer_id, address) DO UPDATE
                 SET open = excluded.open, body = excluded.body WHERE open = 0",
            )
            .map_err(StoreError::from)?
            .execute(params![
                hold.customer_id.as_str(),
                address_key(&hold.address),
                hold.ended.is_none(),
                encode(hold)?
            ])
            .map_err(StoreError::from)?;
        Ok(n == 1)
    }

    async fn end_contact_hold(
        &self,
        customer_id: &str,
        address: &str,
        end: &HoldEnd,
    ) -> Result<bool, LedgerError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(StoreError::from)?;
        let key = address_key(address);
        let open: Option<String> = tx
            .query_row(
                "SELECT body FROM contact_holds
                 WHERE customer_id = ?1 AND address = ?2 AND open = 1",
                params![customer_id, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::from)?;
        let Some(body) = open else {
            return Ok(false);
        };
        let mut hold: ContactHold =
            decode("contact_holds", &format!("{customer_id} {key}"), &body)?;
        hold.ended = Some(end.clone());
        tx.execute(
            "UPDATE contact_holds SET open = 0, body = ?3 WHERE customer_id = ?1 AND address = ?2",
            params![customer_id, key, encode(&hold)?],
        )
        .map_err(StoreError::from)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(true)
    }

    async fn contact_holds(&self, customer_id: &str) -> Result<Vec<ContactHold>, LedgerError> {
        Ok(self.read_holds("WHERE customer_id = ?1", [customer_id])?)
    }

    async fn record_actions(
        &self,
        records: &[ActionRecord],
        previous: &HashMap<ActionId, ActionStatus>,
        day: NaiveDate,
    ) -> Result<Recorded, LedgerError> {
        // The shared contexts first, outside the transaction (see RowCodec).
        let contexts = self.rows.context_ids(&self.conn, records)?;
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(StoreError::from)?;
        let mut out = Recorded::default();
        {
            // A new record with the first line of its trail, in one row;
            // a change with its line (in the row when it is a routine one).
            let mut add = tx
                .prepare_cached(rows::INSERT_LOGGED)
                .map_err(StoreError::from)?;
            let mut put = tx
                .prepare_cached(&format!(
                    "{} AND status = ?25{}",
                    rows::UPDATE_LOGGED,
                    rows::RETURNING
                ))
                .map_err(StoreError::from)?;
            for (r, context) in records.iter().zip(contexts) {
                // Every change is a line of the trail (a retry deferred
                // again keeps the first deferral's reason and risk).
                let written = match previous.get(&r.action_id) {
                    None => rows::write(&mut add, r, context, &[&day.to_string()])? == 1,
                    Some(seen) => match rows::same_as_stored(&self.rows, &tx, r)? {
                        Some((_, true)) => {
                            out.written.push(r.action_id.clone());
                            continue;
                        }
                        Some((status, false)) if status == *seen => rows::write_logged(
                            &tx,
                            &mut put,
                            r,
                            context,
                            day,
                            None,
                            &[&seen.as_str()],
                        )?,
                        _ => false,
                    },
                };
                if written {
                    out.written.push(r.action_id.clone());
                } else {
                    out.conflicts.push(r.action_id.clone());
                }
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
        let context = self.rows.context_id(&self.conn, record)?;
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(StoreError::from)?;
        let Some(current) = self.action_status(&record.customer_id, &record.action_id)? else {
            return Ok(false);
        };
        if !expected.contains(&current) {
            return Ok(false);
        }
        rows::write_logged(
            &tx,
            &mut tx
                .prepare_cached(&format!("{}{}", rows::UPDATE_LOGGED, rows::RETURNING))
                .map_err(StoreError::from)?,
            record,
            context,
            day,
            record.decided_by.as_deref(),
            &[],
        )?;
        tx.commit().map_err(StoreError::from)?;
        Ok(true)
    }

    async fn trail(
        &self,
        action: &ActionRecord,
    ) -> Result<Vec<collect_delivery::ledger::LogEntry>, LedgerError> {
        Ok(rows::trail(
            &self.conn,
            action.customer_id.as_str(),
            action.action_id.as_str(),
        )?)
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
                     WHERE messages.status IN ('cancelled', 'failed')",
                )
                .map_err(StoreError::from)?;
            for m in messages {
                let n = put
                    .execute(params![
                        m.message_id.as_str(),
                        m.customer_id.as_str(),
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
                next.message_id.as_str(),
                next.status.as_str(),
                encode(next)?,
                from.as_str()
            ])
            .map_err(StoreError::from)?;
        Ok(n == 1)
    }

    async fn move_batch(&self, moves: &[Move]) -> Result<Vec<Option<Vec<bool>>>, LedgerError> {
        let contexts = self.move_contexts(moves)?;
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(StoreError::from)?;
        let out = self.moves_in(&tx, moves, contexts)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    /// The lease's token is read in the batch's transaction, which takes
    /// the file's write lock first (BEGIN IMMEDIATE): no other process can
    /// take the lease between the check and the writes.
    async fn move_batch_fenced(
        &self,
        fence: &Fence,
        moves: &[Move],
    ) -> Result<Fenced<Vec<Option<Vec<bool>>>>, LedgerError> {
        let contexts = self.move_contexts(moves)?;
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let token: Option<i64> = tx
            .prepare_cached("SELECT token FROM leases WHERE name = ?1")
            .map_err(StoreError::from)?
            .query_row([&fence.lease], |r| r.get(0))
            .optional()
            .map_err(StoreError::from)?;
        if token.and_then(|t| u64::try_from(t).ok()) != Some(fence.token) {
            // Dropped: rolled back, nothing written.
            return Ok(Fenced::LeaseLost);
        }
        let out = self.moves_in(&tx, moves, contexts)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(Fenced::Written(out))
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

    async fn customers(
        &self,
        customer_ids: &[&str],
    ) -> Result<HashMap<String, Customer>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT body FROM customers WHERE customer_id = ?1")
            .map_err(StoreError::from)?;
        let mut out = HashMap::with_capacity(customer_ids.len());
        for id in customer_ids {
            if out.contains_key(*id) {
                continue;
            }
            let body: Option<String> = stmt
                .query_row([id], |r| r.get(0))
                .optional()
                .map_err(StoreError::from)?;
            if let Some(body) = body {
                let c: Customer = decode("customers", id, &body)?;
                out.insert((*id).to_string(), c);
            }
        }
        Ok(out)
    }

    async fn open_work(&self, queue: Option<&str>) -> Result<Vec<WorkEntry>, LedgerError> {
        Ok(self.work(queue)?)
    }

    async fn customer_action(
        &self,
        customer_id: &str,
        action_id: &str,
    ) -> Result<Option<ActionRecord>, LedgerError> {
        let mut found = None;
        self.each_action(
            "WHERE customer_id = ?1 AND action_id = ?2",
            params![customer_id, action_id],
            |a| found = Some(a),
        )?;
        Ok(found)
    }

    async fn record_events(
        &self,
        _customer_id: &str,
        events: &[Event],
    ) -> Result<Vec<bool>, LedgerError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(StoreError::from)?;
        let mut out = Vec::with_capacity(events.len());
        let mut unfold = std::collections::BTreeSet::new();
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events (event_id, date, type, invoice_id, action_id, message_id, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(StoreError::from)?;
            for e in events {
                let n = stmt
                    .execute(params![
                        e.event_id,
                        e.date.to_string(),
                        e.kind.name(),
                        e.invoice_id,
                        e.action_id,
                        e.message_id,
                        encode(e)?
                    ])
                    .map_err(StoreError::from)?;
                if n == 1 {
                    unfold.extend(crate::store::folded_customers_of_event(&tx, e)?);
                }
                out.push(n == 1);
            }
            crate::store::unfold_customers(&tx, &unfold)?;
        }
        tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    async fn note_action(
        &self,
        action: &ActionRecord,
        expected: ActionStatus,
        note: &TrailNote,
        day: NaiveDate,
    ) -> Result<bool, LedgerError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(StoreError::from)?;
        // The line's number from the row, in the same statement.
        let seq: Option<i64> = tx
            .prepare_cached(
                "UPDATE actions SET call_again_on = COALESCE(?4, call_again_on),
                     trail_len = trail_len + 1
                 WHERE customer_id = ?1 AND invoice_id = ?5 AND action_id = ?2 AND status = ?3
                 RETURNING trail_len",
            )
            .map_err(StoreError::from)?
            .query_row(
                params![
                    action.customer_id.as_str(),
                    action.action_id.as_str(),
                    expected.as_str(),
                    note.call_again_on.map(|d| d.to_string()),
                    action.invoice_id.as_str()
                ],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::from)?;
        let Some(seq) = seq else {
            return Ok(false);
        };
        rows::append_line(
            &tx,
            &rows::Line {
                customer_id: action.customer_id.as_str(),
                action_id: action.action_id.as_str(),
                seq,
                day,
                status: expected.as_str(),
                note: Some(note.note.as_str()),
                by: Some(note.by.as_str()),
                risk: action.risk,
            },
        )?;
        tx.commit().map_err(StoreError::from)?;
        Ok(true)
    }

    async fn release_lease(&self, name: &str, holder: &LeaseHolder) -> Result<(), LedgerError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(StoreError::from)?;
        if let Some(l) = read_lease(&tx, name)?.filter(|l| l.holder.id == holder.id) {
            // Kept, expired, with its token: the next holder's is larger.
            tx.execute(
                "UPDATE leases SET body = ?2 WHERE name = ?1",
                params![name, encode(&l.released())?],
            )
            .map_err(StoreError::from)?;
        }
        tx.commit().map_err(StoreError::from)?;
        Ok(())
    }
}

impl SqliteStore {
    /// The shared contexts of the moves' actions, written before the
    /// batch's transaction (see `RowCodec`).
    fn move_contexts(&self, moves: &[Move]) -> Result<Vec<Vec<i64>>, StoreError> {
        moves
            .iter()
            .map(|mv| self.rows.context_ids(&self.conn, &mv.actions))
            .collect()
    }

    /// The moves of a batch inside the caller's transaction `tx`: each
    /// message on its condition, then its actions (each from `planned` or
    /// `sending`).
    fn moves_in(
        &self,
        tx: &Connection,
        moves: &[Move],
        contexts: Vec<Vec<i64>>,
    ) -> Result<Vec<Option<Vec<bool>>>, StoreError> {
        let mut out = Vec::with_capacity(moves.len());
        {
            let mut message = tx
                .prepare_cached(
                    "UPDATE messages SET status = ?2, body = ?3 WHERE message_id = ?1 AND status = ?4",
                )
                .map_err(StoreError::from)?;
            // Each action from `planned` or `sending` (LIVE), its line of
            // the trail in the same write: one statement per action.
            let live: Vec<String> = LIVE.iter().map(|s| format!("'{}'", s.as_str())).collect();
            let mut put = tx
                .prepare_cached(&format!(
                    "{} AND status IN ({}){}",
                    rows::UPDATE_LOGGED,
                    live.join(", "),
                    rows::RETURNING
                ))
                .map_err(StoreError::from)?;
            for (mv, contexts) in moves.iter().zip(contexts) {
                // The message's condition first: when it fails, nothing of
                // this move is written.
                let n = message
                    .execute(params![
                        mv.next.message_id.as_str(),
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
                for (a, context) in mv.actions.iter().zip(contexts) {
                    let ok = rows::write_logged(
                        tx,
                        &mut put,
                        a,
                        context,
                        mv.day,
                        a.decided_by.as_deref(),
                        &[],
                    )?;
                    moved.push(ok);
                }
                out.push(Some(moved));
            }
        }
        Ok(out)
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
                let token = i64::try_from(l.token).unwrap_or(i64::MAX);
                self.conn.execute(
                    "INSERT INTO leases (name, body, token) VALUES (?1, ?2, ?3)
                     ON CONFLICT(name) DO UPDATE SET body = excluded.body, token = excluded.token",
                    params![name, encode(l)?, token],
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

impl SqliteStore {
    /// Takes this state back to what it was before `day`'s actions
    /// (`collect_delivery::ledger::rewind`): an action first logged on or
    /// after `day` is removed, one changed since goes back to its status of
    /// the day before, with its later trail lines; messages planned on or
    /// after `day` are removed, and the last swept day is forgotten. Meant
    /// for an in-memory copy ([`SqliteStore::copy_in_memory`]): `collect
    /// diff` replays both policies from it. Returns how many actions were
    /// removed and how many were changed back.
    pub fn rewind_before(&mut self, day: NaiveDate) -> Result<(usize, usize), StoreError> {
        let mut all = Vec::new();
        self.each_action("", [], |a| all.push(a))?;
        let mut removed = Vec::new();
        let mut changed = Vec::new();
        let mut kept_lines = Vec::new();
        for a in all {
            let trail = rows::trail(&self.conn, a.customer_id.as_str(), a.action_id.as_str())?;
            match collect_delivery::ledger::rewind::as_before(&a, &trail, day) {
                None => removed.push((a.customer_id.to_string(), a.action_id.to_string())),
                Some(r) if r != a => {
                    let kept = trail
                        .iter()
                        .filter(|e| e.day < day)
                        .map(|e| e.seq)
                        .max()
                        .unwrap_or(0);
                    kept_lines.push(kept);
                    changed.push(r);
                }
                Some(_) => {}
            }
        }
        let contexts = self.rows.context_ids(&self.conn, &changed)?;
        let tx = self.conn.unchecked_transaction()?;
        {
            let day = day.to_string();
            let mut drop_action =
                tx.prepare("DELETE FROM actions WHERE customer_id = ?1 AND action_id = ?2")?;
            let mut drop_log =
                tx.prepare("DELETE FROM action_log WHERE customer_id = ?1 AND action_id = ?2")?;
            let mut cut_log = tx.prepare(
                "DELETE FROM action_log WHERE customer_id = ?1 AND action_id = ?2 AND day >= ?3",
            )?;
            // The lines kept in the row: those of `day` and later emptied,
            // and the count of lines back to the last one kept.
            let mut cut_row = tx.prepare(
                "UPDATE actions SET
                     sending_seq = CASE WHEN sending_day >= ?3 THEN NULL ELSE sending_seq END,
                     sending_note = CASE WHEN sending_day >= ?3 THEN NULL ELSE sending_note END,
                     sending_by = CASE WHEN sending_day >= ?3 THEN NULL ELSE sending_by END,
                     sending_risk = CASE WHEN sending_day >= ?3 THEN NULL ELSE sending_risk END,
                     sending_day = CASE WHEN sending_day >= ?3 THEN NULL ELSE sending_day END,
                     sent_seq = CASE WHEN sent_day >= ?3 THEN NULL ELSE sent_seq END,
                     sent_note = CASE WHEN sent_day >= ?3 THEN NULL ELSE sent_note END,
                     sent_by = CASE WHEN sent_day >= ?3 THEN NULL ELSE sent_by END,
                     sent_risk = CASE WHEN sent_day >= ?3 THEN NULL ELSE sent_risk END,
                     sent_day = CASE WHEN sent_day >= ?3 THEN NULL ELSE sent_day END,
                     trail_len = ?4
                 WHERE customer_id = ?1 AND action_id = ?2",
            )?;
            for (customer, id) in &removed {
                drop_action.execute([customer, id])?;
                drop_log.execute([customer, id])?;
            }
            let mut put = tx.prepare_cached(rows::UPDATE)?;
            for ((r, context), kept) in changed.iter().zip(contexts).zip(&kept_lines) {
                rows::write(&mut put, r, context, &[])?;
                let (customer, id) = (r.customer_id.as_str(), r.action_id.as_str());
                cut_log.execute(params![customer, id, day])?;
                cut_row.execute(params![customer, id, day, kept])?;
            }
            tx.execute("DELETE FROM messages WHERE planned_on >= ?1", [&day])?;
            tx.execute("DELETE FROM meta WHERE key = 'last_swept_day'", [])?;
        }
        tx.commit()?;
        Ok((removed.len(), changed.len()))
    }
}

impl SqliteStore {
    /// The index of open work: the actions of the partial index
    /// `actions_work` with their invoice's live balance, and the open
    /// contact holds.
    fn work(&self, queue: Option<&str>) -> Result<Vec<WorkEntry>, StoreError> {
        let mut out = Vec::new();
        let wants = |q: &str| queue.is_none_or(|x| x == q);
        if queue.is_none_or(|q| q != CONTACTS) {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT a.action_id, a.invoice_id, a.customer_id, a.status, a.decided_on,
                        a.scheduled_for, a.channel, a.label, a.target, a.step_offset, a.segment,
                        a.risk, a.call_again_on, i.due_date,
                        json_extract(i.body, '$.amount'), json_extract(i.body, '$.currency'),
                        (SELECT group_concat(json_extract(p.body, '$.amount'), ' ')
                         FROM payments p WHERE p.invoice_id = a.invoice_id)
                 FROM actions a LEFT JOIN invoices i ON i.invoice_id = a.invoice_id
                 WHERE {}",
                rows::WORK
                    .replace("status", "a.status")
                    .replace("channel", "a.channel")
            ))?;
            let mut found = stmt.query([])?;
            while let Some(row) = found.next()? {
                let id: String = row.get(0)?;
                let status: String = row.get(3)?;
                let target: String = row.get(8)?;
                let (kind, q) = if status == ActionStatus::AwaitingApproval.as_str() {
                    (WorkKind::Approval, APPROVALS.to_string())
                } else {
                    (WorkKind::Call, target)
                };
                if !wants(&q) {
                    continue;
                }
                let date = |i: usize| -> Result<Option<NaiveDate>, StoreError> {
                    let s: Option<String> = row.get(i)?;
                    Ok(s.and_then(|s| s.parse().ok()))
                };
                // The amounts as the documents hold them (Decimal as text),
                // read without decoding whole invoices and payments.
                let amount = money(row.get_ref(14)?, &id)?;
                let currency: Option<String> = row.get(15)?;
                let balance = match amount {
                    Some(amount) => {
                        let paid: Option<String> = row.get(16)?;
                        let mut total = Decimal::ZERO;
                        for p in paid.iter().flat_map(|p| p.split(' ')) {
                            let p = p.parse::<Decimal>().map_err(|_| StoreError::BadValue {
                                table: "payments",
                                key: id.clone(),
                                column: "amount",
                                value: p.to_string(),
                            })?;
                            total = total.saturating_add(p);
                        }
                        Some(amount.saturating_sub(total))
                    }
                    None => None,
                };
                let scheduled = date(5)?;
                let step_offset: i64 = row.get(9)?;
                out.push(WorkEntry {
                    task_id: id.clone(),
                    kind,
                    queue: q,
                    invoice_id: Some(row.get(1)?),
                    customer_id: row.get(2)?,
                    decided_on: date(4)?.unwrap_or_default(),
                    label: row.get(7)?,
                    segment: row.get(10)?,
                    risk: row.get(11)?,
                    call_again_on: date(12)?,
                    due_date: date(13)?.or_else(|| {
                        scheduled?.checked_sub_signed(chrono::Duration::days(step_offset))
                    }),
                    balance,
                    currency,
                });
            }
        }
        if wants(CONTACTS) {
            for h in self.read_holds("WHERE open = 1", [])? {
                out.extend(work_of_hold(&h));
            }
        }
        Ok(out)
    }
}

/// An amount read from a document by `json_extract`: text (how `Decimal`
/// is written), or a number from a hand-written document.
fn money(v: rusqlite::types::ValueRef<'_>, id: &str) -> Result<Option<Decimal>, StoreError> {
    use rusqlite::types::ValueRef;
    let bad = |value: String| StoreError::BadValue {
        table: "invoices",
        key: id.to_string(),
        column: "amount",
        value,
    };
    Ok(match v {
        ValueRef::Null => None,
        ValueRef::Text(t) => Some(
            std::str::from_utf8(t)
                .ok()
                .and_then(|t| t.parse::<Decimal>().ok())
                .ok_or_else(|| bad(String::from_utf8_lossy(t).into_owned()))?,
        ),
        ValueRef::Integer(i) => Some(Decimal::from(i)),
        ValueRef::Real(f) => Some(Decimal::try_from(f).map_err(|_| bad(f.to_string()))?),
        ValueRef::Blob(_) => return Err(bad("a blob".to_string())),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// The sweep's read of its actions searches the key per invoice: it
    /// never scans the table (whose history grows).
    #[test]
    fn the_book_actions_are_searched_by_key() {
        let store = crate::store::SqliteStore::in_memory().unwrap();
        let plan: Vec<String> = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", super::book_actions()))
            .unwrap()
            .query_map(["[]"], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            plan.iter().any(|p| p
                .starts_with("SEARCH actions USING PRIMARY KEY (customer_id=? AND invoice_id=?)")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|p| p.starts_with("SCAN actions")),
            "{plan:?}"
        );
    }
}
