//! The work queue behind `collect tasks`, wired: the desk
//! (`collect_delivery::work`, the one implementation of every act, which
//! the web pages run too) on the home's SQLite ledger or on a deployed
//! stack's DynamoDB ledger ([`Where`]), with the policy an approval
//! re-checks and the letter a task would send ([`serve`]). Nothing here
//! decides: it finds the task's customer, picks the policy and asks the
//! desk.

use crate::home::{Home, HomeError};
use crate::policy_load::{LoadError, load_policy};
use crate::runtime::Runtime;
use crate::stack::{Stack, StackError};
use crate::task_view::chain;
use chrono::NaiveDate;
use collect_aws::artifacts::Artifacts;
use collect_delivery::bundle_store::BundleDir;
use collect_delivery::explain::{Basis, ExplainError, InForce, PolicySource, Recorded, WhatIf};
use collect_delivery::ledger::{Ledger, LedgerError};
use collect_delivery::mailer::LocalMailer;
use collect_delivery::message::postal::{AddressBlock, address_block};
use collect_delivery::work::{
    AccountDecision, BulkOutcome, CallOutcome, Desk, DeskError, DeskSettings, NextSweep, Outcome,
    Person, Preview, Role, TaskView, WorkPage, WorkQuery,
};
use collect_engine::contact::customer_of_hold_task;
use collect_engine::domain::{ActionRecord, Channel, Customer, Invoice};
use collect_engine::sweep::PriorLateRate;
use collect_sqlite::store::{SqliteStore, Store, StoreError};
use serde::Serialize;
use std::path::Path;
use std::rc::Rc;

/// Where the queue is: the home, or a deployed stack.
pub enum Where {
    Home(Box<Home>),
    Stack(Box<Stack>),
}

/// Who asks, on which day, with which policy.
pub struct Asked<'a> {
    /// `--by`: required for every act.
    pub by: Option<&'a str>,
    pub role: Role,
    pub day: NaiveDate,
    /// `--policy`: re-checks and letters (when the file is here).
    pub policy: &'a Path,
    /// The customer the task belongs to, when the command names it.
    pub customer: Option<&'a str>,
}

/// What the command line asks of the desk.
pub enum Request {
    List(WorkQuery),
    Show {
        id: String,
    },
    Approve {
        id: String,
    },
    BulkApprove {
        query: WorkQuery,
        expect: usize,
    },
    Reject {
        id: String,
        reason: String,
    },
    Reopen {
        id: String,
        reason: String,
    },
    Call {
        id: String,
        outcome: CallOutcome,
    },
    Done {
        id: String,
        note: Option<String>,
    },
    CloseAccount {
        customer: String,
        invoices: Vec<String>,
        decision: AccountDecision,
    },
}

/// What the desk answered, with what the person should know besides.
#[derive(Serialize)]
pub struct Answer {
    #[serde(flatten)]
    pub what: Said,
    /// What to know (a decision many days old; which policy re-checked).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// The desk's answer.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Said {
    Page(WorkPage),
    Task {
        task: Box<TaskView>,
        /// The task's invoices as the book has them now.
        invoices: Vec<Invoice>,
        /// The message as it would go out, or why not (`None`: a call or an
        /// address to fix).
        #[serde(skip_serializing_if = "Option::is_none")]
        letter: Option<Letter>,
        as_of: NaiveDate,
    },
    Did(Outcome),
    Bulk(BulkOutcome),
}

/// A task's letter, or why it cannot be shown (the task is shown all the
/// same).
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Letter {
    Shown(Preview),
    NotShown(String),
}

/// The command cannot be served; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("say who acts with --by NAME; it is recorded on the task's trail")]
    NoDecider,
    #[error(
        "task `{id}` is not open work on the stack, so whose it is cannot be looked up.\n\
         help: name its customer with --customer C (`collect tasks list` shows it)"
    )]
    NotLocated { id: String },
    #[error(
        "no task `{id}`; `collect tasks list` shows the open ones (an address to fix is \
         `hold-<customer>`)"
    )]
    NoTask { id: String },
    /// Refused by the desk; a form field named in it is the option here.
    #[error("{}", desk_words(.0))]
    Desk(#[from] DeskError),
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}", refused_words(&.0.to_string()))]
    Ledger(#[from] LedgerError),
}

/// The desk's refusal as the command line says it: a field is its option
/// (`reason: …` → `--reason: …`), AWS's refusal with its cause.
fn desk_words(e: &DeskError) -> String {
    match e {
        DeskError::Invalid { field, reason } => format!("{}: {reason}", option_of(field)),
        DeskError::Ledger(l) => refused_words(&l.to_string()),
        other => other.to_string(),
    }
}

