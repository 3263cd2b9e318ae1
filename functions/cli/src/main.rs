//! `collect`: the command finance ops, auditors and developers run locally.
//!
//! Policy tools (`check`, `fmt`, `test`, `explain`) work on policy files in
//! Git. Each subcommand lives in its own module; this file only parses the
//! command line and maps outcomes to exit codes.

mod audit;
mod bundle;
mod cases;
mod check;
mod demo;
mod diff_md;
mod explain;
mod fmt;
mod home;
mod local;
mod lookup;
mod model_cmd;
mod paylink_cmd;
mod policy_files;
mod report;
mod revisions;
mod runtime;
mod standard;
mod task_view;
mod test;

use chrono::{NaiveDate, NaiveTime};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
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

/// How every date argument is written, for help texts and errors.
const DATE_FORMAT: &str = "YYYY-MM-DD, e.g. 2027-03-31";

/// Parses a date argument; the error says the format.
fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|e| format!("`{s}` is not a date ({e}): write it as {DATE_FORMAT}"))
}

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
        /// Output: `human` for people, `json` for tools.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Treat warnings as errors.
        #[arg(long)]
        deny_warnings: bool,
        /// Languages your customers use, comma-separated (`de,fr`): a
        /// warning for each template they would get in `en` instead. The
        /// languages some template has are always checked.
        #[arg(long, value_delimiter = ',')]
        languages: Vec<String>,
    },
    /// Lay policy files out in the one canonical way, keeping every comment.
    Fmt {
        /// Policy files or folders holding them (searched recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Change nothing; list the files that are not formatted and exit 1.
        #[arg(long)]
        check: bool,
    },
    /// Run the policy test files (`*.tests.toml`) found under the paths.
    Test {
        /// Test files (`*.tests.toml`) or folders holding them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output: `human` for people, `json` for tools.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Explain a decision: from what an auditor holds, or for a case file.
    ///
    /// `collect explain WHAT` explains what a stored letter or invoice came
    /// from; WHAT is an invoice id (`INV-27-00880`), the invoice number on
    /// the letter (`2027-00880`), the `.eml`'s Message-ID (`<msg-…@…>`,
    /// with or without brackets and domain: every action it carried) or an
    /// action id (`act-…`). Each recorded action comes with its audit trail.
    /// `collect explain --case cases.tests.toml [--name NAME]` explains a case.
    Explain {
        /// An invoice id or number, a Message-ID or an action id (not with --case).
        invoice: Option<String>,
        /// The policy file to decide with.
        #[arg(long, default_value = DEFAULT_POLICY)]
        policy: PathBuf,
        /// A case file (same format as a policy test file).
        #[arg(long)]
        case: Option<PathBuf>,
        /// Which case of the file, by name, when it holds more than one.
        #[arg(long)]
        name: Option<String>,
        /// The day to decide for, YYYY-MM-DD, e.g. 2027-03-31 (for a case:
        /// defaults to its `date`; for an action or a message: the day it
        /// was decided; for an invoice: the day of its latest recorded
        /// action).
        #[arg(value_parser = parse_date, long)]
        date: Option<NaiveDate>,
        /// Output: `human` for people, `json` for tools.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Every recorded action with its whole audit trail (each status,
    /// day, note, who, risk), who approved it, the policy, bundle and Git
    /// revisions and the model and score behind it.
    Audit {
        /// Only this customer's actions.
        #[arg(long)]
        customer: Option<String>,
        /// Actions with activity on or after this day, YYYY-MM-DD, e.g. 2027-03-01.
        #[arg(value_parser = parse_date, long)]
        from: Option<NaiveDate>,
        /// Actions with activity on or before this day, YYYY-MM-DD, e.g. 2027-03-31.
        #[arg(value_parser = parse_date, long)]
        to: Option<NaiveDate>,
        /// `json` (one object per action, with `history`) or `csv` (one
        /// row per line of the trail).
        #[arg(long, value_enum, default_value = "json")]
        format: audit::AuditFormat,
    },
    /// Load customers.csv, invoices.csv, payments.csv and events.jsonl from a folder.
    ///
    /// Re-ingesting updates records and applies new payments. Bad rows are
    /// reported with file, line and column, kept in <home>/rejects.csv, and
    /// make the command exit 1; the valid rows are loaded all the same.
    Ingest {
        /// The folder holding the CSV files (and optionally events.jsonl).
        dir: PathBuf,
        /// Output: `human` for people, `json` for tools.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Run one day's sweep: decide, record and send.
    Run {
        /// The day to sweep, YYYY-MM-DD, e.g. 2027-03-31.
        #[arg(value_parser = parse_date, long)]
        date: NaiveDate,
        /// The policy file to run.
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
        /// Sweep a day earlier than the last day this home was swept:
        /// re-decides that day and records (and sends) its actions dated
        /// that day. Without it such a date is refused.
        #[arg(long)]
        backfill: bool,
        /// Output: `human` for people, `json` for tools.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Replay every day of a period on a copy of the state, sending nothing.
    Simulate {
        /// The first day replayed, YYYY-MM-DD, e.g. 2027-03-01.
        #[arg(value_parser = parse_date, long)]
        from: NaiveDate,
        /// The last day replayed, YYYY-MM-DD, e.g. 2027-03-31.
        #[arg(value_parser = parse_date, long)]
        to: NaiveDate,
        /// The policy file to replay.
        #[arg(long, default_value = DEFAULT_POLICY)]
        policy: PathBuf,
        /// Output: `human` for people, `json` for tools.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// The invoices two policy revisions would treat differently over a period.
    Diff {
        /// The policy file in force now.
        old: PathBuf,
        /// The policy file to compare with it.
        new: PathBuf,
        /// The first day compared, YYYY-MM-DD, e.g. 2027-03-01.
        #[arg(value_parser = parse_date, long)]
        from: NaiveDate,
        /// The last day compared, YYYY-MM-DD, e.g. 2027-03-31.
        #[arg(value_parser = parse_date, long)]
        to: NaiveDate,
        /// Output: `human` for people, `json` for tools.
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
        /// The policy file to run; when it is the default and not found
        /// (outside a checkout), the standard policy built into `collect`.
        #[arg(long, default_value = DEFAULT_POLICY)]
        policy: PathBuf,
        /// Output: `human` for people, `json` for tools.
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
    },
    /// Score open invoices with the current model, riskiest first, with why.
    Score {
        /// The day to score on, YYYY-MM-DD, e.g. 2027-03-31.
        #[arg(value_parser = parse_date, long)]
        date: NaiveDate,
        /// Every open invoice, not only those due in 7-14 days.
        #[arg(long)]
        all_open: bool,
        /// Output: `human` for people, `json` for tools.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Walk-forward evaluation on IBM's late-payment sample (bench/model_eval.sh).
    #[command(hide = true)]
    EvalIbm {
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
    },
    /// Bundle a policy folder (policies, templates, manifest with SHA-256s)
    /// for deployment; runs the checks of `collect check` first.
    Bundle {
        /// The policy folder (policies, templates/).
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
    /// The period defaults to the 90 days up to the last invoice issued
    /// (see policy/README.md, "Measuring what works"); outcomes are followed
    /// up to the last recorded day.
    Report {
        /// The period's first day, YYYY-MM-DD, e.g. 2027-01-01.
        #[arg(value_parser = parse_date, long)]
        from: Option<NaiveDate>,
        /// The period's last day, YYYY-MM-DD, e.g. 2027-03-31.
        #[arg(value_parser = parse_date, long)]
        to: Option<NaiveDate>,
        /// Also write one self-contained HTML page with charts here.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Output: `human`, `json` (keys named after the measures) or `csv`.
        #[arg(long, value_enum, default_value = "human")]
        format: report::ReportFormat,
    },
    /// Pay links: check a token as the payment page does.
    PayLink {
        /// What to do with a pay link.
        #[command(subcommand)]
        action: PayLinkAction,
    },
    /// The human queue: approvals and call tasks.
    Tasks {
        /// What to do (default: list).
        #[command(subcommand)]
        action: Option<TaskAction>,
        /// Who decides (recorded in the audit trail).
        #[arg(long, global = true)]
        by: Option<String>,
        /// The day of the decision, YYYY-MM-DD, e.g. 2027-03-31; defaults to today.
        #[arg(value_parser = parse_date, long, global = true)]
        date: Option<NaiveDate>,
        /// Output: `human` for people, `json` for tools.
        #[arg(long, value_enum, default_value = "human", global = true)]
        format: Format,
    },
    /// Write the standard policy, its tests and templates (built into
    /// `collect`) to a folder, as a starting point for your own.
    Init {
        /// The folder to write to (created when missing).
        dir: PathBuf,
        /// Overwrite files already there.
        #[arg(long)]
        force: bool,
    },
    /// Print a shell completion script: `collect completions bash >
    /// ~/.local/share/bash-completion/completions/collect`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum PayLinkAction {
    /// Check a token (the last part of a "pay now" link) with this home's
    /// key: prints the invoice and the last valid day, or why it is
    /// invalid (then exits 1).
    Verify {
        /// The token: the last part of the "pay now" link.
        token: String,
        /// The day to check on, YYYY-MM-DD, e.g. 2027-03-31; defaults to today.
        #[arg(value_parser = parse_date, long)]
        date: Option<NaiveDate>,
        /// Output: `human` for people, `json` for tools.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
}

#[derive(Subcommand)]
enum TaskAction {
    /// List tasks awaiting a person.
    List,
    /// Show one task: the letter or call with the customer, the amount and
    /// the days overdue.
    Show {
        /// The action id, as `collect tasks` lists it.
        id: String,
        /// The policy whose templates render the letter.
        #[arg(long, default_value = DEFAULT_POLICY)]
        policy: PathBuf,
    },
    /// Approve an action awaiting approval; the next run sends it.
    Approve {
        /// The action id, as `collect tasks` lists it.
        id: String,
        /// The policy whose holds are re-checked before approving.
        #[arg(long, default_value = DEFAULT_POLICY)]
        policy: PathBuf,
    },
    /// Reject an action awaiting approval; it is never sent.
    Reject {
        /// The action id, as `collect tasks` lists it.
        id: String,
    },
    /// Mark a call task done.
    Done {
        /// The action id, as `collect tasks` lists it.
        id: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check {
            paths,
            format,
            deny_warnings,
            languages,
        } => check::run(&paths, format, deny_warnings, &languages),
        Command::Fmt { paths, check } => fmt::run(&paths, check),
        Command::Test { paths, format } => test::run(&paths, format),
        Command::Explain {
            invoice,
            policy,
            case,
            name,
            date,
            format,
        } => match (case, invoice) {
            (Some(case), _) => explain::run(&policy, &case, name.as_deref(), date, format),
            (None, Some(what)) => home::Home::open_existing(&cli.home)
                .and_then(|h| local::explain_invoice(&h, &policy, &what, date, format)),
            _ => Err(anyhow::anyhow!(
                "say what to explain: `collect explain WHAT` (an invoice id or number, a \
                 Message-ID or an action id) or `collect explain --case FILE`"
            )),
        },
        Command::Audit {
            customer,
            from,
            to,
            format,
        } => home::Home::open_existing(&cli.home)
            .and_then(|h| audit::run(&h, customer.as_deref(), from, to, format)),
        Command::Ingest { dir, format } => {
            home::Home::open(&cli.home).and_then(|h| local::ingest(&h, &dir, format))
        }
        Command::Run {
            date,
            policy,
            dry_run,
            at,
            wait,
            backfill,
            format,
        } => home::Home::open(&cli.home).and_then(|h| {
            let flags = local::RunFlags {
                dry_run,
                at,
                wait,
                backfill,
            };
            local::run(&h, &policy, date, &flags, format)
        }),
        Command::Simulate {
            from,
            to,
            policy,
            format,
        } => home::Home::open_existing(&cli.home)
            .and_then(|h| local::simulate(&h, &policy, from, to, format)),
        Command::Diff {
            old,
            new,
            from,
            to,
            format,
        } => home::Home::open_existing(&cli.home).and_then(|h| match format {
            DiffFormat::Markdown => diff_md::run(&h, &old, &new, from, to),
            DiffFormat::Human => local::diff(&h, &old, &new, from, to, Format::Human),
            DiffFormat::Json => local::diff(&h, &old, &new, from, to, Format::Json),
        }),
        Command::Report {
            from,
            to,
            html,
            format,
        } => home::Home::open_existing(&cli.home)
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
        } => home::Home::open_existing(&cli.home)
            .and_then(|h| model_cmd::score(&h, date, all_open, format)),
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
        Command::PayLink {
            action:
                PayLinkAction::Verify {
                    token,
                    date,
                    format,
                },
        } => {
            // The command line is the edge where "today" may come from the clock.
            let day = date.unwrap_or_else(|| chrono::Local::now().date_naive());
            home::Home::open(&cli.home).and_then(|h| paylink_cmd::verify(&h, &token, day, format))
        }
        Command::Tasks {
            action,
            by,
            date,
            format,
        } => {
            let cmd = match action {
                None | Some(TaskAction::List) => local::TaskCommand::List,
                Some(TaskAction::Show { id, policy }) => local::TaskCommand::Show(id, policy),
                Some(TaskAction::Approve { id, policy }) => local::TaskCommand::Approve(id, policy),
                Some(TaskAction::Reject { id }) => local::TaskCommand::Reject(id),
                Some(TaskAction::Done { id }) => local::TaskCommand::Done(id),
            };
            // The command line is the edge where "today" may come from the clock.
            let day = date.unwrap_or_else(|| chrono::Local::now().date_naive());
            home::Home::open_existing(&cli.home)
                .and_then(|h| local::tasks(&h, cmd, by.as_deref(), day, format))
        }
        Command::Init { dir, force } => standard::init(&dir, force),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "collect",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Every argument of every command (hidden ones too) says what it is.
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(format!("{path} {} (the command)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "collect", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:#?}");
    }

    /// Every date argument documents YYYY-MM-DD with an example and is
    /// parsed by [`parse_date`], whose error says the format.
    #[test]
    fn every_date_argument_documents_its_format() {
        fn walk(cmd: &clap::Command, path: &str, bad: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                let dated = matches!(id, "date" | "from" | "to" | "as_of");
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                if dated && !help.contains("YYYY-MM-DD, e.g. 20") {
                    bad.push(format!("{path} --{id}: {help}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), bad);
            }
        }
        let mut bad = Vec::new();
        walk(&Cli::command(), "collect", &mut bad);
        assert!(bad.is_empty(), "{bad:#?}");
        let err = Cli::try_parse_from(["collect", "run", "--date", "31.03.2027"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("YYYY-MM-DD, e.g. 2027-03-31"), "{err}");
    }

    #[test]
    fn completions_are_generated_for_each_shell() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "collect", &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("report") && text.contains("demo"), "{shell}");
        }
    }
}
