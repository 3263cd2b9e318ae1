//! A policy test case rehearsed through production: a one-customer book in
//! the in-memory ledger, swept day by day by the same [`Sweeper::run`] that
//! `collect run` and the sweep Lambda call (planning, do-not-contact, holds,
//! catch-up, consolidation, caps, the checks made again just before
//! sending, rendering), with a mail service that accepts everything.
//!
//! `collect test` reads what each day did to the case's invoice from the
//! ledger: what went out, what waits for a person, what was deferred and
//! why, and otherwise why nothing happened. There is no second semantics to
//! keep in step with the sweep: a test that passes here passes in
//! production.

use crate::delivery::{RunError, RunRequest, Sender, Sweeper};
use crate::ledger::memory::MemoryLedger;
use crate::ledger::{LeaseHolder, Ledger, LedgerError, Scope};
use crate::mailer::NullMailer;
use crate::message::{PayLinks, Templates};
use chrono::{NaiveDate, NaiveTime};
use collect_engine::book::Book;
use collect_engine::domain::{
    ActionId, ActionRecord, ActionStatus, Arm, Customer, Event, Experiment, Invoice, Payment,
};
use collect_engine::sweep::{RiskScorer, ScoreInput, SweepOptions, facts};
use policy_lang::Policy;
use policy_lang::eval::bits;
use std::collections::BTreeMap;

/// The records of a rehearsal's book: one customer, the invoice under test
/// and whatever the case needs around it (payments, events, other invoices,
/// past contacts as recorded actions).
#[derive(Debug, Clone)]
pub struct CaseBook {
    pub customer: Customer,
    pub invoices: Vec<Invoice>,
    pub payments: Vec<Payment>,
    pub events: Vec<Event>,
    /// Recorded before the first day (e.g. contacts already made).
    pub actions: Vec<ActionRecord>,
}

/// The invoice under test, the days to sweep and what the scorer says.
#[derive(Debug, Clone)]
pub struct CaseRun {
    pub invoice_id: String,
    /// The first day swept: the sweep runs every day from here, as in
    /// production, so the ladder stands where daily sweeps would have left it.
    pub start: NaiveDate,
    /// The days whose outcome is reported (all within `start..`).
    pub checked: Vec<NaiveDate>,
    /// The model's probability of late payment, every day.
    pub risk: Option<f64>,
    /// The customer's local time when the sweep sends (quiet hours).
    pub local_time: NaiveTime,
}

/// One action of the day on the invoice under test.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DayAction {
    /// `email friendly-reminder`, `call collections`, `offer plan`, …
    pub label: String,
    pub requires_approval: bool,
    /// `file:line` of the step in the policy.
    pub rule: String,
    /// What happened to it: `sent`, `awaiting_approval`, `planned` (a call
    /// task), `deferred`, `failed`.
    pub status: ActionStatus,
    /// Why it was deferred or failed, as recorded.
    pub note: Option<String>,
    /// The experiment and arm that chose the action, if one did.
    pub experiment: Option<Experiment>,
    pub arm: Option<Arm>,
}

impl DayAction {
    /// What the day did with a recorded action, as it stands.
    fn of(a: &ActionRecord) -> DayAction {
        DayAction {
            label: a.label.clone(),
            requires_approval: a.requires_approval,
            rule: a.rule.clone(),
            status: a.status,
            note: a.note.clone(),
            experiment: a.experiment.clone(),
            arm: a.arm.clone(),
        }
    }

    /// The label with ` requires approval` when it does.
    pub fn describe(&self) -> String {
        if self.requires_approval {
            format!("{} requires approval", self.label)
        } else {
            self.label.clone()
        }
    }

    pub fn is_deferred(&self) -> bool {
        self.status == ActionStatus::Deferred
    }
}

/// What one day's sweep did to the invoice under test.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DayOutcome {
    pub day: Option<NaiveDate>,
    /// The segment the policy put the invoice in that day.
    pub segment: Option<String>,
    /// Sent, handed to a person (approval, call task), deferred or failed.
    pub actions: Vec<DayAction>,
    /// Why nothing (more) happened: holds, skipped steps, the control
    /// group, conditions not met, "no step due today".
    pub reasons: Vec<String>,
}

/// A rehearsal that could not run (a fault of the engine, not of the case).
#[derive(Debug, thiserror::Error)]
pub enum RehearsalError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("the sweep of {day} failed: {error}")]
    Run { day: NaiveDate, error: String },
}

/// The case's risk, every day: the scorer of a rehearsal.
struct FixedRisk(Option<f64>);

