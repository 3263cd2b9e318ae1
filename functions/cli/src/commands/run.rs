//! `collect run --date D`: one day's sweep of the home — decide, record
//! and send — with the text report of what it did ([`crate::run_report`]).
//! A day before the last swept day is refused unless `--backfill`; a day
//! later than tomorrow by the wall clock, unless `--allow-future-date`
//! ([`collect_engine::sweep::day_guard`]).

use crate::args::{DEFAULT_POLICY, Format, parse_date};
use crate::home::Home;
use crate::policy_load::{keep_bundle, load_policy};
use crate::run_report::describe_run;
use crate::runtime::{Runtime, last_swept_day};
use crate::scorer::scorer;
use anyhow::{Result, bail};
use chrono::{NaiveDate, NaiveTime};
use collect_delivery::delivery::RunError;
use collect_delivery::mailer::LocalMailer;
use collect_engine::sweep::day_guard::check_sweep_day;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Run one day's sweep: decide, record and send.
#[derive(clap::Args)]
pub struct Args {
    /// The day to sweep, YYYY-MM-DD, e.g. 2027-03-31.
    #[arg(value_parser = parse_date, long)]
    date: NaiveDate,
    /// The policy file to run.
    #[arg(long, default_value = DEFAULT_POLICY)]
    policy: PathBuf,
    /// Show what would happen; record and send nothing.
    #[arg(long)]
    dry_run: bool,
    /// The sending time in UTC, `HH:MM` (quiet hours are checked against it).
    #[arg(long)]
    at: Option<NaiveTime>,
    /// When another run of this home is going on, wait for it to end
    /// instead of stopping with an error.
    #[arg(long)]
    wait: bool,
    /// Sweep a day earlier than the last day this home was swept:
    /// re-decides that day and records (and sends) its actions dated
    /// that day. Without it such a date is refused.
    #[arg(long)]
    backfill: bool,
    /// Sweep a day later than tomorrow by this computer's clock. Without
    /// it such a date is refused: a mistyped year would take or skip every
    /// earlier step at once and then refuse the real day.
    #[arg(long)]
    allow_future_date: bool,
    /// Output: `human` for people, `json` for tools.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

/// How many of a run's records `collect run` keeps to list them.
const RUN_KEEP_RECORDS: usize = 20_000;

/// The environment variable that stands in for the clock's date in the
/// future-date guard (rehearsals and tests on books dated ahead).
const TODAY_VAR: &str = "COLLECT_TODAY";

/// Today's date by the wall clock (UTC), or `COLLECT_TODAY` when set: the
/// edge of the system, read for the future-date guard only.
fn today() -> Result<NaiveDate> {
    match std::env::var(TODAY_VAR) {
        Ok(set) => match parse_date(&set) {
            Ok(day) => Ok(day),
            Err(e) => bail!("{TODAY_VAR}: {e}"),
        },
        Err(_) => Ok(chrono::Utc::now().date_naive()),
    }
}

pub fn run(home: &Path, args: &Args) -> Result<ExitCode> {
    let Args {
        date,
        ref policy,
        dry_run,
        at,
        wait,
        backfill,
        allow_future_date,
        format,
    } = *args;
    let today = today()?;
    // A dry run records nothing, so it cannot bury the book: it may look ahead.
    if let Err(refused) = check_sweep_day(date, today, allow_future_date || dry_run) {
        bail!(
            "{refused}. Check the date; to sweep {date} anyway, add --allow-future-date \
             (to see what it would do without recording or sending, add --dry-run)"
        );
    }
    let home = &Home::open(home)?;
    let loaded = load_policy(policy)?;
    let store = home.store()?;
    if let Some(last) = last_swept_day(&store)?
        && date < last
        && !backfill
    {
        bail!(
            "refusing to sweep {date}: this home was last swept on {last}, and a sweep of an \
             earlier day would record (and send) actions dated {date} after those of later days. \
             To go on, sweep {last} or a later day (running {last} again finishes anything it \
             left). To re-decide {date} anyway, add --backfill (README: \"Backfilling a past day\")"
        );
    }
    if !dry_run {
        keep_bundle(home, policy, &loaded);
    }
    let outbox = home.outbox();
    let pay_links = home.pay_links()?;
    let scorer = scorer(home)?;
    let mut rt = Runtime::for_home(
        home,
        &loaded,
        scorer.as_dyn(),
        LocalMailer::Outbox(&outbox),
        &pay_links,
        at,
    )?;
    // The report lists tasks and approvals one by one up to this many
    // records; a larger sweep reports their counts (`collect tasks` lists
    // them), so its memory does not grow with the book.
    rt.keep_records = RUN_KEEP_RECORDS;
    let report = match rt.run_day_waiting(&store, date, dry_run, wait) {
        // The mail service failed: say what went out before it stopped,
        // then the error (what to fix).
        Err(e @ RunError::MailService { .. }) => {
            if let (RunError::MailService { report, .. }, Format::Human) = (&e, format) {
                print!("{}", describe_run(report, date, home));
            }
            return Err(e.into());
        }
        other => other?,
    };
    match format {
        Format::Json => {
            eprintln!("scorer: {}", scorer.describe());
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Format::Human => {
            print!("{}", describe_run(&report, date, home));
            println!("scorer: {}", scorer.describe());
        }
    }
    Ok(
        if report.failed.is_empty() && report.plan.unprocessable.is_empty() {
            ExitCode::SUCCESS
        } else {
            if matches!(format, Format::Human) {
                eprintln!(
                    "error: {} message(s) failed and {} customer(s) were set aside; the rest of the sweep is done (see above)",
                    report.failed.len(),
                    report.plan.unprocessable.len()
                );
            }
            ExitCode::FAILURE
        },
    )
}
