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
//!
//! Fencing: the run's lease carries a token ([`crate::ledger::Lease::token`])
//! that grows with every new holder. The move of a batch to `sending` is
//! written only while the lease still carries the run's token
//! ([`Ledger::move_batch_fenced`]), and before each message is handed to
//! the mail service the run checks, by its own clock, that its lease has
//! more than a margin left ([`lease_margin`]), renewing it when not. A run
//! stopped (paused, swapped out) past its lease while another run took it
//! over therefore writes and sends nothing more: it stops with
//! [`RunError::LostLease`], records as sent what the mail service had
//! already accepted, and leaves the rest `sending` for the next run, which
//! checks it again (its reconciliation).
//!
//! The run is here; its parts beside it: [`send`] (a batch: checks, the
//! move to `sending`, the mail service, `sent`), [`checks`] (what is checked
//! just before sending), [`holds`] (contact holds: a refused or bounced
//! address held until it is fixed) and [`compose`] (a message's context,
//! its rendered template and the legal letter's PDF).
mod checks;
mod compose;
pub mod holds;
mod send;

use crate::ledger::{
    Fence, Lease, LeaseHolder, LeaseOutcome, Ledger, LedgerError, Scope, StoredMessage,
};
use crate::mailer::{MailError, Mailer};
use crate::message::{PayLinks, Templates};
use chrono::{DateTime, NaiveDate, Utc};
use collect_engine::book::Book;
use collect_engine::domain::{
    ActionId, ActionRecord, ActionStatus, Channel as AuditChannel, CustomerId, InvoiceId, MessageId,
};
use collect_engine::sweep::{Planner, RiskScorer, SweepOptions, SweepPlan};
use policy_lang::Policy;
use serde::Serialize;
use std::collections::HashMap;
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
    /// The company's country (ISO 3166 alpha-2): a letter to a customer in
    /// another country ends its address block with the country's name.
    /// Unknown: the name is printed whenever the customer's country is
    /// known.
    pub country: Option<String>,
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
    /// The mail service refused a message (after the retries of a
    /// transient failure), or it could not be composed; nothing recorded
    /// of it yet: it is still `sending`.
    AfterRefused,
    /// What the mail service said is recorded: the batch's messages `sent`,
    /// or back to `planned` (refused for now, or the run stopped sending),
    /// or cancelled with their steps deferred.
    AfterMarkedSent,
    /// The mail service refused the recipient: the customer's address is
    /// held, the message still `sending` (only when a recipient is refused).
    AfterHeld,
}

impl CrashPoint {
    pub const ALL: [CrashPoint; 7] = [
        CrashPoint::AfterMessagesRecorded,
        CrashPoint::AfterRecording,
        CrashPoint::AfterMarkedSending,
        CrashPoint::AfterAccepted,
        CrashPoint::AfterRefused,
        CrashPoint::AfterMarkedSent,
        CrashPoint::AfterHeld,
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
    /// Another run took the lease over (this run was stopped or slowed past
    /// its lease): this run stopped before writing or sending anything
    /// more. The name of the lease.
    #[error(
        "this run lost its claim on the {0}: it was stopped or slowed past its lease and another \
         run took the claim over, so it stopped sending at once; what it had already handed to \
         the mail service is recorded as sent, everything else is left for the next run to check \
         again and send; run again to finish"
    )]
    LostLease(String),
    /// The mail service could not clear what an interrupted run left
    /// (the outbox's temporary files): nothing was sent; run again once
    /// the cause is fixed.
    #[error("the mail service could not clear what an interrupted run left: {0}")]
    MailRecovery(#[source] MailError),
    /// The mail service failed as a whole (the outbox cannot be written,
    /// SES refuses the account or the sender): the run stopped sending at
    /// once. What it did before is recorded (`report`); the message in hand
    /// and every message not sent stay `planned`, so the next run sends
    /// them once the cause is fixed. Nothing is lost and no step is taken.
    #[error(
        "the mail service failed, so the run stopped sending: {error}. \
         {sent} message(s) went out before it; nothing more was sent, and the {unsent} \
         message(s) not sent stay planned (no step is lost). Fix the cause and run again: \
         the next run sends them",
        sent = .report.sent.len()
    )]
    MailService {
        /// Said in the message (not a `source`: it would be said twice).
        error: MailError,
        /// Messages left `planned` by the stop.
        unsent: usize,
        /// What the run did before it stopped.
        report: Box<RunReport>,
    },
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
    /// Messages that could not be composed, or whose recipient the mail
    /// service refused: `(message id, reason)`. Nothing went out; their
    /// steps are deferred with the reason and go out once it is fixed.
    pub failed: Vec<(MessageId, String)>,
    /// Messages a crash left `sending` that the mail service had accepted.
    pub reconciled: Vec<MessageId>,
    /// Messages left `sending` the mail service cannot tell about yet.
    pub in_doubt: Vec<MessageId>,
    /// Messages the mail service refused for now (a transient failure,
    /// after the retries): back to `planned`, sent by a later run.
    pub retry_later: Vec<(MessageId, String)>,
    /// Hand-overs repeated within the run after a transient failure.
    pub retries: usize,
    /// Messages left `planned` because the mail service failed as a whole
    /// and the run stopped sending (see [`RunError::MailService`]).
    pub unsent: usize,
    /// Messages rendered but not handed over, in shadow mode
    /// ([`crate::mailer::Shadow`]): what would have gone out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shadowed: Vec<SentMessage>,
    /// Messages with nothing left to send after the checks: `(id, reason)`.
    pub cancelled: Vec<(MessageId, String)>,
    /// Actions taken out of a message by the checks before sending.
    pub dropped: Vec<Dropped>,
    /// Actions or messages another run had recorded or moved first.
    pub conflicts: Vec<String>,
    /// Contact holds this run created: an address the mail service refused
    /// or that is invalid; each is a task for a person to fix the address.
    pub contact_holds: Vec<collect_engine::contact::ContactHold>,
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
    /// Waited in pauses before retries (part of `sending`).
    pub retry_pauses: Duration,
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