impl RiskScorer for FixedRisk {
    fn name(&self) -> &str {
        "policy test case"
    }
    fn version(&self) -> &str {
        "1"
    }
    fn score(&self, _input: &ScoreInput<'_>) -> Option<f64> {
        self.0
    }
}

/// Rehearses one case: sweeps every day from `run.start` through the last
/// checked day and returns the outcome of each checked day.
pub fn rehearse(
    policy: &Policy,
    templates: &Templates,
    pay_links: &PayLinks,
    book: &CaseBook,
    run: &CaseRun,
) -> Result<Vec<DayOutcome>, RehearsalError> {
    pollster::block_on(rehearse_async(policy, templates, pay_links, book, run))
}

async fn rehearse_async(
    policy: &Policy,
    templates: &Templates,
    pay_links: &PayLinks,
    book: &CaseBook,
    run: &CaseRun,
) -> Result<Vec<DayOutcome>, RehearsalError> {
    let ledger = MemoryLedger::new();
    ledger.upsert_customer(book.customer.clone());
    for i in &book.invoices {
        ledger.upsert_invoice(i.clone());
    }
    for p in &book.payments {
        ledger.upsert_payment(p.clone());
    }
    for e in &book.events {
        ledger.insert_event(e.clone());
    }
    if !book.actions.is_empty() {
        ledger
            .record_actions(&book.actions, &std::collections::HashMap::new(), run.start)
            .await?;
    }
    let scorer = FixedRisk(run.risk);
    let sweeper = Sweeper {
        policy,
        scorer: &scorer,
        templates,
        pay_links,
        sender: Sender {
            company: "Policy test".to_string(),
            email: "ar@policy-test.example".to_string(),
            reply_to: None,
            address: Vec::new(),
            country: None,
        },
        options: SweepOptions {
            git_revision: None,
            customer_local_time: Some(run.local_time),
            ..SweepOptions::default()
        },
        pay_link_days: 30,
        grace: chrono::Duration::zero(),
        lease_ttl: chrono::Duration::minutes(1),
    };
    let Some(&last) = run.checked.iter().max() else {
        return Ok(Vec::new());
    };
    let mut outcomes = Vec::new();
    let mut before = statuses(&ledger, &run.invoice_id);
    for day in run.start.iter_days().take_while(|d| *d <= last) {
        let now = move || day.and_time(run.local_time).and_utc();
        let req = RunRequest {
            scope: Scope::All,
            day,
            dry_run: false,
            holder: LeaseHolder::this_process(now()),
            now: &now,
            faults: None,
            keep_records: usize::MAX,
        };
        let report = match sweeper.run(&ledger, &NullMailer, &req).await {
            Ok(r) => r,
            Err(RunError::Ledger(e)) => return Err(e.into()),
            Err(e) => {
                return Err(RehearsalError::Run {
                    day,
                    error: e.to_string(),
                });
            }
        };
        let after = statuses(&ledger, &run.invoice_id);
        if run.checked.contains(&day) {
            let book = ledger.customer_book(&book.customer.customer_id).await?;
            let failed: Vec<&str> = report.failed.iter().map(|(id, _)| id.as_str()).collect();
            let mut out = outcome(policy, &book, run, day, &before, &after, &failed);
            for (id, why) in &report.plan.not_covered {
                if *id == run.invoice_id {
                    out.reasons.push(why.clone());
                }
            }
            for h in report
                .plan
                .held
                .iter()
                .filter(|h| h.invoice_id == run.invoice_id)
            {
                out.reasons.push(format!("held by {}", h.holds.join(", ")));
            }
            for (id, why) in &report.plan.stopped {
                if *id == run.invoice_id {
                    out.reasons.push(why.clone());
                }
            }
            if out.actions.is_empty() && out.reasons.is_empty() {
                out.reasons.push("no step due today".to_string());
            }
            outcomes.push(out);
        }
        before = after;
    }
    Ok(outcomes)
}

/// The invoice's actions by id, as recorded now.
fn statuses(ledger: &MemoryLedger, invoice_id: &str) -> BTreeMap<ActionId, ActionRecord> {
    ledger
        .actions()
        .into_iter()
        .filter(|a| a.invoice_id == invoice_id)
        .map(|a| (a.action_id.clone(), a))
        .collect()
}

