//! Replaying a period on a copy of the home's state, sending nothing:
//! every day's sweep as `collect run` would make it, the actions recorded
//! in the copy so ladders progress. `collect simulate` summarises one
//! replay; `collect diff` compares the replays of two policies
//! ([`differences`]).
//!
//! A replay starts from the home's state as it was before `--from`
//! ([`starting_state`]): actions first recorded on or after that day are
//! not in it, and those changed since are as they were the day before.
//! On a home with history the period's recorded steps are then decided
//! again by the policy replayed, not found already taken, and two
//! policies are compared from the same start.

use crate::home::{Home, HomeError};
use crate::policy_load::{LoadError, load_policy};
use crate::runtime::Runtime;
use crate::scorer::{ScorerError, scorer};
use chrono::NaiveDate;
use collect_delivery::delivery::RunError;
use collect_delivery::mailer::LocalMailer;
use collect_engine::domain::ActionStatus;
use collect_sqlite::store::{SqliteStore, StoreError};
use std::collections::BTreeMap;
use std::path::Path;

/// A period that cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("--to {to} is before --from {from}")]
    Backwards { from: NaiveDate, to: NaiveDate },
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Scorer(#[from] ScorerError),
    #[error(transparent)]
    Run(#[from] RunError),
}

/// One day's actions in a simulation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SimAction {
    pub date: NaiveDate,
    pub invoice_id: String,
    pub customer_id: String,
    pub label: String,
    pub status: String,
    pub segment: String,
    pub step: String,
    pub channel: String,
}

/// Replays every day in the range against an in-memory copy of the state
/// as it was before `from`, recording actions in the copy so ladders
/// progress, sending nothing.
pub fn replay(
    home: &Home,
    policy: &Path,
    from: NaiveDate,
    to: NaiveDate,
    progress: bool,
) -> Result<Vec<SimAction>, ReplayError> {
    if to < from {
        return Err(ReplayError::Backwards { from, to });
    }
    let start = starting_state(home, from)?;
    replay_from(home, &start, policy, from, to, progress)
}

/// The home's state as it was before `from`, in memory: what every replay
/// of a period starting on `from` starts from.
pub fn starting_state(home: &Home, from: NaiveDate) -> Result<SqliteStore, ReplayError> {
    let mut start = home.store()?.copy_in_memory()?;
    start.rewind_before(from)?;
    Ok(start)
}

/// [`replay`] from a starting state ([`starting_state`]), left unchanged.
pub fn replay_from(
    home: &Home,
    start: &SqliteStore,
    policy: &Path,
    from: NaiveDate,
    to: NaiveDate,
    progress: bool,
) -> Result<Vec<SimAction>, ReplayError> {
    if to < from {
        return Err(ReplayError::Backwards { from, to });
    }
    let loaded = load_policy(policy)?;
    let store = start.copy_in_memory()?;
    let pay_links = home.pay_links()?;
    let scorer = scorer(home)?;
    let rt = Runtime::for_home(
        home,
        &loaded,
        scorer.as_dyn(),
        LocalMailer::Null,
        &pay_links,
        None,
    )?;
    let days: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
    let bar = if progress && days.len() > 14 {
        let bar = indicatif::ProgressBar::new(days.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} days")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message("simulating");
        Some(bar)
    } else {
        None
    };
    let mut out = Vec::new();
    for day in days {
        let report = rt.run_day(&store, day, false)?;
        for r in &report.plan.records {
            out.push(SimAction {
                date: day,
                invoice_id: r.invoice_id.to_string(),
                customer_id: r.customer_id.to_string(),
                label: r.label.clone(),
                status: match r.status {
                    ActionStatus::Planned if r.message_id.is_some() => "sent".to_string(),
                    s => s.as_str().to_string(),
                },
                segment: r.segment.clone(),
                step: policy_lang::labels::offset_text(r.step_offset),
                channel: r.channel.to_string(),
            });
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(out)
}

/// One invoice two policy revisions treat differently: the replayed
/// actions only one of them takes.
#[derive(Debug, Clone)]
pub struct Difference<'a> {
    pub invoice_id: String,
    pub customer_id: String,
    pub only_old: Vec<&'a SimAction>,
    pub only_new: Vec<&'a SimAction>,
}

/// `<date> <action> (<status>)`: how a replayed action is compared and shown.
pub fn line_key(x: &SimAction) -> String {
    format!("{} {} ({})", x.date, x.label, x.status)
}

/// The invoices whose replayed actions differ, in invoice order (for every
/// format of `collect diff`).
pub fn differences<'a>(old: &'a [SimAction], new: &'a [SimAction]) -> Vec<Difference<'a>> {
    type Side<'a> = Vec<(String, &'a SimAction)>;
    let mut by_invoice: BTreeMap<&str, (&str, Side<'a>, Side<'a>)> = BTreeMap::new();
    for x in old {
        by_invoice
            .entry(&x.invoice_id)
            .or_insert_with(|| (&x.customer_id, Vec::new(), Vec::new()))
            .1
            .push((line_key(x), x));
    }
    for x in new {
        by_invoice
            .entry(&x.invoice_id)
            .or_insert_with(|| (&x.customer_id, Vec::new(), Vec::new()))
            .2
            .push((line_key(x), x));
    }
    let has = |side: &Side<'_>, k: &str| side.iter().any(|(key, _)| key == k);
    by_invoice
        .into_iter()
        .filter(|(_, (_, o, n))| {
            o.len() != n.len() || o.iter().zip(n).any(|((a, _), (b, _))| a != b)
        })
        .map(|(id, (customer, o, n))| Difference {
            invoice_id: id.to_string(),
            customer_id: customer.to_string(),
            only_old: o
                .iter()
                .filter(|(k, _)| !has(&n, k))
                .map(|(_, x)| *x)
                .collect(),
            only_new: n
                .iter()
                .filter(|(k, _)| !has(&o, k))
                .map(|(_, x)| *x)
                .collect(),
        })
        .collect()
}
