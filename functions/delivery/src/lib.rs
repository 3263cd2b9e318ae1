//! Delivery: how a decided step becomes a message that went out exactly
//! once, whatever stores the state and whatever carries the mail.
//!
//! - `ledger`: the [`ledger::Ledger`] port (actions, messages, leases) and
//!   its in-memory adapter; SQLite's is in `collect-sqlite`, DynamoDB's in
//!   `collect-aws`;
//! - `mailer`: the [`mailer::Mailer`] port, the local outbox (`.eml` files)
//!   and the null mailer of simulations; SES's is in `collect-aws`;
//! - `message`: templates, pay links, money and dates in the customer's
//!   language, the printable letter and RFC 5322 messages;
//! - `delivery`: the one delivery protocol — plan, record, check again,
//!   send, reconcile — run by `collect run` and the sweep Lambda alike;
//! - `rehearsal`: a policy test case swept day by day through the
//!   production sweep and delivery, on a one-customer in-memory book;
//! - `bundle`, `revision`: the policy bundle (manifest, tar, verification)
//!   and the bundle revision recorded on every action;
//! - `bundle_store`: every bundle revision a runtime ran under, kept by its
//!   revision (the port, and the folder of a local home);
//! - `explain`: the explanation of a recorded decision — the day replayed
//!   under the revision in force on the state before that day's actions,
//!   matched with the record — one model for the CLI and a web page;
//! - `work`: the work queue of the collections team (the desk): open work
//!   from the ledger's index, a customer's context, a person's acts with
//!   their role checked, the letter preview.

pub mod bundle;
pub mod bundle_store;
pub mod delivery;
pub mod explain;
pub mod ledger;
pub mod mailer;
pub mod message;
pub mod rehearsal;
pub mod revision;
pub mod work;
