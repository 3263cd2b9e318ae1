//! The `sweep` Lambda function: the daily sweep, fanned out per shard.
//!
//! One binary, two roles (`SWEEP_ROLE`), deployed as two functions:
//! - **coordinator** (EventBridge Scheduler, daily): enqueues one SQS
//!   message `{day, shard}` per shard;
//! - **worker** (SQS event source): sweeps each shard it receives — load the
//!   shard's customers from DynamoDB, [`plan_sweep`](collect_engine::sweep::plan_sweep),
//!   record, send — and reports the shards that failed as partial batch
//!   failures, so only those are delivered again.
//!
//! Concurrency is bounded by the event source's `MaximumConcurrency`
//! (`infra/template.yaml`). A re-delivered shard message re-plans against
//! what is recorded and changes nothing twice: see
//! [`collect_aws::sweep`].

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::NaiveDate;
use collect_aws::AwsError;
use collect_aws::config::{ScheduledTimeError, scheduled_time};
use collect_aws::metrics::{self, Function, MetricLine};
use collect_aws::queue::{Queue, ShardJob};
use collect_aws::sweep::{SweepService, lambda_holder, shard_jobs};
use collect_delivery::ledger::Ledger;
use collect_delivery::mailer::Mailer;
use lambda_runtime::{Error, LambdaEvent};
use serde::{Deserialize, Serialize};

/// Where the coordinator puts the day's jobs: the shard queue (SQS) on
/// Lambda, a list in the tests.
#[allow(async_fn_in_trait)]
pub trait JobQueue {
    /// Enqueues the jobs; returns how many were accepted.
    async fn send_jobs(&self, jobs: &[ShardJob]) -> Result<usize, AwsError>;
}

impl JobQueue for Queue {
    async fn send_jobs(&self, jobs: &[ShardJob]) -> Result<usize, AwsError> {
        self.send_all(jobs).await
    }
}

/// What the coordinator needs: the shard queue and the number of shards.
pub struct Coordinator<Q = Queue> {
    pub queue: Q,
    pub shards: u32,
}

/// The schedule's input: `{"scheduled_time": "<aws.scheduler.scheduled-time>"}`,
/// or `{"day": "2026-03-02"}` to run (or re-run) a given day by hand, or
/// `{"day": "2026-03-02", "shard": 17}` to re-run one shard of that day
/// (README, "Operations": a shard whose job went to the dead-letter queue).
/// A re-run relies on the protocol's idempotency: what was recorded is
/// planned against, what was sent is not sent again.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ScheduleInput {
    #[serde(default)]
    pub day: Option<NaiveDate>,
    #[serde(default)]
    pub scheduled_time: Option<String>,
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
    /// The day to sweep: given, or the scheduled time's date (UTC), or today.
    pub fn day(&self) -> Result<NaiveDate, ScheduledTimeError> {
        if let Some(d) = self.day {
            return Ok(d);
        }
        match &self.scheduled_time {
            Some(t) => scheduled_time(t).map(|t| t.with_timezone(&chrono::Utc).date_naive()),
            // The edge of the system: the only place the clock is read.
            None => Ok(chrono::Utc::now().date_naive()),
        }
    }
}

