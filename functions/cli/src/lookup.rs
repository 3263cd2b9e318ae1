//! From what an auditor holds to the records it names, for `collect
//! explain WHAT`.
//!
//! WHAT may be an invoice id (`INV-27-00880`), the invoice number printed
//! on the letter (`2027-00880`; several invoices with that number are
//! listed to pick from), the letter's Message-ID as the `.eml` header shows
//! it (`<msg-…@domain>`, with or without the brackets and the domain), or
//! an action id (`act-…`, as in `X-Collect-Action-Ids`). This module
//! resolves WHAT ([`resolve`]); [`crate::explanation`] explains what it
//! found.

use crate::home::Home;
use collect_delivery::ledger::{Ledger, LedgerError, StoredMessage};
use collect_engine::book::Book;
use collect_engine::domain::ActionRecord;
use collect_sqlite::store::{SqliteStore, Store, StoreError};
use std::path::PathBuf;

/// WHAT names nothing in the home, or more than one invoice.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(
        "no message `{key}` in {}: the Message-ID of a letter sent from this home \
         (the `.eml` header `Message-ID: <msg-…@…>`) names one",
        db.display()
    )]
    NoMessage { key: String, db: PathBuf },
    #[error(
        "no invoice, invoice number, Message-ID or action id `{what}` in {}; \
         give an invoice id (`INV-…`), the number on the letter, the `.eml`'s \
         Message-ID or an action id (`act-…`, as in `X-Collect-Action-Ids`)",
        db.display()
    )]
    NotFound { what: String, db: PathBuf },
    /// Several invoices carry the number on the letter: one line each.
    #[error(
        "{} invoices have the number `{number}`; explain one by its id:\n{}",
        invoices.len(),
        invoices.join("\n")
    )]
    SameNumber {
        number: String,
        invoices: Vec<String>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// What WHAT named.
#[derive(Debug)]
pub enum Target {
    /// An invoice, by its id or by the number on the letter.
    Invoice {
        invoice_id: String,
        via: &'static str,
    },
    Action(Box<ActionRecord>),
    /// A message and the actions it carried.
    Message {
        message_id: String,
        stored: Option<Box<StoredMessage>>,
        actions: Vec<ActionRecord>,
    },
}

/// The message id of a Message-ID header value: `<msg-1@example.com>`,
/// `msg-1@example.com` and `msg-1` all name `msg-1`.
pub fn message_key(what: &str) -> &str {
    let w = what.trim();
    let w = w.strip_prefix('<').unwrap_or(w);
    let w = w.strip_suffix('>').unwrap_or(w);
    w.split('@').next().unwrap_or(w).trim()
}

pub fn resolve(
    home: &Home,
    store: &SqliteStore,
    book: &Book,
    what: &str,
) -> Result<Target, LookupError> {
    let w = what.trim();
    if let Some(a) = Store::action(store, w)? {
        return Ok(Target::Action(Box::new(a)));
    }
    let key = message_key(w);
    let looks_like_message = key.starts_with("msg-") || w.contains('@') || w.starts_with('<');
    if looks_like_message {
        let stored = pollster::block_on(Ledger::message(store, key))?;
        let mut actions: Vec<ActionRecord> = store
            .actions()?
            .into_iter()
            .filter(|a| {
                a.message_id.as_deref() == Some(key)
                    || stored
                        .as_ref()
                        .is_some_and(|m| m.action_ids.contains(&a.action_id))
            })
            .collect();
        actions.sort_by(|a, b| (&a.invoice_id, a.step_offset).cmp(&(&b.invoice_id, b.step_offset)));
        if stored.is_some() || !actions.is_empty() {
            return Ok(Target::Message {
                message_id: key.to_string(),
                stored: stored.map(Box::new),
                actions,
            });
        }
        return Err(LookupError::NoMessage {
            key: key.to_string(),
            db: home.db_path(),
        });
    }
    if book.invoice(w).is_some() {
        return Ok(Target::Invoice {
            invoice_id: w.to_string(),
            via: "invoice id",
        });
    }
    let numbered: Vec<_> = book.invoices.iter().filter(|i| i.number == w).collect();
    match numbered.as_slice() {
        [one] => Ok(Target::Invoice {
            invoice_id: one.invoice_id.clone(),
            via: "invoice number",
        }),
        [] => Err(LookupError::NotFound {
            what: w.to_string(),
            db: home.db_path(),
        }),
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|i| {
                    let name = book
                        .customers
                        .get(&i.customer_id)
                        .map_or("", |c| c.name.as_str());
                    format!(
                        "  {}  customer {} {name}  issued {}  {} {}",
                        i.invoice_id, i.customer_id, i.issue_date, i.amount, i.currency
                    )
                })
                .collect();
            Err(LookupError::SameNumber {
                number: w.to_string(),
                invoices: list,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::message_key;

    #[test]
    fn a_message_id_is_found_in_every_form_the_eml_shows() {
        for form in [
            "<msg-1a2b@proactive-collections>",
            "msg-1a2b@mail.example.com",
            "msg-1a2b",
            " <msg-1a2b> ",
        ] {
            assert_eq!(message_key(form), "msg-1a2b", "{form}");
        }
    }
}
