//! `collect tasks`: the work queue of the collections team — letters
//! awaiting approval, call tasks, addresses to fix, accounts at the end of
//! their ladder — and what a person does with it. Every act goes through
//! the desk (`collect_delivery::work`), the same code the web pages run,
//! on the home's SQLite ledger or, with `--table/--bucket`, on a deployed
//! stack's DynamoDB ledger ([`crate::task_queue`], [`crate::stack`]).

use crate::args::{DEFAULT_POLICY, Format, parse_date};
use crate::stack::StackArgs;
use crate::task_queue::{self, Request, Where};
use crate::task_view;
use anyhow::{Result, bail};
use chrono::NaiveDate;
use collect_delivery::work::{AccountDecision, CallOutcome, Role, Sort, WorkKind, WorkQuery};
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The work queue: letters to approve, calls to make, addresses to fix,
/// accounts at the end of their ladder.
///
/// On the home by default; with `--table NAME --bucket NAME` on a deployed
/// stack (its DynamoDB table and S3 bucket), through the same port.
#[derive(clap::Args)]
pub struct Args {
    /// What to do (default: list).
    #[command(subcommand)]
    action: Option<TaskAction>,
    /// Who acts (recorded on every trail line the act writes): a name
    /// locally, an email on a stack.
    #[arg(long, global = true)]
    by: Option<String>,
    /// The role acting: collector (calls, end of ladder), approver
    /// (letters, end of ladder), auditor (read only) or admin (all).
    #[arg(long, global = true, default_value = "admin", value_parser = parse_role)]
    role: Role,
    /// The day of the act, YYYY-MM-DD, e.g. 2027-03-31; defaults to today.
    #[arg(value_parser = parse_date, long, global = true)]
    date: Option<NaiveDate>,
    /// Output: `human` for people, `json` for tools.
    #[arg(long, value_enum, default_value = "human", global = true)]
    format: Format,
    /// The policy whose holds an approval re-checks and whose templates
    /// render a letter (when the file is not here, the revision the task
    /// was decided under, as the home or the stack keeps it).
    #[arg(long, default_value = DEFAULT_POLICY, global = true)]
    policy: PathBuf,
    /// Whose work: `list` shows only this customer's; an act on a stack
    /// names the customer of a task that is no longer open (a reopen).
    #[arg(long, global = true)]
    customer: Option<String>,
    #[command(flatten)]
    stack: StackArgs,
}

/// The filters of the queue (`list`, `approve --all-matching`).
#[derive(clap::Args, Clone, Default)]
struct Filter {
    /// Only this kind of work: approval, call or fix_contact.
    #[arg(long, value_parser = parse_kind)]
    kind: Option<WorkKind>,
    /// Only this queue: `approvals`, `contacts`, or a call queue of the
    /// policy (e.g. `collections`).
    #[arg(long)]
    queue: Option<String>,
    /// Only this segment of the policy (e.g. `strategic`).
    #[arg(long)]
    segment: Option<String>,
    /// Only work with at least this open balance, e.g. 1000 or 1000.50.
    #[arg(long, value_parser = parse_amount)]
    min_balance: Option<Decimal>,
    /// Only work on invoices at least this many days overdue.
    #[arg(long)]
    min_days_overdue: Option<i64>,
}

