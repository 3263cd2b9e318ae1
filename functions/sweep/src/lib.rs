//! The `sweep` Lambda function: the daily sweep, fanned out per shard.
//!
//! One binary, two roles (`SWEEP_ROLE`), deployed as two functions:
//! - **coordinator** (EventBridge Scheduler, daily): runs the preflight
//!   ([`collect_aws::preflight`]: the SES identity and account, the bucket,
//!   the bundle, the model) and, when nothing blocks, enqueues one SQS
//!   message `{day, shard}` per shard; a blocking finding fails the
//!   invocation (its alarm fires) with every finding and its fix, and
//!   nothing is enqueued. `{"preflight": true}` runs the preflight alone
//!   and answers its findings (README, "Preflight");
//! - **worker** (SQS event source): sweeps each job it receives, one
//!   virtual shard after the other — load the virtual shard's customers
//!   from DynamoDB, [`plan_sweep`](collect_engine::sweep::plan_sweep),
//!   record, send — and reports the jobs that failed as partial batch
//!   failures, so only those are delivered again.
//!
//! **Virtual shards and jobs.** Customers hash to a fixed number of
//! virtual shards (`VIRTUAL_SHARDS`, the table's index layout); `SHARDS`
//! only says how many jobs the coordinator cuts the day into, each a range
//! of virtual shards ([`collect_aws::keys::worker_ranges`]). `Shards` can
//! change between two days without moving an item or splitting a customer.
//!
//! **Continuations.** A worker knows its invocation's deadline (Lambda's
//! context). When less than `SWEEP_MARGIN_PERCENT` (default 25 %) of the
//! invocation's time would be left after one more virtual shard (as long as
//! the longest so far), it stops after a whole virtual shard, enqueues the
//! rest of its job on the shard queue (the job with its checkpoint `next`),
//! and ends well before Lambda's limit; the next invocation goes on from
//! there. The job is done for the day when its last continuation ends
//! (`ShardsDone`; `ShardsContinued` counts continuations).
//!
//! Concurrency is bounded by the event source's `MaximumConcurrency`
//! (`infra/template.yaml`). A re-delivered shard message re-plans against
//! what is recorded and changes nothing twice: see
//! [`collect_aws::sweep`].

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, NaiveDate, Utc};
use collect_aws::AwsError;
use collect_aws::config::{ScheduledTimeError, scheduled_time};
use collect_aws::metrics::{self, FailedClass, Function, MetricLine};
use collect_aws::preflight::{Checker, NotReady, Preflight, Severity};
use collect_aws::queue::{Queue, SweepJob};
use collect_aws::sweep::{
    DEFAULT_MARGIN_PERCENT, Deadline, SweepService, lambda_holder, shard_jobs,
};
use collect_delivery::ledger::Ledger;
use collect_delivery::mailer::Mailer;
use collect_engine::sweep::day_guard::{FutureDay, check_sweep_day};
use lambda_runtime::{Error, LambdaEvent};
use serde::{Deserialize, Serialize};

/// Where the coordinator puts the day's jobs: the shard queue (SQS) on
/// Lambda, a list in the tests.
#[allow(async_fn_in_trait)]
pub trait JobQueue {
    /// Enqueues the jobs; returns how many were accepted.
    async fn send_jobs(&self, jobs: &[SweepJob]) -> Result<usize, AwsError>;
}

impl JobQueue for Queue {
    async fn send_jobs(&self, jobs: &[SweepJob]) -> Result<usize, AwsError> {
        self.send_all(jobs).await
    }
}

/// What the coordinator needs: the shard queue, the number of jobs
/// (`SHARDS`) and of virtual shards (`VIRTUAL_SHARDS`), and the preflight
/// it runs first (`None`: none, in the handler's tests).
pub struct Coordinator<Q = Queue> {
    pub queue: Q,
    pub shards: u32,
    pub virtual_shards: u32,
    pub preflight: Option<Checker>,
}

/// Where a worker enqueues its job's continuation, and how much of its
/// invocation's time it keeps free.
pub struct Continuations<Q = Queue> {
    pub queue: Q,
    /// `SWEEP_MARGIN_PERCENT` (default 25).
    pub margin_percent: u32,
}

impl<Q> Continuations<Q> {
    /// Continuations on `queue` with the default margin.
    pub fn on(queue: Q) -> Continuations<Q> {
        Continuations {
            queue,
            margin_percent: DEFAULT_MARGIN_PERCENT,
        }
    }
}

