//! `collect`: the command finance ops, auditors and developers run locally.
//!
//! Policy tools (`check`, `fmt`, `test`, `explain`) work on policy files in
//! Git. Each subcommand lives in its own module; this file only parses the
//! command line and maps outcomes to exit codes.

mod bundle;
mod cases;
mod check;
mod demo;
mod diff_md;
mod explain;
mod fmt;
mod home;
mod local;
mod model_cmd;
mod policy_files;
mod report;
mod runtime;
mod test;

use chrono::{NaiveDate, NaiveTime};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "collect",
    version,
    about = "Proactive Collections: policy tools and the local runtime",
    long_about = "Proactive Collections decides, invoice by invoice and day by day, how to get \
                  invoices paid on time, following a policy written in plain text.\n\n\
                  Start with `collect check policy/` and `collect test policy/`."
)]
struct Cli {
    /// The folder holding the local state (SQLite file, outbox, settings).
    #[arg(long, global = true, env = "COLLECT_HOME", default_value = ".collect")]
    home: PathBuf,
    #[command(subcommand)]
    command: Command,
}

/// The policy used when `--policy` is not given.
const DEFAULT_POLICY: &str = "policy/standard-net30.policy";

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// The formats of `collect diff`: those of the other commands, and
/// Markdown for a pull request comment.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Human,
    Json,
    Markdown,
}

