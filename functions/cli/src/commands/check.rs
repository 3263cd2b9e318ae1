//! `collect check`: every problem in the policy files and their templates,
//! with file:line:col and a fix ([`crate::policy_check`]).

use crate::args::Format;
use crate::policy_check::check;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

/// Check policy files and report every problem with its line and a fix.
#[derive(clap::Args)]
pub struct Args {
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
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let failed = check(&args.paths, &args.languages)?.print(args.format, args.deny_warnings)?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
