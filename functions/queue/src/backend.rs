//! The work queue's ports on AWS: the DynamoDB ledger, the policy bundles
//! and risk model in S3, and the sweeper previews are composed with (the
//! policy, templates and pay links the sweep worker sends with), loaded
//! once per container as the worker loads them.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use collect_aws::artifacts::Artifacts;
use collect_aws::dynamo::Dynamo;
use collect_aws::sweep::SweepService;
use collect_delivery::delivery::{Sender, Sweeper};
use collect_delivery::explain::ExplainScorer;
use collect_delivery::message::{PayLinks, Templates};
use collect_delivery::work::{DeskSettings, NextSweep};
use collect_engine::sweep::{RiskScorer, SweepOptions};
use collect_web::{Backend, BackendError};
use policy_lang::Policy;

use crate::schedule;

/// What a sweep worker composes with, kept for previews.
struct Composer {
    policy: Policy,
    templates: Templates,
    pay_links: PayLinks,
    sender: Sender,
    options: SweepOptions,
    pay_link_days: u64,
    grace: chrono::Duration,
}

/// The scorer explanations show: the promoted model, or the prior late
/// rate before the first one (as the sweep scores).
struct SharedScorer(Arc<dyn RiskScorer + Send + Sync>);

impl ExplainScorer for SharedScorer {
    fn scorer(&self) -> &dyn RiskScorer {
        self.0.as_ref()
    }
}

/// The sweep's schedule, for "goes out with the next scheduled sweep, …".
#[derive(Debug, Clone)]
pub struct SweepSchedule {
    /// `SWEEP_SCHEDULE`: EventBridge Scheduler syntax.
    pub expression: String,
    /// `SCHEDULE_TIMEZONE`.
    pub timezone: String,
}

/// The backend of `collect-web`'s router on AWS.
pub struct AwsBackend {
    ledger: Dynamo,
    artifacts: Artifacts,
    scratch: PathBuf,
    scorer: Arc<dyn RiskScorer + Send + Sync>,
    composer: Composer,
    schedule: SweepSchedule,
    /// The desk's settings with the next sweep as of the last time it was
    /// computed: recomputed once that sweep has started; each request gets
    /// a copy.
    settings: Mutex<DeskSettings>,
    clock: fn() -> DateTime<Utc>,
}

impl AwsBackend {
    /// Loads what the sweep worker loads (the bundle in force, the model,
    /// the pay-link key) from the stack.
    pub async fn load(
        service: SweepService,
        artifacts: Artifacts,
        scratch: PathBuf,
        schedule: SweepSchedule,
        clock: fn() -> DateTime<Utc>,
    ) -> Result<AwsBackend, schedule::ScheduleError> {
        let SweepService {
            ledger,
            policy,
            templates,
            scorer,
            pay_links,
            sender,
            options,
            pay_link_days,
            grace,
            ..
        } = service;
        let settings = desk_settings(&schedule, clock())?;
        Ok(AwsBackend {
            ledger,
            artifacts,
            scratch,
            scorer: Arc::from(scorer),
            composer: Composer {
                policy,
                templates,
                pay_links,
                sender,
                options,
                pay_link_days,
                grace,
            },
            schedule,
            settings: Mutex::new(settings),
            clock,
        })
    }
}

/// The desk's settings at `now`: the next scheduled sweep. A schedule
/// whose next run is not computed (see [`schedule`]; the template's
/// `SweepSchedule` parameter refuses them) is an error at start.
pub fn desk_settings(
    schedule: &SweepSchedule,
    now: DateTime<Utc>,
) -> Result<DeskSettings, schedule::ScheduleError> {
    let at = schedule::next_run(&schedule.expression, &schedule.timezone, now)?;
    Ok(DeskSettings {
        next_sweep: NextSweep::Scheduled { at },
        ..DeskSettings::default()
    })
}

impl Backend for AwsBackend {
    type Ledger = Dynamo;
    type Bundles = Artifacts;

    fn ledger(&self) -> Result<Dynamo, BackendError> {
        Ok(self.ledger.clone())
    }

    fn bundles(&self) -> &Artifacts {
        &self.artifacts
    }

    fn bundle_scratch(&self) -> PathBuf {
        self.scratch.clone()
    }

    fn scorer(&self) -> Result<Box<dyn ExplainScorer>, BackendError> {
        Ok(Box::new(SharedScorer(self.scorer.clone())))
    }

    fn sweep_options(&self) -> Result<SweepOptions, BackendError> {
        Ok(self.composer.options.clone())
    }

    async fn with_sweeper<R>(&self, f: impl FnOnce(&Sweeper<'_>) -> R) -> Result<R, BackendError> {
        let c = &self.composer;
        let sweeper = Sweeper {
            policy: &c.policy,
            scorer: self.scorer.as_ref(),
            templates: &c.templates,
            pay_links: &c.pay_links,
            sender: c.sender.clone(),
            options: c.options.clone(),
            pay_link_days: c.pay_link_days,
            grace: c.grace,
            // Previews compose only; no lease is taken.
            lease_ttl: chrono::Duration::minutes(15),
        };
        Ok(f(&sweeper))
    }

    fn desk_settings(&self) -> DeskSettings {
        let now = (self.clock)();
        // A poisoned lock still holds the last value, the best known.
        let mut current = self
            .settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let passed = match current.next_sweep {
            NextSweep::Scheduled { at } => at <= now,
            NextSweep::Local => false,
        };
        if passed {
            // The schedule was computed at start; it has a next run.
            if let Ok(next) = desk_settings(&self.schedule, now) {
                *current = next;
            }
        }
        current.clone()
    }

    fn today(&self) -> NaiveDate {
        (self.clock)().date_naive()
    }
}
