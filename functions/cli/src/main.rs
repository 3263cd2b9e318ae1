//! `collect`: the command finance ops, auditors and developers run locally.
//!
//! Policy tools (`check`, `fmt`, `test`, `explain`) work on policy files in
//! Git. Each subcommand lives in its own module; this file only parses the
//! command line and maps outcomes to exit codes.

mod cases;
mod check;
mod explain;
mod fmt;
mod policy_files;
mod test;

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
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
    /// Show the decision for one case and the trace behind it.
    Explain {
        /// The policy file.
        #[arg(long)]
        policy: PathBuf,
        /// A case file (same format as a policy test file).
        #[arg(long)]
        case: PathBuf,
        /// Which case of the file, by name, when it holds more than one.
        #[arg(long)]
        name: Option<String>,
        /// The day to decide for; defaults to the case's `date`.
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
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
            policy,
            case,
            name,
            date,
            format,
        } => explain::run(&policy, &case, name.as_deref(), date, format),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
