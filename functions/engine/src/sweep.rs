//! The daily sweep, as a pure function: a book, a policy, a scorer and a day
//! in; the actions to record and the messages to send out. No I/O, no clock:
//! the runners (local SQLite + outbox, AWS) load the book, call
//! [`plan_sweep`], record what it returns and send the messages.
//!
//! The semantics are documented for finance ops in `policy/README.md`
//! ("How the sweep applies a policy"); in short:
//! - a step is due when its (business-day) date has come, its condition
//!   holds, it was never taken, and no later step was taken. When several are
//!   due (a missed sweep, the end of a hold) only the latest is taken and the
//!   others are recorded as skipped: never a burst of late messages;
//! - holds stop the ladder; it resumes where it stood when they end;
//! - guardrails defer (never drop) a contact: deferred steps are retried on
//!   the next sweep;
//! - all emails due for one customer on one day go out as one message;
//! - steps that require approval wait for a person; calls become tasks;
//! - a do-not-contact customer is never contacted, whatever the policy says.

use crate::book::{Book, CustomerStats, PlanState, down_payment, schedule};
use crate::domain::{
    ActionId, ActionRecord, ActionStatus, Arm, Channel as AuditChannel, Customer, CustomerId,
    Experiment, Invoice, InvoiceId, MessageId, PlanTerms,
};
use chrono::{NaiveDate, NaiveTime, TimeZone};
use policy_lang::ast::Channel;
use policy_lang::compile::{CAction, CLadder, CStep};
use policy_lang::eval::Decision;
use policy_lang::eval::bits;
use policy_lang::{CustomerFacts, FactRow, Facts, InvoiceFacts, Policy, Program};
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// What a scorer sees: the book and the customer's record on the day.
pub struct ScoreInput<'a> {
    pub book: &'a Book,
    pub invoice: &'a Invoice,
    pub day: NaiveDate,
    pub stats: &'a CustomerStats,
}

/// The model port: the probability that an invoice will be paid late.
pub trait RiskScorer {
    /// Recorded on every action, e.g. `prior-late-rate` or the model's name.
    fn name(&self) -> &str;
    fn version(&self) -> &str;
    fn score(&self, input: &ScoreInput<'_>) -> Option<f64>;
}

/// The transparent fallback until a trained model is installed: the share
/// of the customer's invoices settled before the day that were paid late.
/// Missing (so no `risk` threshold matches) for customers with no history.
#[derive(Debug, Clone, Copy, Default)]
pub struct PriorLateRate;

impl RiskScorer for PriorLateRate {
    fn name(&self) -> &str {
        "prior-late-rate (fallback, no trained model)"
    }
    fn version(&self) -> &str {
        "1"
    }
    fn score(&self, input: &ScoreInput<'_>) -> Option<f64> {
        input.stats.late_rate()
    }
}

#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Git revision of the policy repository, recorded on every action.
    pub git_revision: Option<String>,
    /// The bundle revision (policy + templates + manifest, see
    /// [`collect_delivery::revision`]), recorded on every action.
    pub bundle_revision: Option<String>,
    /// When the sweep sends, in UTC; quiet hours are checked against each
    /// customer's local time at this moment.
    pub send_time_utc: NaiveTime,
    /// Send to every customer at this time of *their* day instead (the
    /// local runtime's default, 10:00): one daily run then reaches customers
    /// in every time zone inside their allowed hours. `None` uses
    /// `send_time_utc` (an hourly AWS schedule passes the real time).
    pub customer_local_time: Option<NaiveTime>,
}

impl SweepOptions {
    /// The customer's local time when the sweep sends to them.
    pub fn local_time_for(&self, timezone: &str, day: NaiveDate) -> NaiveTime {
        self.customer_local_time
            .unwrap_or_else(|| local_time(timezone, day, self.send_time_utc))
    }
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            git_revision: None,
            bundle_revision: None,
            send_time_utc: NaiveTime::from_hms_opt(14, 0, 0).unwrap_or_default(),
            customer_local_time: None,
        }
    }
}

