//! `collect report`: what worked over a period — KPIs, aging, pay rates by
//! step, segment, template and channel, experiments with their uplift, and
//! reminder timing ([`crate::report`]); for people, tools, spreadsheets, or
//! as one HTML page with charts.

use crate::args::parse_date;
use crate::home::Home;
use crate::report::{build, csv, human, write_html};
use anyhow::Result;
use chrono::NaiveDate;
use clap::ValueEnum;
use collect_sqlite::store::Store;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Human,
    Json,
    Csv,
}

/// What worked: KPIs, aging, pay rates by step, segment, template and
/// channel, experiments with their uplift, and reminder timing.
///
/// The period defaults to the 90 days up to the last invoice issued
/// (see policy/README.md, "Measuring what works"); outcomes are followed
/// up to the last recorded day.
#[derive(clap::Args)]
pub struct Args {
    /// The period's first day, YYYY-MM-DD, e.g. 2027-01-01.
    #[arg(value_parser = parse_date, long)]
    from: Option<NaiveDate>,
    /// The period's last day, YYYY-MM-DD, e.g. 2027-03-31.
    #[arg(value_parser = parse_date, long)]
    to: Option<NaiveDate>,
    /// Also write one self-contained HTML page with charts here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Output: `human`, `json` (keys named after the measures) or `csv`.
    #[arg(long, value_enum, default_value = "human")]
    format: ReportFormat,
}

pub fn run(home: &Path, args: &Args) -> Result<ExitCode> {
    let home = Home::open_existing(home)?;
    let format = args.format;
    let store = home.store()?;
    let book = store.load_book()?;
    let report = build(
        &book,
        args.from,
        args.to,
        Some(home.settings.send_time_utc.clone()),
    )?;
    match format {
        ReportFormat::Human => print!("{}", human(&report)),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        ReportFormat::Csv => print!("{}", csv(&report)),
    }
    if let Some(path) = &args.html {
        write_html(path, &report)?;
        if format == ReportFormat::Human {
            println!("\nHTML report with charts: {}", path.display());
        } else {
            eprintln!("HTML report with charts: {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
