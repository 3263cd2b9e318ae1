//! The delivery use case, written once: `collect run` (SQLite and the
//! outbox) and the sweep worker Lambda (DynamoDB and SES) both call
//! [`Sweeper::run`].
//!
//! One run, under the scope's lease:
//! 1. load the book and plan the day ([`Planner`], pure), part by part;
//! 2. record the planned messages with their whole content (the plan
//!    offered included), then the actions, each conditionally;
//! 3. deliver every unfinished message of the scope — this run's and any a
//!    crash left behind, from any day — in batches of up to 200:
//!    - a message left `sending` is first looked up at the mail service: if
//!      it was accepted, it is only marked sent (never handed over again);
//!    - every other is **checked again against the current state** when
//!      its batch is about to go out (the customer is read again then):
//!      the customer (do-not-contact, address),
//!      each invoice (settled, held by a dispute, promise or plan, the
//!      policy's holds), the offer's balance, the contact caps and one
//!      email per customer a day. What is dropped is recorded with its
//!      reason (deferred: it is due again on a later sweep; skipped: the
//!      invoice is settled); a message left with nothing is cancelled;
//!    - `planned → sending` is the conditional write that makes one run
//!      the sender; then the mail service; then `sent`.
//!
//! A crash at any point leaves a state the next run (same day or later)
//! finishes: zero duplicates, nothing lost. The conformance suite
//! ([`collect_testkit::conformance`], run against every ledger adapter)
//! injects a crash at every [`CrashPoint`]; property tests
//! (`tests/delivery_props.rs`) at random ones over random books and ERP
//! changes.
//!
//! Writes: messages are delivered in batches; each step moves the messages
//! of a batch and their actions together ([`Ledger::move_batch`]: one
//! transaction on SQLite). The wall clock
//! (`RunRequest::now`) is used for the lease, the grace period and the
//! `Date:` of the messages only; every decision depends on the sweep day
//! alone.

use crate::ledger::{
    LeaseHolder, LeaseOutcome, Ledger, LedgerError, MessageStatus, Move, Scope, StoredMessage,
};
use crate::mailer::{Acceptance, MailError, Mailer};
use crate::message::pdf::{Letter, letter_pdf};
use crate::message::{
    Attachment, CompanyCtx, CustomerCtx, Formats, InstallmentCtx, InvoiceCtx, Mailbox,
    MessageContext, OutgoingMessage, PayLinks, PlanCtx, Templates,
};
use chrono::{DateTime, Days, NaiveDate, Utc};
use collect_engine::book::Book;
use collect_engine::domain::{
    ActionId, ActionRecord, ActionStatus, Channel as AuditChannel, Customer, CustomerId, Invoice,
    InvoiceId, MessageId,
};
use collect_engine::sweep::{PlannedMessage, Planner, RiskScorer, SweepOptions, SweepPlan, facts};
use policy_lang::Policy;
use policy_lang::ast::Channel;
use policy_lang::eval::{Contact, bits};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Who the messages come from.
#[derive(Debug, Clone, Serialize)]
pub struct Sender {
    pub company: String,
    pub email: String,
    pub reply_to: Option<String>,
    /// The company's postal address, one line each: printed on the PDF of
    /// letters (and `company.address` in templates). Empty when not set.
    pub address: Vec<String>,
}

