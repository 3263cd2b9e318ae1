//! The ledger port: the state the daily sweep and its delivery protocol
//! read and write, whatever holds it (SQLite locally, DynamoDB on AWS, an
//! in-memory map in tests).
//!
//! It holds three kinds of record besides the book of receivables:
//! - **actions** ([`ActionRecord`]), written conditionally: a new one only if
//!   its id is unknown, a changed one only if its stored status is still the
//!   one the writer saw, so two writers never both move the same action;
//! - **messages** ([`StoredMessage`]): what was planned to go out, with its
//!   whole content (invoices, template, the plan offered), so a message left
//!   over by a crash is rebuilt exactly as it was planned, and its delivery
//!   status (`planned → sending → sent`, or `cancelled`);
//! - **leases**: one writer at a time per home (locally) or per shard (AWS),
//!   a conditional write with an expiry so a dead holder blocks nobody for
//!   long, and a **fencing token** that grows with every new holder: the
//!   move of messages to `sending` ([`Ledger::move_batch_fenced`]) is
//!   written only while the lease still carries the run's token, so a run
//!   that was stopped past its lease while another took it over writes
//!   nothing more;
//! - **contact holds** ([`ContactHold`]): a customer's address held from
//!   mail (hard bounce, complaint, refused, invalid) until the address
//!   changes or a person closes the task, one per customer and address,
//!   written conditionally so a replayed bounce holds once. The books the
//!   checks before sending read ([`Ledger::customer_books`]) carry the
//!   open ones;
//! - **the index of open work** ([`WorkEntry`], [`Ledger::open_work`]):
//!   what waits for a person — letters awaiting approval, planned calls,
//!   open contact holds — kept by every write of an action or a hold, so
//!   the desk ([`crate::work`]) reads its queue without reading the book.
//!
//! Every method is `async`: the DynamoDB adapter awaits the network; the
//! SQLite and in-memory adapters answer at once (the local runner drives
//! them with a minimal executor).

use chrono::{DateTime, NaiveDate, Utc};
use collect_engine::book::Book;
pub use collect_engine::contact::{ContactHold, HoldEnd, HoldEnding, HoldReason};
use collect_engine::domain::{
    ActionId, ActionRecord, ActionStatus, Channel, Customer, CustomerId, Event, InvoiceId,
    MessageId,
};
use collect_engine::sweep::PlannedMessage;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub mod memory;
pub mod rewind;
mod work;
pub use work::{APPROVALS, CONTACTS, TrailNote, WorkEntry, WorkKind, work_of_action, work_of_hold};

/// Which part of the book a sweep covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything (the local runtime).
    All,
    /// One shard of customers (AWS): those with an open invoice due on or
    /// before `through`, in the shard.
    Shard { shard: u32, through: NaiveDate },
}

impl Scope {
    /// The name of this scope's lease.
    pub fn lease_name(&self) -> String {
        match self {
            Scope::All => "sweep".to_string(),
            Scope::Shard { shard, .. } => format!("sweep-shard-{shard}"),
        }
    }
}

/// How far a message got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Recorded, not yet handed to the mail service.
    Planned,
    /// Being handed to the mail service: it may or may not have accepted it
    /// (after a crash, the mail service is asked before anything else).
    Sending,
    /// The mail service accepted it.
    Sent,
    /// Not sent, on purpose: what was in it is deferred or skipped, each
    /// action with its reason.
    Cancelled,
    /// Written by earlier releases when a message could not be built or
    /// the mail service refused it; its actions were failed. No longer
    /// written: a failure is retried or deferred by its class (see
    /// [`crate::mailer::FailureClass`]). A `failed` message found in a home
    /// or table is planned again like a cancelled one
    /// ([`Ledger::put_message`]), and its steps are due again (a failed
    /// step is not taken), so what an earlier release burned goes out.
    Failed,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 5] = [
        MessageStatus::Planned,
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Cancelled,
        MessageStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Planned => "planned",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Cancelled => "cancelled",
            MessageStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<MessageStatus> {
        MessageStatus::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Planned or sending: the delivery protocol still has work to do.
    pub fn is_unfinished(self) -> bool {
        matches!(self, MessageStatus::Planned | MessageStatus::Sending)
    }
}

/// A message as recorded: what was planned, and how far sending got.
///
/// Its id depends only on the actions it carries (see
/// [`collect_engine::sweep::message_id`]), never on the day it goes out: once handed
/// to the mail service it is never handed over again, on any day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub message_id: MessageId,
    pub customer_id: CustomerId,
    pub channel: Channel,
    pub template: String,
    pub action_ids: Vec<ActionId>,
    pub invoice_ids: Vec<InvoiceId>,
    /// For a plan offer: the schedule offered, `(due date, amount)`.
    pub plan: Option<Vec<(NaiveDate, Decimal)>>,
    pub tags: Vec<(String, String)>,
    /// The sweep day that planned it.
    pub planned_on: NaiveDate,
    pub status: MessageStatus,
    /// When it went to `sending` (the grace period of reconciliation).
    #[serde(default)]
    pub sending_since: Option<DateTime<Utc>>,
    /// The day it went out.
    #[serde(default)]
    pub sent_on: Option<NaiveDate>,
    /// The mail service's id, once it accepted the message.
    #[serde(default)]
    pub provider_message_id: Option<String>,
    /// Why it was cancelled, failed or put back.
    #[serde(default)]
    pub note: Option<String>,
}

