//! The in-memory ledger, for unit and conformance tests and simulations.
//! It keeps the same conditions as the real adapters (conditional action
//! and message writes, leases with an expiry, an audit trail).
//! It keeps every record; [`Ledger::load_book`] folds the settled, wholly
//! past invoices into their customers' aggregates at load
//! ([`collect_engine::history::fold`]), so the suites run on memory sweep
//! the folded book, as on SQLite and DynamoDB.

use super::LogEntry;
use super::{
    ContactHold, Fence, Fenced, HoldEnd, LIVE, Lease, LeaseHolder, LeaseOutcome, Ledger,
    LedgerError, MessageStatus, Move, Recorded, Scope, StoredMessage, lease_decision,
    take_over_decision,
};
use super::{TrailNote, WorkEntry, work_of_action, work_of_hold};
use chrono::{DateTime, NaiveDate, Utc};
use collect_engine::book::Book;
use collect_engine::contact::address_key;
use collect_engine::domain::{
    ActionId, ActionRecord, ActionStatus, Customer, Event, Invoice, MessageId, Payment,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default, Clone)]
struct State {
    customers: BTreeMap<String, Customer>,
    invoices: BTreeMap<String, Invoice>,
    payments: BTreeMap<String, Payment>,
    events: BTreeMap<String, Event>,
    actions: BTreeMap<ActionId, ActionRecord>,
    log: Vec<LogEntry>,
    messages: BTreeMap<MessageId, StoredMessage>,
    leases: BTreeMap<String, Lease>,
    /// By customer and address key.
    holds: BTreeMap<(String, String), ContactHold>,
    /// "No answer; call again on D", until the action's status changes.
    call_again: BTreeMap<ActionId, NaiveDate>,
}

/// A ledger in a map, shared by reference (interior mutability).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    state: Mutex<State>,
}

impl Clone for MemoryLedger {
    fn clone(&self) -> Self {
        MemoryLedger {
            state: Mutex::new(self.lock().clone()),
        }
    }
}

impl MemoryLedger {
    pub fn new() -> MemoryLedger {
        MemoryLedger::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves consistent
        // data (every write is one statement), so the poison is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn upsert_customer(&self, c: Customer) {
        self.lock().customers.insert(c.customer_id.clone(), c);
    }

    pub fn upsert_invoice(&self, i: Invoice) {
        self.lock().invoices.insert(i.invoice_id.clone(), i);
    }

    pub fn upsert_payment(&self, p: Payment) {
        self.lock().payments.insert(p.payment_id.clone(), p);
    }

    pub fn insert_event(&self, e: Event) {
        self.lock().events.entry(e.event_id.clone()).or_insert(e);
    }

    pub fn invoice(&self, invoice_id: &str) -> Option<Invoice> {
        self.lock().invoices.get(invoice_id).cloned()
    }

    pub fn customer(&self, customer_id: &str) -> Option<Customer> {
        self.lock().customers.get(customer_id).cloned()
    }

    pub fn actions(&self) -> Vec<ActionRecord> {
        self.lock().actions.values().cloned().collect()
    }

    pub fn messages(&self) -> Vec<StoredMessage> {
        self.lock().messages.values().cloned().collect()
    }

    pub fn action_log(&self, action_id: &str) -> Vec<LogEntry> {
        self.lock()
            .log
            .iter()
            .filter(|l| l.action_id == action_id)
            .cloned()
            .collect()
    }

    fn book_of(state: &State, only: Option<&str>) -> Book {
        let keep = |c: &str| only.is_none_or(|o| o == c);
        let invoices: Vec<Invoice> = state
            .invoices
            .values()
            .filter(|i| keep(&i.customer_id))
            .cloned()
            .collect();
        let ids: std::collections::HashSet<&str> =
            invoices.iter().map(|i| i.invoice_id.as_str()).collect();
        let mut book = Book::new(
            state
                .customers
                .values()
                .filter(|c| keep(&c.customer_id))
                .cloned()
                .collect(),
            invoices.clone(),
            state
                .payments
                .values()
                .filter(|p| ids.contains(p.invoice_id.as_str()))
                .cloned()
                .collect(),
            state
                .events
                .values()
                .filter(|e| {
                    e.invoice_id
                        .as_deref()
                        .is_none_or(|i| ids.contains(i) || only.is_none())
                })
                .cloned()
                .collect(),
            state
                .actions
                .values()
                .filter(|a| keep(&a.customer_id))
                .cloned()
                .collect(),
        );
        for h in state.holds.values() {
            if h.ended.is_none() && keep(&h.customer_id) {
                book.contact_holds
                    .entry(h.customer_id.to_string())
                    .or_default()
                    .push(h.clone());
            }
        }
        book
    }

