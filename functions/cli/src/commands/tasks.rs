//! `collect tasks`: the human queue — list the call tasks, the letters
//! awaiting approval and the addresses to fix (a contact hold: the mail
//! bounced, the customer complained, the mail service refused it), show
//! one with its letter as it would go out, and record a person's decision
//! (approve, reject, done) in the audit trail ([`crate::task_queue`],
//! [`crate::contact_holds`]).

use crate::args::{DEFAULT_POLICY, Format, parse_date};
use crate::contact_holds;
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
    /// Mark a call task done, or close a "fix the address" task
    /// (`hold-<customer>`): the steps that waited go out on the next run.
    Done {
        /// The action id or `hold-<customer>`, as `collect tasks` lists it.
        id: String,
        /// What was done (recorded with a closed address task).
        #[arg(long)]
        note: Option<String>,
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
            let addresses = contact_holds::address_tasks(&store)?;
            if format == Format::Json {
                let mut all: Vec<serde_json::Value> = open
                    .iter()
                    .map(serde_json::to_value)
                    .collect::<Result<_, _>>()?;
                for t in &addresses {
                    let mut v = serde_json::to_value(t)?;
                    if let Some(o) = v.as_object_mut() {
                        o.insert("task".into(), "fix_address".into());
                    }
                    all.push(v);
                }
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else if open.is_empty() && addresses.is_empty() {
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
                for t in &addresses {
                    println!(
                        "{}  fix the address  customer {} ({}) <{}>, since {}: {}; {} step(s) waiting{}: correct the address in the ERP's next export, or once it is fixed mark done",
                        t.task_id,
                        t.customer_id,
                        t.customer_name,
                        t.hold.address,
                        t.hold.since,
                        t.why,
                        t.waiting.len(),
                        if t.waiting.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", t.waiting.join(", "))
                        }
                    );
                }
                println!("{} open task(s)", open.len() + addresses.len());
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
        Some(TaskAction::Done { id, note }) => {
            if let Some(by) = args.by.as_deref() {
                if let Some(closed) = contact_holds::close(&store, id, by, note.as_deref(), date)? {
                    for h in &closed {
                        println!(
                            "{id}: closed by {by} on {date}: {} is no longer held",
                            h.address
                        );
                    }
                    println!("the next `collect run` sends the steps that waited");
                    return Ok(ExitCode::SUCCESS);
                }
            }
            (id, Decision::Done)
        }
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