/// A message to render and send: one per customer per day for emails; one
/// per offer and per letter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedMessage {
    pub message_id: MessageId,
    pub customer_id: CustomerId,
    pub channel: AuditChannel,
    pub template: String,
    pub action_ids: Vec<ActionId>,
    pub invoice_ids: Vec<InvoiceId>,
    /// For a plan offer: the schedule offered, `(due date, amount)`.
    pub plan: Option<Vec<(NaiveDate, Decimal)>>,
    /// Tags carried to the mail service so its events match the action.
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Held {
    pub invoice_id: String,
    pub customer_id: String,
    pub holds: Vec<String>,
}

/// Everything one sweep decided.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepPlan {
    pub date: Option<NaiveDate>,
    /// New and changed action records, to upsert by id.
    pub records: Vec<ActionRecord>,
    pub messages: Vec<PlannedMessage>,
    pub held: Vec<Held>,
    /// Open invoices looked at.
    pub open_invoices: usize,
    /// Open invoices the policy does not cover (another currency, unknown
    /// customer, policy not yet in effect), with the reason.
    pub not_covered: Vec<(String, String)>,
    /// Approved actions a guardrail keeps waiting.
    pub approved_waiting: Vec<(String, String)>,
    /// Customers set aside, with the reason: their records cannot be
    /// worked on (an absurd amount). Everyone else is swept.
    pub unprocessable: Vec<(String, String)>,
    /// Counts of the records, kept even when the records are not.
    pub tally: Tally,
}

/// How many of a run's records of each kind there were, kept whether the
/// records themselves are kept or not (a large run keeps only these).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Records by status.
    pub by_status: BTreeMap<ActionStatus, usize>,
    /// Records that are open call tasks (planned calls).
    pub call_tasks: usize,
    /// Records counted here but not kept in [`SweepPlan::records`].
    pub not_kept: usize,
}

impl Tally {
    fn add(&mut self, r: &ActionRecord) {
        *self.by_status.entry(r.status).or_default() += 1;
        if r.status == ActionStatus::Planned && r.channel == AuditChannel::Call {
            self.call_tasks += 1;
        }
    }
}

impl SweepPlan {
    /// Records of a status this plan made (kept or not).
    pub fn count(&self, status: ActionStatus) -> usize {
        self.tally.by_status.get(&status).copied().unwrap_or(0)
    }

    /// All records this plan made (kept or not).
    pub fn record_count(&self) -> usize {
        self.tally.by_status.values().sum()
    }

    /// Whether [`SweepPlan::records`] holds every record the plan made.
    pub fn records_complete(&self) -> bool {
        self.tally.not_kept == 0
    }

    /// Adds a part of the sweep (some customers' plan) to this one, keeping
    /// at most `keep` records in all: beyond it, the records are counted in
    /// the tally and dropped, so a run over a large book holds one part's
    /// records at a time, not every record of the run.
    pub fn absorb(&mut self, part: SweepPlan, keep: usize) {
        let SweepPlan {
            date,
            records,
            messages,
            held,
            open_invoices,
            not_covered,
            approved_waiting,
            unprocessable,
            tally,
        } = part;
        self.date = self.date.or(date);
        for (status, n) in tally.by_status {
            *self.tally.by_status.entry(status).or_default() += n;
        }
        self.tally.call_tasks += tally.call_tasks;
        self.tally.not_kept += tally.not_kept;
        if self.tally.not_kept == 0 && self.records.len() + records.len() <= keep {
            self.records.extend(records);
        } else {
            self.tally.not_kept += self.records.len() + records.len();
            self.records = Vec::new();
        }
        self.messages.extend(messages);
        self.held.extend(held);
        self.open_invoices += open_invoices;
        self.not_covered.extend(not_covered);
        self.approved_waiting.extend(approved_waiting);
        self.unprocessable.extend(unprocessable);
    }

    fn push(&mut self, r: ActionRecord) {
        self.tally.add(&r);
        self.records.push(r);
    }
}

/// Deterministic action id: one invoice, one policy, one segment, one step.
pub fn action_id(policy: &str, invoice_id: &str, segment: &str, offset: i64) -> ActionId {
    // The digest of `{policy}␟{invoice_id}␟{segment}␟{offset}`, fed in parts.
    let digest = Sha256::new()
        .chain_update(policy)
        .chain_update(SEP)
        .chain_update(invoice_id)
        .chain_update(SEP)
        .chain_update(segment)
        .chain_update(SEP)
        .chain_update(offset.to_string())
        .finalize();
    prefixed_hex("act-", digest.get(..10).unwrap_or_default()).into()
}

