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
//! - a do-not-contact customer is never contacted, whatever the policy says;
//! - an invoice written off or placed with an agency gets no more steps
//!   (the end of the ladder, [`crate::ladder`]); what waited is skipped.

use crate::book::{Book, CustomerStats, PlanState};
use crate::domain::{
    ActionId, ActionRecord, ActionStatus, Channel as AuditChannel, Customer, CustomerId, Invoice,
    InvoiceId, MessageId,
};
use chrono::{NaiveDate, NaiveTime, TimeZone};
use policy_lang::{CustomerFacts, Facts, InvoiceFacts, Policy, Program};
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

mod customer;
pub mod day_guard;
use customer::CustomerSweep;

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

/// The hold the sweep adds for a do-not-contact customer whatever the
/// policy says (a policy usually names its own hold for it as well, e.g.
/// `hold do_not_contact when customer.do_not_contact`).
pub const DO_NOT_CONTACT_HOLD: &str = "do-not-contact customer";

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
    /// Open invoices whose dunning stopped at the end of the ladder
    /// (written off, placed with an agency), with the decision
    /// ([`crate::ladder::stop`]). Not counted in `open_invoices`.
    pub stopped: Vec<(String, String)>,
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
            stopped,
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
        self.stopped.extend(stopped);
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
