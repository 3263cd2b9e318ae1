//! One customer's day: each open invoice's place on its ladder, the steps
//! due, the holds and guardrails, the caps, and the messages that carry the
//! steps (one per customer per day).

use crate::book::{Book, CustomerStats, down_payment, schedule};
use crate::domain::{
    ActionId, ActionRecord, ActionStatus, Arm, Channel as AuditChannel, Customer, CustomerId,
    Experiment, Invoice, InvoiceId, PlanTerms,
};
use chrono::NaiveDate;
use policy_lang::ast::Channel;
use policy_lang::compile::{CAction, CLadder, CStep};
use policy_lang::eval::Decision;
use policy_lang::eval::bits;
use policy_lang::{FactRow, Policy, Program};
use rust_decimal::Decimal;

use super::{
    Held, PlannedMessage, RiskScorer, ScoreInput, SweepOptions, SweepPlan, action_id, facts,
    message_id,
};

/// An open invoice the policy covers, on the ladder of its segment.
struct OnLadder<'a> {
    inv: &'a Invoice,
    ladder: &'a CLadder,
    risk: Option<f64>,
    d: Decision,
}

impl OnLadder<'_> {
    fn segment(&self) -> &str {
        &self.ladder.segment
    }
}

/// Waiting for a person or a later sweep, and not part of a message: what
/// a settled invoice or a segment change closes.
fn waiting(a: &ActionRecord) -> bool {
    matches!(
        a.status,
        ActionStatus::Planned
            | ActionStatus::AwaitingApproval
            | ActionStatus::Approved
            | ActionStatus::Deferred
    ) && a.message_id.is_none()
}

/// Waiting for a person: a letter awaiting approval or approved, an open
/// call task.
fn for_a_person(a: &ActionRecord) -> bool {
    matches!(
        a.status,
        ActionStatus::AwaitingApproval | ActionStatus::Approved
    ) || (a.status == ActionStatus::Planned && a.channel == AuditChannel::Call)
}

/// Went out, or to a person (who may still be deciding): what moves an
/// invoice along its ladder whatever segment it was in.
fn went_out(status: ActionStatus) -> bool {
    matches!(
        status,
        ActionStatus::Sent
            | ActionStatus::Sending
            | ActionStatus::Planned
            | ActionStatus::AwaitingApproval
            | ActionStatus::Approved
            | ActionStatus::Rejected
    )
}

/// A contact step decided for one invoice, waiting for the customer's
/// guardrails and consolidation.
struct Pending {
    record: ActionRecord,
    channel: Channel,
    plan: Option<Vec<(NaiveDate, Decimal)>>,
    /// Already approved by a person: a guardrail keeps it waiting as approved.
    approved: bool,
}

pub(super) struct CustomerSweep<'a> {
    book: &'a Book,
    policy: &'a Policy,
    program: Option<&'a Program>,
    scorer: &'a dyn RiskScorer,
    day: NaiveDate,
    opts: &'a SweepOptions,
}

impl<'a> CustomerSweep<'a> {
    pub(super) fn new(
        book: &'a Book,
        policy: &'a Policy,
        program: Option<&'a Program>,
        scorer: &'a dyn RiskScorer,
        day: NaiveDate,
        opts: &'a SweepOptions,
    ) -> Self {
        CustomerSweep {
            book,
            policy,
            program,
            scorer,
            day,
            opts,
        }
    }

    pub(super) fn run(&self, invoices: &[Invoice], plan: &mut SweepPlan) {
        let Some(first) = invoices.first() else {
            return;
        };
        let customer_id = &first.customer_id;
        let Some(customer) = self.book.customers.get(customer_id) else {
            for inv in invoices.iter().filter(|i| self.book.is_open(i, self.day)) {
                plan.open_invoices += 1;
                plan.not_covered.push((
                    inv.invoice_id.clone(),
                    format!("customer `{customer_id}` is not in the book"),
                ));
            }
            return;
        };
        if let Some(why) = self.book.money_problem(customer_id) {
            plan.open_invoices += invoices
                .iter()
                .filter(|i| self.book.is_open(i, self.day))
                .count();
            plan.unprocessable.push((customer_id.clone(), why));
            return;
        }
        let stats = self.book.customer_stats(customer_id, self.day);
        let decided = self.decide_all(customer, invoices, &stats);
        let mut pending: Vec<Pending> = Vec::new();
        for (inv, decided) in invoices.iter().zip(decided) {
            self.invoice(customer, inv, decided, plan, &mut pending);
        }
        self.guard_and_send(customer, pending, plan);
    }

