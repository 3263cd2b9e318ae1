//! The explanation of a recorded decision: one model ([`Explanation`]) that
//! `collect explain` renders as text and prints as JSON, and that a web
//! page can render from the same ports, with no CLI.
//!
//! It is built by [`explain_invoice`] over the [`Ledger`] port: the
//! customer's book as it was **before** the day's actions
//! ([`crate::ledger::rewind`]), the day replayed on it with the production
//! sweep under the policy in force ([`PolicySource`]: the bundle revision
//! the day's actions recorded, from a [`crate::bundle_store::BundleStore`],
//! or a policy given as a what-if), and the replay's plan matched with the
//! actions the ledger holds for that day. A step recorded that day is shown
//! as recorded, with its action id, status and trail; what the replay and
//! the record disagree on is shown as such, never as "no action".

use crate::bundle_store::{BundleStore, RevisionError, load_revision};
use crate::ledger::rewind::book_before;
use crate::ledger::{Ledger, LedgerError, LogEntry};
use crate::rehearsal::planned_outcome;
use chrono::NaiveDate;
use collect_engine::domain::{ActionRecord, ActionStatus};
use collect_engine::sweep::{self, RiskScorer, ScoreInput, SweepOptions};
use policy_lang::Policy;
use policy_lang::explain::Trace;
use rust_decimal::Decimal;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;

/// Why a recorded decision cannot be explained.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("no invoice `{invoice_id}` in the book of customer `{customer_id}`")]
    NoInvoice {
        invoice_id: String,
        customer_id: String,
    },
    #[error("invoice `{invoice_id}` names customer `{customer_id}`, who is not in the book")]
    UnknownCustomer {
        invoice_id: String,
        customer_id: String,
    },
    /// No action of the invoice records the bundle revision it was
    /// decided under (none recorded yet, or recorded by an earlier release).
    #[error("no action of invoice `{invoice_id}` records a bundle revision to explain {day} with")]
    NoRevision { invoice_id: String, day: NaiveDate },
    /// The revision recorded is not kept (a home of an earlier release).
    #[error("{source}")]
    Revision {
        revision: String,
        /// The action that recorded it.
        action_id: String,
        git_revision: Option<String>,
        #[source]
        source: RevisionError,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Whether the day was replayed with what was in force, or with a policy
/// given instead (a what-if).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The bundle revision the day's actions recorded.
    Recorded,
    /// A policy given by the caller instead of the recorded one.
    WhatIf,
}

/// A policy to replay with, and where it came from.
pub struct InForce {
    pub policy: Policy,
    pub bundle_revision: Option<String>,
    pub basis: Basis,
    /// Where it was read: a bundle store's location, or the file given.
    pub source: String,
}

/// Which policy replays a day: the one a revision names, or always the same.
#[allow(async_fn_in_trait)]
pub trait PolicySource {
    /// The policy for a day whose actions recorded `revision` (with the
    /// action that recorded it and its Git revision, for messages).
    async fn policy_for(
        &self,
        recorded: Option<&ActionRecord>,
    ) -> Result<Rc<InForce>, ExplainError>;
}

/// The policy given, whatever was recorded: a what-if.
pub struct WhatIf(pub Rc<InForce>);

impl PolicySource for WhatIf {
    async fn policy_for(&self, _: Option<&ActionRecord>) -> Result<Rc<InForce>, ExplainError> {
        Ok(self.0.clone())
    }
}

/// The bundle revision each day's actions recorded, from a bundle store
/// (each revision loaded once, its files written under `scratch/<revision>`).
pub struct Recorded<'a, S: ?Sized> {
    pub store: &'a S,
    pub scratch: PathBuf,
    loaded: RefCell<HashMap<String, Rc<InForce>>>,
}

impl<'a, S: BundleStore + ?Sized> Recorded<'a, S> {
    pub fn new(store: &'a S, scratch: PathBuf) -> Self {
        Recorded {
            store,
            scratch,
            loaded: RefCell::new(HashMap::new()),
        }
    }
}

impl<S: BundleStore + ?Sized> PolicySource for Recorded<'_, S> {
    async fn policy_for(
        &self,
        recorded: Option<&ActionRecord>,
    ) -> Result<Rc<InForce>, ExplainError> {
        let Some((a, revision)) =
            recorded.and_then(|a| a.bundle_revision.as_deref().map(|r| (a, r)))
        else {
            return Err(ExplainError::NoRevision {
                invoice_id: recorded
                    .map(|a| a.invoice_id.to_string())
                    .unwrap_or_default(),
                day: recorded.map_or(NaiveDate::MIN, |a| a.decided_on),
            });
        };
        if let Some(p) = self.loaded.borrow().get(revision) {
            return Ok(p.clone());
        }
        let scratch = self.scratch.join(revision);
        let bundle = load_revision(self.store, revision, &scratch)
            .await
            .map_err(|source| ExplainError::Revision {
                revision: revision.to_string(),
                action_id: a.action_id.to_string(),
                git_revision: a.git_revision.clone(),
                source,
            })?;
        let p = Rc::new(InForce {
            policy: bundle.policy,
            bundle_revision: Some(revision.to_string()),
            basis: Basis::Recorded,
            source: self.store.location(revision),
        });
        self.loaded
            .borrow_mut()
            .insert(revision.to_string(), p.clone());
        Ok(p)
    }
}