/// The schedule's input: `{"scheduled_time": "<aws.scheduler.scheduled-time>"}`,
/// or `{"day": "2026-03-02"}` to run (or re-run) a given day by hand, or
/// `{"day": "2026-03-02", "shard": 17}` to re-run one shard of that day
/// (README, "Operations": a shard whose job went to the dead-letter queue).
/// A re-run relies on the protocol's idempotency: what was recorded is
/// planned against, what was sent is not sent again. A day later than
/// tomorrow by the clock is refused (a mistyped year would bury the book:
/// [`collect_engine::sweep::day_guard`]) unless the event also says
/// `"allow_future_day": true`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ScheduleInput {
    #[serde(default)]
    pub day: Option<NaiveDate>,
    #[serde(default)]
    pub scheduled_time: Option<String>,
    /// Sweep a day later than tomorrow anyway (said by the person who
    /// wrote the event; never set by the schedule).
    #[serde(default)]
    pub allow_future_day: bool,
    /// Run the preflight only: answer its findings, enqueue nothing.
    #[serde(default)]
    pub preflight: bool,
    /// Only this shard (with `day`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
}

/// Why the coordinator refused its input (the invocation fails with it).
#[derive(Debug, thiserror::Error)]
pub enum ScheduleInputError {
    #[error(
        "shard {shard} does not exist: the stack has {shards} shards (0 to {last}); \
         help: give a shard from the job in ShardDeadLetterQueue, or no shard for the whole day",
        last = shards.saturating_sub(1)
    )]
    NoSuchShard { shard: u32, shards: u32 },
    #[error(
        "a re-run of one shard needs its day: give {{\"day\": \"YYYY-MM-DD\", \"shard\": {shard}}}"
    )]
    ShardWithoutDay { shard: u32 },
}

impl ScheduleInput {
    /// The day to sweep: given, or the scheduled time's date (UTC), or
    /// `now`'s; refused when later than the day after `now` without
    /// `allow_future_day`.
    pub fn day(&self, now: DateTime<Utc>) -> Result<NaiveDate, ScheduleError> {
        let day = match (self.day, &self.scheduled_time) {
            (Some(d), _) => d,
            (None, Some(t)) => scheduled_time(t)?.with_timezone(&Utc).date_naive(),
            (None, None) => now.date_naive(),
        };
        check_sweep_day(day, now.date_naive(), self.allow_future_day)?;
        Ok(day)
    }
}

/// Why the coordinator enqueued nothing (the invocation fails).
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    ScheduledTime(#[from] ScheduledTimeError),
    /// A day later than tomorrow, without `"allow_future_day": true`.
    #[error(
        "{0}. Check the event's day; to sweep it anyway, send the event again with \
         \"allow_future_day\": true"
    )]
    FutureDay(#[from] FutureDay),
}