/// What changed on the invoice during the day's run, and the decision's
/// own reasons when nothing did.
fn outcome(
    policy: &Policy,
    book: &Book,
    run: &CaseRun,
    day: NaiveDate,
    before: &BTreeMap<ActionId, ActionRecord>,
    after: &BTreeMap<ActionId, ActionRecord>,
    failed_messages: &[&str],
) -> DayOutcome {
    let mut out = DayOutcome {
        day: Some(day),
        ..DayOutcome::default()
    };
    for (id, a) in after {
        if a.policy_name != policy.name {
            continue;
        }
        let changed = before
            .get(id)
            .is_none_or(|b| b.status != a.status || b.note != a.note);
        if !changed {
            continue;
        }
        match a.status {
            ActionStatus::Sent
            | ActionStatus::AwaitingApproval
            | ActionStatus::Planned
            | ActionStatus::Sending
            | ActionStatus::Deferred
            | ActionStatus::Failed => {
                let mut action = DayAction::of(a);
                // A message that could not be composed leaves its steps
                // deferred (they go out once the template is fixed); for
                // a test that is a failure.
                if a.message_id
                    .as_deref()
                    .is_some_and(|m| failed_messages.contains(&m))
                {
                    action.status = ActionStatus::Failed;
                }
                out.actions.push(action);
            }
            ActionStatus::Skipped => {
                if let Some(note) = &a.note {
                    out.reasons.push(format!("{}: {note}", a.label));
                }
            }
            ActionStatus::Approved | ActionStatus::Rejected => {}
        }
    }
    // The decision of the day, for the segment and for what the ledger
    // does not record: a step scheduled today whose condition failed, or
    // one the control group withholds.
    let (Some(customer), Some(inv)) = (
        book.customers.values().next(),
        book.invoice(&run.invoice_id),
    ) else {
        return out;
    };
    let stats = book.customer_stats(&customer.customer_id, day);
    let d = policy.decide(&facts(book, customer, inv, &stats, run.risk, day));
    out.segment = d
        .segment
        .and_then(|s| policy.segments.get(s))
        .map(|s| s.name.clone());
    if d.not_in_effect || d.is_held() || !out.actions.is_empty() {
        return out;
    }
    if let Some(ladder) = d.ladder.and_then(|l| policy.ladders.get(l)) {
        for (i, step) in ladder.steps.iter().enumerate() {
            if policy.step_date(inv.due_date, step.offset) != Some(day) || d.today & (1 << i) != 0 {
                continue;
            }
            if bits(d.held_out).any(|h| h == i) {
                out.reasons.push(format!(
                    "control group: no step before due ({})",
                    step.offset_text()
                ));
            } else {
                out.reasons
                    .push(format!("condition not met for {}", step.offset_text()));
            }
        }
    }
    out
}

/// What a planned sweep ([`collect_engine::sweep::plan_sweep`]) decided for one
/// invoice, as a day's outcome: its new or changed records, its holds and
/// why it is not covered. For `collect explain` of a stored invoice (what
/// a sweep of that day would do now, before the checks at sending).
pub fn planned_outcome(
    plan: &collect_engine::sweep::SweepPlan,
    invoice_id: &str,
    segment: Option<String>,
) -> DayOutcome {
    let mut out = DayOutcome {
        day: plan.date,
        segment,
        ..DayOutcome::default()
    };
    for a in plan.records.iter().filter(|a| a.invoice_id == invoice_id) {
        if a.status == ActionStatus::Skipped {
            if let Some(note) = &a.note {
                out.reasons.push(format!("{}: {note}", a.label));
            }
            continue;
        }
        out.actions.push(DayAction::of(a));
    }
    for (id, why) in &plan.not_covered {
        if id == invoice_id {
            out.reasons.push(why.clone());
        }
    }
    for h in plan.held.iter().filter(|h| h.invoice_id == invoice_id) {
        out.reasons.push(format!("held by {}", h.holds.join(", ")));
    }
    for (id, why) in &plan.stopped {
        if id == invoice_id {
            out.reasons.push(why.clone());
        }
    }
    if out.actions.is_empty() && out.reasons.is_empty() {
        out.reasons.push("no step due today".to_string());
    }
    out
}

impl DayOutcome {
    /// The outcome in the shape `explain` renders.
    pub fn into_day_plan(self) -> policy_lang::DayPlan {
        policy_lang::DayPlan {
            segment: self.segment,
            actions: self
                .actions
                .into_iter()
                .map(|a| {
                    let deferred = a.is_deferred();
                    policy_lang::PlannedAction {
                        step: 0,
                        offset: 0,
                        line: a
                            .rule
                            .rsplit_once(':')
                            .and_then(|(_, l)| l.parse().ok())
                            .unwrap_or(0),
                        deferred: a.note.filter(|_| deferred),
                        label: a.label,
                        requires_approval: a.requires_approval,
                        experiment: a.experiment.map(String::from),
                        arm: a.arm.map(String::from),
                    }
                })
                .collect(),
            reasons: self.reasons,
        }
    }
}
