//! The `sweep` Lambda function: the daily sweep, fanned out per shard.
//!
//! One binary, two roles (`SWEEP_ROLE`), deployed as two functions:
//! - **coordinator** (EventBridge Scheduler, daily): enqueues one SQS
//!   message `{day, shard}` per shard;
//! - **worker** (SQS event source): sweeps each shard it receives — load the
//!   shard's customers from DynamoDB, [`plan_sweep`](collect_core::sweep::plan_sweep),
//!   record, send — and reports the shards that failed as partial batch
//!   failures, so only those are delivered again.
//!
//! Concurrency is bounded by the event source's `MaximumConcurrency`
//! (`infra/template.yaml`). A re-delivered shard message re-plans against
//! what is recorded and changes nothing twice: see
//! [`collect_core::aws::sweep`].

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::NaiveDate;
use collect_core::aws::AwsError;
use collect_core::aws::queue::{Queue, ShardJob};
use collect_core::aws::sweep::{SweepService, enqueue_day, lambda_holder};
use lambda_runtime::{Error, LambdaEvent};
use serde::{Deserialize, Serialize};

/// What the coordinator needs: the shard queue and the number of shards.
pub struct Coordinator {
    pub queue: Queue,
    pub shards: u32,
}

/// The schedule's input: `{"scheduled_time": "<aws.scheduler.scheduled-time>"}`,
/// or `{"day": "2026-03-02"}` to run (or re-run) a given day by hand.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ScheduleInput {
    #[serde(default)]
    pub day: Option<NaiveDate>,
    #[serde(default)]
    pub scheduled_time: Option<String>,
}

impl ScheduleInput {
    /// The day to sweep: given, or the scheduled time's date (UTC), or today.
    pub fn day(&self) -> Result<NaiveDate, String> {
        if let Some(d) = self.day {
            return Ok(d);
        }
        match &self.scheduled_time {
            Some(t) => chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&chrono::Utc).date_naive())
                .map_err(|e| format!("scheduled_time `{t}` is not a timestamp: {e}")),
            // The edge of the system: the only place the clock is read.
            None => Ok(chrono::Utc::now().date_naive()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Enqueued {
    pub day: NaiveDate,
    pub shards: usize,
}

/// The coordinator's handler.
pub async fn coordinator(
    c: &Coordinator,
    event: LambdaEvent<ScheduleInput>,
) -> Result<Enqueued, Error> {
    let day = event.payload.day()?;
    let shards = enqueue_day(&c.queue, day, c.shards).await?;
    tracing::info!(day = %day, shards, "sweep enqueued");
    Ok(Enqueued { day, shards })
}

/// The worker's handler: each SQS message is one shard of one day, swept
/// under the shard's lease by a holder named after this invocation (its
/// request id) and the record. A shard that fails — its lease held by
/// another worker (SQS delivered the job twice), a throttled table — is
/// reported as a batch item failure, so only that message is delivered
/// again, after the queue's visibility timeout.
pub async fn worker(
    svc: &SweepService,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    let request_id = event.context.request_id.clone();
    // The edge of the system: the wall clock, for leases and the grace
    // period of reconciliation only.
    let clock = chrono::Utc::now;
    for (n, record) in event.payload.records.into_iter().enumerate() {
        let id = record.message_id.clone().unwrap_or_default();
        let job: Result<ShardJob, String> =
            serde_json::from_str(record.body.as_deref().unwrap_or(""))
                .map_err(|e| format!("not a shard job: {e}"));
        let result = match job {
            Ok(job) => svc
                .run_job(job, &clock, lambda_holder(&request_id, n, clock()))
                .await
                .map(|_| ())
                .map_err(|e: AwsError| e.to_string()),
            Err(e) => Err(e),
        };
        if let Err(reason) = result {
            tracing::error!(message_id = %id, reason = %reason, "shard failed; it will be delivered again");
            response.add_failure(id);
        }
    }
    Ok(response)
}
