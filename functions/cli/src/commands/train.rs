//! `collect train`: builds the training rows from the ingested history,
//! trains, evaluates against the baseline, saves the model and, with
//! `--promote`, installs it as the home's current model when it is at
//! least as good as the one there (champion/challenger).

use crate::args::{Format, parse_date};
use crate::home::Home;
use crate::model_tables::{calibration_table, f3, metrics_table};
use crate::scorer::{current_path, models_dir};
use anyhow::{Result, bail};
use chrono::NaiveDate;
use collect_model::dataset;
use collect_model::{Model, promote};
use collect_sqlite::store::Store;
use collect_training::train::{self, TrainConfig};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Train the late-payment risk model on the ingested history.
///
/// Rows: each invoice 7-14 days before its due date, whose outcome was
/// known before --as-of; the latest invoices test it. Saves the model to
/// <home>/models/<model_id>.json; --promote installs it as the current
/// model when it is at least as good as the current one.
#[derive(clap::Args)]
pub struct Args {
    /// Train on what was known on this day, YYYY-MM-DD, e.g. 2027-03-31.
    #[arg(value_parser = parse_date, long)]
    as_of: NaiveDate,
    /// Where to write the model (default <home>/models/<model_id>.json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Champion/challenger against <home>/models/current.json.
    #[arg(long)]
    promote: bool,
    /// The seed of the training split and the forest: the same seed, the same model.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output: `human` for people, `json` for tools.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

pub fn run(home: &Path, args: &Args) -> Result<ExitCode> {
    let home = &Home::open(home)?;
    let Args {
        as_of,
        ref out,
        promote: do_promote,
        seed,
        format,
    } = *args;
    let out = out.as_deref();
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
