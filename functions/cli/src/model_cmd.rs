//! The risk model's commands: `collect train` (build from the ingested
//! history, train, evaluate, save, optionally promote), `collect score`
//! (the riskiest open invoices and why), the scorer the local runtime uses,
//! and the hidden `collect eval-ibm` (the walk-forward evaluation on IBM's
//! public late-payment sample; see `bench/model_eval.sh`).
//!
//! Models live in `<home>/models/`: one file per trained model, named by its
//! id, and `current.json`, the champion the sweep uses.

use crate::Format;
use crate::home::Home;
use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use collect_engine::sweep::{PriorLateRate, RiskScorer, ScoreInput};
use collect_model::dataset;
use collect_model::metrics::Metrics;
use collect_model::{Model, ModelScorer, promote};
use collect_sqlite::store::Store;
use collect_training::ibm::{self, WalkForwardConfig};
use collect_training::train::{self, TrainConfig};
use serde_json::json;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn models_dir(home: &Home) -> PathBuf {
    home.dir.join("models")
}

pub fn current_path(home: &Home) -> PathBuf {
    models_dir(home).join("current.json")
}

/// The scorer the local runtime uses: the current model when one is
/// installed, else the transparent fallback.
pub enum LocalScorer {
    Model(Box<ModelScorer>, PathBuf),
    Fallback,
}

impl LocalScorer {
    pub fn as_dyn(&self) -> &dyn RiskScorer {
        match self {
            LocalScorer::Model(m, _) => m.as_ref(),
            LocalScorer::Fallback => &PriorLateRate,
        }
    }

    /// One line for people: which scorer and where it came from.
    pub fn describe(&self) -> String {
        match self {
            LocalScorer::Model(m, path) => {
                let model = m.model();
                format!(
                    "risk-model {} ({}, {})",
                    model.short_id(),
                    model.content.estimator.kind(),
                    path.display()
                )
            }
            LocalScorer::Fallback => {
                "prior-late-rate (fallback: no trained model installed; `collect train --as-of DATE --promote` installs one)"
                    .to_string()
            }
        }
    }

    /// The `n` largest contributions to the score, for the model; none for the fallback.
    pub fn explain(&self, input: &ScoreInput<'_>, n: usize) -> Vec<(String, f64)> {
        match self {
            LocalScorer::Model(m, _) => m.explain(input).into_iter().take(n).collect(),
            LocalScorer::Fallback => Vec::new(),
        }
    }

    pub fn model_id(&self) -> Option<&str> {
        match self {
            LocalScorer::Model(m, _) => Some(&m.model().model_id),
            LocalScorer::Fallback => None,
        }
    }
}

/// The current model (`<home>/models/current.json`) when it exists, else the
/// fallback. A model that cannot run on this build is an error, not a
/// silent fallback: the sweep must not change its scorer unannounced.
pub fn scorer(home: &Home) -> Result<LocalScorer> {
    let path = current_path(home);
    if !path.exists() {
        return Ok(LocalScorer::Fallback);
    }
    let m = ModelScorer::load(&path).with_context(|| {
        format!(
            "the current model cannot be used; retrain with `collect train --as-of DATE --promote` or remove {} to use the fallback scorer",
            path.display()
        )
    })?;
    Ok(LocalScorer::Model(Box::new(m), path))
}

fn f3(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"))
}

fn metrics_table(model: &Metrics, baseline: &Metrics) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "  {:<14} {:>8} {:>10}", "", "model", "baseline");
    let rows: [(&str, Option<f64>, Option<f64>); 7] = [
        ("ROC AUC", model.roc_auc, baseline.roc_auc),
        ("PR AUC", model.pr_auc, baseline.pr_auc),
        ("Brier", model.brier, baseline.brier),
        ("log-loss", model.log_loss, baseline.log_loss),
        ("accuracy@0.5", model.accuracy, baseline.accuracy),
        (
            "mean predicted",
            model.mean_predicted,
            baseline.mean_predicted,
        ),
        ("base rate", model.base_rate, baseline.base_rate),
    ];
    for (name, a, b) in rows {
        let _ = writeln!(out, "  {name:<14} {:>8} {:>10}", f3(a), f3(b));
    }
    out
}

