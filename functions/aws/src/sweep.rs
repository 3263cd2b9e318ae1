//! The daily sweep on AWS: a coordinator that fans the day out into one
//! SQS message per job, and a worker that sweeps one job's virtual shards.
//!
//! **Fan-out.** A book of a million open invoices does not fit one Lambda
//! invocation (15 minutes, a few GB), so the coordinator only enqueues
//! `shards` small jobs ([`SweepJob`]: a day and a range of virtual shards,
//! [`shard_jobs`]); a worker sweeps each virtual shard of its range in
//! turn: it loads the customers of the virtual shard that have an open
//! invoice in the policy's window (one Query on the sparse index, then one
//! Query per customer), runs the pure
//! [`plan_sweep`](collect_engine::sweep::plan_sweep) on that book, records
//! and sends. With 64 jobs a worker sees ~16,000 invoices in 16 virtual
//! shards. Concurrency is bounded by the SQS event source's *maximum
//! concurrency* (see `infra/template.yaml`), so DynamoDB and SES see a
//! steady rate, not a burst.
//!
//! **Continuations.** Given its invocation's [`Deadline`], a worker starts
//! a virtual shard only while the margin and the longest virtual shard so
//! far still fit before it; otherwise it stops and reports the rest of the
//! job ([`ShardReport::continued`]), which the Lambda enqueues as a new job
//! with its checkpoint. Every virtual shard is a whole run of the protocol
//! below, so a job's invocations end with exactly what one long run would
//! have produced.
//!
//! **One protocol.** The worker runs the same delivery use case as `collect
//! run` ([`collect_delivery::delivery::Sweeper::run`]), on the DynamoDB ledger of its
//! virtual shard and SES: under the virtual shard's lease (a second worker on the same one
//! fails the SQS message, which is delivered again later), messages recorded
//! with their content before anything is sent, every message checked again
//! just before it goes out, a message left `sending` by a dead worker
//! reconciled from SES's events (after the grace period with no event, SES
//! never had it: it is sent once). A re-delivered job plans against what is
//! recorded, so it records and sends nothing twice.
//!
//! **SES as a service with limits** ([`SendControl`]). Before a run sends,
//! it reads the account with `GetAccount`: a blocking finding of the
//! account preflight (sending paused, the sandbox, a shutdown) stops the
//! run before it records anything ([`super::preflight`]); otherwise the run
//! sends at its share of the account's rate and stops at its share of the
//! daily quota ([`super::pacing`]), leaving the rest planned.
//!
//! **Shadow mode** (`SHADOW_MODE`, the stack's `ShadowMode`): the run
//! records and renders as usual but hands nothing to SES
//! ([`collect_delivery::mailer::Shadow`]: the messages are recorded
//! cancelled and their steps skipped, so a normal run never sends them
//! later and starts from what is due on its own day), and writes what would
//! have gone out to `s3://<bucket>/reports/shadow/<day>/shard-<n>.json`
//! ([`shadow_report_key`]).

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use policy_lang::Policy;
use serde::Serialize;

use super::artifacts::Artifacts;
use super::dynamo::Dynamo;
use super::error::{AwsError, ConfigError, SweepError};
use super::keys::worker_ranges;
use super::pacing::{Paced, SendLimits, TokioClock};
use super::preflight::{AccountCheck, AccountSource, NotReady, Preflight};
use super::queue::{Queue, ShardJob, SweepJob};
use super::ses::{SesAndEvents, SesMailer};
use collect_delivery::delivery::{RunReport, RunRequest, Sender, SentMessage, Sweeper};
use collect_delivery::ledger::{LeaseHolder, Ledger, Scope};
use collect_delivery::mailer::{Mailer, Shadow};
use collect_delivery::message::{PayLinks, Templates};
use collect_engine::domain::MessageId;
use collect_engine::sweep::{RiskScorer, SweepOptions};

/// Days past the policy's earliest step that the window reaches, for
/// business-day shifts (weekends, holidays) of step dates.
const WINDOW_SLACK_DAYS: i64 = 7;

/// The jobs of one day: `shards` worker jobs, each a range of the
/// `virtual_shards` virtual shards ([`worker_ranges`]); together they cover
/// every virtual shard once, so every customer is in exactly one job.
pub fn shard_jobs(day: NaiveDate, shards: u32, virtual_shards: u32) -> Vec<SweepJob> {
    worker_ranges(shards, virtual_shards)
        .into_iter()
        .zip(0..)
        .map(|(range, shard)| SweepJob::new(day, shard, range))
        .collect()
}