/// Why the worker could not sweep one SQS record's shard (logged; the
/// record is reported as a batch item failure and delivered again; when
/// the mail service failed as a whole, the invocation fails).
#[derive(Debug, thiserror::Error)]
pub enum ShardJobError {
    /// The record's body is not a `{day, shard, …}` job.
    #[error("not a shard job: {0}")]
    NotAJob(#[source] serde_json::Error),
    /// The sweep of the shard failed (its lease is held, AWS failed, …).
    #[error(transparent)]
    Sweep(#[from] AwsError),
    /// The job's rest could not be enqueued: the job is delivered again
    /// from its checkpoint (what this invocation did is not done twice).
    #[error("the shard's continuation could not be enqueued on the shard queue: {0}")]
    Continuation(#[source] AwsError),
}

impl ShardJobError {
    /// Whether the mail service failed as a whole (see
    /// [`collect_aws::error::SweepError::is_mail_service`]).
    pub fn is_mail_service(&self) -> bool {
        matches!(self, ShardJobError::Sweep(AwsError::Sweep(e)) if e.is_mail_service())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Enqueued {
    pub day: NaiveDate,
    /// Jobs enqueued (none when only the preflight was asked for).
    pub shards: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preflight: Option<Preflight>,
}

/// The coordinator's handler.
pub async fn coordinator<Q: JobQueue>(
    c: &Coordinator<Q>,
    event: LambdaEvent<ScheduleInput>,
) -> Result<Enqueued, Error> {
    // The edge of the system: the only place the coordinator reads the clock.
    coordinator_at(c, event, Utc::now()).await
}

/// The coordinator's handler at the instant `now` (the wall clock on
/// Lambda; a fixed instant in tests).
pub async fn coordinator_at<Q: JobQueue>(
    c: &Coordinator<Q>,
    event: LambdaEvent<ScheduleInput>,
    now: DateTime<Utc>,
) -> Result<Enqueued, Error> {
    let started = std::time::Instant::now();
    let input = event.payload;
    let day = match input.day(now) {
        Ok(day) => day,
        Err(refused) => {
            tracing::error!(reason = %refused, "sweep not enqueued");
            return Err(refused.into());
        }
    };
    let jobs = match input.shard {
        None => shard_jobs(day, c.shards, c.virtual_shards),
        Some(shard) if input.day.is_none() => {
            return Err(ScheduleInputError::ShardWithoutDay { shard }.into());
        }
        Some(shard) if shard >= c.shards => {
            return Err(ScheduleInputError::NoSuchShard {
                shard,
                shards: c.shards,
            }
            .into());
        }
        Some(shard) => shard_jobs(day, c.shards, c.virtual_shards)
            .into_iter()
            .filter(|j| j.shard == shard)
            .collect(),
    };
    let preflight = match &c.preflight {
        Some(checker) => Some(checker.run().await),
        None => None,
    };
    for f in preflight.iter().flat_map(|p| &p.findings) {
        match f.severity {
            Severity::Blocking => tracing::error!(check = f.check, "preflight: {f}"),
            Severity::Warning => tracing::warn!(check = f.check, "preflight: {f}"),
            Severity::Ok => tracing::info!(check = f.check, "preflight: {f}"),
        }
    }
    if input.preflight {
        return Ok(Enqueued {
            day,
            shards: 0,
            preflight,
        });
    }
    if let Some(p) = preflight.as_ref().filter(|p| !p.ready) {
        return Err(AwsError::from(NotReady(p.clone())).into());
    }
    let shards = c.queue.send_jobs(&jobs).await?;
    tracing::info!(day = %day, shards, rerun_shard = ?input.shard, "sweep enqueued");
    MetricLine::new(&metrics::namespace(), Function::SweepCoordinator)
        .property("day", day.to_string())
        .count(metrics::SHARDS_ENQUEUED, shards)
        .millis(metrics::DURATION, started.elapsed().as_millis())
        .emit();
    Ok(Enqueued {
        day,
        shards,
        preflight,
    })
}

/// The worker's handler without continuations: each job is swept to its
/// end, however long it takes (the handler's tests, tools). On Lambda the
/// worker runs [`worker_continuing`].
pub async fn worker<L: Ledger, M: Mailer>(
    svc: &SweepService<L, M>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    worker_continuing::<L, M, Queue>(svc, None, event).await
}

/// The worker's handler: each SQS message is one job of one day (a range
/// of virtual shards, from its checkpoint), swept virtual shard by virtual
/// shard, each under its own lease, by a holder named after this
/// invocation (its request id) and the record. With `continuations`, the
/// worker stops before the invocation's deadline (the context's, less the
/// margin) after a whole virtual shard and enqueues the rest of the job;
/// the record is then done. A job that fails — a virtual shard's lease
/// held by another worker (SQS delivered the job twice), a throttled
/// table, a continuation that could not be enqueued — is reported as a
/// batch item failure, so only that message is delivered again, after the
/// queue's visibility timeout, from its own checkpoint (what was done is
/// not done twice).
pub async fn worker_continuing<L: Ledger, M: Mailer, Q: JobQueue>(
    svc: &SweepService<L, M>,
    continuations: Option<&Continuations<Q>>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    let request_id = event.context.request_id.clone();
    // The edge of the system: the wall clock, for leases, the grace period
    // of reconciliation and the invocation's deadline only.
    let clock = chrono::Utc::now;
    let invoked = clock();
    let deadline = continuations.and_then(|c| {
        let at = i64::try_from(event.context.deadline)
            .ok()
            .filter(|ms| *ms > 0)
            .and_then(DateTime::<Utc>::from_timestamp_millis)?;
        Some(Deadline::of_invocation(invoked, at, c.margin_percent))
    });
    for (n, record) in event.payload.records.into_iter().enumerate() {
        let id = record.message_id.clone().unwrap_or_default();
        let job = serde_json::from_str::<SweepJob>(record.body.as_deref().unwrap_or(""))
            .map_err(ShardJobError::NotAJob);
        let started = std::time::Instant::now();
        let result = match job {
            Ok(job) => {
                sweep_and_continue(svc, continuations, job, &clock, &request_id, n, deadline).await
            }
            Err(e) => Err(e),
        };
        let namespace = metrics::namespace();
        match result {
            Ok(report) => {
                for line in metrics::shard_lines(&namespace, &report, started.elapsed().as_millis())
                {
                    line.emit();
                }
            }
            Err(reason) => {
                MetricLine::new(&namespace, Function::SweepWorker)
                    .property("message_id", id.as_str())
                    .count(metrics::SHARDS_FAILED, 1)
                    .emit();
                if reason.is_mail_service() {
                    // Its own line: EMF publishes every metric of a line
                    // under all of the line's dimensions.
                    MetricLine::new(&namespace, Function::SweepWorker)
                        .property("message_id", id.as_str())
                        .dimension(metrics::CLASS, FailedClass::Service.as_str())
                        .count(metrics::FAILED, 1)
                        .emit();
                }
                if reason.is_mail_service() {
                    // SES refuses the account or the sender: every shard
                    // would fail alike. The invocation fails (its error
                    // alarm fires) and the whole batch comes back; what
                    // each shard did is recorded, and what it did not send
                    // stays planned.
                    tracing::error!(message_id = %id, reason = %reason, "the mail service failed; the sweep stopped sending");
                    return Err(reason.into());
                }
                tracing::error!(message_id = %id, reason = %reason, "shard failed; it will be delivered again");
                response.add_failure(id);
            }
        }
    }
    Ok(response)
}

/// One record's job: swept until done or the deadline, its rest enqueued.
async fn sweep_and_continue<L: Ledger, M: Mailer, Q: JobQueue>(
    svc: &SweepService<L, M>,
    continuations: Option<&Continuations<Q>>,
    job: SweepJob,
    clock: &(dyn Fn() -> DateTime<Utc> + Sync),
    request_id: &str,
    record: usize,
    deadline: Option<Deadline>,
) -> Result<collect_aws::sweep::ShardReport, ShardJobError> {
    let report = svc
        .run_job(
            job,
            clock,
            lambda_holder(request_id, record, clock()),
            deadline,
        )
        .await?;
    if let (Some(next), Some(c)) = (report.continued, continuations) {
        c.queue
            .send_jobs(std::slice::from_ref(&next))
            .await
            .map_err(ShardJobError::Continuation)?;
        tracing::info!(
            shard = next.shard,
            day = %next.day,
            next = ?next.next,
            continuation = next.continuation,
            "shard continued: its rest is enqueued"
        );
    }
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    //! The handlers on the in-memory ledger and a recording mail service:
    //! the same `SweepService` and delivery protocol as on Lambda, without
    //! AWS.
    use super::*;
    use collect_aws::pacing::SesQuota;
    use collect_aws::preflight::{AccountSource, SesAccount};
    use collect_aws::queue::ShardJob;
    use collect_aws::sweep::SendControl;
    use collect_delivery::delivery::Sender;
    use collect_delivery::ledger::MessageStatus;
    use collect_delivery::ledger::memory::MemoryLedger;
    use collect_delivery::ledger::{LeaseHolder, LeaseOutcome};
    use collect_delivery::mailer::SHADOW_NOTE;
    use collect_engine::domain::ActionStatus;
    use collect_engine::sweep::{PriorLateRate, SweepOptions};
    use collect_testkit::book::{Env, day};
    use collect_testkit::conformance::{DAY, the_book};
    use collect_testkit::mailer::RecordingMailer;
    use lambda_runtime::Context;
    use serde_json::{Value, json};
    use std::sync::Mutex;

    fn service() -> SweepService<MemoryLedger, RecordingMailer> {
        let ledger = MemoryLedger::new();
        let (customers, invoices) = the_book();
        for c in customers {
            ledger.upsert_customer(c);
        }
        for i in invoices {
            ledger.upsert_invoice(i);
        }
        let env = Env::new();
        SweepService {
            ledger,
            mailer: RecordingMailer::default(),
            policy: env.policy,
            templates: env.templates,
            scorer: Box::new(PriorLateRate),
            pay_links: env.pay_links,
            sender: Sender {
                company: "Example Supplies".into(),
                email: "ar@example.com".into(),
                reply_to: None,
                address: Vec::new(),
                country: None,
            },
            options: SweepOptions {
                git_revision: Some("handler-test".into()),
                ..SweepOptions::default()
            },
            pay_link_days: 30,
            grace: chrono::Duration::minutes(30),
            sending: SendControl::unlimited(),
            reports: None,
        }
    }

    fn jobs(bodies: &[Value]) -> LambdaEvent<SqsEvent> {
        let records: Vec<Value> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                json!({"messageId": format!("m-{i}"), "receiptHandle": "rh",
                    "body": b.as_str().map(str::to_string).unwrap_or_else(|| b.to_string()),
                    "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:shards",
                    "awsRegion": "us-east-1"})
            })
            .collect();
        let event: SqsEvent = serde_json::from_value(json!({ "Records": records })).unwrap();
        LambdaEvent::new(event, Context::default())
    }

    fn failures(r: &SqsBatchResponse) -> Vec<String> {
        r.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect()
    }

    #[tokio::test]
    async fn a_shard_job_sweeps_and_mails_once() {
        let svc = service();
        let job = json!({"day": DAY, "shard": 0});
        let response = worker(&svc, jobs(std::slice::from_ref(&job)))
            .await
            .unwrap();
        assert!(failures(&response).is_empty());
        let sent = svc.mailer.accepted_messages();
        // The conformance book on its day: C1 (one mail, two invoices),
        // C2 (a plan offer) and C3 are mailed; C4 gets a call task; C5 is
        // do-not-contact.
        let ids: Vec<&str> = sent.iter().map(|m| m.message_id.as_str()).collect();
        assert_eq!(sent.len(), 3, "{ids:?}");
        assert!(!svc.ledger.actions().is_empty());
        assert!(
            svc.ledger
                .messages()
                .iter()
                .all(|m| m.status == collect_delivery::ledger::MessageStatus::Sent)
        );
        // SQS delivers the job again: nothing is sent twice.
        let again = worker(&svc, jobs(&[job])).await.unwrap();
        assert!(failures(&again).is_empty());
        assert_eq!(svc.mailer.accepted_messages().len(), 3);
        assert!(svc.mailer.duplicates().is_empty());
    }

    /// An invocation whose deadline has passed sweeps one virtual shard,
    /// enqueues the rest of its job, and the continuations, one by one,
    /// finish it: every message once, the job done with its last one.
    #[tokio::test]
    async fn a_job_past_its_deadline_continues_in_new_invocations_until_done() {
        let svc = service();
        let continuations = Continuations::on(Jobs::default());
        let job = SweepJob::new(day(DAY), 0, 0..4);
        let mut body = serde_json::to_value(job).unwrap();
        let mut invocations = 0;
        loop {
            invocations += 1;
            let mut event = jobs(&[body.clone()]);
            // Lambda's deadline: long gone (a tiny timeout).
            event.context.deadline = 1;
            let response = worker_continuing(&svc, Some(&continuations), event)
                .await
                .unwrap();
            assert!(failures(&response).is_empty());
            let Some(next) = continuations.queue.0.lock().unwrap().pop() else {
                break;
            };
            assert_eq!(next.continuation, invocations);
            assert_eq!(next.remaining(), invocations..4, "{next:?}");
            body = serde_json::to_value(next).unwrap();
            assert!(invocations < 10, "the job never ends");
        }
        assert_eq!(invocations, 4, "one virtual shard per invocation");
        assert_eq!(svc.mailer.accepted_messages().len(), 3);
        assert!(svc.mailer.duplicates().is_empty());
        // A deadline far ahead: the whole job in one invocation.
        let mut event = jobs(&[serde_json::to_value(SweepJob::new(day(DAY), 0, 0..4)).unwrap()]);
        event.context.deadline =
            u64::try_from((chrono::Utc::now() + chrono::Duration::minutes(15)).timestamp_millis())
                .unwrap();
        worker_continuing(&svc, Some(&continuations), event)
            .await
            .unwrap();
        assert!(continuations.queue.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failing_mail_service_fails_the_invocation_and_burns_nothing() {
        use collect_delivery::ledger::MessageStatus;
        use collect_delivery::mailer::FailureClass;
        use collect_engine::domain::ActionStatus;
        use collect_testkit::mailer::Refuse;
        let svc = service();
        // SES refuses the account (sandbox, access denied, sending paused).
        svc.mailer.refuse(Refuse::Always(FailureClass::Service));
        let job = json!({"day": DAY, "shard": 0});
        let failed = worker(&svc, jobs(std::slice::from_ref(&job))).await;
        let e = failed.expect_err("the invocation must fail, so its alarm fires");
        assert!(
            e.to_string()
                .contains("the mail service failed, so the run stopped sending"),
            "{e}"
        );
        assert!(svc.mailer.accepted_messages().is_empty());
        assert!(
            svc.ledger
                .messages()
                .iter()
                .all(|m| m.status == MessageStatus::Planned)
        );
        assert!(
            svc.ledger
                .actions()
                .iter()
                .all(|a| a.status != ActionStatus::Failed)
        );
        // Fixed: the job, delivered again, sends everything once.
        svc.mailer.refuse(Refuse::Nothing);
        let again = worker(&svc, jobs(&[job])).await.unwrap();
        assert!(failures(&again).is_empty());
        assert_eq!(svc.mailer.accepted_messages().len(), 3);
        assert!(svc.mailer.duplicates().is_empty());
    }

    #[tokio::test]
    async fn a_record_that_is_not_a_job_fails_alone() {
        let svc = service();
        let response = worker(
            &svc,
            jobs(&[
                Value::from("not json"),
                json!({"day": DAY, "shard": 0}),
                json!({"shard": 1}),
            ]),
        )
        .await
        .unwrap();
        assert_eq!(failures(&response), vec!["m-0", "m-2"]);
        assert_eq!(svc.mailer.accepted_messages().len(), 3);
    }

    #[tokio::test]
    async fn a_shard_another_worker_holds_is_delivered_again() {
        let svc = service();
        let now = chrono::Utc::now();
        let mut other = LeaseHolder::this_process(now);
        other.id = "lambda-other-0".into();
        let taken = svc
            .ledger
            .take_lease("sweep-shard-0", &other, now, chrono::Duration::minutes(16))
            .await
            .unwrap();
        assert!(matches!(taken, LeaseOutcome::Taken(_)));
        let response = worker(&svc, jobs(&[json!({"day": DAY, "shard": 0})]))
            .await
            .unwrap();
        assert_eq!(failures(&response), vec!["m-0"]);
        assert_eq!(
            svc.mailer.handed_count(),
            0,
            "nothing sent under another's lease"
        );
    }

    fn account(production: bool, max_24_hour_send: f64, sent: f64) -> SesAccount {
        SesAccount {
            production_access: production,
            sending_enabled: true,
            enforcement_status: Some("HEALTHY".into()),
            quota: SesQuota {
                max_send_rate: 1000.0,
                max_24_hour_send,
                sent_last_24_hours: sent,
            },
        }
    }

    fn limited(account: SesAccount) -> SendControl {
        SendControl {
            shadow: false,
            workers: 1,
            margin_percent: 0,
            account: AccountSource::Fixed(account),
        }
    }

    #[tokio::test]
    async fn shadow_mode_renders_and_reports_sends_nothing_and_a_normal_run_never_sends_it_later() {
        let mut svc = service();
        svc.sending = SendControl {
            shadow: true,
            ..SendControl::unlimited()
        };
        let job = ShardJob {
            day: day(DAY),
            shard: 0,
        };
        let report = svc.run_shard(job, chrono::Utc::now()).await.unwrap();
        assert_eq!(svc.mailer.handed_count(), 0, "no mail service call");
        assert_eq!(report.shadowed, 3, "{report:?}");
        assert!(report.sent.is_empty());
        let messages = svc.ledger.messages();
        assert_eq!(messages.len(), 3);
        for m in &messages {
            assert_eq!(m.status, MessageStatus::Cancelled);
            assert_eq!(m.note.as_deref(), Some(SHADOW_NOTE));
        }
        let shadowed: Vec<_> = svc
            .ledger
            .actions()
            .into_iter()
            .filter(|a| a.message_id.is_some() || a.note.as_deref() == Some(SHADOW_NOTE))
            .collect();
        assert!(!shadowed.is_empty());
        assert!(
            shadowed.iter().all(
                |a| a.status == ActionStatus::Skipped && a.note.as_deref() == Some(SHADOW_NOTE)
            ),
            "{shadowed:#?}"
        );
        // Shadow mode is switched off: the same day again, and the next
        // days, send none of what was recorded in shadow mode.
        svc.sending = SendControl::unlimited();
        let live = svc.run_shard(job, chrono::Utc::now()).await.unwrap();
        assert!(live.sent.is_empty(), "{live:?}");
        let next = ShardJob {
            day: day(DAY).succ_opt().unwrap(),
            shard: 0,
        };
        let live = svc.run_shard(next, chrono::Utc::now()).await.unwrap();
        let resent: Vec<_> = live
            .sent
            .iter()
            .filter(|m| messages.iter().any(|s| s.message_id == **m))
            .collect();
        assert!(resent.is_empty(), "{resent:?}");
        // Every step decided in shadow mode is still passed over: none went
        // out later under another message.
        let after = svc.ledger.actions();
        for a in &shadowed {
            let now = after.iter().find(|b| b.action_id == a.action_id).unwrap();
            assert_eq!(now.status, ActionStatus::Skipped, "{now:?}");
        }
        assert!(svc.mailer.duplicates().is_empty());
    }

    #[tokio::test]
    async fn a_run_stops_at_its_share_of_the_daily_quota_and_the_rest_goes_with_the_next_quota() {
        let mut svc = service();
        // 100 a day, 99 sent in the last 24 hours: one message may go.
        svc.sending = limited(account(true, 100.0, 99.0));
        let job = ShardJob {
            day: day(DAY),
            shard: 0,
        };
        let report = svc.run_shard(job, chrono::Utc::now()).await.unwrap();
        assert_eq!(report.sent.len(), 1, "{report:?}");
        assert!(report.quota_stopped);
        assert_eq!(report.quota_held, 2);
        assert_eq!(report.send_limits.unwrap().budget, 1);
        assert_eq!(
            svc.mailer.handed_count(),
            1,
            "SES is not asked past the quota"
        );
        let planned = svc
            .ledger
            .messages()
            .into_iter()
            .filter(|m| m.status == MessageStatus::Planned)
            .count();
        assert_eq!(planned, 2, "what was not sent stays planned");
        // The next sweep, with the quota back: the two go, once.
        svc.sending = limited(account(true, 100.0, 0.0));
        let next = svc.run_shard(job, chrono::Utc::now()).await.unwrap();
        assert_eq!(next.sent.len(), 2, "{next:?}");
        assert!(!next.quota_stopped);
        assert_eq!(svc.mailer.accepted_messages().len(), 3);
        assert!(svc.mailer.duplicates().is_empty());
    }

    #[tokio::test]
    async fn an_account_in_the_sandbox_stops_the_worker_before_anything_is_recorded() {
        let mut svc = service();
        svc.sending = limited(account(false, 200.0, 0.0));
        let response = worker(&svc, jobs(&[json!({"day": DAY, "shard": 0})]))
            .await
            .unwrap();
        assert_eq!(failures(&response), vec!["m-0"]);
        assert_eq!(svc.mailer.handed_count(), 0);
        assert!(svc.ledger.actions().is_empty(), "nothing recorded");
        let err = svc
            .run_shard(
                ShardJob {
                    day: day(DAY),
                    shard: 0,
                },
                chrono::Utc::now(),
            )
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("SES is in the sandbox"), "{text}");
        assert!(text.contains("Request production access"), "{text}");
    }

    #[tokio::test]
    async fn the_coordinator_asked_for_the_preflight_answers_it_and_enqueues_nothing() {
        let c = Coordinator {
            queue: Jobs::default(),
            shards: 3,
            virtual_shards: 16,
            preflight: None,
        };
        let input = ScheduleInput {
            day: Some(day("2026-12-07")),
            scheduled_time: None,
            allow_future_day: false,
            preflight: true,
            shard: None,
        };
        let out = coordinator(&c, LambdaEvent::new(input, Context::default()))
            .await
            .unwrap();
        assert_eq!(out.shards, 0);
        assert!(c.queue.0.lock().unwrap().is_empty());
    }

    /// The shard queue as a list.
    #[derive(Default)]
    struct Jobs(Mutex<Vec<SweepJob>>);

    impl JobQueue for Jobs {
        async fn send_jobs(&self, jobs: &[SweepJob]) -> Result<usize, AwsError> {
            self.0.lock().unwrap().extend_from_slice(jobs);
            Ok(jobs.len())
        }
    }

    #[tokio::test]
    async fn the_coordinator_enqueues_one_job_per_shard_of_the_scheduled_day() {
        let c = Coordinator {
            queue: Jobs::default(),
            shards: 5,
            virtual_shards: 16,
            preflight: None,
        };
        let input = ScheduleInput {
            day: None,
            scheduled_time: Some("2026-12-07T06:00:00Z".into()),
            allow_future_day: false,
            preflight: false,
            shard: None,
        };
        let out = coordinator(&c, LambdaEvent::new(input, Context::default()))
            .await
            .unwrap();
        assert_eq!((out.day, out.shards), (day("2026-12-07"), 5));
        let queued = c.queue.0.lock().unwrap().clone();
        // Five jobs over the 16 virtual shards: ranges of 3 or 4, together
        // every virtual shard once.
        let ranges: Vec<_> = queued.iter().map(|j| (j.shard, j.range())).collect();
        assert_eq!(
            ranges,
            vec![(0, 0..3), (1, 3..6), (2, 6..9), (3, 9..12), (4, 12..16)]
        );
        assert!(queued.iter().all(|j| j.day == day("2026-12-07")));
        // A day given by hand wins over the schedule's.
        let by_hand = ScheduleInput {
            day: Some(day("2026-12-01")),
            scheduled_time: Some("2026-12-07T06:00:00Z".into()),
            allow_future_day: false,
            preflight: false,
            shard: None,
        };
        let out = coordinator(&c, LambdaEvent::new(by_hand, Context::default()))
            .await
            .unwrap();
        assert_eq!(out.day, day("2026-12-01"));
    }

    #[tokio::test]
    async fn a_rerun_of_one_shard_enqueues_that_shard_of_that_day_only() {
        let c = Coordinator {
            queue: Jobs::default(),
            shards: 8,
            virtual_shards: 16,
            preflight: None,
        };
        let input: ScheduleInput =
            serde_json::from_value(json!({"day": "2026-12-01", "shard": 5})).unwrap();
        let out = coordinator(&c, LambdaEvent::new(input, Context::default()))
            .await
            .unwrap();
        assert_eq!((out.day, out.shards), (day("2026-12-01"), 1));
        assert_eq!(
            c.queue.0.lock().unwrap().clone(),
            vec![SweepJob::new(day("2026-12-01"), 5, 10..12)]
        );
        // A shard the stack does not have, or no day: refused, nothing queued.
        for bad in [
            json!({"day": "2026-12-01", "shard": 8}),
            json!({"scheduled_time": "2026-12-07T06:00:00Z", "shard": 1}),
        ] {
            let input: ScheduleInput = serde_json::from_value(bad).unwrap();
            let err = coordinator(&c, LambdaEvent::new(input, Context::default()))
                .await
                .unwrap_err();
            assert!(err.to_string().contains("shard"), "{err}");
        }
        assert_eq!(c.queue.0.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_scheduled_time_that_is_not_a_timestamp_fails_the_invocation() {
        let c = Coordinator {
            queue: Jobs::default(),
            shards: 2,
            virtual_shards: 16,
            preflight: None,
        };
        let input = ScheduleInput {
            day: None,
            scheduled_time: Some("yesterday".into()),
            allow_future_day: false,
            preflight: false,
            shard: None,
        };
        let err = coordinator(&c, LambdaEvent::new(input, Context::default()))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("yesterday"), "{err}");
        assert!(c.queue.0.lock().unwrap().is_empty());
    }

    /// A mistyped year in a hand-made event enqueues nothing and fails the
    /// invocation, saying how to go on; the override lets it through.
    #[tokio::test]
    async fn a_day_later_than_tomorrow_is_refused_unless_the_event_says_so() {
        let c = Coordinator {
            queue: Jobs::default(),
            shards: 3,
            virtual_shards: 16,
            preflight: None,
        };
        let now = "2026-12-06T05:00:00Z".parse::<DateTime<Utc>>().unwrap();
        for far in ["2099-06-15", "9999-12-31", "2026-12-08"] {
            let input: ScheduleInput = serde_json::from_value(json!({ "day": far })).unwrap();
            let err = coordinator_at(&c, LambdaEvent::new(input, Context::default()), now)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("refusing to sweep {far}")), "{err}");
            assert!(err.contains("\"allow_future_day\": true"), "{err}");
        }
        // A scheduled time far ahead (a wrong schedule) is refused too.
        let input: ScheduleInput =
            serde_json::from_value(json!({ "scheduled_time": "2099-06-15T06:00:00Z" })).unwrap();
        assert!(
            coordinator_at(&c, LambdaEvent::new(input, Context::default()), now)
                .await
                .is_err()
        );
        assert!(c.queue.0.lock().unwrap().is_empty());
        // Tomorrow passes (a day that starts ahead of UTC); so does the
        // far day when the event says so.
        for (event, expected) in [
            (json!({ "day": "2026-12-07" }), "2026-12-07"),
            (
                json!({ "day": "2099-06-15", "allow_future_day": true }),
                "2099-06-15",
            ),
        ] {
            let input: ScheduleInput = serde_json::from_value(event).unwrap();
            let out = coordinator_at(&c, LambdaEvent::new(input, Context::default()), now)
                .await
                .unwrap();
            assert_eq!(out.day, day(expected));
        }
    }
}