/// A ledger's failure, with what to do when AWS refused the credentials.
fn refused_words(said: &str) -> String {
    if said.contains("AccessDenied") || said.contains("HTTP 403") || said.contains("not authorized")
    {
        format!(
            "{said}\nhelp: AWS refused the call: the credentials in use (the AWS SDK's default \
             chain: AWS_PROFILE, AWS_ACCESS_KEY_ID, SSO, the instance role) may not write to the \
             stack's table. An auditor's credentials are read-only: they list, explain and \
             audit; acts need a collector's, an approver's or an admin's"
        )
    } else {
        said.to_string()
    }
}

/// The option of the command line that gives a field of the desk's forms.
fn option_of(field: &str) -> String {
    match field {
        "invoice_ids" => "--invoice".to_string(),
        "until" => "--promised".to_string(),
        "text" => "--note".to_string(),
        "outcome" | "id" => "the task id".to_string(),
        other => format!("--{}", other.replace('_', "-")),
    }
}

/// The policy an approval re-checks: the file given, else the revision
/// the task was decided under, as the home or the stack keeps it.
enum Policies<'a> {
    File(WhatIf),
    Home(Recorded<'a, BundleDir>),
    Stack(Recorded<'a, Artifacts>),
    /// A stack named without its bucket: nothing to re-check with.
    None,
}

impl PolicySource for Policies<'_> {
    async fn policy_for(
        &self,
        recorded: Option<&ActionRecord>,
    ) -> Result<Rc<InForce>, ExplainError> {
        match self {
            Policies::File(w) => w.policy_for(recorded).await,
            Policies::Home(r) => r.policy_for(recorded).await,
            Policies::Stack(r) => r.policy_for(recorded).await,
            Policies::None => Err(ExplainError::NoRevision {
                invoice_id: recorded
                    .map(|a| a.invoice_id.to_string())
                    .unwrap_or_default(),
                day: recorded.map_or(NaiveDate::MIN, |a| a.decided_on),
            }),
        }
    }
}

/// The policy file, when it is here and loads.
fn policy_file(path: &Path) -> Result<Option<WhatIf>, LoadError> {
    if !path.exists() {
        return Ok(None);
    }
    let loaded = load_policy(path)?;
    Ok(Some(WhatIf(Rc::new(InForce {
        policy: loaded.policy,
        bundle_revision: loaded.bundle,
        basis: Basis::WhatIf,
        source: path.display().to_string(),
    }))))
}

/// Serves one request on the home or the stack.
pub fn serve(place: &Where, asked: &Asked<'_>, req: &Request) -> Result<Answer, TaskError> {
    let who = person(asked, req)?;
    let settings = DeskSettings {
        next_sweep: NextSweep::Local,
        ..DeskSettings::default()
    };
    let (file, file_error) = match policy_file(asked.policy) {
        Ok(f) => (f, None),
        Err(e) => (None, Some(chain(&e))),
    };
    let mut notes = Vec::new();
    if let Some(e) = &file_error {
        notes.push(format!("{} does not load ({e})", asked.policy.display()));
    }
    match place {
        Where::Home(home) => {
            let store = home.store()?;
            let bundles = home.bundles();
            let policies = match file {
                Some(f) => Policies::File(f),
                None => Policies::Home(Recorded::new(&bundles, home.bundle_scratch())),
            };
            let recorded = matches!(policies, Policies::Home(_));
            let desk = Desk::new(&store, &policies, &settings, asked.day);
            let locate = |id: &str| -> Result<Option<String>, TaskError> {
                Ok(Store::action(&store, id)?.map(|a| a.customer_id.to_string()))
            };
            let mut answer = pollster::block_on(ask(&desk, &who, asked, req, &locate, false))?;
            if recorded && rechecked(req) {
                answer.notes.push(format!(
                    "{} is not here: the holds were re-checked with the revision the task was \
                     decided under, as the home keeps it; pass --policy FILE to check with the \
                     policy in force now",
                    asked.policy.display()
                ));
            }
            if let Said::Task { task, letter, .. } = &mut answer.what
                && let Some(a) = &task.action
                && a.channel != Channel::Call
            {
                *letter = Some(home_letter(home, &store, asked, a));
            }
            answer.notes.splice(0..0, notes);
            Ok(answer)
        }
        Where::Stack(stack) => {
            let policies = match (file, &stack.artifacts) {
                (Some(f), _) => Policies::File(f),
                (None, Some(a)) => Policies::Stack(Recorded::new(a, stack.scratch())),
                (None, None) => Policies::None,
            };
            if matches!(policies, Policies::None) && rechecked(req) {
                return Err(StackError::NoBucket.into());
            }
            let desk = Desk::new(&stack.dynamo, &policies, &settings, asked.day);
            let locate = |_: &str| -> Result<Option<String>, TaskError> { Ok(None) };
            let mut answer = stack.block_on(ask(&desk, &who, asked, req, &locate, true))?;
            on_schedule(&mut answer.what);
            if let Said::Task { task, letter, .. } = &mut answer.what
                && task
                    .action
                    .as_ref()
                    .is_some_and(|a| a.channel != Channel::Call)
            {
                *letter = Some(Letter::NotShown(
                    "on a stack the queue's web page previews it: the letter carries a pay \
                     link signed with the stack's key, which the command line does not read"
                        .to_string(),
                ));
            }
            answer.notes.splice(0..0, notes);
            Ok(answer)
        }
    }
}

