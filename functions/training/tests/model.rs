//! The risk model: leak-free features, the artifact's round trip and its
//! refusals, calibration, determinism, champion/challenger, and the
//! evaluation on IBM's public late-payment sample (a fast subset; the full
//! walk-forward is `bench/model_eval.sh`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chrono::{Days, NaiveDate};
use collect_engine::book::Book;
use collect_engine::domain::{
    ActionRecord, ActionStatus, Channel, Customer, Event, EventKind, Invoice, Payment,
};
use collect_engine::sweep::{RiskScorer, ScoreInput};
use collect_generator::{Mix, Spec, generate, rng};
use collect_model::artifact::{Estimator, Model};
use collect_model::dataset::{self, DatasetConfig, SplitConfig};
use collect_model::features::{self, FEATURES, FeatureSchema};
use collect_model::{ModelError, ModelScorer, promote};
use collect_training::ibm;
use collect_training::train::{ForestConfig, TrainConfig, TrainOutcome, train};
use rand::Rng as _;
use rust_decimal::Decimal;
use std::path::Path;
use std::sync::OnceLock;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn add(day: NaiveDate, n: i64) -> NaiveDate {
    if n >= 0 {
        day.checked_add_days(Days::new(n as u64)).unwrap()
    } else {
        day.checked_sub_days(Days::new((-n) as u64)).unwrap()
    }
}

fn action(id: &str, inv: &Invoice, sent_on: NaiveDate) -> ActionRecord {
    ActionRecord {
        action_id: id.into(),
        invoice_id: inv.invoice_id.as_str().into(),
        customer_id: inv.customer_id.as_str().into(),
        decided_on: sent_on,
        scheduled_for: sent_on,
        status: ActionStatus::Sent,
        channel: Channel::Email,
        label: "email friendly-reminder".into(),
        target: "friendly-reminder".into(),
        step_offset: -3,
        requires_approval: false,
        policy_name: "p".into(),
        policy_revision: "r".into(),
        git_revision: None,
        bundle_revision: None,
        rule: "p.policy:1".into(),
        segment: "standard".into(),
        experiment: None,
        arm: None,
        risk: None,
        scorer: "prior-late-rate".into(),
        scorer_version: "1".into(),
        note: None,
        message_id: Some(format!("msg-{id}").into()),
        decided_by: None,
        decided_at: None,
        sent_on: Some(sent_on),
    }
}

fn event(id: &str, inv: &Invoice, date: NaiveDate, kind: EventKind) -> Event {
    Event {
        event_id: id.to_string(),
        date,
        kind,
        invoice_id: Some(inv.invoice_id.clone()),
        action_id: None,
        message_id: None,
        by: None,
        reason: None,
    }
}

struct Records {
    customers: Vec<Customer>,
    invoices: Vec<Invoice>,
    payments: Vec<Payment>,
    events: Vec<Event>,
    actions: Vec<ActionRecord>,
}

impl Records {
    fn book(&self) -> Book {
        Book::new(
            self.customers.clone(),
            self.invoices.clone(),
            self.payments.clone(),
            self.events.clone(),
            self.actions.clone(),
        )
    }

    /// Only what was known at the end of `day`: later payments, events,
    /// actions and invoices removed, a dispute opened later forgotten.
    fn known_on(&self, day: NaiveDate) -> Book {
        let invoices: Vec<Invoice> = self
            .invoices
            .iter()
            .filter(|i| i.issue_date <= day)
            .map(|i| {
                let mut i = i.clone();
                if i.dispute_opened_on.is_some_and(|o| o > day) {
                    i.disputed = false;
                    i.dispute_opened_on = None;
                }
                i
            })
            .collect();
        let mut actions: Vec<ActionRecord> = Vec::new();
        for a in &self.actions {
            if a.decided_on <= day {
                let mut a = a.clone();
                if a.sent_on.is_some_and(|s| s > day) {
                    a.status = ActionStatus::Planned;
                    a.sent_on = None;
                }
                actions.push(a);
            }
        }
        Book::new(
            self.customers.clone(),
            invoices,
            self.payments
                .iter()
                .filter(|p| p.paid_on <= day)
                .cloned()
                .collect(),
            self.events
                .iter()
                .filter(|e| e.date <= day)
                .cloned()
                .collect(),
            actions,
        )
    }
}