    /// One move of a batch, under the lock the caller holds: nothing when
    /// the message is not `from`, else its actions (each from `planned` or
    /// `sending`) and the message.
    fn move_locked(state: &mut State, mv: &Move) -> Option<Vec<bool>> {
        let at = state.messages.get(&mv.next.message_id).map(|m| m.status);
        if at != Some(mv.from) {
            return None;
        }
        let mut moved = Vec::with_capacity(mv.actions.len());
        for a in &mv.actions {
            let ok = state
                .actions
                .get(&a.action_id)
                .is_some_and(|c| LIVE.contains(&c.status));
            if ok {
                Self::log(state, a, mv.day);
                state.actions.insert(a.action_id.clone(), a.clone());
            }
            moved.push(ok);
        }
        state
            .messages
            .insert(mv.next.message_id.clone(), mv.next.clone());
        Some(moved)
    }

    /// The index of open work, as the real adapters keep it (here: made
    /// from the state, with live balances).
    fn work_of(state: &State, queue: Option<&str>) -> Vec<WorkEntry> {
        let book = Self::book_of(state, None);
        let mut out: Vec<WorkEntry> = state
            .actions
            .values()
            .filter_map(|a| {
                let mut w = work_of_action(a)?;
                if let Some(i) = book.invoice(&a.invoice_id) {
                    w.balance = Some(book.balance(i, NaiveDate::MAX));
                    w.currency = Some(i.currency.clone());
                    w.due_date = Some(i.due_date);
                }
                w.call_again_on = state.call_again.get(&a.action_id).copied();
                Some(w)
            })
            .chain(state.holds.values().filter_map(work_of_hold))
            .filter(|w| queue.is_none_or(|q| q == w.queue))
            .collect();
        out.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        out
    }

    fn last_seq(state: &State, action_id: &str) -> i64 {
        state
            .log
            .iter()
            .filter(|l| l.action_id == action_id)
            .map(|l| l.seq)
            .max()
            .unwrap_or(0)
    }

    fn log(state: &mut State, r: &ActionRecord, day: NaiveDate) {
        if state
            .actions
            .get(&r.action_id)
            .is_none_or(|a| a.status != r.status)
        {
            state.call_again.remove(&r.action_id);
        }
        let seq = state
            .log
            .iter()
            .filter(|l| l.action_id == r.action_id)
            .count() as i64
            + 1;
        state.log.push(LogEntry {
            action_id: r.action_id.clone(),
            seq,
            day,
            status: r.status.as_str().to_string(),
            note: r.note.clone(),
            by: r.decided_by.clone(),
            risk: r.risk,
        });
    }
}

impl Ledger for MemoryLedger {
    async fn load_book(
        &self,
        _scope: &Scope,
        _day: NaiveDate,
        since: NaiveDate,
    ) -> Result<Book, LedgerError> {
        // Keeps every record, but gives the sweep the folded book the
        // stored adapters give: the customers' settled invoices wholly
        // before `since` as aggregates ([`collect_engine::history`]).
        let book = Self::book_of(&self.lock(), None);
        Ok(collect_engine::history::fold(book, since))
    }

    async fn customer_book(&self, customer_id: &str) -> Result<Book, LedgerError> {
        Ok(Self::book_of(&self.lock(), Some(customer_id)))
    }

    async fn hold_contact(&self, hold: &ContactHold) -> Result<bool, LedgerError> {
        let mut state = self.lock();
        let key = (hold.customer_id.to_string(), address_key(&hold.address));
        if state.holds.get(&key).is_some_and(|h| h.ended.is_none()) {
            return Ok(false);
        }
        state.holds.insert(key, hold.clone());
        Ok(true)
    }