#[derive(clap::Subcommand)]
enum TaskAction {
    /// List the open work, largest risk × balance first, a page at a time,
    /// with the count of each queue.
    List {
        #[command(flatten)]
        filter: Filter,
        /// The order: priority (risk × balance), balance, days_overdue, age.
        #[arg(long, default_value = "priority", value_parser = parse_sort)]
        sort: Sort,
        /// Which page, from 1.
        #[arg(long, default_value_t = 1)]
        page: usize,
        /// Rows per page.
        #[arg(long, default_value_t = 50)]
        per_page: usize,
    },
    /// Show one task: the customer, the invoice with its live balance, the
    /// trail, what stands in the way of approving it, and its letter as it
    /// would go out.
    Show {
        /// The task id, as `collect tasks` lists it.
        id: String,
    },
    /// Approve a letter (the policy's holds and the invoice are re-checked
    /// first; it goes out with the next `collect run`, or the stack's next
    /// scheduled sweep), or with --all-matching every letter of a filter.
    Approve {
        /// The task id, as `collect tasks` lists it (not with --all-matching).
        #[arg(
            required_unless_present = "all_matching",
            conflicts_with = "all_matching"
        )]
        id: Option<String>,
        /// Approve every letter the filter matches, on all pages.
        #[arg(long, requires = "expect")]
        all_matching: bool,
        /// With --all-matching: how many letters you expect it to approve
        /// (`collect tasks list --kind approval` with the same filter says);
        /// nothing is approved when the count differs.
        #[arg(long)]
        expect: Option<usize>,
        #[command(flatten)]
        filter: Filter,
    },
    /// Reject a letter awaiting approval; it is never sent.
    Reject {
        /// The task id, as `collect tasks` lists it.
        id: String,
        /// Why (required; recorded in the trail).
        #[arg(long)]
        reason: String,
    },
    /// Undo a decision taken today (an approval or a rejection): the task is
    /// open again, with a new trail line; nothing is deleted.
    Reopen {
        /// The task id.
        id: String,
        /// Why (required; recorded in the trail).
        #[arg(long)]
        reason: String,
    },
    /// Record what a call gave: reached (the call is done), a promise to
    /// pay (the policy's promise hold applies from the next sweep), a
    /// dispute, a wrong contact, no answer (the call comes back after the
    /// configured business days), or a note.
    Call {
        /// The call task's id.
        id: String,
        /// Reached and talked it through: the call is done (say what was
        /// said with --note).
        #[arg(long, group = "outcome")]
        reached: bool,
        /// Reached: they promised to pay by this day, YYYY-MM-DD, e.g. 2027-03-31.
        #[arg(long, value_parser = parse_date, group = "outcome")]
        promised: Option<NaiveDate>,
        /// Reached: they dispute the invoice (say why with --note).
        #[arg(long, group = "outcome")]
        disputed: bool,
        /// The number or address is wrong: give the right ones with --email/--phone.
        #[arg(long, group = "outcome")]
        wrong_contact: bool,
        /// Nobody answered: call again later.
        #[arg(long, group = "outcome")]
        no_answer: bool,
        /// With --wrong-contact: the right email address.
        #[arg(long, requires = "wrong_contact")]
        email: Option<String>,
        /// With --wrong-contact: the right phone number.
        #[arg(long, requires = "wrong_contact")]
        phone: Option<String>,
        /// What was said (alone: a note on the task, which stays open).
        #[arg(long)]
        note: Option<String>,
    },
    /// Close an address to fix (`hold-<customer>`) once it is fixed: the
    /// steps that waited go out with the next sweep. For a call task: the
    /// customer was reached and the call is done (`call ID --reached`).
    Done {
        /// `hold-<customer>` or a call task's id, as `collect tasks` lists it.
        id: String,
        /// What was done (recorded in the trail).
        #[arg(long)]
        note: Option<String>,
    },
    /// Decide an account at the end of its ladder: hand it to a collection
    /// agency, write it off, or keep working it. Dunning stops for the first
    /// two; each is recorded with who decided and why.
    CloseAccount {
        /// The customer id.
        customer: String,
        /// Only these invoices (default: every open invoice of the customer).
        #[arg(long = "invoice")]
        invoices: Vec<String>,
        /// Hand the account to this collection agency.
        #[arg(long, group = "decision")]
        agency: Option<String>,
        /// Write the open balance off.
        #[arg(long, group = "decision")]
        write_off: bool,
        /// Keep working the account.
        #[arg(long, group = "decision")]
        keep_working: bool,
        /// Why (required; recorded with the outcome).
        #[arg(long)]
        reason: String,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s)
        .ok_or_else(|| format!("`{s}` is not a role: write collector, approver, auditor or admin"))
}

fn parse_kind(s: &str) -> Result<WorkKind, String> {
    WorkKind::parse(s)
        .ok_or_else(|| format!("`{s}` is not a kind of work: write approval, call or fix_contact"))
}

fn parse_sort(s: &str) -> Result<Sort, String> {
    Sort::parse(s).ok_or_else(|| {
        format!("`{s}` is not an order: write priority, balance, days_overdue or age")
    })
}

fn parse_amount(s: &str) -> Result<Decimal, String> {
    s.trim()
        .parse::<Decimal>()
        .ok()
        .filter(|d| !d.is_sign_negative())
        .ok_or_else(|| format!("`{s}` is not an amount: write it like 1000 or 1000.50"))
}

impl Filter {
    fn query(&self, customer: Option<&str>) -> WorkQuery {
        WorkQuery {
            kind: self.kind,
            queue: self.queue.clone(),
            segment: self.segment.clone(),
            customer_id: customer.map(str::to_string),
            min_balance: self.min_balance,
            min_days_overdue: self.min_days_overdue,
            ..WorkQuery::default()
        }
    }
}