const START: &str = "2024-01-01";

/// A book from the test kit's generator with a planted signal: each
/// customer pays as its payer type does (its history tells), and large
/// invoices are paid late more often whoever the customer, so a model that
/// sees both the history and the amount can beat the prior late rate. On
/// top, some invoices get reminders with opened and answered mail; the
/// generator adds disputes, promises and plans.
fn synthetic(seed: u64, customers: usize, days: i64) -> Records {
    let start = d(START);
    // One invoice every 6 to 20 days per customer, about.
    let per = (days / 13).max(1) as u32;
    let spec = Spec {
        seed,
        customers,
        issue_from: start,
        issue_days: days as u64,
        invoices: ((per * 2 / 3).max(1), per * 4 / 3 + 1),
        strategic_invoices: (per, per * 2),
        // No history before the window: a customer's first invoice has none.
        history: (0, 0),
        history_months: 0,
        // Mostly customers who pay on time but not always (a coin toss
        // per invoice): the signal is noisy by design.
        mix: Mix {
            payers: [10, 60, 12, 8, 5, 3, 2],
            plan: 0.05,
            large_late: Some((Decimal::from(2_500), 0.5)),
            ..Mix::default()
        },
    };
    // Everything that ever happens to the window's invoices.
    let all = generate(&spec).as_of(add(start, days + 400));
    let mut r = Records {
        customers: all.customers,
        invoices: all.invoices,
        payments: all.payments,
        events: all.events,
        actions: vec![],
    };
    // The invoice of a dispute says so, as the ERP's would.
    for e in &r.events {
        if let (EventKind::DisputeOpened, Some(id)) = (&e.kind, &e.invoice_id)
            && let Some(inv) = r.invoices.iter_mut().find(|i| &i.invoice_id == id)
        {
            inv.disputed = true;
            inv.dispute_opened_on = Some(e.date);
        }
    }
    let mut rng = rng(seed);
    let mut mail = Vec::new();
    for inv in &r.invoices {
        let roll: f64 = rng.random();
        if roll < 0.3 {
            let sent = add(inv.due_date, -3);
            let aid = format!("A-{}", inv.invoice_id);
            r.actions.push(action(&aid, inv, sent));
            mail.push(event(
                &format!("E1-{aid}"),
                inv,
                add(sent, 1),
                EventKind::MailOpened,
            ));
            if roll < 0.1 {
                mail.push(event(
                    &format!("E2-{aid}"),
                    inv,
                    add(sent, 2),
                    EventKind::MailReplied,
                ));
            }
        }
    }
    r.events.extend(mail);
    r
}

/// Small, quick settings: debug builds of smartcore are slow.
fn quick_config(seed: u64) -> TrainConfig {
    TrainConfig {
        seed,
        dataset: DatasetConfig {
            min_days_before_due: 10,
            max_days_before_due: 14,
        },
        split: SplitConfig::default(),
        lr_penalties: vec![0.01, 0.1],
        forest: ForestConfig {
            n_trees: 12,
            max_depth: Some(6),
            min_samples_leaf: 10,
            min_samples_split: 20,
            mtry: None,
        },
        refit: true,
    }
}

const AS_OF: &str = "2025-01-15";

fn trained() -> &'static (Vec<dataset::Row>, TrainOutcome) {
    static CELL: OnceLock<(Vec<dataset::Row>, TrainOutcome)> = OnceLock::new();
    CELL.get_or_init(|| {
        let book = synthetic(7, 60, 420).book();
        let rows = dataset::build(&book, d(AS_OF), &quick_config(42).dataset);
        let outcome = train(&rows, d(AS_OF), &quick_config(42)).unwrap();
        (rows, outcome)
    })
}

