//! Contact holds on the command line: the ones ingested mail events ask
//! for (`mail_bounced`, `mail_complained` in `events.jsonl`). The "fix the
//! address" tasks they make are the desk's (`collect tasks`, closed with
//! `collect tasks done hold-C…`); the holds themselves are
//! [`collect_engine::contact`]; the delivery protocol checks them before
//! each send.

use collect_delivery::delivery::holds::{MailHoldEvent, hold_from_mail_event};
use collect_delivery::ledger::LedgerError;
use collect_engine::contact::ContactHold;
use collect_engine::domain::Event;
use collect_sqlite::store::{SqliteStore, Store, StoreError};

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
