//! The SQS adapter: the sweep's shard queue, the events queue and the
//! events' dead-letter queue (its one message format and its redrive:
//! [`super::dead_letter`]).

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::error::{AwsError, EncodeError, RequestError, Service, ServiceError};

/// One shard of one day's sweep: the body of a shard-queue message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardJob {
    pub day: NaiveDate,
    pub shard: u32,
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