/// How much of its lease a run keeps in hand before each send: when less
/// is left by its own clock, it renews the lease first (and stops when it
/// cannot). A quarter of the lease, at least 5 seconds: enough for one
/// hand-over to the mail service and for the clocks of two machines to
/// differ a little. (Locally, 30 seconds of a 2-minute lease; on AWS, 4
/// minutes of a shard's 16.)
pub fn lease_margin(ttl: chrono::Duration) -> chrono::Duration {
    (ttl / 4).max(chrono::Duration::seconds(5))
}

/// The lease a run holds: its name and token (the fence of its writes),
/// and until when it runs by the run's own clock.
pub(super) struct Tenure {
    name: String,
    token: u64,
    expires: DateTime<Utc>,
}

impl Tenure {
    fn of(lease: &Lease) -> Tenure {
        Tenure {
            name: lease.name.clone(),
            token: lease.token,
            expires: lease.expires,
        }
    }

    fn fence(&self) -> Fence {
        Fence {
            lease: self.name.clone(),
            token: self.token,
        }
    }
}

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
    /// A contact hold the checks found and the ledger does not keep yet
    /// (an invalid address): written with the batch, so a person gets the
    /// task to fix it.
    hold: Option<collect_engine::contact::ContactHold>,
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
        let mut tenure = Tenure {
            name: lease.clone(),
            token: 0,
            expires: (req.now)(),
        };
        if !req.dry_run {
            tenure = Tenure::of(&self.renew(ledger, &lease, req).await?);
        }
        let result = self.run_leased(ledger, mailer, req, &mut tenure).await;
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

    /// Renews the lease in the middle of a run. Another holder, or a new
    /// token (another run held the lease in between and gave it back),
    /// means this run's lease ran out and was taken: [`RunError::LostLease`].
    /// A ledger failure stays itself.
    async fn keep<L: Ledger>(
        &self,
        ledger: &L,
        tenure: &mut Tenure,
        req: &RunRequest<'_>,
    ) -> Result<(), RunError> {
        match self.renew(ledger, &tenure.name, req).await {
            Ok(l) if l.token == tenure.token => {
                tenure.expires = l.expires;
                Ok(())
            }
            Ok(_) | Err(RunError::Busy { .. }) => Err(RunError::LostLease(tenure.name.clone())),
            Err(other) => Err(other),
        }
    }

    /// Before a message is handed to the mail service: the lease must have
    /// more than [`lease_margin`] left by the run's own clock, or be renewed
    /// first ([`Sweeper::keep`]).
    async fn hold<L: Ledger>(
        &self,
        ledger: &L,
        tenure: &mut Tenure,
        req: &RunRequest<'_>,
    ) -> Result<(), RunError> {
        let now = (req.now)();
        let margin = lease_margin(self.lease_ttl);
        if now
            .checked_add_signed(margin)
            .is_some_and(|t| t < tenure.expires)
        {
            return Ok(());
        }
        self.keep(ledger, tenure, req).await
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
    ) -> Result<Lease, RunError> {
        match ledger
            .take_lease(lease, &req.holder, (req.now)(), self.lease_ttl)
            .await?
        {
            LeaseOutcome::Taken(l) => Ok(l),
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
        tenure: &mut Tenure,
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
        self.keep(ledger, tenure, req).await?;

        // Planned and recorded part by part (whole customers), so a run
        // holds one part's records at a time, not every record of the book.
        for (k, part) in Planner::parts(&book, PART).enumerate() {
            if k > 0 {
                self.keep(ledger, tenure, req).await?;
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
                self.keep(ledger, tenure, req).await?;
            }
            first = false;
            let batch: Vec<StoredMessage> = unfinished.by_ref().take(BATCH).collect();
            if let Some(error) = self
                .deliver_batch(ledger, mailer, batch, req, tenure, &mut report, &crash)
                .await?
            {
                // The mail service failed as a whole: the later batches
                // stay planned, untouched.
                report.unsent += unfinished.count();
                report.timings.sending = started.elapsed();
                return Err(RunError::MailService {
                    error,
                    unsent: report.unsent,
                    report: Box::new(report),
                });
            }
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
}