// ---------------------------------------------------------------- leakage

#[test]
fn features_for_a_day_ignore_everything_after_it() {
    let records = synthetic(3, 25, 300);
    let full = records.book();
    let mut checked = 0;
    for day in ["2024-03-10", "2024-05-02", "2024-07-19", "2024-09-30"].map(d) {
        let known = records.known_on(day);
        for inv in full.invoices.iter().filter(|i| full.is_open(i, day)) {
            let a = features::compute(&full, inv, day);
            let b = features::compute(&known, known.invoice(&inv.invoice_id).unwrap(), day);
            assert_eq!(
                a, b,
                "features of {} on {day} changed with later facts",
                inv.invoice_id
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} invoices checked");
}

#[test]
fn the_invoice_s_own_future_never_leaks() {
    let mut records = synthetic(5, 10, 200);
    let book = records.book();
    let inv = records
        .invoices
        .iter()
        .skip(5)
        .find(|i| book.is_open(i, add(i.due_date, -14)))
        .unwrap()
        .clone();
    let day = add(inv.due_date, -14);
    let before = features::compute(&records.book(), &inv, day);
    // Everything that happens to this invoice from the day on: paid the same
    // day, a dispute opened that day, a plan, a reminder sent and answered.
    records.payments.retain(|p| p.invoice_id != inv.invoice_id);
    records.payments.push(Payment {
        payment_id: "X".into(),
        invoice_id: inv.invoice_id.clone(),
        paid_on: add(day, 1),
        amount: inv.amount,
    });
    records
        .events
        .push(event("X1", &inv, day, EventKind::DisputeOpened));
    records
        .events
        .push(event("X2", &inv, add(day, 3), EventKind::MailReplied));
    records.actions.push(action("X3", &inv, day));
    let mut disputed = inv.clone();
    disputed.disputed = true;
    disputed.dispute_opened_on = Some(day);
    records.invoices.retain(|i| i.invoice_id != inv.invoice_id);
    records.invoices.push(disputed.clone());
    // And a later invoice of the same customer.
    let mut later = inv.clone();
    later.invoice_id = "LATER".into();
    later.issue_date = add(day, 1);
    later.due_date = add(day, 31);
    records.invoices.push(later);
    let after = features::compute(&records.book(), &disputed, day);
    assert_eq!(before, after);
}

#[test]
fn facts_before_the_day_do_count() {
    let records = synthetic(5, 10, 200);
    let book = records.book();
    let inv = &records.invoices[6];
    let day = add(inv.due_date, -10);
    let mut more = records.invoices.clone();
    let mut disputed = inv.clone();
    disputed.disputed = true;
    disputed.dispute_opened_on = Some(add(day, -2));
    more.retain(|i| i.invoice_id != inv.invoice_id);
    more.push(disputed.clone());
    let with_dispute = Book::new(
        records.customers.clone(),
        more,
        records.payments.clone(),
        records.events.clone(),
        records.actions.clone(),
    );
    let i = FEATURES
        .iter()
        .position(|f| f.name == "dispute_open")
        .unwrap();
    assert_eq!(features::compute(&book, inv, day)[i], Some(0.0));
    assert_eq!(
        features::compute(&with_dispute, &disputed, day)[i],
        Some(1.0)
    );
}

#[test]
fn training_rows_as_of_a_date_are_the_same_without_later_facts() {
    let records = synthetic(11, 20, 300);
    let as_of = d("2024-08-01");
    let config = DatasetConfig::default();
    let full = dataset::build(&records.book(), as_of, &config);
    let known = dataset::build(&records.known_on(as_of.pred_opt().unwrap()), as_of, &config);
    assert!(full.len() > 200, "{} rows", full.len());
    assert_eq!(full, known);
    assert!(full.iter().all(|r| r.day < as_of));
}

#[test]
fn missing_facts_are_flagged_not_zero() {
    let records = synthetic(13, 6, 120);
    let book = records.book();
    // The first customer with a credit limit, and one without.
    let limited = records
        .customers
        .iter()
        .find(|c| c.credit_limit.is_some())
        .unwrap();
    let unlimited = records
        .customers
        .iter()
        .find(|c| c.credit_limit.is_none())
        .unwrap();
    // A customer's first invoice: no payment history.
    let first = book
        .invoices_of(&limited.customer_id)
        .iter()
        .min_by_key(|i| i.issue_date)
        .unwrap();
    let day = add(first.issue_date, 1);
    let raw = features::compute(&book, first, day);
    let late_share = FEATURES
        .iter()
        .position(|f| f.name == "hist_late_share")
        .unwrap();
    assert_eq!(raw[late_share], None);
    let schema = FeatureSchema::current();
    let row = features::expand(&raw, &vec![0.42; FEATURES.len()]);
    let flag = schema
        .names
        .iter()
        .position(|n| n == "no_payment_history")
        .unwrap();
    assert_eq!(row[flag], 1.0);
    assert_eq!(row[late_share], 0.42, "the fill value, not zero");
    let util = schema
        .names
        .iter()
        .position(|n| n == "no_credit_limit")
        .unwrap();
    assert_eq!(row[util], 0.0);
    let other = book.invoices_of(&unlimited.customer_id).first().unwrap();
    let row = features::expand(
        &features::compute(&book, other, add(other.issue_date, 1)),
        &vec![0.0; FEATURES.len()],
    );
    assert_eq!(row[util], 1.0);
}

// ---------------------------------------------------------------- training

#[test]
fn the_split_is_by_time_and_keeps_an_invoice_together() {
    let (rows, outcome) = trained();
    let s = &outcome.split;
    let last_train = s.train.iter().map(|&i| rows[i].due_date).max().unwrap();
    let first_valid = s.valid.iter().map(|&i| rows[i].due_date).min().unwrap();
    let last_valid = s.valid.iter().map(|&i| rows[i].due_date).max().unwrap();
    let first_test = s.test.iter().map(|&i| rows[i].due_date).min().unwrap();
    assert!(last_train <= first_valid && last_valid <= first_test);
    let ids = |idx: &[usize]| -> std::collections::HashSet<String> {
        idx.iter().map(|&i| rows[i].invoice_id.clone()).collect()
    };
    assert!(ids(&s.train).is_disjoint(&ids(&s.test)));
    assert!(ids(&s.valid).is_disjoint(&ids(&s.test)));
    assert_eq!(s.train.len() + s.valid.len() + s.test.len(), rows.len());
}

#[test]
fn the_model_is_calibrated_and_beats_the_baseline_on_the_test_window() {
    let (_, outcome) = trained();
    let e = &outcome.model.content.evaluation;
    assert_eq!(e.evaluated_on, "test");
    let m = &e.model;
    let (pred, obs) = (m.mean_predicted.unwrap(), m.base_rate.unwrap());
    assert!(
        (pred - obs).abs() < 0.06,
        "mean predicted {pred:.3} vs observed {obs:.3}"
    );
    // The planted signal is noisy by design (each invoice is a coin toss
    // with its customer's and its amount's odds): the ceiling is modest.
    let (auc, base_auc) = (m.roc_auc.unwrap(), e.baseline.roc_auc.unwrap());
    assert!(
        auc > 0.65 && auc > base_auc + 0.04,
        "ROC AUC {auc} vs baseline {base_auc}"
    );
    assert!(
        e.baseline_beaten,
        "model {:?} / {:?} vs baseline {:?} / {:?}",
        m.roc_auc, m.brier, e.baseline.roc_auc, e.baseline.brier
    );
    // The calibration table covers every test row.
    assert_eq!(m.calibration.iter().map(|b| b.count).sum::<usize>(), m.rows);
    for c in &outcome.candidates {
        assert!(c.content.evaluation.model.roc_auc.unwrap() > 0.65);
    }
}

#[test]
fn same_data_and_seed_give_the_same_model_id() {
    let (rows, outcome) = trained();
    let again = train(rows, d(AS_OF), &quick_config(42)).unwrap();
    assert_eq!(outcome.model.model_id, again.model.model_id);
    for (a, b) in outcome.candidates.iter().zip(&again.candidates) {
        assert_eq!(a.model_id, b.model_id);
    }
    // Another seed grows another forest.
    let other = train(rows, d(AS_OF), &quick_config(43)).unwrap();
    let forest = |o: &TrainOutcome| {
        o.candidates
            .iter()
            .find(|m| matches!(m.content.estimator, Estimator::RandomForest { .. }))
            .map(|m| m.model_id.clone())
    };
    assert_ne!(forest(outcome), forest(&other));
}

#[test]
fn too_little_data_is_a_clear_error() {
    let (rows, _) = trained();
    let on_time: Vec<dataset::Row> = rows.iter().filter(|r| !r.late).cloned().collect();
    let err = train(&on_time, d(AS_OF), &quick_config(1)).unwrap_err();
    assert!(matches!(err, ModelError::NotEnoughData(_)), "{err}");
    assert!(err.to_string().contains("both outcomes"), "{err}");
}

// ---------------------------------------------------------------- artifact

/// A fresh folder, removed when the returned guard is dropped.
fn tmp(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("collect-model-{name}-"))
        .tempdir()
        .unwrap()
}

#[test]
fn the_artifact_round_trips() {
    let (rows, outcome) = trained();
    let tmp_dir = tmp("roundtrip");
    let dir = tmp_dir.path();
    for model in &outcome.candidates {
        let path = dir.join(format!("{}.json", model.model_id));
        model.save(&path).unwrap();
        let loaded = Model::load(&path).unwrap();
        assert_eq!(&loaded, model);
        assert_eq!(loaded.model_id.len(), 64);
        for r in rows.iter().take(200) {
            assert_eq!(loaded.predict(&r.raw), model.predict(&r.raw));
        }
    }
}

fn json_of(model: &Model) -> serde_json::Value {
    serde_json::from_str(&model.to_json().unwrap()).unwrap()
}

#[test]
fn a_model_for_another_feature_schema_is_refused() {
    let (_, outcome) = trained();
    let mut v = json_of(&outcome.model);
    let names = v["content"]["schema"]["names"].as_array_mut().unwrap();
    names.retain(|n| n != "credit_score");
    names.push("paperless".into());
    let err = Model::from_json(&v.to_string()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ModelError::SchemaMismatch(_)), "{msg}");
    assert!(
        msg.contains("credit_score") && msg.contains("paperless"),
        "{msg}"
    );

    let mut v = json_of(&outcome.model);
    v["content"]["schema"]["version"] = 999.into();
    let msg = Model::from_json(&v.to_string()).unwrap_err().to_string();
    assert!(
        msg.contains("v999") && msg.contains(&format!("v{}", features::SCHEMA_VERSION)),
        "{msg}"
    );

    let mut v = json_of(&outcome.model);
    v["format_version"] = 2.into();
    let err = Model::from_json(&v.to_string()).unwrap_err();
    assert!(
        matches!(err, ModelError::FormatVersion { found: 2, .. }),
        "{err}"
    );

    let mut v = json_of(&outcome.model);
    v["format"] = "something-else".into();
    assert!(
        Model::from_json(&v.to_string())
            .unwrap_err()
            .to_string()
            .contains("not a model file")
    );
}