/// The coordinator: enqueues one job per worker; returns how many.
pub async fn enqueue_day(
    queue: &Queue,
    day: NaiveDate,
    shards: u32,
    virtual_shards: u32,
) -> Result<usize, AwsError> {
    queue
        .send_all(&shard_jobs(day, shards, virtual_shards))
        .await
}

/// How many days before its due date an invoice may need a step: the
/// policy's earliest (most negative) step offset, plus slack.
pub fn look_ahead_days(policy: &Policy) -> u64 {
    let earliest = policy
        .ladders
        .iter()
        .flat_map(|l| l.steps.iter())
        .map(|s| s.offset)
        .min()
        .unwrap_or(0);
    u64::try_from((-earliest).max(0) + WINDOW_SLACK_DAYS).unwrap_or(0)
}

/// What a worker needs: its ledger (the DynamoDB table) and mail service
/// (SES, with the events stored in the table), the policy bundle in force,
/// the scorer, and the sending settings.
///
/// The ledger and the mail service are type parameters so that the
/// worker's handler runs, unchanged, on the in-memory ledger and a
/// recording mail service in the sweep function's own tests; on Lambda
/// they are [`Dynamo`] and [`SesAndEvents`] ([`SweepService::load`]).
pub struct SweepService<L = Dynamo, M = SesAndEvents> {
    pub ledger: L,
    pub mailer: M,
    pub policy: Policy,
    pub templates: Templates,
    pub scorer: Box<dyn RiskScorer + Send + Sync>,
    pub pay_links: PayLinks,
    pub sender: Sender,
    pub options: SweepOptions,
    pub pay_link_days: u64,
    /// How long a message may stay `sending` with no SES event before it
    /// is taken as never accepted and sent again.
    pub grace: chrono::Duration,
    /// Shadow mode, and the account's limits shared among the workers.
    pub sending: SendControl,
    /// Where shadow runs write their report (the stack's bucket); `None`
    /// writes none (the handler's tests on the in-memory ledger).
    pub reports: Option<Artifacts>,
}

/// How a worker's sending is governed.
#[derive(Debug, Clone)]
pub struct SendControl {
    /// `SHADOW_MODE`: record and render, send nothing.
    pub shadow: bool,
    /// `WORKER_CONCURRENCY`: workers sending at once, who share the
    /// account's rate and quota.
    pub workers: u32,
    /// `SES_QUOTA_MARGIN_PERCENT`: the part of the daily quota kept in
    /// reserve (default 10).
    pub margin_percent: u32,
    /// Where the account's limits are read.
    pub account: AccountSource,
}

impl SendControl {
    /// Sending without limits, never in shadow mode.
    pub fn unlimited() -> SendControl {
        SendControl {
            shadow: false,
            workers: 1,
            margin_percent: 10,
            account: AccountSource::Unlimited,
        }
    }

    /// This run's share of the account's limits, after the account's
    /// preflight: a blocking finding is an error, and nothing is sent.
    /// `None`: no limits (shadow mode sends nothing; or unlimited).
    pub async fn limits(&self) -> Result<Option<SendLimits>, AwsError> {
        if self.shadow {
            return Ok(None);
        }
        let Some(account) = self.account.read().await? else {
            return Ok(None);
        };
        let check = AccountCheck {
            workers: self.workers,
            margin_percent: self.margin_percent,
            expected: None,
            shadow: false,
        };
        let preflight = Preflight::new(super::preflight::judge_account(&account, &check));
        for f in &preflight.findings {
            match f.severity {
                super::preflight::Severity::Ok => tracing::info!(check = f.check, "{f}"),
                _ => tracing::warn!(check = f.check, "{f}"),
            }
        }
        if !preflight.ready {
            return Err(NotReady(preflight).into());
        }
        Ok(Some(SendLimits::share(
            &account.quota,
            self.workers,
            self.margin_percent,
        )))
    }
}

/// Where the shadow report of a job's day is written: one report per
/// invocation (`-<n>` for the job's `n`-th continuation).
pub fn shadow_report_key(day: NaiveDate, shard: u32, continuation: u32) -> String {
    if continuation == 0 {
        format!("reports/shadow/{day}/shard-{shard:04}.json")
    } else {
        format!("reports/shadow/{day}/shard-{shard:04}-{continuation}.json")
    }
}

