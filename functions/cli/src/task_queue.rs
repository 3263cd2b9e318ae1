//! The human queue behind `collect tasks`: the call tasks and the letters
//! awaiting approval, a task's letter as it would go out, and the checks
//! made before a person's decision is recorded — above all before a
//! letter decided days ago is approved (settled, disputed, promised,
//! do-not-contact, a hold of the policy; see [`crate::task_view`]).

use crate::home::Home;
use crate::policy_load::{LoadError, load_policy};
use crate::runtime::Runtime;
use crate::scorer::{ScorerError, scorer};
use crate::task_view::{self, Letter, LetterError, chain};
use chrono::NaiveDate;
use collect_delivery::mailer::LocalMailer;
use collect_engine::book::Book;
use collect_engine::domain::{ActionRecord, ActionStatus, Channel};
use collect_engine::sweep;
use collect_sqlite::store::{SqliteStore, Store, StoreError};
use std::path::Path;

/// A decision that cannot be recorded; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("no task `{id}`; `collect tasks list` shows the open ones")]
    NoTask { id: String },
    #[error("say who decides with --by NAME; it is recorded for the audit trail")]
    NoDecider,
    #[error("task `{id}` is {status}, so it cannot be {verb}")]
    WrongStatus {
        id: String,
        status: &'static str,
        verb: &'static str,
    },
    #[error("task `{id}` is a {channel}; only call tasks are marked done")]
    NotACall { id: String, channel: Channel },
    /// Approving it now would be wrong: what stands in the way.
    #[error(
        "task `{id}` is not approved: {}; reject it with `collect tasks reject {id}`",
        blockers.join("; ")
    )]
    Blocked { id: String, blockers: Vec<String> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The policy's holds could not be re-checked.
#[derive(Debug, thiserror::Error)]
pub enum HoldsError {
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The policy file is not here and the revision the action was decided
    /// under is not kept either.
    #[error("{} is not here, and the revision the task was decided under is not kept", path.display())]
    Kept {
        path: std::path::PathBuf,
        #[source]
        source: Box<collect_delivery::explain::ExplainError>,
    },
    #[error(transparent)]
    Scorer(#[from] ScorerError),
}

/// The tasks awaiting a person: letters to approve or reject, calls to make.
pub fn open_tasks(store: &SqliteStore) -> Result<Vec<ActionRecord>, StoreError> {
    Ok(store
        .actions()?
        .into_iter()
        .filter(|a| {
            a.status == ActionStatus::AwaitingApproval
                || (a.status == ActionStatus::Planned && a.channel == Channel::Call)
        })
        .collect())
}

/// One task by its id.
pub fn task(store: &SqliteStore, id: &str) -> Result<ActionRecord, TaskError> {
    store
        .action(id)?
        .ok_or_else(|| TaskError::NoTask { id: id.to_string() })
}

/// What a person decides about a task.
#[derive(Clone, Copy)]
pub enum Decision<'p> {
    /// Approve a letter; the holds of this policy are re-checked first.
    Approve {
        policy: &'p Path,
    },
    Reject,
    /// A call made.
    Done,
}

impl Decision<'_> {
    /// The status the task must have.
    fn expected(self) -> ActionStatus {
        match self {
            Decision::Approve { .. } | Decision::Reject => ActionStatus::AwaitingApproval,
            Decision::Done => ActionStatus::Planned,
        }
    }

    /// The status it gets.
    fn next(self) -> ActionStatus {
        match self {
            Decision::Approve { .. } => ActionStatus::Approved,
            Decision::Reject => ActionStatus::Rejected,
            Decision::Done => ActionStatus::Sent,
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Decision::Approve { .. } => "approved",
            Decision::Reject => "rejected",
            Decision::Done => "done",
        }
    }
}

/// A decision that passed its checks, ready to record.
pub struct Checked<'b> {
    record: ActionRecord,
    /// Who decides.
    pub by: &'b str,
    /// What to know before it is recorded (a decision many days old).
    pub warnings: Vec<String>,
}

/// Checks that `by` may take `decision` on task `id` on `day`: who
/// decides is said, the task is in the right state, only calls are
/// marked done, and nothing that changed since the sweep decided a letter
/// stands in the way of approving it.
pub fn check<'b>(
    home: &Home,
    store: &SqliteStore,
    decision: Decision<'_>,
    id: &str,
    by: Option<&'b str>,
    day: NaiveDate,
) -> Result<Checked<'b>, TaskError> {
    let Some(by) = by else {
        return Err(TaskError::NoDecider);
    };
    let record = task(store, id)?;
    let verb = decision.verb();
    if record.status != decision.expected() {
        return Err(TaskError::WrongStatus {
            id: id.to_string(),
            status: record.status.as_str(),
            verb,
        });
    }
    if decision.next() == ActionStatus::Sent && record.channel != Channel::Call {
        return Err(TaskError::NotACall {
            id: id.to_string(),
            channel: record.channel,
        });
    }
    let mut warnings = Vec::new();
    if let Decision::Approve { policy } = decision {
        // Re-check what may have changed since the sweep decided it.
        let book = store.load_book()?;
        let mut view = task_view::view(&book, &record, day);
        match policy_holds(home, policy, &book, &record, day) {
            Ok((holds, note)) => {
                view.blockers.extend(holds);
                view.warnings.extend(note);
            }
            Err(e) => view.warnings.push(format!(
                "the policy's holds were not re-checked ({}); pass --policy FILE",
                chain(&e)
            )),
        }
        if !view.blockers.is_empty() {
            return Err(TaskError::Blocked {
                id: id.to_string(),
                blockers: view.blockers,
            });
        }
        warnings = view.warnings;
    }
    Ok(Checked {
        record,
        by,
        warnings,
    })
}

