//! The shared test kit: book builders, the test environment, a recording
//! mail service, and the conformance suite every [`Ledger`] adapter must
//! pass (in-memory and SQLite in `collect-sqlite`'s tests, DynamoDB on the
//! local AWS endpoint in `collect-e2e`). `publish = false`, and only ever a
//! dev-dependency (`tests/tests/crate_graph.rs` checks it): no production
//! code links it, so a broken fixture stops its test with a panic, as in
//! any test. The seeded generator of whole books is `collect-generator`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use collect_delivery::ledger::{Ledger, StoredMessage};
use collect_engine::domain::{ActionRecord, Customer, Event, Invoice, Payment};

pub mod book;
pub mod conformance;
pub mod contact_holds;
pub mod folded_history;
pub mod letters;
pub mod mailer;
pub mod work;

/// A ledger under test, with the writes the ERP (ingest, events) makes.
#[allow(async_fn_in_trait)]
pub trait Harness {
    type L: Ledger;
    /// A name for failure messages (`memory`, `sqlite`, `dynamodb`).
    fn name(&self) -> &str;
    fn ledger(&self) -> &Self::L;
    async fn put_customer(&self, c: &Customer);
    async fn put_invoice(&self, i: &Invoice);
    async fn put_payment(&self, p: &Payment);
    async fn put_event(&self, e: &Event);
    /// Every action recorded, in any order.
    async fn actions(&self) -> Vec<ActionRecord>;
    /// Every message recorded, in any order.
    async fn messages(&self) -> Vec<StoredMessage>;
}
