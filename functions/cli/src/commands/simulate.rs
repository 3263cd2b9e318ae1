//! `collect simulate --from D1 --to D2`: every day of a period replayed on
//! a copy of the state ([`crate::replay`]), sending nothing, summed up per
//! day, per segment and step, and per channel.

use crate::args::{DEFAULT_POLICY, Format, parse_date};
use crate::home::Home;
use crate::replay::replay;
use crate::scorer::scorer;
use anyhow::Result;
use chrono::NaiveDate;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Replay every day of a period on a copy of the state, sending nothing.
#[derive(clap::Args)]
pub struct Args {
    /// The first day replayed, YYYY-MM-DD, e.g. 2027-03-01.
    #[arg(value_parser = parse_date, long)]
    from: NaiveDate,
    /// The last day replayed, YYYY-MM-DD, e.g. 2027-03-31.
    #[arg(value_parser = parse_date, long)]
    to: NaiveDate,
    /// The policy file to replay.
    #[arg(long, default_value = DEFAULT_POLICY)]
    policy: PathBuf,
    /// Output: `human` for people, `json` for tools.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

pub fn run(home: &Path, args: &Args) -> Result<ExitCode> {
    let home = &Home::open_existing(home)?;
    let Args {
        from,
        to,
        ref policy,
        format,
    } = *args;
    let actions = replay(home, policy, from, to, std::io::stderr().is_terminal())?;
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&actions)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut per_day: BTreeMap<NaiveDate, BTreeMap<String, usize>> = BTreeMap::new();
    let mut per_step: BTreeMap<(String, String, String), BTreeMap<String, usize>> = BTreeMap::new();
    let mut per_channel: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for a in &actions {
        *per_day
            .entry(a.date)
            .or_default()
            .entry(a.status.clone())
            .or_default() += 1;
        *per_step
            .entry((a.segment.clone(), a.step.clone(), a.label.clone()))
            .or_default()
            .entry(a.status.clone())
            .or_default() += 1;
        *per_channel
            .entry(a.channel.clone())
            .or_default()
            .entry(a.status.clone())
            .or_default() += 1;
    }
    let fmt = |m: &BTreeMap<String, usize>| {
        m.iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("Simulation {from} to {to} (nothing sent; the real state is unchanged)");
    println!("scorer: {}", scorer(home)?.describe());
    println!("\nPer day:");
    for (d, m) in &per_day {
        println!("  {d}  {}", fmt(m));
    }
    println!("\nPer segment and step:");
    for ((seg, step, label), m) in &per_step {
        println!("  {seg:<12} {step:<10} {label:<32} {}", fmt(m));
    }
    println!("\nPer channel:");
    for (ch, m) in &per_channel {
        println!("  {ch:<8} {}", fmt(m));
    }
    println!(
        "\n{} action(s) over {} day(s)",
        actions.len(),
        (to - from).num_days() + 1
    );
    Ok(ExitCode::SUCCESS)
}