#[derive(Subcommand)]
enum Command {
    /// Check policy files and report every problem with its line and a fix.
    Check {
        /// Policy files or folders holding them (searched recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Treat warnings as errors.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Lay policy files out in the one canonical way, keeping every comment.
    Fmt {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Change nothing; list the files that are not formatted and exit 1.
        #[arg(long)]
        check: bool,
    },
    /// Run the policy test files (`*.tests.toml`) found under the paths.
    Test {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Explain a decision: for an ingested invoice on a day, or for a case file.
    ///
    /// `collect explain INV-1001 --date 2026-12-14` explains a stored invoice;
    /// `collect explain --case cases.tests.toml [--name NAME]` explains a case.
    Explain {
        /// The invoice id (with --date), when not using --case.
        invoice: Option<String>,
        #[arg(long, default_value = DEFAULT_POLICY)]
        policy: PathBuf,
        /// A case file (same format as a policy test file).
        #[arg(long)]
        case: Option<PathBuf>,
        /// Which case of the file, by name, when it holds more than one.
        #[arg(long)]
        name: Option<String>,
        /// The day to decide for (for a case: defaults to its `date`).
        #[arg(long)]
        date: Option<NaiveDate>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Load customers.csv, invoices.csv, payments.csv and events.jsonl from a folder.
    ///
    /// Re-ingesting updates records and applies new payments. Bad rows are
    /// reported with file, line and column, kept in <home>/rejects.csv, and
    /// make the command exit 1; the valid rows are loaded all the same.
    Ingest {
        dir: PathBuf,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Run one day's sweep: decide, record and send.
    Run {
        #[arg(long)]
        date: NaiveDate,
        #[arg(long, default_value = DEFAULT_POLICY)]
        policy: PathBuf,
        /// Show what would happen; record and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// The sending time in UTC, `HH:MM` (quiet hours are checked against it).
        #[arg(long)]
        at: Option<NaiveTime>,
        /// When another run of this home is going on, wait for it to end
        /// instead of stopping with an error.
        #[arg(long)]
        wait: bool,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Replay every day of a period on a copy of the state, sending nothing.
    Simulate {
        #[arg(long)]
        from: NaiveDate,
        #[arg(long)]
        to: NaiveDate,
        #[arg(long, default_value = DEFAULT_POLICY)]
        policy: PathBuf,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// The invoices two policy revisions would treat differently over a period.
    Diff {
        old: PathBuf,
        new: PathBuf,
        #[arg(long)]
        from: NaiveDate,
        #[arg(long)]
        to: NaiveDate,
        #[arg(long, value_enum, default_value = "human")]
        format: DiffFormat,
    },
    /// Generate a realistic book, run the policy on it for a quarter and
    /// compare it with a reactive policy. State goes to <home>/demo/.
    Demo {
        /// The seed of the generated book: the same seed, the same demo.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// How many customers to generate.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=20000))]
        customers: u32,
        #[arg(long, default_value = DEFAULT_POLICY)]
        policy: PathBuf,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Train the late-payment risk model on the ingested history.
    ///
    /// Rows: each invoice 7-14 days before its due date, whose outcome was
    /// known before --as-of; the latest invoices test it. Saves the model to
    /// <home>/models/<model_id>.json; --promote installs it as the current
    /// model when it is at least as good as the current one.
    Train {
        #[arg(long)]
        as_of: NaiveDate,
        #[arg(long)]
        out: Option<PathBuf>,
        /// Champion/challenger against <home>/models/current.json.
        #[arg(long)]
        promote: bool,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Score open invoices with the current model, riskiest first, with why.
    Score {
        #[arg(long)]
        date: NaiveDate,
        /// Every open invoice, not only those due in 7-14 days.
        #[arg(long)]
        all_open: bool,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Walk-forward evaluation on IBM's late-payment sample (bench/model_eval.sh).
    #[command(hide = true)]
    EvalIbm {
        #[arg(long, default_value = collect_core::model::ibm::DEFAULT_PATH)]
        data: PathBuf,
        /// Write each month's feature matrices and the results here.
        #[arg(long)]
        export: Option<PathBuf>,
        /// Also write the sample in the data contract (customers/invoices/payments.csv).
        #[arg(long)]
        contract_out: Option<PathBuf>,
        /// The first month scored.
        #[arg(long, default_value = "2012-07-01")]
        from: NaiveDate,
        #[arg(long, default_value_t = 100)]
        trees: u16,
        /// Training rows from this many days before due (to 14); default 7.
        #[arg(long)]
        min_days: Option<u32>,
        #[arg(long)]
        leaf: Option<usize>,
        /// Forest depth; 0 for unlimited.
        #[arg(long)]
        depth: Option<u16>,
        /// Logistic regression L2 penalties per row, comma-separated.
        #[arg(long, value_delimiter = ',')]
        penalties: Vec<f64>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Bundle a policy folder (policies, templates, manifest with SHA-256s)
    /// for deployment; runs the checks of `collect check` first.
    Bundle {
        dir: PathBuf,
        /// The Git revision of the policy repository.
        #[arg(long)]
        revision: String,
        /// The policy in force, when the folder holds several.
        #[arg(long)]
        policy: Option<String>,
        /// Where to write the bundle (default policy-bundle-<REV>.tar).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// What worked: KPIs, aging, pay rates by step, segment, template and
    /// channel, experiments with their uplift, and reminder timing.
    ///
    /// The period defaults to everything recorded; outcomes are followed up
    /// to the last recorded day.
    Report {
        #[arg(long)]
        from: Option<NaiveDate>,
        #[arg(long)]
        to: Option<NaiveDate>,
        /// Also write one self-contained HTML page with charts here.
        #[arg(long)]
        html: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: report::ReportFormat,
    },
    /// The human queue: approvals and call tasks.
    Tasks {
        #[command(subcommand)]
        action: Option<TaskAction>,
        /// Who decides (recorded in the audit trail).
        #[arg(long, global = true)]
        by: Option<String>,
        /// The day of the decision; defaults to today.
        #[arg(long, global = true)]
        date: Option<NaiveDate>,
        #[arg(long, value_enum, default_value = "human", global = true)]
        format: Format,
    },
}

#[derive(Subcommand)]
enum TaskAction {
    /// List tasks awaiting a person.
    List,
    /// Approve an action awaiting approval; the next run sends it.
    Approve { id: String },
    /// Reject an action awaiting approval; it is never sent.
    Reject { id: String },
    /// Mark a call task done.
    Done { id: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check {
            paths,
            format,
            deny_warnings,
        } => check::run(&paths, format, deny_warnings),
        Command::Fmt { paths, check } => fmt::run(&paths, check),
        Command::Test { paths, format } => test::run(&paths, format),
        Command::Explain {
            invoice,
            policy,
            case,
            name,
            date,
            format,
        } => match (case, invoice, date) {
            (Some(case), _, _) => explain::run(&policy, &case, name.as_deref(), date, format),
            (None, Some(inv), Some(d)) => home::Home::open(&cli.home)
                .and_then(|h| local::explain_invoice(&h, &policy, &inv, d, format)),
            _ => Err(anyhow::anyhow!(
                "say what to explain: `collect explain INVOICE --date YYYY-MM-DD` or `collect explain --case FILE`"
            )),
        },
        Command::Ingest { dir, format } => {
            home::Home::open(&cli.home).and_then(|h| local::ingest(&h, &dir, format))
        }
        Command::Run {
            date,
            policy,
            dry_run,
            at,
            wait,
            format,
        } => home::Home::open(&cli.home)
            .and_then(|h| local::run(&h, &policy, date, dry_run, at, wait, format)),
        Command::Simulate {
            from,
            to,
            policy,
            format,
        } => {
            home::Home::open(&cli.home).and_then(|h| local::simulate(&h, &policy, from, to, format))
        }
        Command::Diff {
            old,
            new,
            from,
            to,
            format,
        } => home::Home::open(&cli.home).and_then(|h| match format {
            DiffFormat::Markdown => diff_md::run(&h, &old, &new, from, to),
            DiffFormat::Human => local::diff(&h, &old, &new, from, to, Format::Human),
            DiffFormat::Json => local::diff(&h, &old, &new, from, to, Format::Json),
        }),
        Command::Report {
            from,
            to,
            html,
            format,
        } => home::Home::open(&cli.home)
            .and_then(|h| report::run(&h, from, to, html.as_deref(), format)),
        Command::Demo {
            seed,
            customers,
            policy,
            format,
        } => demo::run(&cli.home, &policy, seed, customers, format),
        Command::Train {
            as_of,
            out,
            promote,
            seed,
            format,
        } => home::Home::open(&cli.home)
            .and_then(|h| model_cmd::train(&h, as_of, out.as_deref(), promote, seed, format)),
        Command::Score {
            date,
            all_open,
            format,
        } => home::Home::open(&cli.home).and_then(|h| model_cmd::score(&h, date, all_open, format)),
        Command::EvalIbm {
            data,
            export,
            contract_out,
            from,
            trees,
            min_days,
            leaf,
            depth,
            penalties,
            format,
        } => model_cmd::eval_ibm(
            &data,
            export.as_deref(),
            contract_out.as_deref(),
            from,
            &model_cmd::EvalTuning {
                trees,
                min_days,
                leaf,
                depth,
                penalties,
            },
            format,
        ),
        Command::Bundle {
            dir,
            revision,
            policy,
            out,
        } => bundle::run(&dir, &revision, policy.as_deref(), out),
        Command::Tasks {
            action,
            by,
            date,
            format,
        } => {
            let cmd = match action {
                None | Some(TaskAction::List) => local::TaskCommand::List,
                Some(TaskAction::Approve { id }) => local::TaskCommand::Approve(id),
                Some(TaskAction::Reject { id }) => local::TaskCommand::Reject(id),
                Some(TaskAction::Done { id }) => local::TaskCommand::Done(id),
            };
            // The command line is the edge where "today" may come from the clock.
            let day = date.unwrap_or_else(|| chrono::Local::now().date_naive());
            home::Home::open(&cli.home)
                .and_then(|h| local::tasks(&h, cmd, by.as_deref(), day, format))
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
