//! `collect audit [--customer C] [--from D1 --to D2] --format json|csv`:
//! every recorded action with its whole audit trail, for an auditor's
//! spreadsheet or script ([`crate::audit`]), from the home or, with
//! `--table NAME`, from a deployed stack's table (read-only credentials
//! suffice).

use crate::args::parse_date;
use crate::audit::{audited, audited_on, write_csv};
use crate::home::Home;
use crate::stack::StackArgs;
use anyhow::Result;
use chrono::NaiveDate;
use clap::ValueEnum;
use std::path::Path;
use std::process::ExitCode;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Json,
    Csv,
}

/// Every recorded action with its whole audit trail (each status,
/// day, note, who, risk), who approved it, the policy, bundle and Git
/// revisions and the model and score behind it.
#[derive(clap::Args)]
pub struct Args {
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
    format: AuditFormat,
    #[command(flatten)]
    stack: StackArgs,
}

pub fn run(home: &Path, args: &Args) -> Result<ExitCode> {
    let customer = args.customer.as_deref();
    let actions = match args.stack.connect()? {
        Some(stack) => {
            let today = chrono::Local::now().date_naive();
            stack.block_on(audited_on(
                &stack.dynamo,
                customer,
                args.from,
                args.to,
                today,
            ))?
        }
        None => audited(&Home::open_existing(home)?, customer, args.from, args.to)?,
    };
    match args.format {
        AuditFormat::Json => println!("{}", serde_json::to_string_pretty(&actions)?),
        AuditFormat::Csv => write_csv(&actions, std::io::stdout().lock())?,
    }
    Ok(ExitCode::SUCCESS)
}