#[test]
fn a_model_changed_after_training_is_refused() {
    let (_, outcome) = trained();
    let mut v = json_of(&outcome.model);
    v["content"]["calibration"]["b"] = 3.0.into();
    let msg = Model::from_json(&v.to_string()).unwrap_err().to_string();
    assert!(msg.contains("does not match the model id"), "{msg}");
}

#[test]
fn loading_names_the_file() {
    let tmp_dir = tmp("badfile");
    let dir = tmp_dir.path();
    let path = dir.join("current.json");
    std::fs::write(
        &path,
        "{\"format\": \"collect-risk-model\", \"format_version\": 7}",
    )
    .unwrap();
    let msg = Model::load(&path).unwrap_err().to_string();
    assert!(msg.contains("current.json") && msg.contains("v7"), "{msg}");
}

// ---------------------------------------------------------------- champion/challenger

#[test]
fn a_challenger_is_promoted_only_when_at_least_as_good() {
    let (rows, outcome) = trained();
    let test: Vec<dataset::Row> = outcome.evaluation_rows(rows).into_iter().cloned().collect();
    let good = &outcome.model;
    let first = promote(None, good, &test);
    assert!(first.promote, "{}", first.reason);

    // A worse model: the same weights, badly calibrated.
    let mut content = good.content.clone();
    content.calibration.b += 1.5;
    let worse = Model::new(content).unwrap();
    let d = promote(Some(good), &worse, &test);
    assert!(!d.promote, "{}", d.reason);
    assert!(d.reason.contains("current model stays"), "{}", d.reason);
    assert_eq!(d.champion_id.as_deref(), Some(good.model_id.as_str()));
    assert!(d.challenger_log_loss.unwrap() > d.champion_log_loss.unwrap());

    let d = promote(Some(&worse), good, &test);
    assert!(d.promote, "{}", d.reason);
    assert_eq!(d.metric, "log_loss");
    assert_eq!(d.test_rows, test.len());

    let same = promote(Some(good), good, &test);
    assert!(!same.promote);

    // The decision is stored with the model and keeps its id.
    let mut stored = good.clone();
    stored.decision = Some(d);
    let back = Model::from_json(&stored.to_json().unwrap()).unwrap();
    assert_eq!(back, stored);
    assert_eq!(back.model_id, good.model_id);
}