/// A postal address given as one text (an environment variable, a
/// setting): lines separated by newlines or `;`, each trimmed, empty ones
/// dropped. `Example Ltd; 1 High St; London` → three lines.
pub fn address_lines(text: &str) -> Vec<String> {
    text.split(['\n', ';'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The points of the protocol where the conformance suite kills a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum CrashPoint {
    /// The planned messages are recorded, their actions not yet.
    AfterMessagesRecorded,
    /// Messages and actions recorded, nothing sent.
    AfterRecording,
    /// A message is `sending`, not yet handed to the mail service.
    AfterMarkedSending,
    /// The mail service accepted a message; nothing recorded of it yet.
    AfterAccepted,
    /// The message and its actions are recorded `sent`.
    AfterMarkedSent,
}

impl CrashPoint {
    pub const ALL: [CrashPoint; 5] = [
        CrashPoint::AfterMessagesRecorded,
        CrashPoint::AfterRecording,
        CrashPoint::AfterMarkedSending,
        CrashPoint::AfterAccepted,
        CrashPoint::AfterMarkedSent,
    ];
}

/// Says whether to kill the run at a point (and which message it is at).
pub type CrashFn<'a> = dyn Fn(CrashPoint, Option<&str>) -> bool + Sync + 'a;

/// Decides where a run is killed (tests only; `None` in production).
pub type Faults<'a> = Option<&'a CrashFn<'a>>;

/// Everything a run needs besides the ledger and the mail service.
pub struct Sweeper<'a> {
    pub policy: &'a Policy,
    pub scorer: &'a dyn RiskScorer,
    pub templates: &'a Templates,
    pub pay_links: &'a PayLinks,
    pub sender: Sender,
    pub options: SweepOptions,
    /// How long a pay link stays valid.
    pub pay_link_days: u64,
    /// How long a message may stay `sending` with the mail service unable
    /// to tell whether it accepted it (SES: no event yet) before it is
    /// taken as never accepted and handed over again.
    pub grace: chrono::Duration,
    /// How long a lease lasts without renewal (renewed as the run goes).
    pub lease_ttl: chrono::Duration,
}

/// One run's request.
pub struct RunRequest<'a> {
    pub scope: Scope,
    pub day: NaiveDate,
    /// Plan only: nothing recorded, nothing sent, no lease.
    pub dry_run: bool,
    pub holder: LeaseHolder,
    /// Wall-clock time, for leases, the grace period and the `Date:` of
    /// the messages sent: no decision depends on it (decisions depend on
    /// `day`).
    pub now: &'a (dyn Fn() -> DateTime<Utc> + Sync),
    pub faults: Faults<'a>,
    /// How many of the run's action records its report keeps
    /// ([`SweepPlan::records`]); beyond it the report keeps only their
    /// counts ([`SweepPlan::tally`]), so a run over a large book does not
    /// hold every record it made. `usize::MAX` keeps them all.
    pub keep_records: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(
        "another sweep of this {scope} is running (pid {pid} on {host}, since {since}); \
         if it stopped without finishing, its claim on the {scope} runs out at {expires}"
    )]
    Busy {
        scope: String,
        pid: u32,
        host: String,
        since: DateTime<Utc>,
        expires: DateTime<Utc>,
        /// The lease as stored (to take it over from a dead holder).
        lease: Box<crate::ledger::Lease>,
    },
    #[error(
        "this run lost its lease on the {0} (it ran longer than the lease without renewing it); \
         it stopped, and another run finishes what it left"
    )]
    LostLease(String),
    /// The mail service could not clear what an interrupted run left
    /// (the outbox's temporary files): nothing was sent; run again once
    /// the cause is fixed.
    #[error("the mail service could not clear what an interrupted run left: {0}")]
    MailRecovery(#[source] MailError),
    /// A crash injected by a test.
    #[error("crash injected at {0:?}")]
    Crashed(CrashPoint),
}

/// What one run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub plan: SweepPlan,
    /// Customers in the book the run loaded.
    pub customers: usize,
    /// Action records this run wrote.
    pub recorded: usize,
    pub sent: Vec<SentMessage>,
    /// Messages that could not be built or that the mail service refused
    /// for good: `(message id, reason)`.
    pub failed: Vec<(MessageId, String)>,
    /// Messages a crash left `sending` that the mail service had accepted.
    pub reconciled: Vec<MessageId>,
    /// Messages left `sending` the mail service cannot tell about yet.
    pub in_doubt: Vec<MessageId>,
    /// Messages the mail service refused for now; sent by a later run.
    pub retry_later: Vec<(MessageId, String)>,
    /// Messages with nothing left to send after the checks: `(id, reason)`.
    pub cancelled: Vec<(MessageId, String)>,
    /// Actions taken out of a message by the checks before sending.
    pub dropped: Vec<Dropped>,
    /// Actions or messages another run had recorded or moved first.
    pub conflicts: Vec<String>,
    pub dry_run: bool,
    /// Where the run spent its time (not part of the report's data).
    #[serde(skip)]
    pub timings: RunTimings,
}

/// An action the checks before sending took out of its message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dropped {
    pub action_id: ActionId,
    pub message_id: MessageId,
    pub invoice_id: InvoiceId,
    pub status: ActionStatus,
    pub reason: String,
}

/// Wall time of each phase of a run, for benchmarks and diagnostics.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunTimings {
    pub load_book: Duration,
    pub plan_sweep: Duration,
    pub save_actions: Duration,
    /// The checks, rendering, the mail service and the status changes.
    pub sending: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct SentMessage {
    pub message_id: MessageId,
    pub customer_id: CustomerId,
    pub to: String,
    pub channel: AuditChannel,
    pub template: String,
    pub invoices: Vec<InvoiceId>,
    pub subject: String,
}

/// The actions as sent on `sent_on` (those not already recorded sent).
fn sent_versions(actions: &[ActionRecord], sent_on: NaiveDate) -> Vec<ActionRecord> {
    actions
        .iter()
        .filter(|a| a.status != ActionStatus::Sent)
        .map(|a| {
            let mut next = a.clone();
            next.status = ActionStatus::Sent;
            next.sent_on = Some(sent_on);
            next.note = None;
            next
        })
        .collect()
}

/// Messages delivered as one batch: one ledger step to take them, one to
/// record what the mail service said (and a lease renewal between batches).
const BATCH: usize = 200;

/// Invoices planned and recorded as one part of a run (whole customers).
const PART: usize = 20_000;

/// What a move of a batch is, to report once the ledger took it.
enum Kind {
    Reconciled,
    Cancelled {
        dropped: Vec<Dropped>,
        reason: String,
    },
    Take {
        dropped: Vec<Dropped>,
    },
}

