//! The collections engine.
//!
//! - `domain`: customers, invoices, payments, events and recorded actions;
//! - `ids`: the typed ids of the audit record (action, invoice, customer,
//!   message);
//! - `ingest`: the data contract's CSV and JSON events in, bad rows kept;
//! - `message`: templates, pay links, RFC 5322 messages and the mail port;
//! - `book`: what is known about each invoice on a given day (as-of facts);
//! - `sweep`: the pure daily decision over a book, producing actions;
//! - `ledger`: the port the sweep and delivery read and write (actions,
//!   messages, leases), with its in-memory and SQLite adapters (DynamoDB's
//!   is in `aws`);
//! - `delivery`: the one delivery protocol — plan, record, check again,
//!   send, reconcile — run by `collect run` and the sweep Lambda alike;
//! - `rehearsal`: a policy test case swept day by day through the
//!   production sweep and delivery, on a one-customer in-memory book;
//! - `effect`: outcomes matched to actions, KPIs, experiments and their uplift;
//! - `store`: the book's records on SQLite (ingest, queries of the CLI);
//! - `testkit`: builders, a recording mail service and the conformance
//!   suite every ledger adapter runs (tests only);
//! - `aws`: the policy bundle (always) and the DynamoDB, S3, SES v2 and SQS
//!   adapters (feature `aws`).

pub mod aws;
pub mod book;
pub mod delivery;
pub mod domain;
pub mod effect;
pub mod ids;
pub mod ingest;
pub mod ledger;
pub mod message;
pub mod model;
pub mod rehearsal;
pub mod revision;
#[cfg(feature = "sqlite")]
pub mod store;
pub mod sweep;
pub mod testkit;