/// The risk scorer, with what people are shown of it.
pub trait ExplainScorer {
    fn scorer(&self) -> &dyn RiskScorer;
    /// One line for people: which scorer, from where.
    fn describe(&self) -> String {
        self.scorer().name().to_string()
    }
    /// The `n` largest contributions to the score (none for a scorer that
    /// cannot say).
    fn factors(&self, input: &ScoreInput<'_>, n: usize) -> Vec<(String, f64)> {
        let _ = (input, n);
        Vec::new()
    }
}

/// The explanation of one invoice on one day.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub invoice: InvoiceView,
    pub day: NaiveDate,
    pub policy: PolicyUsed,
    pub risk: RiskView,
    /// The policy's trace: holds, segments, the ladder; its `plan` is the
    /// replay's plan for the invoice.
    pub trace: Trace,
    pub decision: Decision,
    /// Every recorded action of the invoice, by date then id, with its trail.
    pub recorded_actions: Vec<RecordedAction>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InvoiceView {
    pub invoice_id: String,
    pub number: String,
    pub customer_id: String,
    pub amount: Decimal,
    pub currency: String,
    pub due_date: NaiveDate,
    /// On the day explained.
    pub balance: Decimal,
    pub open: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyUsed {
    pub name: String,
    pub file: String,
    /// SHA-256 of the policy text.
    pub policy_revision: String,
    pub bundle_revision: Option<String>,
    pub basis: Basis,
    /// Where the policy was read.
    pub source: String,
    /// The bundle revisions the day's recorded actions name (for a
    /// what-if: what it is compared with).
    pub recorded_bundle_revisions: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RiskView {
    /// The risk the day was decided with: the score an action of the
    /// invoice recorded that day (`recorded`), else the scorer's now.
    pub value: Option<f64>,
    pub scorer: String,
    pub scorer_version: String,
    /// Taken from the record, not scored again.
    pub recorded: bool,
    pub described: String,
    pub factors: Vec<RiskFactor>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RiskFactor {
    pub name: String,
    pub contribution: f64,
}

/// The day's decision for the invoice: the replay matched with the record.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub segment: Option<String>,
    pub steps: Vec<DecidedStep>,
    /// Why the replay takes no step, or passes some over (holds, a policy
    /// not in effect, a skipped step's note).
    pub reasons: Vec<String>,
}

/// How a step of the day stands between the replay and the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// Recorded that day, and the replay takes it too.
    Recorded,
    /// Recorded that day; the replay does not take it.
    RecordedNotReplayed,
    /// Recorded on an earlier day and changed that day (a person's work,
    /// the delivery); the replay has nothing to decide about it.
    Changed,
    /// The replay takes it; the ledger holds no such action that day.
    ReplayedNotRecorded,
}

/// One step of the day, with why (its rule, template or queue, risk).
#[derive(Debug, Clone, Serialize)]
pub struct DecidedStep {
    #[serde(rename = "match")]
    pub matched: Match,
    pub action_id: String,
    pub label: String,
    /// Its place on the ladder: `due + 30d`.
    pub step: String,
    /// `file:line` of the rule that fired.
    pub rule: String,
    /// The template (email, letter, offer) or queue (call).
    pub template: String,
    pub segment: String,
    pub risk: Option<f64>,
    /// What the replay decides for it (`None`: the replay does not take it).
    pub replayed_status: Option<ActionStatus>,
    pub replayed_note: Option<String>,
    /// Its status as recorded now (`None`: not recorded).
    pub recorded_status: Option<ActionStatus>,
    /// Its trail, for a recorded step.
    pub trail: Vec<LogEntry>,
}

/// A recorded action and its trail.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedAction {
    #[serde(flatten)]
    pub record: ActionRecord,
    pub trail: Vec<LogEntry>,
}

/// What to explain: one invoice of one customer, on one day.
pub struct Request<'a> {
    pub customer_id: &'a str,
    pub invoice_id: &'a str,
    pub day: NaiveDate,
}