// ---------------------------------------------------------------- the scorer

#[test]
fn the_model_scores_through_the_sweep_s_port_and_explains_itself() {
    let (_, outcome) = trained();
    let book = synthetic(7, 60, 420).book();
    let day = d("2025-02-01");
    for model in &outcome.candidates {
        let scorer = ModelScorer::new(model.clone());
        assert_eq!(scorer.name(), "risk-model");
        assert_eq!(scorer.version(), model.model_id);
        let mut scored = 0;
        for inv in book
            .invoices
            .iter()
            .filter(|i| book.is_open(i, day))
            .take(40)
        {
            let stats = book.customer_stats(&inv.customer_id, day);
            let input = ScoreInput {
                book: &book,
                invoice: inv,
                day,
                stats: &stats,
            };
            let p = scorer.score(&input).unwrap();
            assert!((0.0..=1.0).contains(&p));
            // The compiled fast path gives the reference probability.
            let raw = features::compute(&book, inv, day);
            assert!((p - model.predict(&raw)).abs() < 1e-9);
            let why = scorer.explain(&input);
            assert!(!why.is_empty());
            assert!(why.windows(2).all(|w| w[0].1.abs() >= w[1].1.abs()));
            if let Estimator::LogisticRegression { intercept, .. } = model.content.estimator {
                // Contributions add up to the logit before calibration.
                let x = model.row(&raw);
                let logit = model
                    .content
                    .estimator
                    .raw_score(&x, &model.content.standardization);
                let sum: f64 = why.iter().map(|(_, c)| c).sum::<f64>() + intercept;
                assert!((sum - logit).abs() < 1e-9, "{sum} vs {logit}");
            }
            scored += 1;
        }
        assert!(scored > 10);
    }
}

