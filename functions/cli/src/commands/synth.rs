//! `collect synth DIR --today D`: a synthetic book of receivables written
//! as the ERP's CSV exports ([`crate::synthetic`]), to ingest and diff
//! policies on where real customer data may not go (a policy repository's
//! CI).

use crate::args::parse_date;
use crate::synthetic::{book, write};
use anyhow::{Context, Result};
use chrono::NaiveDate;
use std::path::PathBuf;
use std::process::ExitCode;

/// Write a synthetic book (customers, invoices, payments) as CSV exports.
#[derive(clap::Args)]
pub struct Args {
    /// The folder to write `customers.csv`, `invoices.csv` and
    /// `payments.csv` into (created if missing).
    dir: PathBuf,
    /// The day the book is recorded by, YYYY-MM-DD: invoices are issued
    /// over the 90 days before it; payments after it are not in the book.
    #[arg(value_parser = parse_date, long)]
    today: NaiveDate,
    /// How many customers.
    #[arg(long, default_value_t = 300)]
    customers: usize,
    /// The seed: the same seed and day give the same book.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let snapshot = book(args.seed, args.customers.max(1), args.today);
    let written = write(&args.dir, &snapshot)
        .with_context(|| format!("writing the book into {}", args.dir.display()))?;
    println!(
        "{} customers, {} invoices ({} open on {}), {} payments written to {}",
        written.customers,
        written.invoices,
        written.open,
        args.today,
        written.payments,
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
