//! `collect demo`: a quarter of collections on a generated book, the
//! policy against a reactive one, and the effectiveness report, in a
//! minute, for a newcomer ([`crate::demo`]).

use crate::args::{DEFAULT_POLICY, Format};
use crate::demo::{Played, play};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Generate a realistic book, run the policy on it for a quarter and
/// compare it with a reactive policy. State goes to <home>/demo/.
#[derive(clap::Args)]
pub struct Args {
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
}

pub fn run(home: &Path, args: &Args) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let human = args.format == Format::Human;
    let Played { report, failed } = play(home, &args.policy, args.seed, args.customers, human)?;
    if human {
        print!("{}", report.render());
        eprintln!("(the demo took {:.1} s)", started.elapsed().as_secs_f64());
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    // As `collect run`: a message the mail port refused fails the command.
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
