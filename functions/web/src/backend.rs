//! What a host gives the router: how to reach the ledger for one request,
//! the kept bundle revisions (explanations and the policy of a preview),
//! the risk scorer and sweep options explanations replay with, the desk's
//! settings and "today". `collect serve` implements it on the SQLite home;
//! the queue Lambda on DynamoDB and S3.
//!
//! Every method that touches a port runs on the blocking thread that
//! serves the request (the `Ledger` futures are not `Send`): the router
//! calls them inside `Handle::block_on` on a `spawn_blocking` thread.

use chrono::NaiveDate;
use collect_delivery::bundle_store::BundleStore;
use collect_delivery::delivery::Sweeper;
use collect_delivery::explain::ExplainScorer;
use collect_delivery::ledger::Ledger;
use collect_delivery::work::DeskSettings;
use collect_engine::sweep::SweepOptions;
use std::path::PathBuf;

/// The host could not give what a page needs (its database, its bundles,
/// its templates). The message is for the person who runs the host; the
/// page says that the work queue cannot reach its data.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct BackendError {
    /// What was being reached, e.g. "open the home's database".
    pub what: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl BackendError {
    pub fn new(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        BackendError {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// How the router reaches the host's ports. One value serves every request
/// (it is shared behind an `Arc`); what is not `Sync` (a SQLite connection)
/// is opened per request by [`Backend::ledger`].
#[allow(async_fn_in_trait)]
pub trait Backend: Send + Sync + 'static {
    type Ledger: Ledger;
    type Bundles: BundleStore;

    /// The ledger for one request (a new SQLite connection locally; a
    /// clone of the DynamoDB client on AWS).
    fn ledger(&self) -> Result<Self::Ledger, BackendError>;

    /// The kept bundle revisions: explanations replay a day with the
    /// revision its actions recorded, and approvals re-check the holds of
    /// the revision the letter was decided under.
    fn bundles(&self) -> &Self::Bundles;

    /// Where a bundle revision's files are unpacked to be read.
    fn bundle_scratch(&self) -> PathBuf;

    /// The scorer explanations show (the home's model, or the prior late rate).
    fn scorer(&self) -> Result<Box<dyn ExplainScorer>, BackendError>;

    /// The sweep options of the deployment (caps, quiet hours …).
    fn sweep_options(&self) -> Result<SweepOptions, BackendError>;

    /// Runs `f` with the sweeper the next sweep would compose messages with
    /// (policy, templates, pay links of the revision in force): a letter's
    /// preview is exactly what would be sent.
    async fn with_sweeper<R>(&self, f: impl FnOnce(&Sweeper<'_>) -> R) -> Result<R, BackendError>;

    /// The desk's settings: when the next sweep runs (said after an
    /// approval), business days before calling again.
    fn desk_settings(&self) -> DeskSettings;

    /// Today, read from the clock by the host (the edge); nothing below
    /// reads the clock.
    fn today(&self) -> NaiveDate;
}