/// Records a checked decision, dated `day`, in the task's audit trail.
pub fn record(
    store: &mut SqliteStore,
    decision: Decision<'_>,
    checked: Checked<'_>,
    day: NaiveDate,
) -> Result<(), TaskError> {
    let Checked { mut record, by, .. } = checked;
    let next = decision.next();
    let verb = decision.verb();
    record.status = next;
    record.decided_by = Some(by.to_string());
    record.decided_at = Some(day);
    if next == ActionStatus::Sent {
        record.sent_on = Some(day);
    }
    record.note = Some(format!("{verb} by {by} on {day}"));
    store.transition(&record, &[decision.expected()], day, Some(by))?;
    Ok(())
}

/// The holds of `policy` that apply to the action's invoice on `day`, as
/// the sweep would evaluate them. When the policy file is not here (a
/// command run outside the policy's checkout), the holds are those of the
/// revision the task was decided under, which the home keeps, with a note
/// saying so.
fn policy_holds(
    home: &Home,
    policy: &Path,
    book: &Book,
    record: &ActionRecord,
    day: NaiveDate,
) -> Result<(Vec<String>, Option<String>), HoldsError> {
    let (policy_used, note) = if policy.exists() {
        (load_policy(policy)?.policy, None)
    } else {
        use collect_delivery::explain::{PolicySource, Recorded};
        let bundles = home.bundles();
        let recorded = Recorded::new(&bundles, home.bundle_scratch());
        let in_force = pollster::block_on(recorded.policy_for(Some(record))).map_err(|source| {
            HoldsError::Kept {
                path: policy.to_path_buf(),
                source: Box::new(source),
            }
        })?;
        let revision = in_force.bundle_revision.as_deref().unwrap_or_default();
        let note = format!(
            "{} is not here: the holds were re-checked with the revision the task was decided \
             under (bundle {}); pass --policy FILE to check with the policy in force now",
            policy.display(),
            revision.get(..12).unwrap_or(revision)
        );
        (in_force.policy.clone(), Some(note))
    };

    let (Some(invoice), Some(customer)) = (
        book.invoice(&record.invoice_id),
        book.customers.get(record.customer_id.as_str()),
    ) else {
        return Ok((vec![], note));
    };
    let stats = book.customer_stats(&customer.customer_id, day);
    let scorer = scorer(home)?;
    let input = sweep::ScoreInput {
        book,
        invoice,
        day,
        stats: &stats,
    };
    let risk = scorer.as_dyn().score(&input);
    let facts = sweep::facts(book, customer, invoice, &stats, risk, day);
    let decision = policy_used.decide(&facts);
    let holds = policy_lang::eval::bits(decision.holds)
        .filter_map(|i| policy_used.holds.get(i))
        .map(|h| format!("the policy's hold `{}` applies on {day}", h.name))
        .collect();
    Ok((holds, note))
}

/// The message of an action as it would go out on `day`, rendered with the
/// templates beside `policy`: subject and text, or why it cannot be shown.
pub fn render_letter(
    home: &Home,
    policy: &Path,
    book: &Book,
    record: &ActionRecord,
    day: NaiveDate,
) -> Result<Letter, LetterError> {
    let loaded = load_policy(policy).map_err(LetterError::Policy)?;
    let pay_links = home.pay_links().map_err(LetterError::Home)?;
    let rt = Runtime::for_home(
        home,
        &loaded,
        &sweep::PriorLateRate,
        LocalMailer::Null,
        &pay_links,
        None,
    )
    .map_err(LetterError::Home)?;
    let customer = book
        .customers
        .get(record.customer_id.as_str())
        .ok_or_else(|| LetterError::NoCustomer {
            customer_id: record.customer_id.to_string(),
        })?;
    let planned = collect_engine::sweep::PlannedMessage {
        message_id: record.message_id.clone().unwrap_or_default(),
        customer_id: record.customer_id.clone(),
        channel: record.channel,
        template: record.target.clone(),
        action_ids: vec![record.action_id.clone()],
        invoice_ids: vec![record.invoice_id.clone()],
        plan: None,
        tags: vec![],
    };
    let msg = rt
        .sweeper
        .compose(book, customer, &planned, day)
        .map_err(LetterError::Compose)?;
    Ok(Letter {
        to: format!("{} <{}>", msg.to.name, msg.to.email),
        subject: msg.subject,
        text: msg.text,
    })
}