fn calibration_table(m: &Metrics) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {:<11} {:>6} {:>10} {:>9}",
        "predicted", "rows", "mean", "observed"
    );
    for b in &m.calibration {
        let _ = writeln!(
            out,
            "  {:.1} - {:.1}  {:>6} {:>10} {:>9}",
            b.lo,
            b.hi,
            b.count,
            f3(b.mean_predicted),
            f3(b.observed_rate)
        );
    }
    out
}

/// `collect train`.
pub fn train(
    home: &Home,
    as_of: NaiveDate,
    out: Option<&Path>,
    do_promote: bool,
    seed: u64,
    format: Format,
) -> Result<ExitCode> {
    let book = home.store()?.load_book()?;
    let config = TrainConfig {
        seed,
        ..TrainConfig::default()
    };
    let rows = dataset::build(&book, as_of, &config.dataset);
    if rows.is_empty() {
        bail!(
            "no invoice in {} was open {}-{} days before its due date with an outcome known before {as_of}; ingest the payment history first",
            home.db_path().display(),
            config.dataset.max_days_before_due,
            config.dataset.min_days_before_due
        );
    }
    let outcome = train::train(&rows, as_of, &config)?;
    let mut model = outcome.model.clone();
    let test_rows: Vec<dataset::Row> = outcome
        .evaluation_rows(&rows)
        .into_iter()
        .cloned()
        .collect();
    let current_file = current_path(home);
    let mut current_note = None;
    if do_promote {
        let current = if current_file.exists() {
            match Model::load(&current_file) {
                Ok(m) => Some(m),
                Err(e) => {
                    current_note = Some(format!(
                        "the current model cannot run on this build ({}), so it is replaced",
                        e.root()
                    ));
                    None
                }
            }
        } else {
            None
        };
        let mut decision = promote(current.as_ref(), &model, &test_rows);
        if let Some(note) = &current_note {
            decision.reason = note.clone();
        }
        model.decision = Some(decision);
    }
    let path = out.map_or_else(
        || models_dir(home).join(format!("{}.json", model.model_id)),
        Path::to_path_buf,
    );
    model.save(&path)?;
    let promoted = model.decision.as_ref().is_some_and(|d| d.promote);
    if promoted {
        model.save(&current_file)?;
    }

    let c = &model.content;
    let e = &c.evaluation;
    let t = &c.training;
    match format {
        Format::Json => {
            let v = json!({
                "model_id": model.model_id,
                "path": path.display().to_string(),
                "estimator": c.estimator.kind(),
                "roc_auc": e.model.roc_auc,
                "pr_auc": e.model.pr_auc,
                "brier": e.model.brier,
                "log_loss": e.model.log_loss,
                "accuracy": e.model.accuracy,
                "base_rate": e.model.base_rate,
                "rows": rows.len(),
                "rows_train": t.rows_train,
                "rows_valid": t.rows_valid,
                "rows_test": t.rows_test,
                "evaluated_on": e.evaluated_on,
                "baseline_roc_auc": e.baseline.roc_auc,
                "baseline_brier": e.baseline.brier,
                "baseline_log_loss": e.baseline.log_loss,
                "baseline_beaten": e.baseline_beaten,
                "training_window": {"from": t.window_from, "to": t.window_to},
                "test_window": {"from": e.window_from, "to": e.window_to},
                "calibration": e.model.calibration,
                "candidates": t.candidates,
                "decision": model.decision,
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Human => {
            println!(
                "Risk model {} ({}) trained as of {as_of}",
                model.short_id(),
                t.chosen
            );
            println!(
                "  rows: {} ({} train, {} validation, {} test); training window (due dates) {} to {}",
                rows.len(),
                t.rows_train,
                t.rows_valid,
                t.rows_test,
                t.window_from.map_or_else(String::new, |d| d.to_string()),
                t.window_to.map_or_else(String::new, |d| d.to_string()),
            );
            println!("\nCandidates (validation rows; chosen by log-loss before calibration):");
            for cand in &t.candidates {
                println!(
                    "  {:<44} log-loss {} (calibrated {})  ROC AUC {}{}",
                    cand.name,
                    f3(cand.valid_log_loss),
                    f3(cand.valid_log_loss_calibrated),
                    f3(cand.valid_roc_auc),
                    if cand.name == t.chosen {
                        "  <- chosen"
                    } else {
                        ""
                    }
                );
            }
            println!(
                "\nOn the {} window (due {} to {}, {} rows); baseline = the customer's prior late rate:",
                e.evaluated_on,
                e.window_from.map_or_else(String::new, |d| d.to_string()),
                e.window_to.map_or_else(String::new, |d| d.to_string()),
                e.model.rows
            );
            print!("{}", metrics_table(&e.model, &e.baseline));
            println!(
                "  {}",
                if e.baseline_beaten {
                    "the model beats the baseline (higher ROC AUC, lower Brier)"
                } else {
                    "the model does NOT beat the baseline on this window (ROC AUC and Brier)"
                }
            );
            println!("\nCalibration:");
            print!("{}", calibration_table(&e.model));
            println!("\nsaved {}", path.display());
            if let Some(d) = &model.decision {
                println!(
                    "{}: {}",
                    if d.promote {
                        format!("promoted to {}", current_file.display())
                    } else {
                        "not promoted".to_string()
                    },
                    d.reason
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `collect score`.
pub fn score(home: &Home, date: NaiveDate, all_open: bool, format: Format) -> Result<ExitCode> {
    let book = home.store()?.load_book()?;
    let chosen = scorer(home)?;
    let window = if all_open { None } else { Some((7, 14)) };
    let rows = dataset::scoring_rows(&book, date, window);
    let mut scored = Vec::with_capacity(rows.len());
    for r in &rows {
        let Some(invoice) = book
            .invoices_of(&r.customer_id)
            .iter()
            .find(|i| i.invoice_id == r.invoice_id)
        else {
            continue;
        };
        let (risk, top) = match &chosen {
            LocalScorer::Model(m, _) => {
                let x = m.model().row(&r.raw);
                let top: Vec<(String, f64, f64)> = m
                    .explain_row(&x)
                    .into_iter()
                    .take(3)
                    .map(|(name, c)| {
                        let pos = m
                            .model()
                            .content
                            .schema
                            .names
                            .iter()
                            .position(|n| *n == name);
                        let value = pos.and_then(|p| x.get(p)).copied().unwrap_or(f64::NAN);
                        (name, c, value)
                    })
                    .collect();
                (Some(m.model().predict_row(&x)), top)
            }
            LocalScorer::Fallback => {
                let stats = book.customer_stats(&r.customer_id, date);
                let risk = PriorLateRate.score(&ScoreInput {
                    book: &book,
                    invoice,
                    day: date,
                    stats: &stats,
                });
                (risk, Vec::new())
            }
        };
        scored.push((r, invoice, risk, top));
    }
    scored.sort_by(|a, b| {
        b.2.unwrap_or(-1.0)
            .total_cmp(&a.2.unwrap_or(-1.0))
            .then(a.0.invoice_id.cmp(&b.0.invoice_id))
    });
    let unit = match &chosen {
        LocalScorer::Model(m, _) => m.contribution_unit(),
        LocalScorer::Fallback => "",
    };
    match format {
        Format::Json => {
            let v: Vec<serde_json::Value> = scored
                .iter()
                .map(|(r, inv, risk, top)| {
                    json!({
                        "invoice_id": r.invoice_id,
                        "customer_id": r.customer_id,
                        "due_date": r.due_date,
                        "days_to_due": (r.due_date - date).num_days(),
                        "balance": book.balance(inv, date),
                        "currency": inv.currency,
                        "risk": risk,
                        "model_id": chosen.model_id(),
                        "scorer": chosen.as_dyn().name(),
                        "top_features": top.iter().map(|(n, c, v)| json!({
                            "feature": n, "contribution": c, "value": v, "unit": unit
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Human => {
            println!(
                "Scores on {date}: {} open invoice(s){}",
                scored.len(),
                if all_open {
                    String::new()
                } else {
                    " due in 7-14 days (--all-open for every open invoice)".to_string()
                }
            );
            println!("scorer: {}", chosen.describe());
            if let LocalScorer::Model(..) = chosen {
                println!("why: the top 3 contributions ({unit} units; + pushes towards late)");
            }
            for (r, inv, risk, top) in &scored {
                let why = top
                    .iter()
                    .map(|(n, c, v)| format!("{n}={} ({c:+.3})", short(*v)))
                    .collect::<Vec<_>>()
                    .join(", ");
                println!(
                    "  {:>6}  {:<14} {:<12} due {} ({:>2}d)  {} {}  {}",
                    risk.map_or_else(|| "n/a".to_string(), |p| format!("{:.1}%", p * 100.0)),
                    r.invoice_id,
                    r.customer_id,
                    r.due_date,
                    (r.due_date - date).num_days(),
                    book.balance(inv, date),
                    inv.currency,
                    why
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn short(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Settings of the evaluation that differ from `collect train`'s defaults.
pub struct EvalTuning {
    pub trees: u16,
    pub min_days: Option<u32>,
    pub leaf: Option<usize>,
    pub depth: Option<u16>,
    pub penalties: Vec<f64>,
}

/// `collect eval-ibm` (hidden): the walk-forward evaluation on IBM's sample.
pub fn eval_ibm(
    data: &Path,
    export: Option<&Path>,
    contract_out: Option<&Path>,
    from: NaiveDate,
    tuning: &EvalTuning,
    format: Format,
) -> Result<ExitCode> {
    let sample = ibm::read(data).with_context(|| {
        format!(
            "cannot read IBM's late-payment sample at {} (it is expected in ../shared/data)",
            data.display()
        )
    })?;
    if let Some(dir) = contract_out {
        sample.write_contract(dir)?;
        eprintln!("wrote the data contract's CSV files to {}", dir.display());
    }
    let book = sample.book();
    let mut cfg = WalkForwardConfig {
        first_month: from,
        export_dir: export.map(Path::to_path_buf),
        ..WalkForwardConfig::default()
    };
    cfg.train.forest.n_trees = tuning.trees;
    if let Some(d) = tuning.min_days {
        cfg.train.dataset.min_days_before_due = d;
    }
    if let Some(l) = tuning.leaf {
        cfg.train.forest.min_samples_leaf = l;
        cfg.train.forest.min_samples_split = 2 * l;
    }
    if let Some(d) = tuning.depth {
        cfg.train.forest.max_depth = (d > 0).then_some(d);
    }
    if !tuning.penalties.is_empty() {
        cfg.train.lr_penalties.clone_from(&tuning.penalties);
    }
    let wf = ibm::walk_forward(&book, &cfg)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&wf)?),
        Format::Human => {
            println!(
                "Walk-forward on {} ({} months from {from}, retrained monthly, scored 14 days before due): {} invoices",
                data.display(),
                wf.months.len(),
                wf.predictions.len()
            );
            let mut kinds = std::collections::BTreeMap::<String, usize>::new();
            for m in &wf.months {
                *kinds.entry(m.chosen.clone()).or_default() += 1;
            }
            println!("chosen per month: {kinds:?}");
            println!(
                "  {:<22} {:>8} {:>8} {:>8} {:>9} {:>9}",
                "", "ROC AUC", "PR AUC", "Brier", "log-loss", "accuracy"
            );
            let line = |name: &str, m: &Metrics| {
                println!(
                    "  {name:<22} {:>8} {:>8} {:>8} {:>9} {:>9}",
                    f3(m.roc_auc),
                    f3(m.pr_auc),
                    f3(m.brier),
                    f3(m.log_loss),
                    f3(m.accuracy)
                );
            };
            line("chosen (per month)", &wf.chosen);
            line("logistic regression", &wf.logistic_regression);
            if let Some(rf) = &wf.random_forest {
                line("random forest", rf);
            }
            line("baseline (prior rate)", &wf.baseline);
            let t = &wf.timing;
            println!(
                "fit per month: LR {:.3}s, RF {:.3}s; scoring per 1,000 invoices: LR {:.4} ms, RF {:.4} ms, features+score {:.2} ms",
                t.fit_seconds_lr,
                t.fit_seconds_rf,
                t.score_ms_per_1000_lr,
                t.score_ms_per_1000_rf,
                t.features_and_score_ms_per_1000
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