/// The unit separator between the parts of a hashed id.
const SEP: &[u8] = "\u{1f}".as_bytes();

/// Deterministic message id: the digest of the (sorted) ids of the actions
/// it carries, and of nothing else. The day it goes out is not part of it,
/// so a message left over by a crash keeps its id on a later day and the
/// mail service (and the outbox) recognise it.
pub fn message_id(action_ids: &[ActionId]) -> MessageId {
    let mut ids: Vec<&str> = action_ids.iter().map(ActionId::as_str).collect();
    ids.sort_unstable();
    let mut hasher = Sha256::new().chain_update("message");
    for id in ids {
        hasher.update(SEP);
        hasher.update(id);
    }
    prefixed_hex("msg-", hasher.finalize().get(..10).unwrap_or_default()).into()
}

fn prefixed_hex(prefix: &str, bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(prefix.len() + 2 * bytes.len());
    out.push_str(prefix);
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

/// The customer's local time when the sweep sends; UTC for an unknown zone.
pub fn local_time(timezone: &str, day: NaiveDate, send_time_utc: NaiveTime) -> NaiveTime {
    let utc = day.and_time(send_time_utc).and_utc();
    match timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => tz.from_utc_datetime(&utc.naive_utc()).time(),
        Err(_) => send_time_utc,
    }
}

/// The facts the policy sees for one open invoice.
pub fn facts<'a>(
    book: &Book,
    customer: &'a Customer,
    invoice: &'a Invoice,
    stats: &CustomerStats,
    risk: Option<f64>,
    day: NaiveDate,
) -> Facts<'a> {
    let (disputed, opened) = book.dispute_open(invoice, day);
    let plan = book.plan_state(invoice, day);
    Facts {
        today: day,
        risk,
        invoice: InvoiceFacts {
            id: &invoice.invoice_id,
            number: &invoice.number,
            amount: invoice.amount,
            balance: book.balance(invoice, day),
            currency: &invoice.currency,
            issue_date: invoice.issue_date,
            due_date: invoice.due_date,
            disputed,
            dispute_opened_on: opened,
            promised_until: book.promised_until(invoice, day),
            plan_current: plan == PlanState::Current,
            plan_defaulted: plan == PlanState::Defaulted,
        },
        customer: CustomerFacts {
            id: &customer.customer_id,
            country: customer.country.as_deref(),
            industry: customer.industry.as_deref(),
            language: &customer.language,
            tags: &customer.tags,
            do_not_contact: customer.do_not_contact,
            annual_revenue: customer.annual_revenue,
            credit_score: customer.credit_score,
            credit_limit: customer.credit_limit,
            open_amount: stats.open_amount,
            open_invoices: stats.open_invoices,
            overdue_invoices: stats.overdue_invoices,
            late_rate: stats.late_rate(),
            avg_days_late: stats.avg_days_late(),
            first_invoice_on: stats.first_invoice_on,
        },
    }
}

/// Plans one day's sweep over the whole book.
pub fn plan_sweep(
    book: &Book,
    policy: &Policy,
    scorer: &dyn RiskScorer,
    day: NaiveDate,
    opts: &SweepOptions,
) -> SweepPlan {
    let planner = Planner::new(policy, scorer, day, opts);
    let mut plan = planner.empty();
    planner.plan(book, &book.invoices, &mut plan);
    plan
}

/// The first day a sweep of `day` looks at in the past: the longest of the
/// policy's contact caps and of the model's communication window
/// ([`crate::book::COMMUNICATION_DAYS`]), and a day more. Steps of
/// invoices settled before it, dated before it, change no decision.
pub fn history_since(policy: &Policy, day: NaiveDate) -> NaiveDate {
    let caps = policy
        .limits
        .caps
        .iter()
        .map(|c| c.window_days)
        .max()
        .unwrap_or(0);
    let communication = i64::try_from(crate::book::COMMUNICATION_DAYS).unwrap_or(0);
    let back = caps.max(communication).saturating_add(1);
    day.checked_sub_signed(chrono::Duration::days(back))
        .unwrap_or(NaiveDate::MIN)
}

