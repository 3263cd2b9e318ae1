//! The local runtime: the one delivery protocol of `collect_delivery::delivery`
//! on the home's SQLite ledger and a local mail service (the outbox, or
//! nothing for simulations). The lease, the grace period and the `Date:`
//! of messages use the wall clock (a simulation's own clock, see
//! [`Runtime::simulated`]); no decision does (they depend on `--date` alone).

use crate::home::{self, Home, HomeError};
use crate::policy_load::Loaded;
use chrono::{NaiveDate, NaiveTime, Utc};
use collect_delivery::delivery::{RunError, RunReport, RunRequest, Sweeper};
use collect_delivery::ledger::{LeaseHolder, LeaseOutcome, Ledger, Scope};
use collect_delivery::mailer::LocalMailer;
use collect_delivery::message::PayLinks;
use collect_engine::sweep::RiskScorer;
use collect_sqlite::store::{SqliteStore, StoreError};
use std::time::Duration;

/// A sweeper and its mail service.
pub struct Runtime<'a> {
    pub sweeper: Sweeper<'a>,
    pub mailer: LocalMailer<'a>,
    /// How many action records a run's report keeps (see
    /// [`RunRequest::keep_records`]): all for simulations and the demo,
    /// which read them; a bounded number for `collect run`.
    pub keep_records: usize,
    /// A simulation (`collect demo`): the run's clock is the simulated
    /// day at the sweep's send time (`send_time_utc`), so the messages'
    /// `Date:` is the day they were sent in the simulation, the same on
    /// every run, never the wall clock of the machine playing it.
    pub simulated: bool,
}

/// How long `--wait` sleeps between two tries of a busy home.
const WAIT_STEP: Duration = Duration::from_secs(2);

/// The `meta` key of the last day a sweep of the home completed.
const LAST_SWEPT: &str = "last_swept_day";

/// The last day a (not dry) sweep of this home completed, if any.
pub fn last_swept_day(store: &SqliteStore) -> Result<Option<NaiveDate>, StoreError> {
    Ok(store.meta(LAST_SWEPT)?.and_then(|d| d.parse().ok()))
}

/// Records that the sweep of `day` completed; the record only moves
/// forward (a backfilled earlier day leaves it where it was).
fn record_swept(store: &SqliteStore, day: NaiveDate) -> Result<(), StoreError> {
    if last_swept_day(store)?.is_none_or(|last| last < day) {
        store.set_meta(LAST_SWEPT, &day.to_string())?;
    }
    Ok(())
}

impl<'a> Runtime<'a> {
    /// The runtime of `home` for a loaded policy: the home's sender,
    /// sending times (`at`: `--at HH:MM`) and pay-link days, the policy's
    /// revisions recorded on every action, and every record kept.
    pub fn for_home(
        home: &Home,
        loaded: &'a Loaded,
        scorer: &'a dyn RiskScorer,
        mailer: LocalMailer<'a>,
        pay_links: &'a PayLinks,
        at: Option<NaiveTime>,
    ) -> Result<Runtime<'a>, HomeError> {
        let mut options = home.sweep_options(loaded.revision.clone(), at)?;
        options.bundle_revision = loaded.bundle.clone();
        Ok(Runtime {
            sweeper: Sweeper {
                policy: &loaded.policy,
                scorer,
                templates: &loaded.templates,
                pay_links,
                sender: home.sender(),
                options,
                pay_link_days: home.settings.pay_link_days,
                grace: home::GRACE,
                lease_ttl: home::LEASE_TTL,
            },
            mailer,
            keep_records: usize::MAX,
            simulated: false,
        })
    }
}

impl Runtime<'_> {
    /// One day's sweep of the whole home; with `dry_run` nothing is
    /// recorded or sent. A completed sweep is remembered as the home's
    /// last swept day (see [`last_swept_day`]).
    pub fn run_day(
        &self,
        store: &SqliteStore,
        day: NaiveDate,
        dry_run: bool,
    ) -> Result<RunReport, RunError> {
        let simulated = day.and_time(self.sweeper.options.send_time_utc).and_utc();
        let is_simulated = self.simulated;
        let clock = move || {
            if is_simulated { simulated } else { Utc::now() }
        };
        let req = RunRequest {
            scope: Scope::All,
            day,
            dry_run,
            holder: LeaseHolder::this_process(Utc::now()),
            now: &clock,
            faults: None,
            keep_records: self.keep_records,
        };
        let report = self.sweeper.run_blocking(store, &self.mailer, &req)?;
        if !dry_run {
            record_swept(store, day).map_err(|e| RunError::Ledger(e.into()))?;
        }
        Ok(report)
    }

    /// [`Runtime::run_day`]; when another run holds the home, either says
    /// so (the error) or, with `wait`, waits for it to finish. A run of
    /// this machine whose process is gone (killed) is taken over at once.
    pub fn run_day_waiting(
        &self,
        store: &SqliteStore,
        day: NaiveDate,
        dry_run: bool,
        wait: bool,
    ) -> Result<RunReport, RunError> {
        let mut said = false;
        loop {
            match self.run_day(store, day, dry_run) {
                Err(RunError::Busy { lease, .. }) if is_dead(&lease.holder) => {
                    let me = LeaseHolder::this_process(Utc::now());
                    let taken = pollster::block_on(store.take_over_lease(
                        &lease,
                        &me,
                        Utc::now(),
                        self.sweeper.lease_ttl,
                    ))?;
                    if matches!(taken, LeaseOutcome::Taken(_)) {
                        eprintln!(
                            "the run of this home by process {} (since {}) stopped without finishing; this run finishes its work",
                            lease.holder.pid, lease.since
                        );
                        pollster::block_on(store.release_lease(&lease.name, &me))?;
                    }
                }
                Err(e @ RunError::Busy { .. }) if wait => {
                    if !said {
                        eprintln!("{e}; waiting for it to finish (--wait)");
                        said = true;
                    }
                    std::thread::sleep(WAIT_STEP);
                }
                other => return other,
            }
        }
    }
}

/// Whether a lease holder is a process of this machine that no longer
/// exists (Linux: no `/proc/PID`). Elsewhere nothing is known dead, and a
/// killed run's lease runs out by itself.
fn is_dead(holder: &LeaseHolder) -> bool {
    let here = LeaseHolder::this_process(Utc::now());
    cfg!(target_os = "linux")
        && holder.host == here.host
        && holder.pid != here.pid
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{}", holder.pid)).exists()
}