fn note_dropped(report: &mut RunReport, dropped: Vec<Dropped>, moved: &[bool]) {
    for (d, ok) in dropped.into_iter().zip(moved) {
        if *ok {
            report.dropped.push(d);
        } else {
            report.conflicts.push(d.action_id.into());
        }
    }
}

/// The actions with another status (and note).
fn with_status(
    actions: &[ActionRecord],
    status: ActionStatus,
    note: Option<&str>,
) -> Vec<ActionRecord> {
    actions
        .iter()
        .map(|a| {
            let mut next = a.clone();
            next.status = status;
            if let Some(n) = note {
                next.note = Some(n.to_string());
            }
            next
        })
        .collect()
}

/// What the checks before sending decided for one message.
struct Checked {
    keep: Vec<ActionRecord>,
    drop: Vec<(ActionRecord, ActionStatus, String)>,
}

impl Sweeper<'_> {
    /// The whole run: lease, plan, record, deliver.
    pub async fn run<L: Ledger, M: Mailer>(
        &self,
        ledger: &L,
        mailer: &M,
        req: &RunRequest<'_>,
    ) -> Result<RunReport, RunError> {
        let lease = req.scope.lease_name();
        if !req.dry_run {
            self.renew(ledger, &lease, req).await?;
        }
        let result = self.run_leased(ledger, mailer, req, &lease).await;
        if req.dry_run || matches!(result, Err(RunError::Crashed(_))) {
            // A crashed run never gets here in real life: its lease expires.
            return result;
        }
        let released = ledger.release_lease(&lease, &req.holder).await;
        // The run's own error, if any, says more than the release's.
        let report = result?;
        released?;
        Ok(report)
    }

    /// Renews the lease in the middle of a run: another holder means this
    /// run's lease ran out and was taken; a ledger failure stays itself.
    async fn keep<L: Ledger>(
        &self,
        ledger: &L,
        lease: &str,
        req: &RunRequest<'_>,
    ) -> Result<(), RunError> {
        match self.renew(ledger, lease, req).await {
            Err(RunError::Busy { .. }) => Err(RunError::LostLease(lease.to_string())),
            other => other,
        }
    }

    /// The local runner's entry: the same run, driven to completion on this
    /// thread (SQLite and the outbox answer at once).
    pub fn run_blocking<L: Ledger, M: Mailer>(
        &self,
        ledger: &L,
        mailer: &M,
        req: &RunRequest<'_>,
    ) -> Result<RunReport, RunError> {
        pollster::block_on(self.run(ledger, mailer, req))
    }

    async fn renew<L: Ledger>(
        &self,
        ledger: &L,
        lease: &str,
        req: &RunRequest<'_>,
    ) -> Result<(), RunError> {
        match ledger
            .take_lease(lease, &req.holder, (req.now)(), self.lease_ttl)
            .await?
        {
            LeaseOutcome::Taken(_) => Ok(()),
            LeaseOutcome::HeldBy(l) => Err(RunError::Busy {
                scope: match req.scope {
                    Scope::All => "home".to_string(),
                    Scope::Shard { shard, .. } => format!("shard {shard}"),
                },
                pid: l.holder.pid,
                host: l.holder.host.clone(),
                since: l.since,
                expires: l.expires,
                lease: Box::new(l),
            }),
        }
    }

    async fn run_leased<L: Ledger, M: Mailer>(
        &self,
        ledger: &L,
        mailer: &M,
        req: &RunRequest<'_>,
        lease: &str,
    ) -> Result<RunReport, RunError> {
        let day = req.day;
        let crash = |point: CrashPoint, id: Option<&str>| -> Result<(), RunError> {
            match req.faults {
                Some(f) if f(point, id) => Err(RunError::Crashed(point)),
                _ => Ok(()),
            }
        };
        let mut report = RunReport {
            dry_run: req.dry_run,
            ..RunReport::default()
        };
        let started = Instant::now();
        let since = collect_engine::sweep::history_since(self.policy, day);
        let book = ledger.load_book(&req.scope, day, since).await?;
        report.customers = book.customers.len();
        report.timings.load_book = started.elapsed();
        let planner = Planner::new(self.policy, self.scorer, day, &self.options);
        report.plan = planner.empty();
        if req.dry_run {
            let started = Instant::now();
            for part in Planner::parts(&book, PART) {
                let mut planned = planner.empty();
                planner.plan(&book, part, &mut planned);
                report.plan.absorb(planned, req.keep_records);
            }
            report.timings.plan_sweep = started.elapsed();
            return Ok(report);
        }
        mailer.recover().await.map_err(RunError::MailRecovery)?;
        self.keep(ledger, lease, req).await?;

        // Planned and recorded part by part (whole customers), so a run
        // holds one part's records at a time, not every record of the book.
        for (k, part) in Planner::parts(&book, PART).enumerate() {
            if k > 0 {
                self.keep(ledger, lease, req).await?;
            }
            let started = Instant::now();
            let mut planned = planner.empty();
            planner.plan(&book, part, &mut planned);
            report.timings.plan_sweep += started.elapsed();
            let started = Instant::now();
            self.record(ledger, &book, &planned, day, &mut report, &crash)
                .await?;
            report.timings.save_actions += started.elapsed();
            report.plan.absorb(planned, req.keep_records);
        }
        drop(book);

        // Everything unfinished, older messages first, then this run's in
        // the order it planned them (a customer's email before the offer).
        let started = Instant::now();
        let mut unfinished = ledger.unfinished_messages(&req.scope).await?;
        let order: HashMap<&str, usize> = report
            .plan
            .messages
            .iter()
            .enumerate()
            .map(|(k, m)| (m.message_id.as_str(), k))
            .collect();
        unfinished.sort_by(|a, b| {
            let key = |m: &StoredMessage| order.get(m.message_id.as_str()).copied();
            (key(a), a.planned_on, &a.message_id).cmp(&(key(b), b.planned_on, &b.message_id))
        });
        let mut unfinished = unfinished.into_iter().peekable();
        let mut first = true;
        while unfinished.peek().is_some() {
            if !first {
                self.keep(ledger, lease, req).await?;
            }
            first = false;
            let batch: Vec<StoredMessage> = unfinished.by_ref().take(BATCH).collect();
            self.deliver_batch(ledger, mailer, batch, req, &mut report, &crash)
                .await?;
        }
        report.timings.sending = started.elapsed();
        Ok(report)
    }

    /// Records a part of the plan: its messages first, with their content
    /// (an action never names a message that is not recorded), then its
    /// actions, each conditionally on the status the book read.
    async fn record<L: Ledger>(
        &self,
        ledger: &L,
        book: &Book,
        plan: &SweepPlan,
        day: NaiveDate,
        report: &mut RunReport,
        crash: &impl Fn(CrashPoint, Option<&str>) -> Result<(), RunError>,
    ) -> Result<(), RunError> {
        let planned: Vec<StoredMessage> = plan
            .messages
            .iter()
            .map(|m| StoredMessage::planned(m, day))
            .collect();
        ledger.put_messages(&planned).await?;
        drop(planned);
        crash(CrashPoint::AfterMessagesRecorded, None)?;
        // The stored status of each record this run changes (the condition
        // of its write): looked up for those records only, not for every
        // action the book holds.
        let previous = plan
            .records
            .iter()
            .filter_map(|r| {
                book.steps_of(&r.invoice_id)
                    .iter()
                    .find(|a| *a.action_id == *r.action_id)
                    .map(|a| (r.action_id.clone(), a.status))
            })
            .collect();
        let recorded = ledger.record_actions(&plan.records, &previous, day).await?;
        report.recorded += recorded.written.len();
        report
            .conflicts
            .extend(recorded.conflicts.into_iter().map(String::from));
        crash(CrashPoint::AfterRecording, None)
    }

    /// Delivers a batch of messages: the checks and the move to `sending`
    /// of the whole batch as one ledger step, then the mail service message
    /// by message, then the `sent` marks as one step. A crash leaves at most
    /// one batch `sending`, which the next run reconciles.
    async fn deliver_batch<L: Ledger, M: Mailer>(
        &self,
        ledger: &L,
        mailer: &M,
        batch: Vec<StoredMessage>,
        req: &RunRequest<'_>,
        report: &mut RunReport,
        crash: &impl Fn(CrashPoint, Option<&str>) -> Result<(), RunError>,
    ) -> Result<(), RunError> {
        let day = req.day;
        let now = (req.now)();
        let mut ids: Vec<&str> = batch.iter().map(|m| m.customer_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let carried: Vec<&str> = batch.iter().map(|m| m.message_id.as_str()).collect();
        let books = ledger.customer_books(&ids, &carried).await?;
        let empty = Book::default();
        // Contacts this batch is about to make, per customer: the checks of
        // a customer's second message count the first.
        let mut making: HashMap<CustomerId, Vec<Contact>> = HashMap::new();
        let mut moves: Vec<Move> = Vec::new();
        // For each move: what it is, to report once the ledger took it.
        let mut kinds: Vec<Kind> = Vec::new();
        for mut m in batch {
            let fresh = books.get(m.customer_id.as_str()).unwrap_or(&empty);
            // The actions of the message as recorded now, still waiting for it.
            let mine: Vec<ActionRecord> = m
                .invoice_ids
                .iter()
                .flat_map(|inv| fresh.actions_of(inv))
                .filter(|a| {
                    m.action_ids.contains(&a.action_id)
                        && a.message_id.as_deref() == Some(m.message_id.as_str())
                        && matches!(
                            a.status,
                            ActionStatus::Planned | ActionStatus::Sending | ActionStatus::Sent
                        )
                })
                .cloned()
                .collect();
            match m.status {
                MessageStatus::Sending => {
                    // Handed over before a crash? Ask before anything else.
                    let answer = match &m.provider_message_id {
                        Some(p) => Acceptance::Accepted {
                            provider_message_id: p.clone(),
                        },
                        // Actions are marked sent only once the service accepted it.
                        None if !mine.is_empty()
                            && mine.iter().all(|a| a.status == ActionStatus::Sent) =>
                        {
                            Acceptance::Accepted {
                                provider_message_id: "(accepted before a crash; id not recorded)"
                                    .to_string(),
                            }
                        }
                        None => mailer
                            .accepted(&m.message_id)
                            .await
                            .unwrap_or(Acceptance::Unknown),
                    };
                    match answer {
                        Acceptance::Accepted {
                            provider_message_id,
                        } => {
                            let sent_on = m.sent_on.unwrap_or(day);
                            let mut next = m.clone();
                            next.status = MessageStatus::Sent;
                            next.sent_on = Some(sent_on);
                            next.provider_message_id = Some(provider_message_id);
                            next.note =
                                Some("reconciled: the mail service had accepted it".to_string());
                            moves.push(Move {
                                day,
                                actions: sent_versions(&mine, sent_on),
                                next,
                                from: MessageStatus::Sending,
                            });
                            kinds.push(Kind::Reconciled);
                            continue;
                        }
                        Acceptance::Unknown
                            if m.sending_since.is_none_or(|since| {
                                now.signed_duration_since(since) < self.grace
                            }) =>
                        {
                            report.in_doubt.push(m.message_id);
                            continue;
                        }
                        Acceptance::Unknown | Acceptance::NotAccepted => {}
                    }
                }
                MessageStatus::Planned => {}
                MessageStatus::Sent | MessageStatus::Cancelled | MessageStatus::Failed => {
                    continue;
                }
            }

            let mine: Vec<ActionRecord> = mine
                .into_iter()
                .filter(|a| a.status != ActionStatus::Sent)
                .collect();
            let extra = making.get(&m.customer_id).map_or(&[][..], Vec::as_slice);
            let checked = self.check(fresh, &m, mine, extra, day);
            let mut actions: Vec<ActionRecord> = checked
                .drop
                .iter()
                .map(|(record, status, reason)| {
                    let mut next = record.clone();
                    next.status = *status;
                    next.note = Some(reason.clone());
                    next.message_id = None;
                    next
                })
                .collect();
            let dropped: Vec<Dropped> = checked
                .drop
                .iter()
                .map(|(record, status, reason)| Dropped {
                    action_id: record.action_id.clone(),
                    message_id: m.message_id.clone(),
                    invoice_id: record.invoice_id.clone(),
                    status: *status,
                    reason: reason.clone(),
                })
                .collect();
            let from = m.status;
            if checked.keep.is_empty() {
                let reason = match checked.drop.first() {
                    Some((_, _, why)) if checked.drop.len() == 1 => why.clone(),
                    Some(_) => {
                        "nothing left to send after the checks (see each action)".to_string()
                    }
                    None => {
                        "its actions were never recorded, or another run moved them".to_string()
                    }
                };
                let mut next = m.clone();
                next.status = MessageStatus::Cancelled;
                next.note = Some(reason.clone());
                moves.push(Move {
                    day,
                    next,
                    from,
                    actions,
                });
                kinds.push(Kind::Cancelled { dropped, reason });
                continue;
            }
            narrow(&mut m, &checked.keep);
            if let Some(c) = m.channel.contact() {
                making
                    .entry(m.customer_id.clone())
                    .or_default()
                    .push(Contact {
                        date: day,
                        channel: c,
                    });
            }
            // Take it: the conditional move to `sending` makes this run the
            // sender; what the checks dropped moves in the same step.
            let mut next = m;
            next.status = MessageStatus::Sending;
            next.sending_since = Some(now);
            actions.extend(checked.keep.iter().map(|r| {
                let mut next = r.clone();
                next.status = ActionStatus::Sending;
                next
            }));
            moves.push(Move {
                day,
                next,
                from,
                actions,
            });
            kinds.push(Kind::Take { dropped });
        }

        // Step 1: reconciliations, cancellations and the move to `sending`.
        let results = ledger.move_batch(&moves).await?;
        let mut taken: Vec<(StoredMessage, Vec<ActionRecord>)> = Vec::new();
        for ((mv, kind), result) in moves.into_iter().zip(kinds).zip(results) {
            let Some(moved) = result else {
                report.conflicts.push(mv.next.message_id.into());
                continue;
            };
            match kind {
                Kind::Reconciled => report.reconciled.push(mv.next.message_id),
                Kind::Cancelled { dropped, reason } => {
                    note_dropped(report, dropped, &moved);
                    report.cancelled.push((mv.next.message_id, reason));
                }
                Kind::Take { dropped } => {
                    let n = dropped.len();
                    note_dropped(report, dropped, moved.get(..n).unwrap_or_default());
                    let sending: Vec<ActionRecord> = mv
                        .actions
                        .into_iter()
                        .zip(moved)
                        .skip(n)
                        .filter_map(|(a, ok)| ok.then_some(a))
                        .collect();
                    taken.push((mv.next, sending));
                }
            }
        }
        if let Some((first, _)) = taken.first() {
            crash(CrashPoint::AfterMarkedSending, Some(&first.message_id))?;
        }

        // Step 2: the mail service, message by message.
        let mut finishing: Vec<Move> = Vec::new();
        for (m, sending) in taken {
            let fresh = books.get(m.customer_id.as_str()).unwrap_or(&empty);
            let Some(customer) = fresh.customers.get(m.customer_id.as_str()) else {
                continue;
            };
            let planned = m.to_planned();
            let outcome = match self.compose_at(fresh, customer, &planned, day, (req.now)()) {
                Ok(msg) => mailer.send(&msg).await.map(|r| (r, msg.subject)),
                Err(reason) => Err(MailError::Build {
                    message_id: m.message_id.to_string(),
                    reason,
                }),
            };
            match outcome {
                Ok((receipt, subject)) => {
                    crash(CrashPoint::AfterAccepted, Some(&m.message_id))?;
                    report.sent.push(SentMessage {
                        message_id: m.message_id.clone(),
                        customer_id: m.customer_id.clone(),
                        to: customer.email.clone(),
                        channel: m.channel,
                        template: m.template.clone(),
                        invoices: m.invoice_ids.clone(),
                        subject,
                    });
                    let mut done = m;
                    done.status = MessageStatus::Sent;
                    done.sent_on = Some(day);
                    done.provider_message_id = Some(receipt.provider_message_id);
                    done.note = None;
                    finishing.push(Move {
                        day,
                        actions: sent_versions(&sending, day),
                        next: done,
                        from: MessageStatus::Sending,
                    });
                }
                Err(MailError::Provider {
                    reason,
                    retryable: true,
                    ..
                }) => {
                    // Refused for now (throttled): nothing went out.
                    report
                        .retry_later
                        .push((m.message_id.clone(), reason.clone()));
                    let mut back = m;
                    back.status = MessageStatus::Planned;
                    back.sending_since = None;
                    back.note = Some(format!("the mail service refused it for now: {reason}"));
                    finishing.push(Move {
                        day,
                        actions: with_status(&sending, ActionStatus::Planned, None),
                        next: back,
                        from: MessageStatus::Sending,
                    });
                }
                Err(e @ MailError::Build { .. }) => {
                    // Our side (a template that does not render): nothing
                    // went out. The steps wait, and go out once it is fixed.
                    let reason = format!(
                        "the message could not be composed: {e}; fix it and the next sweep sends it"
                    );
                    report.failed.push((m.message_id.clone(), reason.clone()));
                    let mut back = m;
                    back.status = MessageStatus::Cancelled;
                    back.sending_since = None;
                    back.note = Some(reason.clone());
                    finishing.push(Move {
                        day,
                        actions: with_status(&sending, ActionStatus::Deferred, Some(&reason)),
                        next: back,
                        from: MessageStatus::Sending,
                    });
                }
                Err(e) => {
                    let reason = format!("the message could not be sent: {e}");
                    report.failed.push((m.message_id.clone(), reason.clone()));
                    let mut failed = m;
                    failed.status = MessageStatus::Failed;
                    failed.note = Some(reason.clone());
                    finishing.push(Move {
                        day,
                        actions: with_status(&sending, ActionStatus::Failed, Some(&reason)),
                        next: failed,
                        from: MessageStatus::Sending,
                    });
                }
            }
        }

        // Step 3: what the mail service said, as one step.
        let done = ledger.move_batch(&finishing).await?;
        if let Some(first) = finishing.first() {
            crash(CrashPoint::AfterMarkedSent, Some(&first.next.message_id))?;
        }
        for (mv, result) in finishing.iter().zip(done) {
            if result.is_none() {
                report.conflicts.push(mv.next.message_id.to_string());
            }
        }
        Ok(())
    }

    /// The checks made just before a message is handed over, against the
    /// customer's current state.
    fn check(
        &self,
        fresh: &Book,
        m: &StoredMessage,
        actions: Vec<ActionRecord>,
        making: &[Contact],
        day: NaiveDate,
    ) -> Checked {
        let mut out = Checked {
            keep: Vec::new(),
            drop: Vec::new(),
        };
        let all = |out: &mut Checked, actions: Vec<ActionRecord>, status, why: String| {
            for a in actions {
                out.drop.push((a, status, why.clone()));
            }
        };
        let Some(customer) = fresh.customers.get(m.customer_id.as_str()) else {
            all(
                &mut out,
                actions,
                ActionStatus::Deferred,
                format!(
                    "held when it was about to go out: customer `{}` is no longer in the book",
                    m.customer_id
                ),
            );
            return out;
        };
        if customer.do_not_contact {
            all(
                &mut out,
                actions,
                ActionStatus::Deferred,
                "held when it was about to go out: the customer is marked do-not-contact"
                    .to_string(),
            );
            return out;
        }
        if m.channel != AuditChannel::Call {
            if let Err(e) = customer.email.trim().parse::<lettre::Address>() {
                all(
                    &mut out,
                    actions,
                    ActionStatus::Deferred,
                    format!(
                        "held when it was about to go out: the customer's email address `{}` is invalid ({e}); it goes out once the address is corrected",
                        customer.email
                    ),
                );
                return out;
            }
        }
        let stats = fresh.customer_stats(&customer.customer_id, day);
        let mut left = Vec::new();
        for a in actions {
            match self.invoice_check(fresh, customer, &stats, m, &a, day) {
                Some((status, why)) => out.drop.push((a, status, why)),
                None => left.push(a),
            }
        }
        if left.is_empty() {
            return out;
        }
        // Caps and one email a day, against the contacts recorded now (this
        // message is not among them: it is not sent).
        let mut history = fresh.contacts(&customer.customer_id, day);
        history.extend_from_slice(making);
        let ch = m.channel.contact();
        let local = self.options.local_time_for(&customer.timezone, day);
        let why = match ch {
            Some(Channel::Email)
                if history
                    .iter()
                    .any(|c| c.date == day && c.channel == Channel::Email) =>
            {
                Some("the customer already got an email today".to_string())
            }
            Some(c) => self.policy.guardrail(c, day, Some(local), &history),
            None => None,
        };
        match why {
            Some(reason) => all(
                &mut out,
                left,
                ActionStatus::Deferred,
                format!(
                    "deferred when it was about to go out: {reason}; retried on the next sweep"
                ),
            ),
            None => out.keep = left,
        }
        out
    }

    /// Why one invoice's action must not go out now, if it must not.
    fn invoice_check(
        &self,
        fresh: &Book,
        customer: &Customer,
        stats: &collect_engine::book::CustomerStats,
        m: &StoredMessage,
        a: &ActionRecord,
        day: NaiveDate,
    ) -> Option<(ActionStatus, String)> {
        let Some(inv) = fresh.invoice(&a.invoice_id) else {
            return Some((
                ActionStatus::Skipped,
                format!(
                    "skipped when it was about to go out: invoice `{}` is no longer in the book",
                    a.invoice_id
                ),
            ));
        };
        if !fresh.is_open(inv, day) {
            return Some((
                ActionStatus::Skipped,
                "skipped when it was about to go out: the invoice was settled".to_string(),
            ));
        }
        let d = self
            .policy
            .decide(&facts(fresh, customer, inv, stats, a.risk, day));
        if d.not_in_effect {
            return Some((
                ActionStatus::Deferred,
                "held when it was about to go out: the policy is not in effect".to_string(),
            ));
        }
        if d.is_held() {
            let holds: Vec<&str> = bits(d.holds)
                .filter_map(|i| self.policy.holds.get(i))
                .map(|h| h.name.as_str())
                .collect();
            return Some((
                ActionStatus::Deferred,
                format!(
                    "held when it was about to go out: {}",
                    if holds.is_empty() {
                        "a hold of the policy".to_string()
                    } else {
                        format!("hold `{}`", holds.join("`, `"))
                    }
                ),
            ));
        }
        if m.channel == AuditChannel::Offer {
            let balance = fresh.balance(inv, day);
            let offered: Option<Decimal> = m.plan.as_ref().map(|items| {
                items
                    .iter()
                    .map(|(_, amount)| *amount)
                    .fold(Decimal::ZERO, Decimal::saturating_add)
            });
            if offered != Some(balance) {
                return Some((
                    ActionStatus::Deferred,
                    "deferred when it was about to go out: the balance changed since the plan was worked out; the next sweep offers it again".to_string(),
                ));
            }
        }
        None
    }

    /// [`Sweeper::compose_at`] for a preview (`collect tasks show`): the
    /// message as it would go out on `day`, dated 00:00 UTC that day (a
    /// preview is not sent; the delivery run dates messages with its clock).
    pub fn compose(
        &self,
        book: &Book,
        customer: &Customer,
        planned: &PlannedMessage,
        day: NaiveDate,
    ) -> Result<OutgoingMessage, String> {
        let midnight = day.and_time(chrono::NaiveTime::MIN).and_utc();
        self.compose_at(book, customer, planned, day, midnight)
    }

    /// Renders a planned message for its customer, in their language and
    /// formats, sent at `sent_at` (the `Date:`). A letter also goes as a
    /// printable PDF, attached.
    pub fn compose_at(
        &self,
        book: &Book,
        customer: &Customer,
        planned: &PlannedMessage,
        day: NaiveDate,
        sent_at: DateTime<Utc>,
    ) -> Result<OutgoingMessage, String> {
        // Formats in the language of the version sent: a customer whose
        // language has no version gets the `en` one in English formats.
        let primary = |l: &str| {
            l.trim()
                .split(['-', '_'])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        let language = match self
            .templates
            .language_for(&planned.template, &customer.language)
        {
            Some(version) if primary(&version) != primary(&customer.language) => version,
            _ => customer.language.clone(),
        };
        let formats = Formats::for_customer(&language, customer.country.as_deref());
        let ctx = self.context(book, customer, planned, day, &formats);
        let rendered = self
            .templates
            .render(&planned.template, &customer.language, &ctx)
            .map_err(|e| e.to_string())?;
        let mut attachments = Vec::new();
        if planned.channel == AuditChannel::Letter {
            let pdf = letter_pdf(&Letter {
                company: &self.sender.company,
                address: &self.sender.address,
                contact: &ctx.company.reply_to,
                title: &rendered.subject,
                body: &rendered.text,
                language: &formats.locale(),
            });
            attachments.push(Attachment {
                filename: letter_file_name(&planned.template, &ctx.invoices),
                content_type: "application/pdf".to_string(),
                content: pdf,
            });
        }
        Ok(OutgoingMessage {
            message_id: planned.message_id.to_string(),
            date: day,
            sent_at,
            from: Mailbox {
                name: self.sender.company.clone(),
                email: self.sender.email.clone(),
            },
            to: Mailbox {
                name: customer.name.clone(),
                email: customer.email.clone(),
            },
            reply_to: self.sender.reply_to.as_ref().map(|r| Mailbox {
                name: self.sender.company.clone(),
                email: r.clone(),
            }),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            action_ids: planned.action_ids.iter().map(ToString::to_string).collect(),
            tags: planned.tags.clone(),
            attachments,
        })
    }

    /// What the templates see for a planned message, formatted for the
    /// customer.
    fn context(
        &self,
        book: &Book,
        customer: &Customer,
        planned: &PlannedMessage,
        day: NaiveDate,
        formats: &Formats,
    ) -> MessageContext {
        let expires = day
            .checked_add_days(Days::new(self.pay_link_days))
            .unwrap_or(day);
        let invoices: Vec<&Invoice> = planned
            .invoice_ids
            .iter()
            .filter_map(|id| book.invoice(id))
            .collect();
        let currency = invoices
            .first()
            .map_or("", |i| i.currency.as_str())
            .to_string();
        let total: Decimal = invoices
            .iter()
            .map(|i| book.balance(i, day))
            .fold(Decimal::ZERO, Decimal::saturating_add);
        MessageContext {
            customer: CustomerCtx {
                id: customer.customer_id.clone(),
                name: customer.name.clone(),
            },
            company: CompanyCtx {
                name: self.sender.company.clone(),
                reply_to: self
                    .sender
                    .reply_to
                    .clone()
                    .unwrap_or_else(|| self.sender.email.clone()),
                address: self.sender.address.clone(),
            },
            today: formats.date(day),
            invoices: invoices
                .iter()
                .map(|i| InvoiceCtx {
                    id: i.invoice_id.clone(),
                    number: i.number.clone(),
                    amount: formats.money(i.amount, &i.currency),
                    balance: formats.money(book.balance(i, day), &i.currency),
                    due_date: formats.date(i.due_date),
                    due_date_short: formats.date_short(i.due_date),
                    days_to_due: (i.due_date - day).num_days(),
                    days_past_due: (day - i.due_date).num_days().max(0),
                    pay_link: self.pay_links.link(&i.invoice_id, expires),
                })
                .collect(),
            total_balance: formats.money(total, &currency),
            plan: planned.plan.as_ref().map(|items| {
                let down = if items.len() > 1 && items.first().is_some_and(|(d, _)| *d == day) {
                    items.first().map_or(Decimal::ZERO, |(_, a)| *a)
                } else {
                    Decimal::ZERO
                };
                let installments: Vec<InstallmentCtx> = items
                    .iter()
                    .filter(|(d, _)| *d != day || down.is_zero())
                    .enumerate()
                    .map(|(k, (d, a))| InstallmentCtx {
                        number: k as u32 + 1,
                        due_date: formats.date(*d),
                        amount: formats.money(*a, &currency),
                    })
                    .collect();
                let every = match items.as_slice() {
                    [.., (a, _), (b, _)] => (*b - *a).num_days(),
                    _ => 0,
                };
                PlanCtx {
                    down_payment: formats.money(down, &currency),
                    installments,
                    every_days: every,
                    total: formats.money(
                        items
                            .iter()
                            .map(|(_, a)| *a)
                            .fold(Decimal::ZERO, Decimal::saturating_add),
                        &currency,
                    ),
                }
            }),
        }
    }
}

/// The PDF's file name as the customer sees it: the template and the first
/// invoice's number (`legal-notice-2027-00880.pdf`), letters, digits, `.`,
/// `_` and `-` only.
fn letter_file_name(template: &str, invoices: &[InvoiceCtx]) -> String {
    let stem = match invoices.first() {
        Some(i) => format!("{template}-{}", i.number),
        None => template.to_string(),
    };
    let safe: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.pdf")
}

/// The message with only the actions that still go out: their invoices,
/// and the template of the most advanced step among them.
fn narrow(m: &mut StoredMessage, keep: &[ActionRecord]) {
    let ids: HashSet<&str> = keep.iter().map(|a| a.action_id.as_str()).collect();
    if ids.len() == m.action_ids.len() {
        return;
    }
    m.action_ids.retain(|id| ids.contains(id.as_str()));
    let invoices: HashSet<&str> = keep.iter().map(|a| a.invoice_id.as_str()).collect();
    m.invoice_ids.retain(|i| invoices.contains(i.as_str()));
    if let Some(lead) = keep
        .iter()
        .max_by_key(|a| (a.step_offset, a.invoice_id.as_str()))
    {
        m.template.clone_from(&lead.target);
        for (k, v) in &mut m.tags {
            if k == "template" {
                v.clone_from(&lead.target);
            }
        }
    }
}