/// Plans a sweep part by part: the customers of a book are independent, so
/// a run can plan, record and forget some customers at a time
/// ([`Planner::parts`]), and its memory does not grow with the records of
/// the whole book. [`plan_sweep`] is the whole book as one part.
pub struct Planner<'a> {
    policy: &'a Policy,
    /// The policy lowered once to its flat program (decisions over
    /// pre-resolved fact rows); a policy it cannot lower is decided by the
    /// reference evaluator (the same decisions, a proptest says so).
    program: Option<Program>,
    scorer: &'a dyn RiskScorer,
    day: NaiveDate,
    opts: &'a SweepOptions,
}

impl<'a> Planner<'a> {
    pub fn new(
        policy: &'a Policy,
        scorer: &'a dyn RiskScorer,
        day: NaiveDate,
        opts: &'a SweepOptions,
    ) -> Self {
        Planner {
            policy,
            program: policy.program().ok(),
            scorer,
            day,
            opts,
        }
    }

    /// A plan of the day with nothing in it yet.
    pub fn empty(&self) -> SweepPlan {
        SweepPlan {
            date: Some(self.day),
            ..SweepPlan::default()
        }
    }

    /// The book's invoices cut into parts of about `size` invoices, each
    /// holding whole customers (a customer's invoices are adjacent).
    pub fn parts(book: &Book, size: usize) -> impl Iterator<Item = &[Invoice]> {
        let mut rest: &[Invoice] = &book.invoices;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let mut end = size.clamp(1, rest.len());
            while let (Some(a), Some(b)) = (rest.get(end - 1), rest.get(end)) {
                if a.customer_id != b.customer_id {
                    break;
                }
                end += 1;
            }
            let (part, next) = rest.split_at(end);
            rest = next;
            Some(part)
        })
    }

    /// Plans the customers of `invoices` (whole customers of `book`) into
    /// `plan`.
    pub fn plan(&self, book: &Book, invoices: &[Invoice], plan: &mut SweepPlan) {
        for invoices in invoices.chunk_by(|a, b| a.customer_id == b.customer_id) {
            CustomerSweep::new(
                book,
                self.policy,
                self.program.as_ref(),
                self.scorer,
                self.day,
                self.opts,
            )
            .run(invoices, plan);
        }
    }
}

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
            | ActionStatus::Failed
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

struct CustomerSweep<'a> {
    book: &'a Book,
    policy: &'a Policy,
    program: Option<&'a Program>,
    scorer: &'a dyn RiskScorer,
    day: NaiveDate,
    opts: &'a SweepOptions,
}

impl<'a> CustomerSweep<'a> {
    fn new(
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

    fn run(&self, invoices: &[Invoice], plan: &mut SweepPlan) {
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

    /// Whether the policy decides for this invoice today: open, and in the
    /// policy's currency.
    fn covered(&self, inv: &Invoice) -> bool {
        self.book.is_open(inv, self.day) && inv.currency == self.policy.currency
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
        for a in self
            .book
            .actions_of(&inv.invoice_id)
            .iter()
            .filter(|a| waiting(a))
        {
            let mut r = a.clone();
            r.status = ActionStatus::Skipped;
            r.note = Some(format!(
                "invoice settled before this went out (was {})",
                a.status.as_str()
            ));
            plan.push(r);
        }
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
            holds.push("do-not-contact customer".to_string());
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
        if r.status == ActionStatus::Deferred {
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
        if let Some(done) = steps.iter().filter(mine).find(|a| {
            *a.segment != *at.segment()
                && *a.label == *r.label
                && went_out(a.status)
                && a.status != ActionStatus::Failed
        }) {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn ids_are_the_digests_of_their_parts() {
        // sha256("standard-net30␟INV-1␟standard␟-3"), first 10 bytes.
        assert_eq!(
            action_id("standard-net30", "INV-1", "standard", -3),
            "act-45c3c17eee097f63feb7"
        );
        // sha256("message␟act-a␟act-b"), the ids sorted; no day in it.
        let ids = |a: &str, b: &str| [ActionId::from(a), ActionId::from(b)];
        assert_eq!(
            message_id(&ids("act-b", "act-a")),
            message_id(&ids("act-a", "act-b"))
        );
        assert_eq!(
            message_id(&ids("act-b", "act-a")),
            "msg-549d7f34f4db7ad81f76"
        );
    }
}