/// What a shadow run would have sent, as written to S3.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowReport<'a> {
    pub day: NaiveDate,
    pub shard: u32,
    /// The virtual shards the invocation swept, `[from, to)`.
    pub virtual_shards: (u32, u32),
    pub policy_revision: Option<&'a str>,
    pub bundle_revision: Option<&'a str>,
    /// The messages that would have gone out (rendered, not sent).
    pub would_send: &'a [SentMessage],
    /// Messages with nothing left to send after the checks.
    pub cancelled: &'a [(collect_engine::domain::MessageId, String)],
    /// Messages that could not be composed.
    pub failed: &'a [(collect_engine::domain::MessageId, String)],
}

/// What one shard's run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShardReport {
    pub day: Option<NaiveDate>,
    pub shard: u32,
    pub customers: usize,
    pub open_invoices: usize,
    /// Messages the plan of this run made (new ones and re-planned ones).
    pub planned: usize,
    /// Open invoices on hold (dispute, promise, plan, …): no step today.
    pub held: usize,
    /// Open invoices no policy covers (another currency, not yet in effect).
    pub not_covered: usize,
    /// Open invoices whose dunning stopped at the end of the ladder
    /// (written off, placed with an agency): no step, ever again.
    pub stopped: usize,
    /// Approved actions a guardrail keeps waiting.
    pub approved_waiting: usize,
    /// Action records written by this run.
    pub recorded: usize,
    /// Actions or messages another run had recorded or moved first (left alone).
    pub conflicts: usize,
    /// Messages sent by this run.
    pub sent: Vec<MessageId>,
    /// Messages found `sending` and shown by SES's events to have gone out.
    pub reconciled: Vec<MessageId>,
    /// Messages `sending` within the grace period: left for a later run.
    pub in_doubt: Vec<MessageId>,
    /// Messages not sent: what they carried is deferred or skipped, with
    /// the reason (checked again just before sending).
    pub cancelled: Vec<(MessageId, String)>,
    pub failed: Vec<(MessageId, String)>,
    /// Customers whose address the mail service refused this run: held,
    /// with a task for a person (the recipient class of a failed send).
    #[serde(default)]
    pub recipients_held: usize,
    /// Customers set aside with the reason (an absurd amount): everyone
    /// else in the shard was swept.
    pub unprocessable: Vec<(String, String)>,
    /// Messages SES refused for now; back to `planned` for the next run.
    pub retry_later: Vec<(MessageId, String)>,
    pub policy_revision: Option<String>,
    /// Shadow mode: messages rendered and not sent.
    pub shadowed: usize,
    /// Shadow mode: where the day's shadow report of the shard was written.
    pub shadow_report: Option<String>,
    /// This run's share of SES's rate and daily quota (none in shadow mode).
    pub send_limits: Option<SendLimits>,
    /// The run stopped sending because its share of the daily quota was
    /// used: `quota_held` messages stay planned for the next sweep (they
    /// are also in `retry_later`).
    pub quota_stopped: bool,
    pub quota_held: usize,
    /// The virtual shards this invocation swept, `[from, to)` (a part of
    /// the job's range when it continues or is a continuation).
    pub virtual_shards: (u32, u32),
    /// How many invocations worked on the job before this one.
    pub continuation: u32,
    /// The job's rest, enqueued as a new job when this invocation neared
    /// its time limit; `None` when the job's last virtual shard was swept
    /// (the job is done for the day).
    pub continued: Option<SweepJob>,
}

impl ShardReport {
    /// Whether the job is done for the day: this invocation swept its last
    /// virtual shard.
    pub fn done(&self) -> bool {
        self.continued.is_none()
    }

