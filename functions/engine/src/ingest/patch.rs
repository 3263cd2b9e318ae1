//! Partial updates: what an export or an event did not say keeps its
//! stored value.
//!
//! The rule of the data contract, in one place for the local store and for
//! DynamoDB:
//!
//! - a column absent from a CSV header, or a field absent from a JSON
//!   event, leaves the stored value unchanged;
//! - an empty cell (or JSON `null`) in an optional column clears the stored
//!   value (`language` and `timezone` go back to `en` and `UTC`, tags to
//!   none);
//! - the flags `do_not_contact` and `disputed` change only on an explicit
//!   `true` or `false`: absent, empty or `null` keeps the stored flag, so an
//!   export that omits `do_not_contact` (or leaves it blank) never clears
//!   it;
//! - required values (ids, name, email, dates, amount, currency) are always
//!   given, so they always replace the stored ones.
//!
//! A record not stored yet takes the defaults for what was not given
//! (`en`, `UTC`, no tags, flags `false`).
//!
//! **Order.** A customer or invoice may carry when the ERP last changed it
//! (`updated_at`). A record older than the one stored never overwrites it
//! ([`Patch::is_older_than`]): exports and events may arrive out of order
//! (a retried event, an old export loaded late). A record without
//! `updated_at` is applied as it comes (the last one written wins, as
//! before the column existed) and clears the stored `updated_at`: the time
//! no longer describes the stored record.

use crate::domain::{Customer, Invoice};
use chrono::{DateTime, Utc};

/// A record as its source gave it, and the fields the source did not give,
/// which keep their stored value when the record is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch<T> {
    /// The record with defaults in the fields not given: what is stored
    /// when there is no stored record yet.
    pub record: T,
    /// The fields (by their column name) that keep the stored value.
    pub kept: Vec<&'static str>,
    /// When the ERP last changed the record (`updated_at`), if it said.
    pub updated_at: Option<DateTime<Utc>>,
}

/// A record whose fields can be taken, by column name, from a stored one.
pub trait Merge: Clone {
    /// `self` with the fields named in `kept` taken from `stored`.
    fn merge(self, stored: &Self, kept: &[&'static str]) -> Self;
}

impl<T: Merge> Patch<T> {
    /// A patch that gives every field (a full replacement).
    pub fn full(record: T) -> Patch<T> {
        Patch {
            record,
            kept: Vec::new(),
            updated_at: None,
        }
    }

    /// Whether this record is older than the stored one, whose `updated_at`
    /// is `stored`: then it must not be written. Only when both say when
    /// they changed; the same time is not older (a re-delivery applies
    /// again and changes nothing).
    pub fn is_older_than(&self, stored: Option<DateTime<Utc>>) -> bool {
        matches!((self.updated_at, stored), (Some(mine), Some(stored)) if mine < stored)
    }

    /// The record to store, given what is stored now.
    pub fn apply(&self, stored: Option<&T>) -> T {
        match stored {
            Some(stored) if !self.kept.is_empty() => self.record.clone().merge(stored, &self.kept),
            _ => self.record.clone(),
        }
    }
}

/// Columns of `customers.csv` that may be left out (every other column is
/// required and therefore always given).
pub(super) const CUSTOMER_KEEPABLE: [&str; 15] = [
    "phone",
    "language",
    "timezone",
    "country",
    "industry",
    "annual_revenue",
    "credit_score",
    "credit_limit",
    "tags",
    "do_not_contact",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "region",
];

/// Columns of `invoices.csv` that may be left out.
pub(super) const INVOICE_KEEPABLE: [&str; 2] = ["disputed", "dispute_opened_on"];

impl Merge for Customer {
    fn merge(mut self, stored: &Customer, kept: &[&'static str]) -> Customer {
        for &field in kept {
            match field {
                "phone" => self.phone.clone_from(&stored.phone),
                "language" => self.language.clone_from(&stored.language),
                "timezone" => self.timezone.clone_from(&stored.timezone),
                "country" => self.country.clone_from(&stored.country),
                "industry" => self.industry.clone_from(&stored.industry),
                "annual_revenue" => self.annual_revenue = stored.annual_revenue,
                "credit_score" => self.credit_score = stored.credit_score,
                "credit_limit" => self.credit_limit = stored.credit_limit,
                "tags" => self.tags.clone_from(&stored.tags),
                "do_not_contact" => self.do_not_contact = stored.do_not_contact,
                "address_line1" => self.address.line1.clone_from(&stored.address.line1),
                "address_line2" => self.address.line2.clone_from(&stored.address.line2),
                "postal_code" => self
                    .address
                    .postal_code
                    .clone_from(&stored.address.postal_code),
                "city" => self.address.city.clone_from(&stored.address.city),
                "region" => self.address.region.clone_from(&stored.address.region),
                _ => {}
            }
        }
        self
    }
}

impl Merge for Invoice {
    fn merge(mut self, stored: &Invoice, kept: &[&'static str]) -> Invoice {
        for &field in kept {
            match field {
                "disputed" => self.disputed = stored.disputed,
                "dispute_opened_on" => self.dispute_opened_on = stored.dispute_opened_on,
                _ => {}
            }
        }
        self
    }
}
