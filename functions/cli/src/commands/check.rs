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
    #[arg(long, value_delimiter = ',', value_parser = language_tag)]
    languages: Vec<String>,
}

/// A language of `--languages`, held to the rule of customers' `language`
/// and of template folders: `german` is refused with `did you mean `de`?`.
fn language_tag(value: &str) -> Result<String, String> {
    let value = value.trim();
    match collect_delivery::message::locale::language_folder(value) {
        Ok(()) => Ok(value.to_string()),
        Err(e) => Err(match e.suggestion {
            Some(tag) => format!("`{value}` is not a language tag; did you mean `{tag}`?"),
            None => format!("`{value}` is not a language tag (e.g. `de`, `fr`, `pt-BR`)"),
        }),
    }
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let failed = check(&args.paths, &args.languages)?.print(args.format, args.deny_warnings)?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
