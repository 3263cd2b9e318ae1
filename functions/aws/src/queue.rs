//! The SQS adapter: the sweep's shard queue, the events queue and the
//! events' dead-letter queue (its one message format and its redrive:
//! [`super::dead_letter`]).

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::error::{AwsError, EncodeError, RequestError, Service, ServiceError};

/// One shard of one day's sweep, as earlier releases wrote the shard
/// queue's messages (and as tests and re-runs name one virtual shard): the
/// worker reads it as the [`SweepJob`] of that virtual shard alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardJob {
    pub day: NaiveDate,
    pub shard: u32,
}

/// One worker job of one day's sweep: the body of a shard-queue message.
///
/// A job sweeps the virtual shards `[from, to)` ([`crate::keys`]), one
/// after the other; `next` is its checkpoint. A worker that nears its
/// invocation's time limit stops after a whole virtual shard and enqueues
/// the same job with `next` set to the first virtual shard it did not
/// sweep (a *continuation*), so no job depends on finishing in one
/// invocation. A job of an earlier release (`{day, shard}` alone) sweeps the
/// virtual shard `shard`, which was its shard when the two were one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepJob {
    pub day: NaiveDate,
    /// The job's number among the day's (`0..Shards`): what logs, metrics
    /// and a re-run (`{"day", "shard"}`) name.
    pub shard: u32,
    /// The first virtual shard of the job's range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<u32>,
    /// The end (exclusive) of the job's range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u32>,
    /// The checkpoint of a continuation: the first virtual shard not yet
    /// swept (the ones before it are done for the day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<u32>,
    /// How many invocations worked on this job before this one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub continuation: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl From<ShardJob> for SweepJob {
    fn from(job: ShardJob) -> SweepJob {
        SweepJob {
            day: job.day,
            shard: job.shard,
            from: None,
            to: None,
            next: None,
            continuation: 0,
        }
    }
}

impl SweepJob {
    /// Job `shard` of a day, sweeping the virtual shards `range`.
    pub fn new(day: NaiveDate, shard: u32, range: std::ops::Range<u32>) -> SweepJob {
        SweepJob {
            day,
            shard,
            from: Some(range.start),
            to: Some(range.end),
            next: None,
            continuation: 0,
        }
    }

    /// The virtual shards of the whole job.
    pub fn range(&self) -> std::ops::Range<u32> {
        let from = self.from.unwrap_or(self.shard);
        from..self.to.unwrap_or(from.saturating_add(1))
    }

    /// The virtual shards still to sweep: from the checkpoint on.
    pub fn remaining(&self) -> std::ops::Range<u32> {
        let range = self.range();
        self.next
            .unwrap_or(range.start)
            .clamp(range.start, range.end)..range.end
    }

    /// The continuation that sweeps from the virtual shard `next` on.
    pub fn continued_at(&self, next: u32) -> SweepJob {
        let range = self.range();
        SweepJob {
            from: Some(range.start),
            to: Some(range.end),
            next: Some(next),
            continuation: self.continuation.saturating_add(1),
            ..*self
        }
    }
}

/// A refused or failed event, as it lands in the dead-letter queue: the
/// envelope of [`super::dead_letter`].
pub use super::dead_letter::DeadLetter;

#[derive(Debug, Clone)]
pub struct Queue {
    client: Client,
    url: String,
}

impl Queue {
    pub fn new(client: Client, url: impl Into<String>) -> Queue {
        Queue {
            client,
            url: url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sends one body as it is (a redriven event).
    pub async fn send_raw(&self, body: &str) -> Result<(), AwsError> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| AwsError::sdk(Service::Sqs, "SendMessage", e))?;
        Ok(())
    }

    /// Deletes a received message.
    pub async fn delete(&self, receipt_handle: &str) -> Result<(), AwsError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|e| AwsError::sdk(Service::Sqs, "DeleteMessage", e))?;
        Ok(())
    }

    /// Sends JSON bodies, ten to a batch; a failed entry fails the call.
    pub async fn send_all<T: Serialize>(&self, bodies: &[T]) -> Result<usize, AwsError> {
        let mut sent = 0;
        for (b, chunk) in bodies.chunks(10).enumerate() {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, body) in chunk.iter().enumerate() {
                let text = serde_json::to_string(body)
                    .map_err(|e| EncodeError::new("a queue message", e))?;
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("m{b}-{i}"))
                        .message_body(text)
                        .build()
                        .map_err(|e| RequestError::new(Service::Sqs, "SendMessageBatch", e))?,
                );
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| AwsError::sdk(Service::Sqs, "SendMessageBatch", e))?;
            if let Some(f) = out.failed.first() {
                return Err(ServiceError::entries_refused(
                    Service::Sqs,
                    "SendMessageBatch",
                    out.failed.len(),
                    f.code.clone(),
                    f.message.clone(),
                    f.sender_fault,
                )
                .into());
            }
            sent += out.successful.len();
        }
        Ok(sent)
    }

    /// Receives up to ten messages (tests and tools; Lambda's event source
    /// mapping receives in production).
    pub async fn receive(&self) -> Result<Vec<(String, String)>, AwsError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .send()
            .await
            .map_err(|e| AwsError::sdk(Service::Sqs, "ReceiveMessage", e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.message_id.unwrap_or_default(), m.body.unwrap_or_default()))
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_job_of_an_earlier_release_sweeps_its_shard_and_a_continuation_the_rest() {
        let old: SweepJob = serde_json::from_str(r#"{"day": "2026-12-07", "shard": 5}"#).unwrap();
        assert_eq!(old.range(), 5..6);
        assert_eq!(old.remaining(), 5..6);
        let day = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let job = SweepJob::new(day, 2, 32..48);
        assert_eq!(
            serde_json::to_string(&job).unwrap(),
            r#"{"day":"2026-12-07","shard":2,"from":32,"to":48}"#
        );
        let next = job.continued_at(40);
        assert_eq!((next.remaining(), next.continuation), (40..48, 1));
        let back: SweepJob = serde_json::from_str(&serde_json::to_string(&next).unwrap()).unwrap();
        assert_eq!(back, next);
        assert_eq!(next.continued_at(47).continuation, 2);
        // A checkpoint outside the range sweeps nothing outside it.
        assert_eq!(job.continued_at(99).remaining(), 48..48);
        // A job of this release read as a shard job (tools that only need
        // the day and the job's number).
        let short: ShardJob = serde_json::from_str(&serde_json::to_string(&next).unwrap()).unwrap();
        assert_eq!((short.day, short.shard), (day, 2));
        assert_eq!(SweepJob::from(short).range(), 2..3);
    }
}
