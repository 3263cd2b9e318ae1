//! `collect tasks`: the human queue — list the call tasks and the letters
//! awaiting approval, show one with its letter as it would go out, and
//! record a person's decision (approve, reject, done) in the audit trail
//! ([`crate::task_queue`]).

use crate::args::{DEFAULT_POLICY, Format, parse_date};
use crate::home::Home;
use crate::task_queue::{self, Decision, render_letter};
use crate::task_view;
use anyhow::Result;
use chrono::NaiveDate;
use collect_engine::domain::{ActionStatus, Channel};
use collect_sqlite::store::Store;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The human queue: approvals and call tasks.
#[derive(clap::Args)]
pub struct Args {
    /// What to do (default: list).
    #[command(subcommand)]
    action: Option<TaskAction>,
    /// Who decides (recorded in the audit trail).
    #[arg(long, global = true)]
    by: Option<String>,
    /// The day of the decision, YYYY-MM-DD, e.g. 2027-03-31; defaults to today.
    #[arg(value_parser = parse_date, long, global = true)]
    date: Option<NaiveDate>,
    /// Output: `human` for people, `json` for tools.
    #[arg(long, value_enum, default_value = "human", global = true)]
    format: Format,
}

#[derive(clap::Subcommand)]
enum TaskAction {
    /// List tasks awaiting a person.
    List,
    /// Show one task: the letter or call with the customer, the amount and
    /// the days overdue.
    Show {
        /// The action id, as `collect tasks` lists it.
        id: String,
        /// The policy whose templates render the letter.
        #[arg(long, default_value = DEFAULT_POLICY)]
        policy: PathBuf,
    },
    /// Approve an action awaiting approval; the next run sends it.
    Approve {
        /// The action id, as `collect tasks` lists it.
        id: String,
        /// The policy whose holds are re-checked before approving.
        #[arg(long, default_value = DEFAULT_POLICY)]
        policy: PathBuf,
    },
    /// Reject an action awaiting approval; it is never sent.
    Reject {
        /// The action id, as `collect tasks` lists it.
        id: String,
    },
    /// Mark a call task done.
    Done {
        /// The action id, as `collect tasks` lists it.
        id: String,
    },
}

pub fn run(home: &Path, args: &Args) -> Result<ExitCode> {
    // The command line is the edge where "today" may come from the clock.
    let date = args
        .date
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let format = args.format;
    let home = Home::open_existing(home)?;
    let mut store = home.store()?;
    let (id, decision) = match &args.action {
        None | Some(TaskAction::List) => {
            let open = task_queue::open_tasks(&store)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&open)?);
            } else if open.is_empty() {
                println!("no open tasks");
            } else {
                for a in &open {
                    let what = if a.status == ActionStatus::AwaitingApproval {
                        "approve or reject"
                    } else {
                        "call, then mark done"
                    };
                    println!(
                        "{}  {}  {}  invoice {} (customer {}), decided {}: {what}",
                        a.action_id, a.label, a.segment, a.invoice_id, a.customer_id, a.decided_on
                    );
                }
                println!("{} open task(s)", open.len());
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(TaskAction::Show { id, policy }) => {
            let record = task_queue::task(&store, id)?;
            let book = store.load_book()?;
            let mut view = task_view::view(&book, &record, date);
            if record.channel != Channel::Call {
                view.letter = Some(render_letter(&home, policy, &book, &record, date));
            }
            task_view::print(&view, format)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(TaskAction::Approve { id, policy }) => (id, Decision::Approve { policy }),
        Some(TaskAction::Reject { id }) => (id, Decision::Reject),
        Some(TaskAction::Done { id }) => (id, Decision::Done),
    };
    let checked = task_queue::check(&home, &store, decision, id, args.by.as_deref(), date)?;
    for w in &checked.warnings {
        eprintln!("warning: task `{id}`: {w}");
    }
    let by = checked.by;
    task_queue::record(&mut store, decision, checked, date)?;
    let verb = decision.verb();
    println!("{id}: {verb} by {by} on {date}");
    if matches!(decision, Decision::Approve { .. }) {
        println!("the next `collect run` sends it");
    }
    Ok(ExitCode::SUCCESS)
}