/// On a stack the next sweep is the schedule's (the `SweepSchedule` the
/// stack was deployed with, which the command line does not read): an
/// approval says so instead of naming `collect run`.
fn on_schedule(said: &mut Said) {
    let local = NextSweep::Local.describe();
    let stack = "the stack's next scheduled sweep (its `SweepSchedule`)";
    let fix = |o: &mut Outcome| o.said = o.said.replace(&local, stack);
    match said {
        Said::Did(o) => fix(o),
        Said::Bulk(b) => b.approved.iter_mut().for_each(fix),
        _ => {}
    }
}

/// Whether the request re-checks the policy's holds.
fn rechecked(req: &Request) -> bool {
    matches!(req, Request::Approve { .. } | Request::BulkApprove { .. })
}

/// The person acting: `--by` is required for an act, a reader may be
/// anonymous.
fn person(asked: &Asked<'_>, req: &Request) -> Result<Person, TaskError> {
    let reads = matches!(req, Request::List(_) | Request::Show { .. });
    let id = match asked.by {
        Some(by) if !by.trim().is_empty() => by.trim().to_string(),
        _ if reads => "(reader)".to_string(),
        _ => return Err(TaskError::NoDecider),
    };
    Ok(Person {
        id,
        role: asked.role,
    })
}

/// The customer a task belongs to: an address task names it; else the
/// command's `--customer`, the index of open work, or (on the home) the
/// action's record.
async fn customer_of<L: Ledger + ?Sized>(
    ledger: &L,
    asked: &Asked<'_>,
    id: &str,
    locate: &dyn Fn(&str) -> Result<Option<String>, TaskError>,
    on_stack: bool,
) -> Result<String, TaskError> {
    if let Some(c) = customer_of_hold_task(id) {
        return Ok(c.to_string());
    }
    if let Some(c) = asked.customer {
        return Ok(c.to_string());
    }
    if let Some(e) = ledger
        .open_work(None)
        .await?
        .into_iter()
        .find(|e| e.task_id == id)
    {
        return Ok(e.customer_id);
    }
    match locate(id)? {
        Some(c) => Ok(c),
        None if on_stack => Err(TaskError::NotLocated { id: id.to_string() }),
        None => Err(TaskError::NoTask { id: id.to_string() }),
    }
}

/// One request to the desk.
async fn ask<L: Ledger + ?Sized, P: PolicySource + ?Sized>(
    desk: &Desk<'_, L, P>,
    who: &Person,
    asked: &Asked<'_>,
    req: &Request,
    locate: &dyn Fn(&str) -> Result<Option<String>, TaskError>,
    on_stack: bool,
) -> Result<Answer, TaskError> {
    let mut warnings = Vec::new();
    let what = match req {
        Request::List(q) => Said::Page(desk.queue(who, q).await?),
        Request::Show { id } => {
            let c = customer_of(desk.ledger, asked, id, locate, on_stack).await?;
            let task = task_with_warnings(desk, who, &c, id).await?;
            let book = desk.ledger.customer_book(&c).await?;
            let invoices = task
                .action
                .iter()
                .filter_map(|a| book.invoice(&a.invoice_id).cloned())
                .collect();
            Said::Task {
                task: Box::new(task),
                invoices,
                letter: None,
                as_of: desk.today,
            }
        }
        Request::Approve { id } => {
            let c = customer_of(desk.ledger, asked, id, locate, on_stack).await?;
            // What to know before it goes (a decision many days old).
            if let Ok(task) = task_with_warnings(desk, who, &c, id).await {
                warnings.extend(task.warnings.iter().map(|w| format!("task `{id}`: {w}")));
            }
            Said::Did(desk.approve(who, &c, id).await?)
        }
        Request::BulkApprove { query, expect } => {
            Said::Bulk(desk.bulk_approve(who, query, *expect).await?)
        }
        Request::Reject { id, reason } => {
            let c = customer_of(desk.ledger, asked, id, locate, on_stack).await?;
            Said::Did(desk.reject(who, &c, id, reason).await?)
        }
        Request::Reopen { id, reason } => {
            let c = customer_of(desk.ledger, asked, id, locate, on_stack).await?;
            Said::Did(desk.reopen(who, &c, id, reason).await?)
        }
        Request::Call { id, outcome } => {
            let c = customer_of(desk.ledger, asked, id, locate, on_stack).await?;
            Said::Did(desk.record_call(who, &c, id, outcome).await?)
        }
        Request::Done { id, note } => {
            if customer_of_hold_task(id).is_none() {
                // A call task: done means reached, with what was said.
                let c = customer_of(desk.ledger, asked, id, locate, on_stack).await?;
                let outcome = CallOutcome::Reached { note: note.clone() };
                Said::Did(desk.record_call(who, &c, id, &outcome).await?)
            } else {
                Said::Did(
                    desk.close_contact(who, id, note.as_deref().unwrap_or_default())
                        .await?,
                )
            }
        }
        Request::CloseAccount {
            customer,
            invoices,
            decision,
        } => {
            // No --invoice: every invoice of the customer still open.
            let invoices = if invoices.is_empty() {
                let book = desk.ledger.customer_book(customer).await?;
                book.invoices_of(customer)
                    .iter()
                    .filter(|i| book.is_open(i, desk.today))
                    .map(|i| i.invoice_id.clone())
                    .collect()
            } else {
                invoices.clone()
            };
            Said::Did(
                desk.decide_account(who, customer, &invoices, decision)
                    .await?,
            )
        }
    };
    Ok(Answer {
        what,
        warnings,
        notes: Vec::new(),
    })
}