/// Why the worker could not sweep one SQS record's shard (logged; the
/// record is reported as a batch item failure and delivered again).
#[derive(Debug, thiserror::Error)]
pub enum ShardJobError {
    /// The record's body is not a `{day, shard}` job.
    #[error("not a shard job: {0}")]
    NotAJob(#[source] serde_json::Error),
    /// The sweep of the shard failed (its lease is held, AWS failed, …).
    #[error(transparent)]
    Sweep(#[from] AwsError),
}

#[derive(Debug, Clone, Serialize)]
pub struct Enqueued {
    pub day: NaiveDate,
    pub shards: usize,
}

/// The coordinator's handler.
pub async fn coordinator<Q: JobQueue>(
    c: &Coordinator<Q>,
    event: LambdaEvent<ScheduleInput>,
) -> Result<Enqueued, Error> {
    let started = std::time::Instant::now();
    let input = event.payload;
    let day = input.day()?;
    let jobs = match input.shard {
        None => shard_jobs(day, c.shards),
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
        Some(shard) => vec![ShardJob { day, shard }],
    };
    let shards = c.queue.send_jobs(&jobs).await?;
    tracing::info!(day = %day, shards, rerun_shard = ?input.shard, "sweep enqueued");
    MetricLine::new(&metrics::namespace(), Function::SweepCoordinator)
        .property("day", day.to_string())
        .count(metrics::SHARDS_ENQUEUED, shards)
        .millis(metrics::DURATION, started.elapsed().as_millis())
        .emit();
    Ok(Enqueued { day, shards })
}

/// The worker's handler: each SQS message is one shard of one day, swept
/// under the shard's lease by a holder named after this invocation (its
/// request id) and the record. A shard that fails — its lease held by
/// another worker (SQS delivered the job twice), a throttled table — is
/// reported as a batch item failure, so only that message is delivered
/// again, after the queue's visibility timeout.
pub async fn worker<L: Ledger, M: Mailer>(
    svc: &SweepService<L, M>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    let request_id = event.context.request_id.clone();
    // The edge of the system: the wall clock, for leases and the grace
    // period of reconciliation only.
    let clock = chrono::Utc::now;
    for (n, record) in event.payload.records.into_iter().enumerate() {
        let id = record.message_id.clone().unwrap_or_default();
        let job = serde_json::from_str::<ShardJob>(record.body.as_deref().unwrap_or(""))
            .map_err(ShardJobError::NotAJob);
        let started = std::time::Instant::now();
        let result = match job {
            Ok(job) => svc
                .run_job(job, &clock, lambda_holder(&request_id, n, clock()))
                .await
                .map_err(ShardJobError::from),
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
                tracing::error!(message_id = %id, reason = %reason, "shard failed; it will be delivered again");
                MetricLine::new(&namespace, Function::SweepWorker)
                    .property("message_id", id.as_str())
                    .count(metrics::SHARDS_FAILED, 1)
                    .emit();
                response.add_failure(id);
            }
        }
    }
    Ok(response)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    //! The handlers on the in-memory ledger and a recording mail service:
    //! the same `SweepService` and delivery protocol as on Lambda, without
    //! AWS.
    use super::*;
    use collect_delivery::delivery::Sender;
    use collect_delivery::ledger::memory::MemoryLedger;
    use collect_delivery::ledger::{LeaseHolder, LeaseOutcome};
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

    /// The shard queue as a list.
    #[derive(Default)]
    struct Jobs(Mutex<Vec<ShardJob>>);

    impl JobQueue for Jobs {
        async fn send_jobs(&self, jobs: &[ShardJob]) -> Result<usize, AwsError> {
            self.0.lock().unwrap().extend_from_slice(jobs);
            Ok(jobs.len())
        }
    }

    #[tokio::test]
    async fn the_coordinator_enqueues_one_job_per_shard_of_the_scheduled_day() {
        let c = Coordinator {
            queue: Jobs::default(),
            shards: 5,
        };
        let input = ScheduleInput {
            day: None,
            scheduled_time: Some("2026-12-07T06:00:00Z".into()),
            shard: None,
        };
        let out = coordinator(&c, LambdaEvent::new(input, Context::default()))
            .await
            .unwrap();
        assert_eq!((out.day, out.shards), (day("2026-12-07"), 5));
        let queued = c.queue.0.lock().unwrap().clone();
        assert_eq!(
            queued,
            (0..5)
                .map(|shard| ShardJob {
                    day: day("2026-12-07"),
                    shard
                })
                .collect::<Vec<_>>()
        );
        // A day given by hand wins over the schedule's.
        let by_hand = ScheduleInput {
            day: Some(day("2026-12-01")),
            scheduled_time: Some("2026-12-07T06:00:00Z".into()),
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
        };
        let input: ScheduleInput =
            serde_json::from_value(json!({"day": "2026-12-01", "shard": 5})).unwrap();
        let out = coordinator(&c, LambdaEvent::new(input, Context::default()))
            .await
            .unwrap();
        assert_eq!((out.day, out.shards), (day("2026-12-01"), 1));
        assert_eq!(
            c.queue.0.lock().unwrap().clone(),
            vec![ShardJob {
                day: day("2026-12-01"),
                shard: 5
            }]
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
        };
        let input = ScheduleInput {
            day: None,
            scheduled_time: Some("yesterday".into()),
            shard: None,
        };
        let err = coordinator(&c, LambdaEvent::new(input, Context::default()))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("yesterday"), "{err}");
        assert!(c.queue.0.lock().unwrap().is_empty());
    }
}
