//! `collect explain --policy FILE --case FILE`: the decision for one case
//! and the trace behind it.

use crate::Format;
use crate::cases;
use crate::policy_files;
use anyhow::{Result, bail};
use chrono::NaiveDate;
use std::path::Path;
use std::process::ExitCode;

pub fn run(
    policy: &Path,
    case_file: &Path,
    name: Option<&str>,
    date: Option<NaiveDate>,
    format: Format,
) -> Result<ExitCode> {
    let (file, compiled) = cases::read(case_file, |_| policy_files::load(policy))?;
    if let Some((_, line, problem)) = file
        .broken
        .iter()
        .find(|(n, _, _)| name.is_none_or(|want| want == n))
        .filter(|_| name.is_some() || file.cases.len() + file.broken.len() == 1)
    {
        bail!("{}:{line}: {problem}", case_file.display());
    }
    let case = match name {
        Some(n) => file.cases.iter().find(|c| c.name == n),
        None if file.cases.len() == 1 => file.cases.first(),
        None => {
            let names: Vec<String> = file.cases.iter().map(|c| format!("  {}", c.name)).collect();
            bail!(
                "{} holds {} cases; pick one with --name:\n{}",
                case_file.display(),
                file.cases.len(),
                names.join("\n")
            )
        }
    };
    let Some(case) = case else {
        bail!(
            "{} has no case named `{}`",
            case_file.display(),
            name.unwrap_or_default()
        );
    };
    let day = match (date, case.days().first()) {
        (Some(d), _) => d,
        (None, Some(d)) => *d,
        (None, None) => bail!("give the day with --date"),
    };
    let mut trace = compiled.explain(&case.facts(day));
    // The decision shown is what the production sweep does that day, swept
    // daily up to it (as `collect test` checks it), not the rule alone.
    let bench = crate::test::Bench::new(compiled, policy)?;
    let mut one = case.clone();
    one.when = cases::When::Day(day);
    let outcome = bench
        .rehearse(&one)
        .map_err(|e| anyhow::anyhow!("{}: case `{}`: {e}", case_file.display(), one.name))?;
    if let Some(o) = outcome.into_iter().next() {
        trace.plan = o.into_day_plan();
    }
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&trace)?),
        Format::Human => print!("{}", trace.render()),
    }
    Ok(ExitCode::SUCCESS)
}
