//! The collections engine.
//!
//! - `domain`: customers, invoices, payments, events and recorded actions;
//! - `ingest`: the data contract's CSV and JSON events in, bad rows kept;
//! - `message`: templates, pay links, RFC 5322 messages and the mail port;
//! - `book`: what is known about each invoice on a given day (as-of facts);
//! - `sweep`: the pure daily decision over a book, producing actions;
//! - `store`: the state port and its SQLite adapter.

pub mod book;
pub mod domain;
pub mod ingest;
pub mod message;
pub mod runner;
pub mod store;
pub mod sweep;
