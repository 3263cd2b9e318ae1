//! Contact holds on the command line: the ones ingested mail events ask
//! for (`mail_bounced`, `mail_complained` in `events.jsonl`), and the
//! "fix the address" tasks of `collect tasks` — listed with the steps
//! waiting for them, closed by a person (`collect tasks done hold-C…`).
//! The holds themselves are [`collect_engine::contact`]; the delivery
//! protocol checks them before each send.

use chrono::NaiveDate;
use collect_delivery::delivery::holds::{MailHoldEvent, hold_from_mail_event};
use collect_delivery::ledger::{Ledger, LedgerError};
use collect_engine::contact::{
    ContactHold, HoldEnd, HoldEnding, customer_of_hold_task, hold_task_id,
};
use collect_engine::domain::{ActionRecord, ActionStatus, Event};
use collect_sqlite::store::{SqliteStore, Store, StoreError};
use serde::Serialize;

/// Holds the addresses the ingested events' bounces and complaints are
/// about; returns the holds written (an event ingested again holds once).
pub fn from_events(store: &SqliteStore, events: &[Event]) -> Result<Vec<ContactHold>, HoldError> {
    let mut held = Vec::new();
    for e in events {
        let Some(mut wanted) = MailHoldEvent::of_event(e, "ingest") else {
            continue;
        };
        if wanted.message_id.is_none() {
            if let Some(action_id) = &e.action_id {
                wanted.customer_id = Store::action(store, action_id)?.map(|a| a.customer_id);
            }
        }
        let got = pollster::block_on(hold_from_mail_event(store, &wanted))?;
        if let Some((hold, true)) = got {
            held.push(hold);
        }
    }
    Ok(held)
}

/// What reading or writing the holds failed with.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// A "fix the address" task: an open hold on a customer's current
/// address, with the email steps waiting for it.
#[derive(Debug, Clone, Serialize)]
pub struct AddressTask {
    /// `hold-<customer>`: what `collect tasks done` takes.
    pub task_id: String,
    pub customer_id: String,
    pub customer_name: String,
    pub hold: ContactHold,
    /// Why, for a person.
    pub why: String,
    /// The email steps deferred on it (action ids), most recent first.
    pub waiting: Vec<String>,
}

/// The open holds on customers' current addresses, as tasks.
pub fn address_tasks(store: &SqliteStore) -> Result<Vec<AddressTask>, HoldError> {
    let book = Store::load_book(store)?;
    let mut out = Vec::new();
    for hold in store.all_contact_holds()? {
        let Some(customer) = book.customers.get(hold.customer_id.as_str()) else {
            continue;
        };
        if !hold.applies_to(&customer.email) {
            continue;
        }
        let mut waiting: Vec<&ActionRecord> = book
            .invoices
            .iter()
            .filter(|i| i.customer_id == customer.customer_id)
            .flat_map(|i| book.actions_of(&i.invoice_id))
            .filter(|a| {
                a.status == ActionStatus::Deferred
                    && a.note
                        .as_deref()
                        .is_some_and(|n| n.contains(&hold_task_id(&customer.customer_id)))
            })
            .collect();
        waiting.sort_by(|a, b| (b.decided_on, &b.action_id).cmp(&(a.decided_on, &a.action_id)));
        out.push(AddressTask {
            task_id: hold_task_id(&customer.customer_id),
            customer_id: customer.customer_id.clone(),
            customer_name: customer.name.clone(),
            why: hold.describe(),
            waiting: waiting.iter().map(|a| a.action_id.to_string()).collect(),
            hold,
        });
    }
    Ok(out)
}

/// Why a "fix the address" task cannot be closed.
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    #[error("no open hold for customer `{customer_id}`; `collect tasks list` shows the open ones")]
    NoHold { customer_id: String },
    #[error(transparent)]
    Holds(#[from] HoldError),
}

/// Closes the task `task_id` (`hold-<customer>`): every open hold of the
/// customer ends, closed by `by` with `note`; the next sweep sends the
/// steps that waited. `Ok(None)` when `task_id` is not a hold task.
pub fn close(
    store: &SqliteStore,
    task_id: &str,
    by: &str,
    note: Option<&str>,
    day: NaiveDate,
) -> Result<Option<Vec<ContactHold>>, CloseError> {
    let Some(customer_id) = customer_of_hold_task(task_id) else {
        return Ok(None);
    };
    let holds = pollster::block_on(store.contact_holds(customer_id)).map_err(HoldError::from)?;
    let end = HoldEnd {
        on: day,
        how: HoldEnding::Closed {
            by: by.to_string(),
            note: note.map(str::to_string),
        },
    };
    let mut closed = Vec::new();
    for mut h in holds.into_iter().filter(|h| h.ended.is_none()) {
        let ended = pollster::block_on(store.end_contact_hold(customer_id, &h.address, &end))
            .map_err(HoldError::from)?;
        if ended {
            h.ended = Some(end.clone());
            closed.push(h);
        }
    }
    if closed.is_empty() {
        return Err(CloseError::NoHold {
            customer_id: customer_id.to_string(),
        });
    }
    Ok(Some(closed))
}