impl StoredMessage {
    /// A freshly planned message.
    pub fn planned(m: &PlannedMessage, day: NaiveDate) -> StoredMessage {
        StoredMessage {
            message_id: m.message_id.clone(),
            customer_id: m.customer_id.clone(),
            channel: m.channel,
            template: m.template.clone(),
            action_ids: m.action_ids.clone(),
            invoice_ids: m.invoice_ids.clone(),
            plan: m.plan.clone(),
            tags: m.tags.clone(),
            planned_on: day,
            status: MessageStatus::Planned,
            sending_since: None,
            sent_on: None,
            provider_message_id: None,
            note: None,
        }
    }

    /// The message to compose.
    pub fn to_planned(&self) -> PlannedMessage {
        PlannedMessage {
            message_id: self.message_id.clone(),
            customer_id: self.customer_id.clone(),
            channel: self.channel,
            template: self.template.clone(),
            action_ids: self.action_ids.clone(),
            invoice_ids: self.invoice_ids.clone(),
            plan: self.plan.clone(),
            tags: self.tags.clone(),
        }
    }
}

/// One line of an action's audit trail: appended for every change of the
/// action (a status change, a retry deferred again), never rewritten, so
/// each keeps the note and the risk of its own moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    pub action_id: ActionId,
    pub seq: i64,
    pub day: NaiveDate,
    pub status: String,
    pub note: Option<String>,
    pub by: Option<String>,
    /// The probability of late payment the action carried at this moment.
    pub risk: Option<f64>,
}

/// A note as a reader sees it after the status: without the status word
/// the note may already start with (`deferred: …` shown as `deferred: …`,
/// never `deferred: deferred: …`).
pub fn note_after_status<'a>(status: &str, note: &'a str) -> &'a str {
    note.strip_prefix(status)
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(note)
}

/// The statuses from which a message's delivery moves its actions.
pub const LIVE: [ActionStatus; 2] = [ActionStatus::Planned, ActionStatus::Sending];

/// One message's move in [`Ledger::move_batch`]: to `next` if it is `from`,
/// with its actions (as they are to be written).
#[derive(Debug, Clone)]
pub struct Move {
    pub next: StoredMessage,
    pub from: MessageStatus,
    pub actions: Vec<ActionRecord>,
    /// The sweep day (of the audit trail's entries).
    pub day: NaiveDate,
}

/// What recording a sweep's actions did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// Written by this run.
    pub written: Vec<ActionId>,
    /// Refused by their condition: another run recorded or moved them first.
    pub conflicts: Vec<ActionId>,
}

/// Who holds (or asks for) a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    /// Unique per run: a run renews and releases only its own lease.
    pub id: String,
    /// The process, for the message another run shows.
    pub pid: u32,
    pub host: String,
}

impl LeaseHolder {
    /// This process, with a fresh run id (unique within the process too:
    /// two runs on two threads are two holders).
    pub fn this_process(now: DateTime<Utc>) -> LeaseHolder {
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            })
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string());
        LeaseHolder {
            id: format!(
                "{host}-{pid}-{}-{run}",
                now.timestamp_nanos_opt().unwrap_or(0)
            ),
            pid,
            host,
        }
    }
}

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub name: String,
    pub holder: LeaseHolder,
    pub since: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    /// The fencing token: larger for each new holder than for any holder
    /// before it (a take, a takeover, a take after expiry or release), the
    /// same across one holder's renewals. A lease given back is kept,
    /// expired, so its token is never handed out again. Leases of earlier
    /// releases had none: 0.
    #[serde(default)]
    pub token: u64,
}

