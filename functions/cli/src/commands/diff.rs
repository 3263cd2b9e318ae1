//! `collect diff OLD NEW --from D1 --to D2`: the invoices two policy
//! revisions would treat differently over a period, each line with its
//! reason ([`crate::policy_diff`]); for people, for tools, or as Markdown
//! for a pull request comment.

use crate::args::parse_date;
use crate::home::Home;
use crate::policy_diff::{markdown, reasoned, replay_both};
use anyhow::Result;
use chrono::NaiveDate;
use clap::ValueEnum;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The formats of `collect diff`: those of the other commands, and
/// Markdown for a pull request comment.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Human,
    Json,
    Markdown,
}

/// The invoices two policy revisions would treat differently over a period.
#[derive(clap::Args)]
pub struct Args {
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
}

pub fn run(home: &Path, args: &Args) -> Result<ExitCode> {
    let home = Home::open_existing(home)?;
    let Args {
        ref old,
        ref new,
        from,
        to,
        format,
    } = *args;
    let replays = replay_both(&home, old, new, from, to)?;
    match format {
        DiffFormat::Markdown => print!(
            "{}",
            markdown(
                &old.display().to_string(),
                &new.display().to_string(),
                from,
                to,
                &replays.old,
                &replays.new
            )
        ),
        DiffFormat::Human => print!("{}", reasoned(old, new, from, to, &replays)?.human()),
        DiffFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&reasoned(old, new, from, to, &replays)?.json())?
        ),
    }
    Ok(ExitCode::SUCCESS)
}
