//! A host for the router in tests and the benchmark: a SQLite file (a
//! connection per request, as `collect serve`), the testkit's policy and
//! templates for previews, a fixed "today", and a book of `n` customers
//! with a letter awaiting approval and a planned call each.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use collect_delivery::bundle_store::{BundleDir, bundle_of_policy_file};
use collect_delivery::delivery::Sweeper;
use collect_delivery::explain::ExplainScorer;
use collect_delivery::ledger::Ledger;
use collect_delivery::work::{DeskSettings, Person, Role};
use collect_engine::domain::{ActionId, ActionRecord, ActionStatus, Channel};
use collect_engine::sweep::{PriorLateRate, RiskScorer, SweepOptions};
use collect_sqlite::store::{SqliteStore, Store};
use collect_testkit::book::{Env, customer, day, invoice, policy_dir};
use collect_web::{Backend, BackendError, Config};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const TODAY: &str = "2027-04-12";

pub struct SqliteHost {
    pub db: PathBuf,
    pub bundles: BundleDir,
    pub scratch: PathBuf,
    pub settings: DeskSettings,
}

struct Prior;

impl ExplainScorer for Prior {
    fn scorer(&self) -> &dyn RiskScorer {
        &PriorLateRate
    }
}

impl Backend for SqliteHost {
    type Ledger = SqliteStore;
    type Bundles = BundleDir;

    fn ledger(&self) -> Result<SqliteStore, BackendError> {
        SqliteStore::open(&self.db).map_err(|e| BackendError::new("open the test database", e))
    }

    fn bundles(&self) -> &BundleDir {
        &self.bundles
    }

    fn bundle_scratch(&self) -> PathBuf {
        self.scratch.clone()
    }

    fn scorer(&self) -> Result<Box<dyn ExplainScorer>, BackendError> {
        Ok(Box::new(Prior))
    }

    fn sweep_options(&self) -> Result<SweepOptions, BackendError> {
        Ok(Env::new().sweeper().options)
    }

    async fn with_sweeper<R>(&self, f: impl FnOnce(&Sweeper<'_>) -> R) -> Result<R, BackendError> {
        let env = Env::new();
        Ok(f(&env.sweeper()))
    }

    fn desk_settings(&self) -> DeskSettings {
        self.settings.clone()
    }

    fn today(&self) -> NaiveDate {
        day(TODAY)
    }
}

fn record(n: usize, status: ActionStatus, channel: Channel, revision: &str) -> ActionRecord {
    let (label, target, offset) = match channel {
        Channel::Call => ("call collections", "collections", 15),
        _ => ("letter legal-notice", "legal-notice", 30),
    };
    ActionRecord {
        action_id: ActionId::new(format!("act-{n:06}-{target}").as_str()),
        invoice_id: format!("I{n}").as_str().into(),
        customer_id: format!("C{n}").as_str().into(),
        decided_on: day("2027-04-01") + chrono::Days::new((n % 12) as u64),
        scheduled_for: day(TODAY),
        status,
        channel,
        label: label.to_string(),
        target: target.to_string(),
        step_offset: offset,
        requires_approval: channel != Channel::Call,
        policy_name: "scenario".to_string(),
        policy_revision: "r".to_string(),
        git_revision: None,
        bundle_revision: Some(revision.to_string()),
        rule: "scenario.policy:1".to_string(),
        segment: if n % 3 == 0 { "high_risk" } else { "standard" }.to_string(),
        experiment: None,
        arm: None,
        risk: Some((n % 100) as f64 / 100.0),
        scorer: "prior-late-rate".to_string(),
        scorer_version: "1".to_string(),
        note: None,
        message_id: None,
        decided_by: None,
        decided_at: None,
        sent_on: None,
    }
}

/// A SQLite file in `dir` with `n` customers, each with one open invoice
/// past due, a legal letter awaiting approval (the odd ones) or a
/// planned call (the even ones): `n` open tasks.
pub fn host(dir: &Path, n: usize) -> SqliteHost {
    let db = dir.join("collect.db");
    let mut store = SqliteStore::open(&db).unwrap();
    let customers: Vec<_> = (0..n).map(|i| customer(&format!("C{i}"))).collect();
    let invoices: Vec<_> = (0..n)
        .map(|i| {
            invoice(
                &format!("I{i}"),
                &format!("C{i}"),
                "2027-03-11",
                &format!("{}.00", 100 + (i * 37) % 9000),
            )
        })
        .collect();
    store.upsert_customers(&customers).unwrap();
    store.upsert_invoices(&invoices).unwrap();
    // The repository's standard policy, kept as the bundle revision every
    // action records (approvals re-check its holds).
    let bundles = BundleDir::new(dir.join("bundles"));
    let (revision, bytes) =
        bundle_of_policy_file(&policy_dir().join("standard-net30.policy"), "test").unwrap();
    bundles.put(&revision, &bytes).unwrap();
    let records: Vec<ActionRecord> = (0..n)
        .map(|i| {
            if i % 2 == 1 {
                record(
                    i,
                    ActionStatus::AwaitingApproval,
                    Channel::Letter,
                    &revision,
                )
            } else {
                record(i, ActionStatus::Planned, Channel::Call, &revision)
            }
        })
        .collect();
    for chunk in records.chunks(1000) {
        pollster::block_on(store.record_actions(chunk, &HashMap::new(), day(TODAY))).unwrap();
    }
    SqliteHost {
        db,
        bundles,
        scratch: dir.join("scratch"),
        settings: DeskSettings::default(),
    }
}

pub fn local(role: Role) -> Config {
    Config::local(Person {
        id: "ana@example.com".to_string(),
        role,
    })
}