    async fn end_contact_hold(
        &self,
        customer_id: &str,
        address: &str,
        end: &HoldEnd,
    ) -> Result<bool, LedgerError> {
        let mut state = self.lock();
        match state
            .holds
            .get_mut(&(customer_id.to_string(), address_key(address)))
        {
            Some(h) if h.ended.is_none() => {
                h.ended = Some(end.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn contact_holds(&self, customer_id: &str) -> Result<Vec<ContactHold>, LedgerError> {
        Ok(self
            .lock()
            .holds
            .values()
            .filter(|h| h.customer_id == customer_id)
            .cloned()
            .collect())
    }

    async fn record_actions(
        &self,
        records: &[ActionRecord],
        previous: &HashMap<ActionId, ActionStatus>,
        day: NaiveDate,
    ) -> Result<Recorded, LedgerError> {
        let mut state = self.lock();
        let mut out = Recorded::default();
        for r in records {
            let stored = state.actions.get(&r.action_id).map(|a| a.status);
            let ok = match (stored, previous.get(&r.action_id)) {
                (None, None) => true,
                (Some(now), Some(seen)) => now == *seen,
                _ => false,
            };
            if !ok {
                out.conflicts.push(r.action_id.clone());
                continue;
            }
            if state.actions.get(&r.action_id) == Some(r) {
                out.written.push(r.action_id.clone());
                continue;
            }
            // Every change is a line of the trail (a retry deferred again
            // keeps the reason and risk of the first deferral in its line).
            Self::log(&mut state, r, day);
            state.actions.insert(r.action_id.clone(), r.clone());
            out.written.push(r.action_id.clone());
        }
        Ok(out)
    }

    async fn move_action(
        &self,
        record: &ActionRecord,
        expected: &[ActionStatus],
        day: NaiveDate,
    ) -> Result<bool, LedgerError> {
        let mut state = self.lock();
        let Some(current) = state.actions.get(&record.action_id).map(|a| a.status) else {
            return Ok(false);
        };
        if !expected.contains(&current) {
            return Ok(false);
        }
        Self::log(&mut state, record, day);
        state
            .actions
            .insert(record.action_id.clone(), record.clone());
        Ok(true)
    }

    async fn trail(&self, action: &ActionRecord) -> Result<Vec<LogEntry>, LedgerError> {
        Ok(self.action_log(&action.action_id))
    }

    async fn put_message(&self, m: &StoredMessage) -> Result<bool, LedgerError> {
        let mut state = self.lock();
        if state.messages.get(&m.message_id).is_some_and(|old| {
            !matches!(old.status, MessageStatus::Cancelled | MessageStatus::Failed)
        }) {
            return Ok(false);
        }
        state.messages.insert(m.message_id.clone(), m.clone());
        Ok(true)
    }

    async fn message(&self, message_id: &str) -> Result<Option<StoredMessage>, LedgerError> {
        Ok(self.lock().messages.get(message_id).cloned())
    }

    async fn unfinished_messages(&self, _scope: &Scope) -> Result<Vec<StoredMessage>, LedgerError> {
        let mut v: Vec<StoredMessage> = self
            .lock()
            .messages
            .values()
            .filter(|m| m.status.is_unfinished())
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.planned_on, &a.message_id).cmp(&(b.planned_on, &b.message_id)));
        Ok(v)
    }

    async fn move_message(
        &self,
        next: &StoredMessage,
        from: MessageStatus,
    ) -> Result<bool, LedgerError> {
        let mut state = self.lock();
        match state.messages.get_mut(&next.message_id) {
            Some(m) if m.status == from => {
                *m = next.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn move_batch_fenced(
        &self,
        fence: &Fence,
        moves: &[Move],
    ) -> Result<Fenced<Vec<Option<Vec<bool>>>>, LedgerError> {
        let mut state = self.lock();
        if state
            .leases
            .get(&fence.lease)
            .is_none_or(|l| l.token != fence.token)
        {
            return Ok(Fenced::LeaseLost);
        }
        let moved = moves
            .iter()
            .map(|mv| Self::move_locked(&mut state, mv))
            .collect();
        Ok(Fenced::Written(moved))
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &LeaseHolder,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<LeaseOutcome, LedgerError> {
        let mut state = self.lock();
        let outcome = lease_decision(state.leases.get(name), name, holder, now, ttl);
        if let LeaseOutcome::Taken(l) = &outcome {
            state.leases.insert(name.to_string(), l.clone());
        }
        Ok(outcome)
    }

    async fn take_over_lease(
        &self,
        dead: &Lease,
        holder: &LeaseHolder,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<LeaseOutcome, LedgerError> {
        let mut state = self.lock();
        let outcome = take_over_decision(state.leases.get(&dead.name), dead, holder, now, ttl);
        if let LeaseOutcome::Taken(l) = &outcome {
            state.leases.insert(dead.name.clone(), l.clone());
        }
        Ok(outcome)
    }

    async fn open_work(&self, queue: Option<&str>) -> Result<Vec<WorkEntry>, LedgerError> {
        Ok(Self::work_of(&self.lock(), queue))
    }

    async fn customer_action(
        &self,
        customer_id: &str,
        action_id: &str,
    ) -> Result<Option<ActionRecord>, LedgerError> {
        Ok(self
            .lock()
            .actions
            .get(action_id)
            .filter(|a| a.customer_id == customer_id)
            .cloned())
    }

    async fn record_events(
        &self,
        _customer_id: &str,
        events: &[Event],
    ) -> Result<Vec<bool>, LedgerError> {
        let mut state = self.lock();
        Ok(events
            .iter()
            .map(|e| {
                if state.events.contains_key(&e.event_id) {
                    false
                } else {
                    state.events.insert(e.event_id.clone(), e.clone());
                    true
                }
            })
            .collect())
    }

    async fn note_action(
        &self,
        action: &ActionRecord,
        expected: ActionStatus,
        note: &TrailNote,
        day: NaiveDate,
    ) -> Result<bool, LedgerError> {
        let mut state = self.lock();
        let Some(current) = state.actions.get(&action.action_id).cloned() else {
            return Ok(false);
        };
        if current.status != expected {
            return Ok(false);
        }
        let seq = Self::last_seq(&state, &action.action_id) + 1;
        state.log.push(LogEntry {
            action_id: current.action_id.clone(),
            seq,
            day,
            status: current.status.as_str().to_string(),
            note: Some(note.note.clone()),
            by: Some(note.by.clone()),
            risk: current.risk,
        });
        if let Some(on) = note.call_again_on {
            state.call_again.insert(current.action_id.clone(), on);
        }
        Ok(true)
    }

    async fn release_lease(&self, name: &str, holder: &LeaseHolder) -> Result<(), LedgerError> {
        let mut state = self.lock();
        if let Some(l) = state.leases.get_mut(name)
            && l.holder.id == holder.id
        {
            *l = l.released();
        }
        Ok(())
    }
}
