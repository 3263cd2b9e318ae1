//! `collect explain`: why a decision was made. `collect explain WHAT`
//! starts from what an auditor holds (an invoice id or number, a
//! Message-ID, an action id; see [`crate::lookup`]) and explains it from
//! the home's records, under the bundle revision they record
//! ([`crate::explanation`]; `--policy` makes it a what-if); `collect
//! explain --case FILE` explains one case of a policy test file
//! ([`crate::case_bench`]). With `--table NAME --bucket NAME` WHAT is
//! explained from a deployed stack's records ([`crate::stack`]).

use crate::args::{DEFAULT_POLICY, Format, parse_date};
use crate::case_bench::explain_case;
use crate::explanation::{explain_on_stack, explain_what, render};
use crate::home::Home;
use crate::stack::StackArgs;
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
/// action id (`act-…`). The day is replayed on the state before its
/// actions, with the policy and templates of the bundle revision they
/// record (kept by the home), and matched with the record: each action
/// recorded that day is shown as recorded, with its trail.
/// `collect explain --case cases.tests.toml [--name NAME]` explains a case.
#[derive(clap::Args)]
pub struct Args {
    /// An invoice id or number, a Message-ID or an action id (not with --case).
    invoice: Option<String>,
    /// A what-if: replay with this policy file instead of the bundle
    /// revision each action recorded (for a case file: the policy to
    /// decide with, default policy/standard-net30.policy).
    #[arg(long)]
    policy: Option<PathBuf>,
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
    /// On a stack: the customer of the action id explained (a stack keeps
    /// actions in their customer's partition).
    #[arg(long)]
    customer: Option<String>,
    #[command(flatten)]
    stack: StackArgs,
}

pub fn run(home: &Path, args: &Args) -> Result<ExitCode> {
    match (&args.case, &args.invoice) {
        (Some(case), _) => {
            let policy = args
                .policy
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_POLICY));
            let trace = explain_case(&policy, case, args.name.as_deref(), args.date)?;
            match args.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&trace)?),
                Format::Human => print!("{}", trace.render()),
            }
        }
        (None, Some(what)) => {
            let explained = match args.stack.connect()? {
                Some(stack) => explain_on_stack(
                    &stack,
                    args.policy.as_deref(),
                    args.customer.as_deref(),
                    what,
                    args.date,
                )?,
                None => {
                    let home = Home::open_existing(home)?;
                    explain_what(&home, args.policy.as_deref(), what, args.date)?
                }
            };
            match args.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&explained)?),
                Format::Human => print!("{}", render(&explained)),
            }
        }
        _ => bail!(
            "say what to explain: `collect explain WHAT` (an invoice id or number, a \
             Message-ID or an action id) or `collect explain --case FILE`"
        ),
    }
    Ok(ExitCode::SUCCESS)
}