impl Lease {
    /// The lease given back: kept (with its token) but expired, so anyone
    /// may take it at once.
    pub fn released(&self) -> Lease {
        Lease {
            expires: DateTime::<Utc>::default(),
            ..self.clone()
        }
    }
}

/// What a fenced write requires: the lease `lease` still carries `token`,
/// i.e. no other run has taken it since this run got it. The store does
/// not judge the lease's expiry (its clock is not the run's): a run checks
/// that by its own clock before each send, and renews or stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub lease: String,
    pub token: u64,
}

/// The answer to a fenced write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fenced<T> {
    /// The lease still carried the run's token: written, with this answer.
    Written(T),
    /// Another run took the lease: nothing was written.
    LeaseLost,
}

/// The answer to a request for a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// Taken (or renewed): this run may write until `expires`.
    Taken(Lease),
    /// Another live run holds it.
    HeldBy(Lease),
}

/// What a ledger could not do. It names no adapter's types: an adapter
/// wraps its own error in [`StorageFailure`] (the store failed or refused)
/// or reports a record it cannot read back as [`CorruptRecord`].
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The storage behind the ledger failed or refused (a SQLite file that
    /// cannot be written, DynamoDB throttling or refusing a request).
    #[error(transparent)]
    Storage(#[from] StorageFailure),
    /// A stored record could not be read back.
    #[error(transparent)]
    Corrupt(#[from] CorruptRecord),
}

impl LedgerError {
    /// Whether trying again later may succeed (throttling, a timeout, a
    /// busy database): the run stops and the next one finishes its work.
    pub fn retryable(&self) -> bool {
        matches!(self, LedgerError::Storage(f) if f.retryable)
    }
}

/// The storage behind a ledger failed: the adapter's own error, with what
/// it was doing. Its message is the adapter's (which names the store, the
/// operation and what to do).
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct StorageFailure {
    /// Which store: `sqlite`, `dynamodb`, `memory`.
    pub store: &'static str,
    /// Whether trying again later may succeed.
    pub retryable: bool,
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl StorageFailure {
    /// Wraps an adapter's error.
    pub fn new(
        store: &'static str,
        retryable: bool,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StorageFailure {
        StorageFailure {
            store,
            retryable,
            source: Box::new(source),
        }
    }
}

/// A stored record that could not be read back: which one, and why. The
/// record stays where it is; the run stops before acting on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a stored record could not be read ({key}): {reason}")]
pub struct CorruptRecord {
    /// The record's key, as the store names it.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The state port of the sweep and its delivery protocol.
#[allow(async_fn_in_trait)]
pub trait Ledger {
    /// The book of a scope: customers, invoices, payments, events, and the
    /// actions of the invoices in it.
    ///
    /// A sweep of `day` looks back no further than `since` (its longest
    /// window, [`collect_engine::sweep::history_since`]), so what it reads
    /// need not grow with history: an adapter *folds* every invoice that
    /// [`collect_engine::history::foldable`] allows before `since` into its
    /// customer's payment history ([`Book::history`], kept by the adapter
    /// between sweeps) and leaves the invoice, its payments, events and
    /// steps out of the book; the decisions read the aggregate and the
    /// remaining records alike, so a folded book decides exactly what the
    /// full records decide (`functions/model/tests/history_equivalence.rs`).
    /// Late data naming a folded invoice unfolds its customer. A caller
    /// that needs every record (explain, audit, training) passes
    /// `NaiveDate::MIN` or reads the customer whole.
    async fn load_book(
        &self,
        scope: &Scope,
        day: NaiveDate,
        since: NaiveDate,
    ) -> Result<Book, LedgerError>;

    /// One customer's current state (read fresh, for the checks made just
    /// before a message is sent), with its open contact holds
    /// ([`Book::contact_holds`]). Empty when the customer is unknown.
    async fn customer_book(&self, customer_id: &str) -> Result<Book, LedgerError>;

    /// [`Ledger::customer_book`] of several customers at once (the checks
    /// of a batch of messages), each id once; an unknown customer's book is
    /// empty. The checks read whole only the live records and those the
    /// messages `carried` carry: an adapter may give every other action as
    /// its step alone ([`Book::steps`]; SQLite does). An adapter that can
    /// read the customers together overrides it.
    async fn customer_books(
        &self,
        customer_ids: &[&str],
        carried: &[&str],
    ) -> Result<HashMap<String, Book>, LedgerError> {
        let _ = carried;
        let mut out = HashMap::with_capacity(customer_ids.len());
        for id in customer_ids {
            if !out.contains_key(*id) {
                out.insert((*id).to_string(), self.customer_book(id).await?);
            }
        }
        Ok(out)
    }

    /// Holds a customer's address ([`ContactHold`], open): written unless
    /// an open hold of the same customer and address is kept (compared by
    /// [`collect_engine::contact::address_key`]); an ended one of that
    /// address is replaced. Returns whether it was written: a replayed
    /// bounce holds once.
    async fn hold_contact(&self, hold: &ContactHold) -> Result<bool, LedgerError>;

    /// Ends the open hold of the customer's `address`, if it is still open
    /// (`Ok(false)` otherwise: none, or another writer ended it first).
    async fn end_contact_hold(
        &self,
        customer_id: &str,
        address: &str,
        end: &HoldEnd,
    ) -> Result<bool, LedgerError>;

    /// A customer's holds, open and ended (the latest per address).
    async fn contact_holds(&self, customer_id: &str) -> Result<Vec<ContactHold>, LedgerError>;

    /// Records a sweep's actions: a new one only if its id is unknown, a
    /// changed one only if its stored status is still `previous[id]`.
    /// Every status change is logged for `day`.
    async fn record_actions(
        &self,
        records: &[ActionRecord],
        previous: &HashMap<ActionId, ActionStatus>,
        day: NaiveDate,
    ) -> Result<Recorded, LedgerError>;

    /// Replaces an action if its stored status is one of `expected`;
    /// `Ok(false)` when it is not (or the action does not exist).
    async fn move_action(
        &self,
        record: &ActionRecord,
        expected: &[ActionStatus],
        day: NaiveDate,
    ) -> Result<bool, LedgerError>;

    /// An action's audit trail, oldest first: one line per change of the
    /// action (empty when it is unknown). The record locates it (on
    /// DynamoDB the trail is kept on the action's item, in its customer's
    /// partition).
    async fn trail(&self, action: &ActionRecord) -> Result<Vec<LogEntry>, LedgerError>;

    /// Records a planned message unless one with its id exists; returns
    /// whether it was written. A `cancelled` one (never handed to the mail
    /// service) is planned again: its actions were deferred and are due
    /// again; so is a `failed` one (written by earlier releases: the mail
    /// service never accepted it). One that is planned, sending or sent is
    /// left alone.
    async fn put_message(&self, m: &StoredMessage) -> Result<bool, LedgerError>;

    /// [`put_message`](Ledger::put_message) for many, as one step where
    /// the store allows it (SQLite: one transaction).
    async fn put_messages(&self, messages: &[StoredMessage]) -> Result<Vec<bool>, LedgerError> {
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            out.push(self.put_message(m).await?);
        }
        Ok(out)
    }

    async fn message(&self, message_id: &str) -> Result<Option<StoredMessage>, LedgerError>;

    /// Messages of the scope still `planned` or `sending`, oldest first.
    async fn unfinished_messages(&self, scope: &Scope) -> Result<Vec<StoredMessage>, LedgerError>;

    /// Replaces a message if its stored status is `from`; `Ok(false)` when
    /// it is not (another run moved it).
    async fn move_message(
        &self,
        next: &StoredMessage,
        from: MessageStatus,
    ) -> Result<bool, LedgerError>;

    /// Moves messages and some of their actions, each message with its
    /// actions as one step, the whole batch as one step where the store
    /// allows it (SQLite: one transaction). For each move: `None`, having
    /// written nothing of it, when the message's stored status is not
    /// `from`; otherwise whether each action moved (only from `planned` or
    /// `sending`).
    ///
    /// The default (for stores without multi-item transactions) writes one
    /// item at a time, in the order that keeps a crash between two writes
    /// recoverable: when a message is being taken (`sending`), the message
    /// first (its condition decides who sends); otherwise its actions
    /// first, so a message is never finished with its actions behind it.
    async fn move_batch(&self, moves: &[Move]) -> Result<Vec<Option<Vec<bool>>>, LedgerError> {
        let mut out = Vec::with_capacity(moves.len());
        for mv in moves {
            out.push(move_one(self, mv).await?);
        }
        Ok(out)
    }

    /// [`move_batch`](Ledger::move_batch) under a fence: only while the
    /// lease `fence` names still carries its token, checked in the same
    /// step as each message's condition (SQLite: the same transaction;
    /// DynamoDB: a `ConditionCheck` on the lease item in each message's
    /// `TransactWriteItems`; memory: under its lock). [`Fenced::LeaseLost`]
    /// when another run took the lease: nothing of the batch is written
    /// (DynamoDB, whose moves of a batch are separate writes: nothing after
    /// the lease was lost). The delivery protocol takes messages (`planned`
    /// or `sending` → `sending`) with it; the `sent` marks that follow use
    /// the unfenced [`move_batch`](Ledger::move_batch), since a message the
    /// mail service accepted must be recorded whoever holds the lease (the
    /// message's own condition keeps another run's writes).
    async fn move_batch_fenced(
        &self,
        fence: &Fence,
        moves: &[Move],
    ) -> Result<Fenced<Vec<Option<Vec<bool>>>>, LedgerError>;

    /// Takes the lease `name` for `holder` until `now + ttl`: when nobody
    /// holds it, when its holder's time ran out, or to renew one's own.
    /// A new holder gets a larger [`Lease::token`] than any before it; a
    /// renewal keeps the holder's token.
    async fn take_lease(
        &self,
        name: &str,
        holder: &LeaseHolder,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<LeaseOutcome, LedgerError>;

    /// Gives the lease back (only if `holder` still holds it): kept as
    /// [`Lease::released`], so the next holder's token is larger still.
    async fn release_lease(&self, name: &str, holder: &LeaseHolder) -> Result<(), LedgerError>;

    /// The index of open work (see [`WorkEntry`]): every action awaiting a
    /// person (letters awaiting approval, planned calls) and every open
    /// contact hold, of `queue` or of all queues. Read from an index kept
    /// with each write of an action or hold (SQLite: the `work` table;
    /// DynamoDB: the sparse `GSI1PK = WORK#<queue>`), never from the book.
    async fn open_work(&self, queue: Option<&str>) -> Result<Vec<WorkEntry>, LedgerError>;

    /// Several customers' records at once (a page of the desk's queue),
    /// each id once; unknown ones are left out. The default reads each
    /// customer's book; DynamoDB reads the customer items in one
    /// BatchGetItem per hundred.
    async fn customers(
        &self,
        customer_ids: &[&str],
    ) -> Result<HashMap<String, Customer>, LedgerError> {
        let mut out = HashMap::with_capacity(customer_ids.len());
        for id in customer_ids {
            if out.contains_key(*id) {
                continue;
            }
            if let Some(c) = self.customer_book(id).await?.customers.remove(*id) {
                out.insert((*id).to_string(), c);
            }
        }
        Ok(out)
    }

    /// One action by its ids (on DynamoDB the customer locates it).
    async fn customer_action(
        &self,
        customer_id: &str,
        action_id: &str,
    ) -> Result<Option<ActionRecord>, LedgerError>;

    /// Writes a customer's book events (a promise to pay, a dispute, an
    /// end-of-ladder outcome), each unless its id is known; whether each
    /// was written.
    async fn record_events(
        &self,
        customer_id: &str,
        events: &[Event],
    ) -> Result<Vec<bool>, LedgerError>;

    /// Appends a trail line for a person's act that changes no status (a
    /// note; "no answer, call again on D", which also sets the action's
    /// work entry's `call_again_on`), only if the action's stored status is
    /// still `expected`; `Ok(false)` otherwise.
    async fn note_action(
        &self,
        action: &ActionRecord,
        expected: ActionStatus,
        note: &TrailNote,
        day: NaiveDate,
    ) -> Result<bool, LedgerError>;

    /// Takes over the lease of a holder known to be dead (locally: a
    /// process of this machine that no longer exists), if `dead` still holds
    /// it. Adapters whose holders cannot be known dead refuse.
    async fn take_over_lease(
        &self,
        dead: &Lease,
        holder: &LeaseHolder,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<LeaseOutcome, LedgerError> {
        let _ = (holder, now, ttl);
        Ok(LeaseOutcome::HeldBy(dead.clone()))
    }
}

/// One move of the default [`Ledger::move_batch`], item by item, in the
/// order that keeps a crash between two writes recoverable (see there).
/// Adapters that write moves concurrently run this for each.
pub async fn move_one<L: Ledger + ?Sized>(
    ledger: &L,
    mv: &Move,
) -> Result<Option<Vec<bool>>, LedgerError> {
    let taking = mv.next.status == MessageStatus::Sending;
    if taking && !ledger.move_message(&mv.next, mv.from).await? {
        return Ok(None);
    }
    if !taking {
        match ledger.message(&mv.next.message_id).await? {
            Some(m) if m.status == mv.from => {}
            _ => return Ok(None),
        }
    }
    let mut moved = Vec::with_capacity(mv.actions.len());
    for a in &mv.actions {
        moved.push(ledger.move_action(a, &LIVE, mv.day).await?);
    }
    if !taking && !ledger.move_message(&mv.next, mv.from).await? {
        return Ok(None);
    }
    Ok(Some(moved))
}

/// The decision of [`take_over_lease`](Ledger::take_over_lease): the dead
/// holder's lease becomes `holder`'s if it is still the current one.
pub fn take_over_decision(
    current: Option<&Lease>,
    dead: &Lease,
    holder: &LeaseHolder,
    now: DateTime<Utc>,
    ttl: chrono::Duration,
) -> LeaseOutcome {
    match current {
        Some(l) if l.holder.id == dead.holder.id => LeaseOutcome::Taken(Lease {
            name: dead.name.clone(),
            holder: holder.clone(),
            since: now,
            expires: now.checked_add_signed(ttl).unwrap_or(now),
            token: l.token.saturating_add(1),
        }),
        _ => lease_decision(current, &dead.name, holder, now, ttl),
    }
}

/// The decision of [`take_lease`](Ledger::take_lease), shared by adapters
/// that read the current lease and write the new one in one step (a
/// transaction, or a write conditional on the lease read).
///
/// A renewal (the stored lease is `holder`'s, expired or not: nobody took
/// it in between, or it would name them) keeps the token; anyone else gets
/// the stored token plus one.
pub fn lease_decision(
    current: Option<&Lease>,
    name: &str,
    holder: &LeaseHolder,
    now: DateTime<Utc>,
    ttl: chrono::Duration,
) -> LeaseOutcome {
    let expires = now.checked_add_signed(ttl).unwrap_or(now);
    match current {
        Some(l) if l.holder.id != holder.id && l.expires > now => LeaseOutcome::HeldBy(l.clone()),
        Some(l) if l.holder.id == holder.id => LeaseOutcome::Taken(Lease {
            name: name.to_string(),
            holder: holder.clone(),
            since: l.since,
            expires,
            token: l.token,
        }),
        _ => LeaseOutcome::Taken(Lease {
            name: name.to_string(),
            holder: holder.clone(),
            since: now,
            expires,
            token: current.map_or(1, |l| l.token.saturating_add(1)),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::{StoredMessage, note_after_status};
    use collect_engine::domain::Channel;

    #[test]
    fn a_message_of_an_earlier_release_reads_typed_and_writes_back_the_same() {
        let old = r#"{"message_id":"msg-549d7f34f4db7ad81f76","customer_id":"C-0042","channel":"offer","template":"plan-offer","action_ids":["act-a","act-b"],"invoice_ids":["INV-1","INV-2"],"plan":[["2027-05-03","276.36"],["2027-06-02","829.09"]],"tags":[["channel","offer"],["template","plan-offer"]],"planned_on":"2027-05-03","status":"sending","sending_since":"2027-05-03T14:00:00Z","sent_on":null,"provider_message_id":null,"note":null}"#;
        let m: StoredMessage = serde_json::from_str(old).unwrap();
        assert_eq!(m.channel, Channel::Offer);
        assert_eq!(m.action_ids, ["act-a", "act-b"]);
        assert_eq!(m.invoice_ids[1], "INV-2");
        assert_eq!(serde_json::to_string(&m).unwrap(), old);
    }

    #[test]
    fn a_note_is_never_prefixed_twice_with_its_status() {
        let note = "deferred: at most 1 email per customer per 2d; retried on the next sweep";
        assert_eq!(
            format!("deferred: {}", note_after_status("deferred", note)),
            note
        );
        assert_eq!(note_after_status("skipped", note), note);
        assert_eq!(note_after_status("deferred", "the cap"), "the cap");
    }
}