    /// Whether the policy decides for this invoice today: open, in the
    /// policy's currency, and not stopped at the end of its ladder.
    fn covered(&self, inv: &Invoice) -> bool {
        self.book.is_open(inv, self.day)
            && inv.currency == self.policy.currency
            && crate::ladder::stop(self.book, inv, self.day).is_none()
    }

    /// The risk and the decision of each covered invoice of the customer
    /// (`None` for the others), the decisions made as one batch
    /// ([`Program::decide_many`]).
    fn decide_all(
        &self,
        customer: &Customer,
        invoices: &[Invoice],
        stats: &CustomerStats,
    ) -> Vec<Option<(Option<f64>, Decision)>> {
        let mut risks = Vec::with_capacity(invoices.len());
        let mut rows: Vec<FactRow> = Vec::new();
        let mut decisions: Vec<Decision> = Vec::new();
        for inv in invoices.iter().filter(|i| self.covered(i)) {
            let risk = self.scorer.score(&ScoreInput {
                book: self.book,
                invoice: inv,
                day: self.day,
                stats,
            });
            let f = facts(self.book, customer, inv, stats, risk, self.day);
            match self.program {
                Some(p) => rows.push(p.row(&f)),
                None => decisions.push(self.policy.decide(&f)),
            }
            risks.push(risk);
        }
        if let Some(p) = self.program {
            p.decide_many(&rows, &mut decisions);
        }
        let mut made = risks.into_iter().zip(decisions);
        invoices
            .iter()
            .map(|inv| if self.covered(inv) { made.next() } else { None })
            .collect()
    }

    /// One invoice of the customer, stage by stage: close what waited on a
    /// settled invoice; leave alone what the policy does not cover or
    /// holds; then, on its ladder, close what waited under another segment,
    /// record the control group's withheld steps, pass on what a person
    /// approved, and take the latest due step.
    fn invoice(
        &self,
        customer: &Customer,
        inv: &Invoice,
        decided: Option<(Option<f64>, Decision)>,
        plan: &mut SweepPlan,
        pending: &mut Vec<Pending>,
    ) {
        if !self.book.is_open(inv, self.day) {
            self.close_settled(inv, plan);
            return;
        }
        if let Some(stop) = crate::ladder::stop(self.book, inv, self.day) {
            self.close_stopped(inv, &stop, plan);
            return;
        }
        plan.open_invoices += 1;
        let Some(at) = self.on_ladder(customer, inv, decided, plan) else {
            return;
        };
        self.close_other_segments(&at, plan);
        self.record_control_group(&at, plan);
        self.pass_on_approved(&at, pending);
        self.take_due_step(customer, &at, plan, pending);
    }

    /// Paid before a task or an approval was dealt with: close it.
    fn close_settled(&self, inv: &Invoice, plan: &mut SweepPlan) {
        if inv.issue_date > self.day {
            return;
        }
        self.skip_waiting(inv, "invoice settled before this went out", plan);
    }

    /// Skips every action of the invoice still waiting (a task, an
    /// approval, a planned message), saying why and what it was.
    fn skip_waiting(&self, inv: &Invoice, why: &str, plan: &mut SweepPlan) {
        for a in self
            .book
            .actions_of(&inv.invoice_id)
            .iter()
            .filter(|a| waiting(a))
        {
            let mut r = a.clone();
            r.status = ActionStatus::Skipped;
            r.note = Some(format!("{why} (was {})", a.status.as_str()));
            plan.push(r);
        }
    }