// ---------------------------------------------------------------- IBM sample

fn ibm_path() -> Option<std::path::PathBuf> {
    // Relative to the repository root; tests run in functions/training.
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(ibm::DEFAULT_PATH);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: IBM's late-payment sample is not at {} (expected in ../shared/data)",
            path.display()
        );
        None
    }
}

#[test]
fn ibm_sample_converts_to_the_data_contract() {
    let Some(path) = ibm_path() else { return };
    let data = ibm::read(&path).unwrap();
    assert_eq!(data.invoices.len(), 2466);
    assert_eq!(data.customers.len(), 100);
    assert_eq!(data.payments.len(), 2466);
    // `Disputed` is not carried over (its date is unknown).
    assert!(
        data.invoices
            .iter()
            .all(|i| !i.disputed && i.dispute_opened_on.is_none())
    );
    let first = data
        .invoices
        .iter()
        .find(|i| i.invoice_id == "0000611365")
        .unwrap();
    assert_eq!(first.customer_id, "0379-NEVHP");
    assert_eq!(first.issue_date, d("2013-01-02"));
    assert_eq!(first.due_date, d("2013-02-01"));
    assert_eq!(first.amount, "55.94".parse::<Decimal>().unwrap());
    let book = data.book();
    assert_eq!(book.settled_on(first), Some(d("2013-01-15")));

    let tmp_dir = tmp("ibm-contract");
    let dir = tmp_dir.path();
    data.write_contract(dir).unwrap();
    let invoices = collect_engine::ingest::invoices(
        std::fs::File::open(dir.join("invoices.csv")).unwrap(),
        "invoices.csv",
    )
    .unwrap();
    assert!(
        invoices.rejects.is_empty(),
        "{:?}",
        invoices.rejects.first()
    );
    assert_eq!(invoices.records.len(), 2466);
    let customers = collect_engine::ingest::customers(
        std::fs::File::open(dir.join("customers.csv")).unwrap(),
        "customers.csv",
    )
    .unwrap();
    assert!(
        customers.rejects.is_empty(),
        "{:?}",
        customers.rejects.first()
    );
    let payments = collect_engine::ingest::payments(
        std::fs::File::open(dir.join("payments.csv")).unwrap(),
        "payments.csv",
    )
    .unwrap();
    assert!(
        payments.rejects.is_empty(),
        "{:?}",
        payments.rejects.first()
    );
}