    /// Adds one virtual shard's run (its shadowed messages are counted by
    /// the caller, which keeps them for the shadow report).
    fn absorb(&mut self, run: RunReport) {
        self.customers += run.customers;
        self.open_invoices += run.plan.open_invoices;
        self.planned += run.plan.messages.len();
        self.held += run.plan.held.len();
        self.not_covered += run.plan.not_covered.len();
        self.stopped += run.plan.stopped.len();
        self.approved_waiting += run.plan.approved_waiting.len();
        self.recorded += run.recorded;
        self.conflicts += run.conflicts.len();
        self.sent
            .extend(run.sent.iter().map(|m| m.message_id.clone()));
        self.reconciled.extend(run.reconciled);
        self.in_doubt.extend(run.in_doubt);
        self.cancelled.extend(run.cancelled);
        self.failed.extend(run.failed);
        self.recipients_held += run
            .contact_holds
            .iter()
            .filter(|h| h.source.starts_with("sweep:"))
            .count();
        self.unprocessable.extend(run.plan.unprocessable);
        self.retry_later.extend(run.retry_later);
    }
}

/// When a worker stops starting virtual shards and hands the rest of its
/// job to a continuation: Lambda's deadline for the invocation, less a
/// margin kept free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// When the invocation is stopped.
    pub at: DateTime<Utc>,
    /// Kept free before `at`: a virtual shard does not start unless the
    /// longest one so far would end before `at - margin`.
    pub margin: chrono::Duration,
}

/// The part of an invocation's time a worker keeps free by default
/// (`SWEEP_MARGIN_PERCENT`).
pub const DEFAULT_MARGIN_PERCENT: u32 = 25;

impl Deadline {
    /// The deadline of an invocation that started at `started` and is
    /// stopped at `at`, keeping `percent` of its time free.
    pub fn of_invocation(started: DateTime<Utc>, at: DateTime<Utc>, percent: u32) -> Deadline {
        let total = (at - started).max(chrono::Duration::zero());
        let ms = total
            .num_milliseconds()
            .saturating_mul(i64::from(percent.min(100)))
            / 100;
        Deadline {
            at,
            margin: chrono::Duration::milliseconds(ms),
        }
    }

    /// Whether a virtual shard expected to take `longest` (the longest one
    /// so far) may start at `now`.
    pub fn allows(&self, now: DateTime<Utc>, longest: chrono::Duration) -> bool {
        now.checked_add_signed(longest)
            .and_then(|t| t.checked_add_signed(self.margin))
            .is_some_and(|end| end <= self.at)
    }
}

/// How long a worker holds its shard without renewing: longer than a
/// Lambda invocation may run (15 minutes), so only a dead worker's lease
/// runs out.
const SHARD_LEASE_MINUTES: i64 = 16;

/// The lease holder of one SQS record of one Lambda invocation: its id
/// names the invocation (`request_id`, to find its logs) and the record
/// (two records of one batch are two runs); `host` is the container's log
/// stream when Lambda sets it, which is what an operator looks up when a
/// shard is reported busy.
pub fn lambda_holder(request_id: &str, record: usize, now: DateTime<Utc>) -> LeaseHolder {
    let mut holder = LeaseHolder::this_process(now);
    if !request_id.is_empty() {
        holder.id = format!("lambda-{request_id}-{record}");
    }
    if let Ok(stream) = std::env::var("AWS_LAMBDA_LOG_STREAM_NAME") {
        if !stream.is_empty() {
            holder.host = stream;
        }
    }
    holder
}