/// The action whose recorded revision decides how `day` is replayed: one
/// recorded that day, else the latest before it, else the latest.
pub fn revision_action(actions: &[ActionRecord], day: NaiveDate) -> Option<&ActionRecord> {
    let with = || actions.iter().filter(|a| a.bundle_revision.is_some());
    let by_day = |a: &&ActionRecord| (a.decided_on, a.action_id.to_string());
    with()
        .filter(|a| a.decided_on == day)
        .min_by_key(by_day)
        .or_else(|| with().filter(|a| a.decided_on < day).max_by_key(by_day))
        .or_else(|| with().max_by_key(by_day))
}

/// The explanation of `req`: see the module's documentation.
pub async fn explain_invoice<L: Ledger + ?Sized, P: PolicySource + ?Sized>(
    ledger: &L,
    policies: &P,
    scorer: &dyn ExplainScorer,
    opts: &SweepOptions,
    req: &Request<'_>,
) -> Result<Explanation, ExplainError> {
    let Request {
        customer_id,
        invoice_id,
        day,
    } = *req;
    let book = ledger.customer_book(customer_id).await?;
    let mut trails: HashMap<String, Vec<LogEntry>> = HashMap::new();
    for a in book.actions.values().flatten() {
        trails.insert(a.action_id.to_string(), ledger.trail(a).await?);
    }
    let mut mine: Vec<ActionRecord> = book.actions_of(invoice_id).to_vec();
    mine.sort_by(|a, b| (a.decided_on, &a.action_id).cmp(&(b.decided_on, &b.action_id)));
    let day_actions: Vec<&ActionRecord> = mine.iter().filter(|a| a.decided_on == day).collect();
    let in_force = match revision_action(&mine, day) {
        Some(a) => policies.policy_for(Some(a)).await,
        None => policies.policy_for(None).await,
    }
    .map_err(|e| match e {
        ExplainError::NoRevision { .. } => ExplainError::NoRevision {
            invoice_id: invoice_id.to_string(),
            day,
        },
        other => other,
    })?;
    let policy = &in_force.policy;

    let before = book_before(&book, &trails, day);
    let Some(invoice) = before.invoice(invoice_id) else {
        return Err(ExplainError::NoInvoice {
            invoice_id: invoice_id.to_string(),
            customer_id: customer_id.to_string(),
        });
    };
    let Some(customer) = before.customers.get(&invoice.customer_id) else {
        return Err(ExplainError::UnknownCustomer {
            invoice_id: invoice_id.to_string(),
            customer_id: invoice.customer_id.to_string(),
        });
    };
    let stats = before.customer_stats(&customer.customer_id, day);
    let input = ScoreInput {
        book: &before,
        invoice,
        day,
        stats: &stats,
    };
    // The day is replayed with the risk it was decided with: a model
    // retrained since must not change what the replay says of that day.
    let as_recorded = AsRecorded::of(scorer.scorer(), &book, day);
    let recorded_risk = as_recorded.recorded.get(invoice_id).cloned();
    let risk = as_recorded.score(&input);
    let factors = match &recorded_risk {
        // Factors are the scorer's now: shown only when it is the one that
        // scored that day.
        Some(r) if r.scorer != scorer.scorer().name() || r.version != scorer.scorer().version() => {
            Vec::new()
        }
        _ => scorer
            .factors(&input, 3)
            .into_iter()
            .map(|(name, contribution)| RiskFactor { name, contribution })
            .collect(),
    };
    let facts = sweep::facts(&before, customer, invoice, &stats, risk, day);
    let mut trace = policy.explain(&facts);
    let plan = sweep::plan_sweep(&before, policy, &as_recorded, day, opts);
    let outcome = planned_outcome(&plan, invoice_id, trace.plan.segment.clone());
    let reasons = outcome.reasons.clone();
    trace.plan = outcome.into_day_plan();

    let trail_of = |id: &str| trails.get(id).cloned().unwrap_or_default();
    let mut steps: Vec<DecidedStep> = Vec::new();
    let replayed: Vec<&ActionRecord> = plan
        .records
        .iter()
        .filter(|r| r.invoice_id == invoice_id)
        .collect();
    for r in &replayed {
        let held = mine.iter().find(|a| a.action_id == r.action_id);
        let recorded_that_day = held
            .filter(|a| a.decided_on == day || trail_of(&a.action_id).iter().any(|e| e.day == day));
        steps.push(match recorded_that_day {
            Some(a) => step(Match::Recorded, a, Some(r), trail_of(&a.action_id)),
            None => step(Match::ReplayedNotRecorded, r, Some(r), Vec::new()),
        });
    }
    let changed_that_day = |a: &ActionRecord| trail_of(&a.action_id).iter().any(|e| e.day == day);
    for a in &mine {
        if replayed.iter().any(|r| r.action_id == a.action_id) {
            continue;
        }
        let matched = if day_actions.iter().any(|d| d.action_id == a.action_id)
            && !trail_of(&a.action_id).iter().any(|e| e.day < day)
        {
            Match::RecordedNotReplayed
        } else if changed_that_day(a) {
            Match::Changed
        } else {
            continue;
        };
        steps.push(step(matched, a, None, trail_of(&a.action_id)));
    }

    let recorded_bundle_revisions = {
        let mut v: Vec<String> = day_actions
            .iter()
            .filter_map(|a| a.bundle_revision.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let invoice_view = InvoiceView {
        invoice_id: invoice.invoice_id.to_string(),
        number: invoice.number.clone(),
        customer_id: invoice.customer_id.to_string(),
        amount: invoice.amount,
        currency: invoice.currency.clone(),
        due_date: invoice.due_date,
        balance: before.balance(invoice, day),
        open: before.is_open(invoice, day),
    };
    let recorded_actions = mine
        .iter()
        .map(|a| RecordedAction {
            record: a.clone(),
            trail: trail_of(&a.action_id),
        })
        .collect();
    Ok(Explanation {
        invoice: invoice_view,
        day,
        policy: PolicyUsed {
            name: policy.name.clone(),
            file: policy.file.clone(),
            policy_revision: policy.revision.clone(),
            bundle_revision: in_force.bundle_revision.clone(),
            basis: in_force.basis,
            source: in_force.source.clone(),
            recorded_bundle_revisions,
        },
        risk: match recorded_risk {
            Some(r) => RiskView {
                value: risk,
                scorer: r.scorer.clone(),
                scorer_version: r.version.clone(),
                recorded: true,
                described: format!("{} v{}, as recorded that day", r.scorer, r.version),
                factors,
            },
            None => RiskView {
                value: risk,
                scorer: scorer.scorer().name().to_string(),
                scorer_version: scorer.scorer().version().to_string(),
                recorded: false,
                described: scorer.describe(),
                factors,
            },
        },
        decision: Decision {
            segment: trace.plan.segment.clone(),
            steps,
            reasons,
        },
        trace,
        recorded_actions,
    })
}

fn step(
    matched: Match,
    a: &ActionRecord,
    replayed: Option<&ActionRecord>,
    trail: Vec<LogEntry>,
) -> DecidedStep {
    let recorded = !matches!(matched, Match::ReplayedNotRecorded);
    DecidedStep {
        matched,
        action_id: a.action_id.to_string(),
        label: a.label.clone(),
        step: policy_lang::labels::offset_text(a.step_offset),
        rule: a.rule.clone(),
        template: a.target.clone(),
        segment: a.segment.clone(),
        risk: a.risk,
        replayed_status: replayed.map(|r| r.status),
        replayed_note: replayed.and_then(|r| r.note.clone()),
        recorded_status: recorded.then_some(a.status),
        trail,
    }
}

impl Explanation {
    /// The recorded steps of the day (what `explain ACTION_ID` points at).
    pub fn recorded_step(&self, action_id: &str) -> Option<&DecidedStep> {
        self.decision
            .steps
            .iter()
            .find(|s| s.action_id == action_id && s.recorded_status.is_some())
    }
}

/// A risk an action recorded, with the scorer that gave it.
#[derive(Debug, Clone)]
struct RecordedRisk {
    value: Option<f64>,
    scorer: String,
    version: String,
}

/// The scorer of a replayed day: an invoice with an action recorded that
/// day gets the risk that action recorded; any other invoice is scored now.
struct AsRecorded<'a> {
    now: &'a dyn RiskScorer,
    recorded: HashMap<String, RecordedRisk>,
}

impl<'a> AsRecorded<'a> {
    fn of(now: &'a dyn RiskScorer, book: &collect_engine::book::Book, day: NaiveDate) -> Self {
        let recorded = book
            .actions
            .values()
            .flatten()
            .filter(|a| a.decided_on == day)
            .map(|a| {
                (
                    a.invoice_id.to_string(),
                    RecordedRisk {
                        value: a.risk,
                        scorer: a.scorer.clone(),
                        version: a.scorer_version.clone(),
                    },
                )
            })
            .collect();
        AsRecorded { now, recorded }
    }
}

impl RiskScorer for AsRecorded<'_> {
    fn name(&self) -> &str {
        self.now.name()
    }
    fn version(&self) -> &str {
        self.now.version()
    }
    fn score(&self, input: &ScoreInput<'_>) -> Option<f64> {
        match self.recorded.get(input.invoice.invoice_id.as_str()) {
            Some(r) => r.value,
            None => self.now.score(input),
        }
    }
}
