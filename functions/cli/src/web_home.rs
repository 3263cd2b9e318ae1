//! The work queue's [`Backend`] on a local home, for `collect serve`: a
//! SQLite connection per request (`SqliteStore` is not `Sync`), the home's
//! kept bundles for explanations and approval re-checks, the home's model
//! (or the prior late rate) for explanations, and the policy folder given
//! for previews (as `collect run` would compose the letter).

use crate::home::Home;
use crate::policy_load::load_policy;
use crate::runtime::Runtime;
use crate::scorer::scorer;
use chrono::NaiveDate;
use collect_delivery::bundle_store::BundleDir;
use collect_delivery::delivery::Sweeper;
use collect_delivery::explain::ExplainScorer;
use collect_delivery::mailer::LocalMailer;
use collect_delivery::work::DeskSettings;
use collect_engine::sweep::{self, SweepOptions};
use collect_sqlite::store::SqliteStore;
use collect_web::{Backend, BackendError};
use std::path::PathBuf;

pub struct HomeBackend {
    pub home: Home,
    pub bundles: BundleDir,
    /// The policy file whose templates compose previews.
    pub policy: PathBuf,
    pub settings: DeskSettings,
    /// A fixed "today" (`--date`), else the local clock's day.
    pub date: Option<NaiveDate>,
}

impl Backend for HomeBackend {
    type Ledger = SqliteStore;
    type Bundles = BundleDir;

    fn ledger(&self) -> Result<SqliteStore, BackendError> {
        self.home
            .store()
            .map_err(|e| BackendError::new("open the home's database", e))
    }

    fn bundles(&self) -> &BundleDir {
        &self.bundles
    }

    fn bundle_scratch(&self) -> PathBuf {
        self.home.bundle_scratch()
    }

    fn scorer(&self) -> Result<Box<dyn ExplainScorer>, BackendError> {
        scorer(&self.home)
            .map(|s| Box::new(s) as Box<dyn ExplainScorer>)
            .map_err(|e| BackendError::new("load the home's risk model", e))
    }

    fn sweep_options(&self) -> Result<SweepOptions, BackendError> {
        self.home
            .sweep_options(None, None)
            .map_err(|e| BackendError::new("read the home's settings", e))
    }

    async fn with_sweeper<R>(&self, f: impl FnOnce(&Sweeper<'_>) -> R) -> Result<R, BackendError> {
        let loaded = load_policy(&self.policy)
            .map_err(|e| BackendError::new(format!("load {}", self.policy.display()), e))?;
        let pay_links = self
            .home
            .pay_links()
            .map_err(|e| BackendError::new("read the pay-link key", e))?;
        let rt = Runtime::for_home(
            &self.home,
            &loaded,
            &sweep::PriorLateRate,
            LocalMailer::Null,
            &pay_links,
            None,
        )
        .map_err(|e| BackendError::new("read the home's settings", e))?;
        Ok(f(&rt.sweeper))
    }

    fn desk_settings(&self) -> DeskSettings {
        self.settings.clone()
    }

    fn today(&self) -> NaiveDate {
        // `collect serve` is the edge: the clock is read here, nowhere below.
        self.date
            .unwrap_or_else(|| chrono::Local::now().date_naive())
    }
}