impl<L: Ledger, M: Mailer> SweepService<L, M> {
    fn sweeper(&self) -> Sweeper<'_> {
        Sweeper {
            policy: &self.policy,
            scorer: self.scorer.as_ref(),
            templates: &self.templates,
            pay_links: &self.pay_links,
            sender: self.sender.clone(),
            options: self.options.clone(),
            pay_link_days: self.pay_link_days,
            grace: self.grace,
            lease_ttl: chrono::Duration::minutes(SHARD_LEASE_MINUTES),
        }
    }

    /// Sweeps one virtual shard for one day at a fixed instant `now`
    /// (tests, replays): [`run_job`](SweepService::run_job) with a clock
    /// that does not move and a holder named after this process.
    pub async fn run_shard(
        &self,
        job: ShardJob,
        now: DateTime<Utc>,
    ) -> Result<ShardReport, AwsError> {
        let clock = move || now;
        self.run_job(job.into(), &clock, LeaseHolder::this_process(now), None)
            .await
    }

    /// Sweeps a job's virtual shards for one day, as `holder` (see
    /// [`lambda_holder`]), one virtual shard after the other, each under
    /// its own lease (`sweep-shard-<virtual shard>`), so two workers never
    /// sweep one customer at once whatever their jobs' ranges.
    /// `clock` is the wall clock, read for the leases (taken, then renewed
    /// between batches), the grace period of reconciliation and the
    /// `deadline` only; every decision depends on `job.day` alone.
    ///
    /// With a `deadline`, the run starts a virtual shard only while the
    /// deadline [`allows`](Deadline::allows) it (always at least one, so
    /// every invocation makes progress) and reports the rest as
    /// [`ShardReport::continued`]: the caller enqueues it. Each virtual
    /// shard is a whole run of the delivery protocol, so what is done is
    /// recorded and sent, and a continuation (or a re-delivery) never
    /// records or sends it twice.
    ///
    /// A virtual shard whose lease another live worker holds is an error
    /// (retryable: the SQS message is delivered again later, from its
    /// checkpoint); what the virtual shards before it did stays done.
    pub async fn run_job(
        &self,
        job: SweepJob,
        clock: &(dyn Fn() -> DateTime<Utc> + Sync),
        holder: LeaseHolder,
        deadline: Option<Deadline>,
    ) -> Result<ShardReport, AwsError> {
        let day = job.day;
        let remaining = job.remaining();
        let limits = self.sending.limits().await?;
        let mut report = ShardReport {
            day: Some(day),
            shard: job.shard,
            policy_revision: self.options.git_revision.clone(),
            send_limits: limits,
            virtual_shards: (remaining.start, remaining.start),
            continuation: job.continuation,
            ..ShardReport::default()
        };
        let mut shadowed = Vec::new();
        let quota_held = if self.sending.shadow {
            let shadow = Shadow(Paced::new(&self.mailer, None, TokioClock::default()));
            self.sweep_parts(
                &job,
                &shadow,
                clock,
                &holder,
                deadline,
                &mut report,
                &mut shadowed,
            )
            .await?;
            0
        } else {
            let paced = Paced::new(&self.mailer, limits, TokioClock::default());
            self.sweep_parts(
                &job,
                &paced,
                clock,
                &holder,
                deadline,
                &mut report,
                &mut shadowed,
            )
            .await?;
            paced.held()
        };
        report.quota_stopped = quota_held > 0;
        report.quota_held = quota_held;
        if self.sending.shadow {
            report.shadow_report = self.write_shadow_report(&job, &report, &shadowed).await?;
        }
        tracing::info!(
            shard = job.shard,
            day = %day,
            virtual_shards = ?report.virtual_shards,
            continuation = report.continuation,
            done = report.done(),
            customers = report.customers,
            recorded = report.recorded,
            conflicts = report.conflicts,
            sent = report.sent.len(),
            reconciled = report.reconciled.len(),
            in_doubt = report.in_doubt.len(),
            cancelled = report.cancelled.len(),
            failed = report.failed.len(),
            set_aside = report.unprocessable.len(),
            shadowed = report.shadowed,
            quota_held = report.quota_held,
            policy_revision = report.policy_revision.as_deref().unwrap_or(""),
            "{}",
            if report.done() { "shard swept" } else { "shard continues in a new invocation" }
        );
        for (customer, reason) in &report.unprocessable {
            tracing::warn!(shard = job.shard, customer = %customer, reason = %reason, "customer set aside");
        }
        Ok(report)
    }

    /// The job's remaining virtual shards, one run each, until the range
    /// ends or the deadline says to stop (then `report.continued`).
    #[allow(clippy::too_many_arguments)]
    async fn sweep_parts<Mx: Mailer>(
        &self,
        job: &SweepJob,
        mailer: &Mx,
        clock: &(dyn Fn() -> DateTime<Utc> + Sync),
        holder: &LeaseHolder,
        deadline: Option<Deadline>,
        report: &mut ShardReport,
        shadowed: &mut Vec<SentMessage>,
    ) -> Result<(), AwsError> {
        let day = job.day;
        let through = day
            .checked_add_days(Days::new(look_ahead_days(&self.policy)))
            .unwrap_or(day);
        let sweeper = self.sweeper();
        let remaining = job.remaining();
        let mut longest = chrono::Duration::zero();
        for virtual_shard in remaining.clone() {
            if virtual_shard > remaining.start
                && deadline.is_some_and(|d| !d.allows(clock(), longest))
            {
                report.continued = Some(job.continued_at(virtual_shard));
                return Ok(());
            }
            let started = clock();
            let req = RunRequest {
                scope: Scope::Shard {
                    shard: virtual_shard,
                    through,
                },
                day,
                dry_run: false,
                holder: holder.clone(),
                now: clock,
                faults: None,
                keep_records: 0,
            };
            let mut run = sweeper
                .run(&self.ledger, mailer, &req)
                .await
                .map_err(SweepError::new)?;
            longest = longest.max(clock() - started);
            report.shadowed += run.shadowed.len();
            shadowed.append(&mut run.shadowed);
            report.absorb(run);
            report.virtual_shards.1 = virtual_shard.saturating_add(1);
        }
        Ok(())
    }

    /// Writes what a shadow run would have sent; returns where.
    async fn write_shadow_report(
        &self,
        job: &SweepJob,
        report: &ShardReport,
        shadowed: &[SentMessage],
    ) -> Result<Option<String>, AwsError> {
        let Some(reports) = &self.reports else {
            return Ok(None);
        };
        let key = shadow_report_key(job.day, job.shard, job.continuation);
        let body = ShadowReport {
            day: job.day,
            shard: job.shard,
            virtual_shards: report.virtual_shards,
            policy_revision: self.options.git_revision.as_deref(),
            bundle_revision: self.options.bundle_revision.as_deref(),
            would_send: shadowed,
            cancelled: &report.cancelled,
            failed: &report.failed,
        };
        let bytes = serde_json::to_vec_pretty(&body)
            .map_err(|e| super::error::EncodeError::new("the shadow report", e))?;
        reports.put(&key, bytes, "application/json").await?;
        let at = format!("s3://{}/{key}", reports.bucket());
        tracing::info!(shard = job.shard, day = %job.day, shadowed = shadowed.len(), report = %at, "shadow mode: nothing sent; the report says what would have gone out");
        Ok(Some(at))
    }
}

