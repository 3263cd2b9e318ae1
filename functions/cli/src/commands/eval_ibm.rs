//! `collect eval-ibm` (hidden): the walk-forward evaluation on IBM's
//! public late-payment sample, retrained monthly (see
//! `bench/model_eval.sh`).

use crate::args::{Format, parse_date};
use crate::model_tables::f3;
use anyhow::{Context, Result};
use chrono::NaiveDate;
use collect_model::metrics::Metrics;
use collect_training::ibm::{self, WalkForwardConfig};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Walk-forward evaluation on IBM's late-payment sample (bench/model_eval.sh).
#[derive(clap::Args)]
#[command(hide = true)]
pub struct Args {
    /// The sample's CSV file.
    #[arg(long, default_value = collect_training::ibm::DEFAULT_PATH)]
    data: PathBuf,
    /// Write each month's feature matrices and the results here.
    #[arg(long)]
    export: Option<PathBuf>,
    /// Also write the sample in the data contract (customers/invoices/payments.csv).
    #[arg(long)]
    contract_out: Option<PathBuf>,
    /// The first month scored, YYYY-MM-DD, e.g. 2012-07-01.
    #[arg(value_parser = parse_date, long, default_value = "2012-07-01")]
    from: NaiveDate,
    /// Trees in the forest.
    #[arg(long, default_value_t = 100)]
    trees: u16,
    /// Training rows from this many days before due (to 14); default 7.
    #[arg(long)]
    min_days: Option<u32>,
    /// The forest's minimum leaf size.
    #[arg(long)]
    leaf: Option<usize>,
    /// Forest depth; 0 for unlimited.
    #[arg(long)]
    depth: Option<u16>,
    /// Logistic regression L2 penalties per row, comma-separated.
    #[arg(long, value_delimiter = ',')]
    penalties: Vec<f64>,
    /// Output: `human` for people, `json` for tools.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let data = args.data.as_path();
    let export = args.export.as_deref();
    let contract_out = args.contract_out.as_deref();
    let from = args.from;
    let format = args.format;
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
    cfg.train.forest.n_trees = args.trees;
    if let Some(d) = args.min_days {
        cfg.train.dataset.min_days_before_due = d;
    }
    if let Some(l) = args.leaf {
        cfg.train.forest.min_samples_leaf = l;
        cfg.train.forest.min_samples_split = 2 * l;
    }
    if let Some(d) = args.depth {
        cfg.train.forest.max_depth = (d > 0).then_some(d);
    }
    if !args.penalties.is_empty() {
        cfg.train.lr_penalties.clone_from(&args.penalties);
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
