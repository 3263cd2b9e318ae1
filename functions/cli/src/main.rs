//! `collect`: the command finance ops, auditors and developers run locally.
//!
//! Policy tools (`check`, `fmt`, `test`, `explain`) work on policy files in
//! Git; the local runtime (`ingest`, `run`, `tasks`, `report`, …) on a home
//! folder. Each subcommand lives in its own file under `commands/`; this
//! file only parses the command line, dispatches, and maps outcomes to
//! exit codes. The modules below the commands hold what they share.

mod args;
mod audit;
mod case_bench;
mod cases;
mod commands;
mod contact_holds;
mod demo;
mod explanation;
mod home;
mod ingest_batch;
mod lookup;
mod model_tables;
mod policy_check;
mod policy_diff;
mod policy_files;
mod policy_load;
mod replay;
mod report;
mod revisions;
mod run_report;
mod runtime;
mod scorer;
mod stack;
mod standard;
mod synthetic;
mod task_queue;
mod task_view;
mod template_diff;
mod web_home;

use clap::{CommandFactory, Parser, Subcommand};
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

/// The subcommands, in the order `collect --help` lists them; each one's
/// help is on its `Args` in `commands/`.
#[derive(Subcommand)]
enum Command {
    Check(commands::check::Args),
    Fmt(commands::fmt::Args),
    Test(commands::test::Args),
    Explain(commands::explain::Args),
    Audit(commands::audit::Args),
    Ingest(commands::ingest::Args),
    Run(commands::run::Args),
    Simulate(commands::simulate::Args),
    Diff(commands::diff::Args),
    Synth(commands::synth::Args),
    TemplateDiff(commands::template_diff::Args),
    Demo(commands::demo::Args),
    Train(commands::train::Args),
    Score(commands::score::Args),
    EvalIbm(commands::eval_ibm::Args),
    Bundle(commands::bundle::Args),
    Report(commands::report::Args),
    PayLink(commands::pay_link::Args),
    Tasks(commands::tasks::Args),
    Reindex(commands::reindex::Args),
    Serve(commands::serve::Args),
    Init(commands::init::Args),
    Completions(commands::completions::Args),
}

/// mimalloc, not glibc's malloc: a sweep builds and drops millions of small
/// records, and glibc's allocator took about 30 % of its CPU in a profile
/// (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let home = cli.home.as_path();
    let result = match &cli.command {
        Command::Check(args) => commands::check::run(args),
        Command::Fmt(args) => commands::fmt::run(args),
        Command::Test(args) => commands::test::run(args),
        Command::Explain(args) => commands::explain::run(home, args),
        Command::Audit(args) => commands::audit::run(home, args),
        Command::Ingest(args) => commands::ingest::run(home, args),
        Command::Run(args) => commands::run::run(home, args),
        Command::Simulate(args) => commands::simulate::run(home, args),
        Command::Diff(args) => commands::diff::run(home, args),
        Command::Synth(args) => commands::synth::run(args),
        Command::TemplateDiff(args) => commands::template_diff::run(args),
        Command::Demo(args) => commands::demo::run(home, args),
        Command::Train(args) => commands::train::run(home, args),
        Command::Score(args) => commands::score::run(home, args),
        Command::EvalIbm(args) => commands::eval_ibm::run(args),
        Command::Bundle(args) => commands::bundle::run(args),
        Command::Report(args) => commands::report::run(home, args),
        Command::PayLink(args) => commands::pay_link::run(home, args),
        Command::Tasks(args) => commands::tasks::run(home, args),
        Command::Reindex(args) => commands::reindex::run(args),
        Command::Serve(args) => commands::serve::run(home, args),
        Command::Init(args) => commands::init::run(args),
        Command::Completions(args) => commands::completions::run(args, Cli::command()),
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
    /// parsed by [`args::parse_date`], whose error says the format.
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