/// Sending settings, from the environment set by the template.
#[derive(Debug, Clone)]
pub struct SendSettings {
    pub sender: Sender,
    /// `PAY_URL_PATTERN`, with `{token}`.
    pub pay_url: String,
    /// `PAY_LINK_SECRET_ID`: the Secrets Manager secret holding the key.
    pub pay_link_secret: String,
    /// `SES_CONFIGURATION_SET`
    pub configuration_set: Option<String>,
    pub send_time_utc: NaiveTime,
    pub pay_link_days: u64,
    pub grace_minutes: i64,
    /// Shadow mode, the workers sharing SES's limits, the quota's margin.
    pub check: AccountCheck,
}

impl SendSettings {
    pub fn from_env() -> Result<SendSettings, ConfigError> {
        use super::config::{env, env_opt};
        let send_time = env_opt("SEND_TIME_UTC").unwrap_or_else(|| "14:00".to_string());
        Ok(SendSettings {
            sender: Sender {
                company: env_opt("COMPANY_NAME").unwrap_or_else(|| "Accounts receivable".into()),
                email: env("SENDER_ADDRESS")?,
                reply_to: env_opt("REPLY_TO_ADDRESS"),
                address: env_opt("COMPANY_ADDRESS")
                    .map(|a| collect_delivery::delivery::address_lines(&a))
                    .unwrap_or_default(),
                country: env_opt("COMPANY_COUNTRY"),
            },
            pay_url: env("PAY_URL_PATTERN")?,
            pay_link_secret: env("PAY_LINK_SECRET_ID")?,
            configuration_set: env_opt("SES_CONFIGURATION_SET"),
            send_time_utc: NaiveTime::parse_from_str(&send_time, "%H:%M")
                .map_err(|_| ConfigError::not_a_time("SEND_TIME_UTC", &send_time))?,
            pay_link_days: env_opt("PAY_LINK_DAYS")
                .and_then(|d| d.parse().ok())
                .unwrap_or(45),
            grace_minutes: env_opt("SENDING_GRACE_MINUTES")
                .and_then(|d| d.parse().ok())
                .unwrap_or(60),
            check: AccountCheck::from_env()?,
        })
    }
}