#[test]
fn ibm_walk_forward_on_a_subset() {
    let Some(path) = ibm_path() else { return };
    let book = ibm::read(&path).unwrap().book();
    // A quick subset: half the customers, four months, small models. The
    // full run (all customers, 18 months) is bench/model_eval.sh.
    let mut ids: Vec<String> = book.customers.keys().cloned().collect();
    ids.sort();
    let cfg = ibm::WalkForwardConfig {
        first_month: d("2013-01-01"),
        last_month: Some(d("2013-04-01")),
        train: TrainConfig {
            dataset: DatasetConfig {
                min_days_before_due: 14,
                max_days_before_due: 14,
            },
            split: SplitConfig {
                valid_fraction: 0.25,
                test_fraction: 0.0,
            },
            ..quick_config(42)
        },
        customers: Some(ids.into_iter().step_by(2).collect()),
        ..ibm::WalkForwardConfig::default()
    };
    let wf = ibm::walk_forward(&book, &cfg).unwrap();
    assert_eq!(wf.months.len(), 4);
    assert!(wf.predictions.len() > 100, "{}", wf.predictions.len());
    // Every scored invoice was open 14 days before its due date.
    assert!(wf.predictions.iter().all(|p| {
        let inv = book.invoice(&p.invoice_id).unwrap();
        p.day == add(inv.due_date, -14) && book.is_open(inv, p.day)
    }));
    let auc = wf.chosen.roc_auc.unwrap();
    assert!(auc > 0.75, "ROC AUC {auc}");
    eprintln!(
        "IBM subset: chosen ROC AUC {auc:.3}, LR {:.3}, baseline {:.3}, {} invoices",
        wf.logistic_regression.roc_auc.unwrap(),
        wf.baseline.roc_auc.unwrap(),
        wf.predictions.len()
    );
}
