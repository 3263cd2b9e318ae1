//! The local adapters: the book of receivables and the [`Ledger`] in one
//! SQLite file (the home's `collect.db`).
//!
//! - `store`: the connection, the schema and its upgrades, ingest's writes
//!   and the queries of the `collect` commands;
//! - `ledger`: [`SqliteStore`] as the ledger port of the delivery protocol;
//! - `rows`: how an action is stored as a row of columns (schema 3), with
//!   the routine lines of its audit trail;
//! - `schema`: the tables and the upgrade of a home of an earlier release;
//! - `codec`, `error`: JSON bodies; what the adapters fail with.
//!
//! The modules point one way: `ledger` → `store` → `schema` → `rows` →
//! `codec` → `error`.
//!
//! [`Ledger`]: collect_delivery::ledger::Ledger
//! [`SqliteStore`]: store::SqliteStore

mod codec;
mod error;
pub mod ledger;
pub(crate) mod rows;
mod schema;
pub mod store;