impl SweepService {
    /// Everything a worker loads once per container: the verified bundle
    /// (refused bundles fail the load), the current model (or the fallback
    /// scorer), the pay-link key. `scratch` is where the bundle's templates
    /// are written (`/tmp/…` on Lambda).
    pub async fn load(
        clients: &super::config::Clients,
        settings: &super::config::Settings,
        send: &SendSettings,
        scratch: &std::path::Path,
    ) -> Result<SweepService, AwsError> {
        let artifacts = super::artifacts::Artifacts::new(clients.s3.clone(), &settings.bucket);
        let bundle = artifacts.current_bundle().await?;
        let dir = scratch.join(format!(
            "bundle-{}",
            bundle.sha256.get(..16).unwrap_or(&bundle.sha256)
        ));
        let loaded = bundle.load(&dir)?;
        let scorer = super::train::load_scorer(&artifacts).await?;
        let key = super::config::secret(&clients.secrets, &send.pay_link_secret).await?;
        let pay_links = PayLinks::new(key.trim().as_bytes(), &send.pay_url)
            .map_err(|e| ConfigError::pay_links(&send.pay_link_secret, "PAY_URL_PATTERN", e))?;
        tracing::info!(
            policy = %loaded.policy.name,
            policy_revision = %loaded.revision,
            bundle_sha256 = %loaded.sha256,
            scorer = scorer.name(),
            scorer_version = scorer.version(),
            "sweep loaded"
        );
        let dynamo = Dynamo::new(
            clients.dynamodb.clone(),
            &settings.table,
            settings.virtual_shards,
        );
        Ok(SweepService {
            ledger: dynamo.clone(),
            mailer: SesAndEvents {
                ses: SesMailer::new(clients.ses.clone(), send.configuration_set.clone()),
                dynamo,
            },
            policy: loaded.policy,
            templates: loaded.templates,
            scorer,
            pay_links,
            sender: send.sender.clone(),
            options: SweepOptions {
                git_revision: Some(loaded.revision),
                bundle_revision: Some(collect_delivery::revision::of_manifest(&bundle.manifest)),
                send_time_utc: send.send_time_utc,
                customer_local_time: None,
            },
            pay_link_days: send.pay_link_days,
            grace: chrono::Duration::minutes(send.grace_minutes),
            sending: SendControl {
                shadow: send.check.shadow,
                workers: send.check.workers,
                margin_percent: send.check.margin_percent,
                account: AccountSource::Ses(clients.ses.clone()),
            },
            reports: Some(artifacts),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_virtual_shard_starts_only_while_it_and_the_margin_fit_before_the_deadline() {
        // A 900 s invocation keeping 25%: 225 s free at the end.
        let d = Deadline::of_invocation(at("2026-12-07T06:00:00Z"), at("2026-12-07T06:15:00Z"), 25);
        assert_eq!(d.margin, chrono::Duration::seconds(225));
        let longest = chrono::Duration::seconds(173);
        // 502 s in: 173 + 225 still fit (ends at 900 s exactly).
        assert!(d.allows(at("2026-12-07T06:08:22Z"), longest));
        assert!(!d.allows(at("2026-12-07T06:08:23Z"), longest));
        // Nothing measured yet: only the margin counts.
        assert!(d.allows(at("2026-12-07T06:11:15Z"), chrono::Duration::zero()));
        assert!(!d.allows(at("2026-12-07T06:11:16Z"), chrono::Duration::zero()));
        // A deadline already past allows nothing (the worker still sweeps
        // one virtual shard: progress).
        let past =
            Deadline::of_invocation(at("2026-12-07T06:00:00Z"), at("1970-01-01T00:00:00Z"), 25);
        assert_eq!(past.margin, chrono::Duration::zero());
        assert!(!past.allows(at("2026-12-07T06:00:00Z"), chrono::Duration::zero()));
    }

    #[test]
    fn the_day_is_cut_into_jobs_that_cover_every_virtual_shard_once() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let jobs = shard_jobs(day, 64, 1024);
        assert_eq!(jobs.len(), 64);
        assert!(jobs.iter().all(|j| j.range().len() == 16));
        assert_eq!(jobs.last().unwrap().range(), 1008..1024);
        // An earlier stack (virtual shards = shards): one each, as before.
        let old = shard_jobs(day, 4, 4);
        assert_eq!(
            old.iter().map(|j| (j.shard, j.range())).collect::<Vec<_>>(),
            vec![(0, 0..1), (1, 1..2), (2, 2..3), (3, 3..4)]
        );
        assert_eq!(
            shadow_report_key(day, 3, 0),
            "reports/shadow/2026-12-07/shard-0003.json"
        );
        assert_eq!(
            shadow_report_key(day, 3, 2),
            "reports/shadow/2026-12-07/shard-0003-2.json"
        );
    }
}