/// The request the command line makes of the desk.
fn request(action: Option<&TaskAction>, customer: Option<&str>) -> Result<Request> {
    Ok(match action {
        None => Request::List(WorkQuery {
            customer_id: customer.map(str::to_string),
            ..WorkQuery::default()
        }),
        Some(TaskAction::List {
            filter,
            sort,
            page,
            per_page,
        }) => {
            if *page == 0 || *per_page == 0 {
                bail!("--page and --per-page count from 1");
            }
            Request::List(WorkQuery {
                sort: *sort,
                page: *page,
                per_page: *per_page,
                ..filter.query(customer)
            })
        }
        Some(TaskAction::Show { id }) => Request::Show { id: id.clone() },
        Some(TaskAction::Approve {
            id: Some(id),
            all_matching: false,
            ..
        }) => Request::Approve { id: id.clone() },
        Some(TaskAction::Approve { expect, filter, .. }) => {
            let Some(expect) = *expect else {
                bail!("--all-matching needs --expect N: how many letters you expect it to approve");
            };
            let mut query = filter.query(customer);
            query.kind = Some(WorkKind::Approval);
            Request::BulkApprove { query, expect }
        }
        Some(TaskAction::Reject { id, reason }) => Request::Reject {
            id: id.clone(),
            reason: reason.clone(),
        },
        Some(TaskAction::Reopen { id, reason }) => Request::Reopen {
            id: id.clone(),
            reason: reason.clone(),
        },
        Some(TaskAction::Call {
            id,
            reached,
            promised,
            disputed,
            wrong_contact,
            no_answer,
            email,
            phone,
            note,
        }) => {
            let note = note.clone();
            let outcome = if *reached {
                CallOutcome::Reached { note }
            } else if let Some(until) = promised {
                CallOutcome::Promised {
                    until: *until,
                    note,
                }
            } else if *disputed {
                CallOutcome::Disputed {
                    note: note.unwrap_or_default(),
                }
            } else if *wrong_contact {
                CallOutcome::WrongContact {
                    email: email.clone(),
                    phone: phone.clone(),
                    note,
                }
            } else if *no_answer {
                CallOutcome::NoAnswer { note }
            } else if let Some(text) = note {
                CallOutcome::Note { text }
            } else {
                bail!(
                    "say what the call gave: --reached, --promised YYYY-MM-DD, --disputed, \
                     --wrong-contact, --no-answer or --note TEXT"
                );
            };
            Request::Call {
                id: id.clone(),
                outcome,
            }
        }
        Some(TaskAction::Done { id, note }) => Request::Done {
            id: id.clone(),
            note: note.clone(),
        },
        Some(TaskAction::CloseAccount {
            customer,
            invoices,
            agency,
            write_off,
            keep_working,
            reason,
        }) => {
            let reason = reason.clone();
            let decision = match (agency, write_off, keep_working) {
                (Some(agency), _, _) => AccountDecision::Agency {
                    agency: agency.clone(),
                    reason,
                },
                (None, true, _) => AccountDecision::WriteOff { reason },
                (None, false, true) => AccountDecision::KeepWorking { reason },
                (None, false, false) => bail!(
                    "say what to do with the account: --agency NAME, --write-off or --keep-working"
                ),
            };
            Request::CloseAccount {
                customer: customer.clone(),
                invoices: invoices.clone(),
                decision,
            }
        }
    })
}

pub fn run(home: &Path, args: &Args) -> Result<ExitCode> {
    // The command line is the edge where "today" may come from the clock.
    let date = args
        .date
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let req = request(args.action.as_ref(), args.customer.as_deref())?;
    let place = match args.stack.connect()? {
        Some(stack) => Where::Stack(Box::new(stack)),
        None => Where::Home(Box::new(crate::home::Home::open_existing(home)?)),
    };
    let hint = match &args.action {
        Some(TaskAction::CloseAccount { customer, .. }) => Some(customer.as_str()),
        _ => args.customer.as_deref(),
    };
    let answer = task_queue::serve(
        &place,
        &task_queue::Asked {
            by: args.by.as_deref(),
            role: args.role,
            day: date,
            policy: &args.policy,
            customer: hint,
        },
        &req,
    )?;
    for w in &answer.notes {
        eprintln!("note: {w}");
    }
    task_view::print(&answer, args.format)?;
    Ok(ExitCode::SUCCESS)
}
