//! `collect ingest DIR`: loads the ERP exports in DIR into the home
//! ([`crate::ingest_batch`]); bad rows are reported with file, line and
//! column, kept in `<home>/rejects.csv`, and make the command exit 1.

use crate::args::Format;
use crate::home::Home;
use crate::ingest_batch::{Ingested, ingest};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Load customers.csv, invoices.csv, payments.csv and events.jsonl from a folder.
///
/// Re-ingesting updates records and applies new payments. Bad rows are
/// reported with file, line and column, kept in <home>/rejects.csv, and
/// make the command exit 1; the valid rows are loaded all the same.
#[derive(clap::Args)]
pub struct Args {
    /// The folder holding the CSV files (and optionally events.jsonl).
    dir: PathBuf,
    /// Output: `human` for people, `json` for tools.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

pub fn run(home: &Path, args: &Args) -> Result<ExitCode> {
    let home = Home::open(home)?;
    let Ingested {
        customers: c,
        invoices: i,
        payments: p,
        events_new: e,
        held,
        rejects,
        warnings,
        file_errors,
        rejects_path,
        rejects_written,
    } = ingest(&home, &args.dir)?;
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "customers": c, "invoices": i, "payments": p, "events_new": e,
                "contact_holds": held,
                "rejected": rejects.len(),
                "warnings": warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "rejects_file": (rejects_written > 0).then(|| rejects_path.display().to_string()),
                "file_errors": file_errors,
            }))?
        ),
        Format::Human => {
            for err in &file_errors {
                eprintln!("error: {err}");
            }
            println!(
                "customers: {} new, {} updated, {} unchanged{}",
                c.inserted,
                c.updated,
                c.unchanged,
                older(c.older)
            );
            println!(
                "invoices:  {} new, {} updated, {} unchanged{}",
                i.inserted,
                i.updated,
                i.unchanged,
                older(i.older)
            );
            println!(
                "payments:  {} new, {} updated, {} unchanged",
                p.inserted, p.updated, p.unchanged
            );
            println!("events:    {e} new");
            for h in &held {
                println!(
                    "held:      customer {}: {}; a task to fix the address (`collect tasks`)",
                    h.customer_id,
                    h.describe()
                );
            }
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            for r in &rejects {
                eprintln!("rejected: {r}");
            }
            if !rejects.is_empty() {
                println!(
                    "{} row(s) rejected and kept in {}; fix them and ingest again",
                    rejects.len(),
                    rejects_path.display()
                );
            }
            if !file_errors.is_empty() {
                println!(
                    "{} file(s) not loaded (errors above); the other files were loaded",
                    file_errors.len()
                );
            }
        }
    }
    Ok(if rejects.is_empty() && file_errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Records older (`updated_at`) than the stored ones, when there were any.
fn older(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(", {n} older than the stored record (not written)")
    }
}