    /// Written off or placed with an agency (the end of the ladder): no
    /// more steps, and what still waited is closed with the decision.
    fn close_stopped(&self, inv: &Invoice, stop: &crate::ladder::Stop<'_>, plan: &mut SweepPlan) {
        let why = stop.why();
        self.skip_waiting(inv, &format!("skipped: dunning stopped, {why}"), plan);
        plan.stopped
            .push((inv.invoice_id.clone(), format!("dunning stopped: {why}")));
    }

    /// The invoice on its ladder, or why it is not: another currency, the
    /// policy not in effect, a do-not-contact customer, a hold, no segment.
    fn on_ladder<'i>(
        &'i self,
        customer: &Customer,
        inv: &'i Invoice,
        decided: Option<(Option<f64>, Decision)>,
        plan: &mut SweepPlan,
    ) -> Option<OnLadder<'i>> {
        if inv.currency != self.policy.currency {
            plan.not_covered.push((
                inv.invoice_id.clone(),
                format!(
                    "in {}, the policy covers {}",
                    inv.currency, self.policy.currency
                ),
            ));
            return None;
        }
        let (risk, d) = decided?;
        if d.not_in_effect {
            plan.not_covered.push((
                inv.invoice_id.clone(),
                match self.policy.effective {
                    Some(from) => format!("the policy is not in effect until {from}"),
                    None => "the policy is not in effect".to_string(),
                },
            ));
            return None;
        }
        // The policy's holds by name, and do-not-contact whatever the
        // policy says.
        let mut holds: Vec<String> = bits(d.holds)
            .filter_map(|i| self.policy.holds.get(i))
            .map(|h| h.name.clone())
            .collect();
        if customer.do_not_contact {
            holds.push(super::DO_NOT_CONTACT_HOLD.to_string());
        }
        if !holds.is_empty() {
            plan.held.push(Held {
                invoice_id: inv.invoice_id.clone(),
                customer_id: customer.customer_id.clone(),
                holds,
            });
            return None;
        }
        let Some(ladder) = d.ladder.and_then(|l| self.policy.ladders.get(l)) else {
            plan.not_covered
                .push((inv.invoice_id.clone(), "no segment matched".to_string()));
            return None;
        };
        Some(OnLadder {
            inv,
            ladder,
            risk,
            d,
        })
    }

    /// The invoice moved to another segment: what still waited under the
    /// old one. A letter awaiting approval or approved, and an open call
    /// task, carry over when the new segment's ladder has the same action
    /// (a person still decides or calls); otherwise they are closed with the
    /// reason. A deferred step is closed: the new ladder proposes its own.
    /// Closed steps never count as taken (see [`Self::take_due_step`]).
    fn close_other_segments(&self, at: &OnLadder<'_>, plan: &mut SweepPlan) {
        let segment = at.segment();
        for a in self
            .book
            .actions_of(&at.inv.invoice_id)
            .iter()
            .filter(|a| a.policy_name == self.policy.name && a.segment != segment && waiting(a))
        {
            if self.carries_over(at, a) {
                continue;
            }
            let mut r = a.clone();
            r.status = ActionStatus::Skipped;
            r.note = Some(if for_a_person(a) {
                format!(
                    "skipped: the invoice moved from segment `{}` to `{segment}`, whose ladder has no `{}` (was {})",
                    a.segment,
                    a.label,
                    a.status.as_str()
                )
            } else {
                format!(
                    "skipped: the invoice moved from segment `{}` to `{segment}` (was {}); the new ladder proposes its own step",
                    a.segment,
                    a.status.as_str()
                )
            });
            plan.push(r);
        }
    }

    /// Whether a record waiting for a person under another segment stays
    /// open under the invoice's segment now: its ladder has the same action.
    fn carries_over(&self, at: &OnLadder<'_>, a: &ActionRecord) -> bool {
        a.segment != at.segment()
            && for_a_person(a)
            && at.ladder.steps.iter().any(|step| match &step.action {
                CAction::Experiment { arms, .. } => arms
                    .iter()
                    .filter_map(|arm| arm.action.as_deref())
                    .any(|x| x.label() == a.label),
                other => other.label() == a.label,
            })
    }

    /// Customers in the control group: the pre-due steps they do not get
    /// are recorded once, so the hold-out can be measured.
    fn record_control_group(&self, at: &OnLadder<'_>, plan: &mut SweepPlan) {
        let steps = self.book.steps_of(&at.inv.invoice_id);
        for i in bits(at.d.held_out) {
            let Some(step) = at.ladder.steps.get(i) else {
                continue;
            };
            let id = self.id_of(at, step);
            if steps.iter().any(|a| *a.action_id == *id) {
                continue;
            }
            let mut r = self.new_record(&id, at.inv, step, at.segment(), at.risk);
            r.status = ActionStatus::Skipped;
            r.experiment = Some(Experiment::ControlGroup);
            r.arm = Some(Arm::Control);
            r.note = Some("skipped: the customer is in the policy's control group (no steps before the due date)".to_string());
            plan.push(r);
        }
    }

    /// The invoice's live records under this policy and segment.
    fn mine<'b>(&'b self, at: &OnLadder<'_>) -> impl Iterator<Item = &'b ActionRecord> {
        let segment = at.segment().to_string();
        self.book
            .actions_of(&at.inv.invoice_id)
            .iter()
            .filter(move |a| a.policy_name == self.policy.name && a.segment == segment)
    }

    /// Approved by a person since the last sweep: deliver now.
    fn pass_on_approved(&self, at: &OnLadder<'_>, pending: &mut Vec<Pending>) {
        let carried = self
            .book
            .actions_of(&at.inv.invoice_id)
            .iter()
            .filter(|a| a.policy_name == self.policy.name && self.carries_over(at, a));
        for a in self
            .mine(at)
            .chain(carried)
            .filter(|a| a.status == ActionStatus::Approved)
        {
            if let Some(channel) = a.channel.contact() {
                pending.push(Pending {
                    record: a.clone(),
                    channel,
                    plan: None,
                    approved: true,
                });
            }
        }
    }

    /// The latest due step not taken yet (the earlier due ones recorded as
    /// skipped): an approval to wait for, or a contact for the customer's
    /// guardrails.
    fn take_due_step(
        &self,
        customer: &Customer,
        at: &OnLadder<'_>,
        plan: &mut SweepPlan,
        pending: &mut Vec<Pending>,
    ) {
        // Where the invoice stands on its ladder: the latest step taken under
        // this policy. Under the segment it is in, every taken step counts
        // (skipped ones too: a catch-up or the control group moved past
        // them); under another segment, only what went out or to a person —
        // a step closed by the segment change is not a step taken.
        let steps = self.book.steps_of(&at.inv.invoice_id);
        let mine = |a: &&crate::book::Step| *a.policy_name == *self.policy.name;
        let taken_max = steps
            .iter()
            .filter(mine)
            .filter(|a| {
                if *a.segment == *at.segment() {
                    a.status.is_taken()
                } else {
                    went_out(a.status)
                }
            })
            .map(|a| a.step_offset)
            .max();
        let candidates: Vec<usize> = bits(at.d.due)
            .filter(|&i| {
                at.ladder
                    .steps
                    .get(i)
                    .is_some_and(|s| taken_max.is_none_or(|m| s.offset > m))
            })
            .collect();
        let Some((&last, earlier)) = candidates.split_last() else {
            return;
        };
        let Some(latest) = at.ladder.steps.get(last) else {
            return;
        };
        for &i in earlier {
            let Some(step) = at.ladder.steps.get(i) else {
                continue;
            };
            let mut r = self.record_for(at, step);
            let why = if r.status == ActionStatus::Deferred {
                "it was still held back by a guardrail"
            } else {
                "a missed sweep or a hold"
            };
            r.status = ActionStatus::Skipped;
            r.decided_on = self.day;
            r.note = Some(format!(
                "skipped: the later step `{}` was due on {} ({why})",
                latest.offset_text(),
                self.day
            ));
            plan.push(r);
        }
        let mut r = self.record_for(at, latest);
        if matches!(r.status, ActionStatus::Deferred | ActionStatus::Failed) {
            // A retry is decided afresh, under what is in force today: the
            // deferral's note and risk stay in its line of the audit trail.
            self.stamp(&mut r);
        }
        r.note = None;
        r.decided_on = self.day;
        r.risk = at.risk;
        let resolved = self.policy.resolve(latest, &customer.customer_id);
        r.experiment = resolved.experiment.map(Experiment::from);
        r.arm = resolved.arm.map(Arm::from);
        let Some(action) = resolved.action else {
            r.status = ActionStatus::Skipped;
            r.note = Some(format!(
                "skipped: control arm of experiment `{}`, no action by design",
                resolved.experiment.unwrap_or_default()
            ));
            r.channel = AuditChannel::NoContact;
            plan.push(r);
            return;
        };
        r.label = action.label();
        r.target = target(action);
        // Never the same action twice for one invoice across segments: the
        // firm notice sent under `high_risk` at +5d is not sent again under
        // `standard` at +7d.
        if let Some(done) = steps
            .iter()
            .filter(mine)
            .find(|a| *a.segment != *at.segment() && *a.label == *r.label && went_out(a.status))
        {
            r.status = ActionStatus::Skipped;
            r.note = Some(format!(
                "skipped: `{}` was already done for this invoice under segment `{}` ({}, {})",
                r.label,
                done.segment,
                done.decided_on,
                done.status.as_str()
            ));
            plan.push(r);
            return;
        }
        let Some(channel) = action.channel() else {
            return;
        };
        r.channel = channel.into();
        if latest.requires_approval {
            r.status = ActionStatus::AwaitingApproval;
            r.note = Some("waiting for a person to approve or reject".to_string());
            plan.push(r);
            return;
        }
        pending.push(Pending {
            record: r,
            channel,
            plan: self.offer(at.inv, action),
            approved: false,
        });
    }

    /// A plan offer's schedule, worked out from today's balance.
    fn offer(&self, inv: &Invoice, action: &CAction) -> Option<Vec<(NaiveDate, Decimal)>> {
        let CAction::OfferPlan(terms) = action else {
            return None;
        };
        let balance = self.book.balance(inv, self.day);
        let down = down_payment(balance, terms.down.as_ref());
        Some(schedule(
            balance,
            &PlanTerms {
                installments: terms.installments,
                every_days: terms.every_days,
                down_payment: down,
            },
            self.day,
        ))
    }

    fn id_of(&self, at: &OnLadder<'_>, step: &CStep) -> ActionId {
        action_id(
            &self.policy.name,
            &at.inv.invoice_id,
            at.segment(),
            step.offset,
        )
    }

    /// The record of a step: as recorded (a deferred one), or a new one.
    fn record_for(&self, at: &OnLadder<'_>, step: &CStep) -> ActionRecord {
        let id = self.id_of(at, step);
        match self.mine(at).find(|a| a.action_id == id) {
            Some(prev) => prev.clone(),
            None => self.new_record(&id, at.inv, step, at.segment(), at.risk),
        }
    }

    /// The revisions and the scorer of this sweep, on a record made before.
    fn stamp(&self, r: &mut ActionRecord) {
        r.policy_revision = self.policy.revision.clone();
        r.git_revision = self.opts.git_revision.clone();
        r.bundle_revision = self.opts.bundle_revision.clone();
        r.scorer = self.scorer.name().to_string();
        r.scorer_version = self.scorer.version().to_string();
    }

    fn new_record(
        &self,
        id: &ActionId,
        inv: &Invoice,
        step: &CStep,
        segment: &str,
        risk: Option<f64>,
    ) -> ActionRecord {
        ActionRecord {
            action_id: id.clone(),
            invoice_id: InvoiceId::from(&inv.invoice_id),
            customer_id: CustomerId::from(&inv.customer_id),
            decided_on: self.day,
            scheduled_for: self
                .policy
                .step_date(inv.due_date, step.offset)
                .unwrap_or(inv.due_date),
            status: ActionStatus::Planned,
            channel: AuditChannel::of(&step.action),
            label: step.action.label(),
            target: target(&step.action),
            step_offset: step.offset,
            requires_approval: step.requires_approval,
            policy_name: self.policy.name.clone(),
            policy_revision: self.policy.revision.clone(),
            git_revision: self.opts.git_revision.clone(),
            bundle_revision: self.opts.bundle_revision.clone(),
            rule: format!("{}:{}", self.policy.file, step.rule.line),
            segment: segment.to_string(),
            experiment: None,
            arm: None,
            risk,
            scorer: self.scorer.name().to_string(),
            scorer_version: self.scorer.version().to_string(),
            note: None,
            message_id: None,
            decided_by: None,
            decided_at: None,
            sent_on: None,
        }
    }

    /// Applies the customer's guardrails channel by channel and groups the
    /// emails of the day into one message.
    fn guard_and_send(&self, customer: &Customer, pending: Vec<Pending>, plan: &mut SweepPlan) {
        if pending.is_empty() {
            return;
        }
        let mut history = self.book.contacts(&customer.customer_id, self.day);
        let local = self.opts.local_time_for(&customer.timezone, self.day);
        let (emails, others): (Vec<Pending>, Vec<Pending>) = pending
            .into_iter()
            .partition(|p| p.channel == Channel::Email);
        let mut groups: Vec<Vec<Pending>> = Vec::new();
        if !emails.is_empty() {
            groups.push(emails);
        }
        groups.extend(others.into_iter().map(|p| vec![p]));
        for group in groups {
            let Some(first) = group.first() else { continue };
            let channel = first.channel;
            if let Some(reason) = self
                .policy
                .guardrail(channel, self.day, Some(local), &history)
            {
                for p in group {
                    if p.approved {
                        plan.approved_waiting
                            .push((p.record.action_id.to_string(), reason.clone()));
                        continue;
                    }
                    let mut r = p.record;
                    r.status = ActionStatus::Deferred;
                    r.note = Some(format!("deferred: {reason}; retried on the next sweep"));
                    plan.push(r);
                }
                continue;
            }
            history.push(policy_lang::Contact {
                date: self.day,
                channel,
            });
            if channel == Channel::Call {
                for p in group {
                    let mut r = p.record;
                    r.status = ActionStatus::Planned;
                    r.note = Some(format!("call task for the `{}` queue", r.target));
                    plan.push(r);
                }
                continue;
            }
            // The most advanced step sets the tone of a consolidated message.
            let template = group
                .iter()
                .max_by_key(|p| (p.record.step_offset, p.record.invoice_id.clone()))
                .map(|p| p.record.target.clone())
                .unwrap_or_default();
            let action_ids: Vec<ActionId> =
                group.iter().map(|p| p.record.action_id.clone()).collect();
            let mid = message_id(&action_ids);
            let offer = group.iter().find_map(|p| p.plan.clone());
            let mut tags = vec![
                ("channel".to_string(), channel.as_str().to_string()),
                ("template".to_string(), template.clone()),
            ];
            if let [only] = group.as_slice() {
                tags.push(("action_id".to_string(), only.record.action_id.to_string()));
                tags.push(("step".to_string(), only.record.step_offset.to_string()));
                if let Some(arm) = &only.record.arm {
                    tags.push(("arm".to_string(), arm.to_string()));
                }
            }
            let mut invoice_ids = Vec::new();
            for p in group {
                let mut r = p.record;
                r.status = ActionStatus::Planned;
                r.message_id = Some(mid.clone());
                if !invoice_ids.contains(&r.invoice_id) {
                    invoice_ids.push(r.invoice_id.clone());
                }
                plan.push(r);
            }
            plan.messages.push(PlannedMessage {
                message_id: mid,
                customer_id: CustomerId::from(&customer.customer_id),
                channel: channel.into(),
                template,
                action_ids,
                invoice_ids,
                plan: offer,
                tags,
            });
        }
    }
}

/// What an action addresses: its template, or the queue of a call; offers
/// use the `plan-offer` template.
fn target(action: &CAction) -> String {
    match action {
        CAction::Email { template } | CAction::Letter { template } => template.clone(),
        CAction::Call { queue } => queue.clone(),
        CAction::OfferPlan(_) => policy_lang::PLAN_OFFER_TEMPLATE.to_string(),
        CAction::Experiment { name, .. } => name.clone(),
    }
}
