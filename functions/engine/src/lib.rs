//! The collections engine, pure: what is decided, never how it is stored or
//! sent. No I/O crate is linked here (no SQLite, no AWS SDK, no model
//! library, no async runtime); every decision takes "today" as an argument.
//!
//! - `ids`: the typed ids of the audit record (action, invoice, customer,
//!   message);
//! - `domain`: customers, invoices, payments, events and recorded actions;
//! - `contact`: contact holds, an email address held from mail until a
//!   person fixes it (hard bounce, complaint, refused, invalid);
//! - `book`: what is known about each invoice on a given day (as-of facts);
//! - `history`: a customer's settled, wholly past invoices folded into one
//!   aggregate (what the payment-history facts read), and the fold rule;
//! - `ladder`: the end of the ladder — written off, placed with an agency or
//!   kept working: when dunning stops, and which invoices wait for that
//!   decision;
//! - `sweep`: the pure daily decision over a book, producing actions and
//!   the messages that carry them;
//! - `effect`: outcomes matched to actions, KPIs, experiments and their uplift;
//! - `ingest`: the data contract's CSV files and JSON events in, the rules
//!   every value is checked against, bad rows kept with their reasons.

pub mod book;
pub mod contact;
pub mod domain;
pub mod effect;
pub mod history;
pub mod ids;
pub mod ingest;
pub mod ladder;
pub mod sweep;