/// The desk's task, with the warning about a letter that cannot be posted.
async fn task_with_warnings<L: Ledger + ?Sized, P: PolicySource + ?Sized>(
    desk: &Desk<'_, L, P>,
    who: &Person,
    customer_id: &str,
    id: &str,
) -> Result<TaskView, DeskError> {
    let mut task = desk.task(who, customer_id, id).await?;
    if let (Some(a), Some(customer)) = (&task.action, &task.customer)
        && a.channel == Channel::Letter
    {
        let w = postal_warning(customer);
        task.warnings.extend(w);
    }
    Ok(task)
}

/// A printed letter to a customer without a deliverable postal address
/// says so in its window and cannot be posted: the person approving it is
/// told before.
fn postal_warning(c: &Customer) -> Option<String> {
    match address_block(&c.name, &c.address, c.country.as_deref(), None) {
        AddressBlock::Missing { missing, .. } => Some(format!(
            "no deliverable postal address on file (missing {}): the printed letter says so in \
             its window and cannot be posted until the customer's record has it",
            missing.join(", ")
        )),
        _ => None,
    }
}

/// The letter of a task as it would go out on the day asked, rendered
/// with the templates beside `--policy` by the sweep's own composer.
fn home_letter(home: &Home, store: &SqliteStore, asked: &Asked<'_>, a: &ActionRecord) -> Letter {
    let shown = || -> Result<Preview, String> {
        let loaded = load_policy(asked.policy).map_err(|e| chain(&e))?;
        let pay_links = home.pay_links().map_err(|e| chain(&e))?;
        let rt = Runtime::for_home(
            home,
            &loaded,
            &PriorLateRate,
            LocalMailer::Null,
            &pay_links,
            None,
        )
        .map_err(|e| chain(&e))?;
        let book =
            pollster::block_on(store.customer_book(&a.customer_id)).map_err(|e| chain(&e))?;
        collect_delivery::work::preview(&rt.sweeper, &book, a, asked.day).map_err(|e| chain(&e))
    };
    match shown() {
        Ok(p) => Letter::Shown(p),
        Err(why) => Letter::NotShown(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_of_the_desk_is_named_as_the_option_that_gives_it() {
        let said = |field| {
            desk_words(&DeskError::Invalid {
                field,
                reason: "is required".to_string(),
            })
        };
        assert_eq!(said("reason"), "--reason: is required");
        assert_eq!(said("invoice_ids"), "--invoice: is required");
        assert_eq!(said("until"), "--promised: is required");
        assert_eq!(said("text"), "--note: is required");
        assert_eq!(said("min_balance"), "--min-balance: is required");
    }

    #[test]
    fn a_refusal_of_the_credentials_says_what_to_do() {
        let refused = refused_words("DynamoDB UpdateItem: AccessDeniedException: not allowed");
        assert!(refused.contains("help: AWS refused the call"), "{refused}");
        assert!(refused.contains("read-only"), "{refused}");
        let other = refused_words("DynamoDB Query: ThrottlingException: slow down");
        assert_eq!(other, "DynamoDB Query: ThrottlingException: slow down");
    }
}
