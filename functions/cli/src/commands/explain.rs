//! `collect explain`: why a decision was made. `collect explain WHAT`
//! starts from what an auditor holds (an invoice id or number, a
//! Message-ID, an action id; see [`crate::lookup`]) and explains it from
//! the home's records ([`crate::explanation`]); `collect explain --case
//! FILE` explains one case of a policy test file ([`crate::case_bench`]).

use crate::args::{DEFAULT_POLICY, Format, parse_date};
use crate::case_bench::explain_case;
use crate::explanation::explain_what;
use crate::home::Home;
use anyhow::{Result, bail};
use chrono::NaiveDate;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Explain a decision: from what an auditor holds, or for a case file.
///
/// `collect explain WHAT` explains what a stored letter or invoice came
/// from; WHAT is an invoice id (`INV-27-00880`), the invoice number on
/// the letter (`2027-00880`), the `.eml`'s Message-ID (`<msg-…@…>`,
/// with or without brackets and domain: every action it carried) or an
/// action id (`act-…`). Each recorded action comes with its audit trail.
/// `collect explain --case cases.tests.toml [--name NAME]` explains a case.
#[derive(clap::Args)]
pub struct Args {
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
}

pub fn run(home: &Path, args: &Args) -> Result<ExitCode> {
    match (&args.case, &args.invoice) {
        (Some(case), _) => {
            let trace = explain_case(&args.policy, case, args.name.as_deref(), args.date)?;
            match args.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&trace)?),
                Format::Human => print!("{}", trace.render()),
            }
        }
        (None, Some(what)) => {
            let home = Home::open_existing(home)?;
            let explained = explain_what(&home, &args.policy, what, args.date)?;
            match args.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&explained.json)?),
                Format::Human => print!("{}", explained.text),
            }
        }
        _ => bail!(
            "say what to explain: `collect explain WHAT` (an invoice id or number, a \
             Message-ID or an action id) or `collect explain --case FILE`"
        ),
    }
    Ok(ExitCode::SUCCESS)
}
