//! The events dead-letter queue: one message format, and its redrive.
//!
//! Every message the events function puts in `EventsDeadLetterQueue` is a
//! [`DeadLetter`], a JSON envelope (format [`FORMAT`]):
//!
//! ```json
//! {"format": "collect.dead-letter/1", "failed": "refused",
//!  "reason": "field `customer_id`: no customer `C9`; send its customer_upserted event first",
//!  "source": "sqs:3f1c…", "event": {"type": "invoice_upserted", …},
//!  "at": "2026-12-07T06:01:02Z", "attempts": 1}
//! ```
//!
//! - `failed`: what failed ([`Failed`]): the event was refused (fix it or
//!   send what it needs first), AWS failed on every attempt, or a line of
//!   a CSV drop was refused (fix the file and drop it again);
//! - `reason`: why, in words; `source`: where it came from; `event`: the
//!   original record as received; `at`: when it was given up; `attempts`:
//!   how many times it was tried.
//!
//! The template routes the other ways a failure could reach that queue
//! back through the events queue (failed asynchronous invocations and the
//! ERP rule's dead letters go to `EventsQueue`, whose messages the function
//! gives up on itself, writing the envelope, at its last attempt). Only a
//! message that crashes the function on every delivery reaches the queue
//! as AWS left it (the events queue's redrive policy, the backstop);
//! [`DeadLetter::from_message`] reads such a message as the same envelope
//! (`failed: not_applied`, the reason from AWS's attributes), so the
//! redrive and the people reading the queue see one format.
//!
//! **Redrive** ([`redrive`]): the events function invoked with
//! `{"redrive": {}}` moves each letter's `event` back to the events queue
//! (receive, send, delete), where it is applied as if it arrived now; a
//! letter whose original cannot be sent again (a line of a CSV drop) is
//! left in the queue and named in the answer.

use std::collections::HashMap;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{AwsError, Service};
use super::queue::Queue;

/// The `format` of every dead letter the events function writes.
pub const FORMAT: &str = "collect.dead-letter/1";

/// What failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Failed {
    /// The event was read and refused (malformed, or it names what does
    /// not exist yet). Fix it or send what it needs first, then redrive.
    #[default]
    Refused,
    /// AWS failed on every attempt (throttling, an outage, a timeout):
    /// redrive once it is healthy again.
    NotApplied,
    /// A line of a CSV drop was refused: fix the file and drop it again
    /// (the letter cannot be redriven).
    RefusedLine,
}

fn format_v1() -> String {
    FORMAT.to_string()
}

fn one() -> u32 {
    1
}

/// One message of the events dead-letter queue (see the module's text).
/// Letters written before the envelope had its first fields only
/// (`reason`, `source`, `event`): they read with the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    #[serde(default = "format_v1")]
    pub format: String,
    #[serde(default)]
    pub failed: Failed,
    pub reason: String,
    /// `sqs:<message id>`, `eventbridge:<id>`, `sns:<message id>`,
    /// `invoke:<request id>`, `s3://bucket/key:line`.
    pub source: String,
    /// The original record, as received.
    pub event: Value,
    /// When it was given up.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    #[serde(default = "one")]
    pub attempts: u32,
}

impl DeadLetter {
    /// An event refused on its first reading.
    pub fn refused(reason: String, source: &str, event: Value, at: DateTime<Utc>) -> DeadLetter {
        let failed = if source.starts_with("s3://") {
            Failed::RefusedLine
        } else {
            Failed::Refused
        };
        DeadLetter {
            format: FORMAT.to_string(),
            failed,
            reason,
            source: source.to_string(),
            event,
            at: Some(at),
            attempts: 1,
        }
    }

    /// An event AWS failed to apply `attempts` times.
    pub fn not_applied(
        reason: String,
        source: &str,
        event: Value,
        at: DateTime<Utc>,
        attempts: u32,
    ) -> DeadLetter {
        DeadLetter {
            format: FORMAT.to_string(),
            failed: Failed::NotApplied,
            reason,
            source: source.to_string(),
            event,
            at: Some(at),
            attempts,
        }
    }

    /// Whether the original can be sent to the events queue again.
    pub fn redrivable(&self) -> bool {
        self.failed != Failed::RefusedLine && !self.event.is_null()
    }

    /// Reads one message of the queue: an envelope as it is, anything else
    /// (a message AWS moved there itself) as an envelope around its body,
    /// with AWS's reason and count from the message's attributes
    /// (`ErrorMessage` of Lambda, `ERROR_MESSAGE`/`RETRY_ATTEMPTS` of
    /// EventBridge, `ApproximateReceiveCount` of SQS).
    pub fn from_message(
        message_id: &str,
        body: &str,
        attributes: &HashMap<String, String>,
        sent_at: Option<DateTime<Utc>>,
    ) -> DeadLetter {
        let parsed = serde_json::from_str::<Value>(body);
        if let Ok(v) = &parsed {
            if v.get("format").and_then(Value::as_str) == Some(FORMAT)
                || (v.get("reason").is_some()
                    && v.get("source").is_some()
                    && v.get("event").is_some())
            {
                if let Ok(letter) = serde_json::from_value::<DeadLetter>(v.clone()) {
                    return letter;
                }
            }
        }
        let attr = |names: &[&str]| names.iter().find_map(|n| attributes.get(*n).cloned());
        let reason = match attr(&["ErrorMessage", "ERROR_MESSAGE"]) {
            Some(m) => format!("AWS gave up on it: {m}"),
            None => "it failed on every delivery from the events queue (the function crashed or timed out: see its logs)".to_string(),
        };
        let attempts = attr(&["RETRY_ATTEMPTS", "ApproximateReceiveCount"])
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        DeadLetter {
            format: FORMAT.to_string(),
            failed: Failed::NotApplied,
            reason,
            source: format!("dlq:{message_id}"),
            event: parsed.unwrap_or_else(|_| Value::from(body)),
            at: sent_at,
            attempts,
        }
    }
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Redriven {
    /// Letters whose event went back to the events queue.
    pub moved: usize,
    /// Letters left in the queue, with why (`source`, reason).
    pub kept: Vec<(String, String)>,
}

/// Moves the dead letters back: each letter's original event is sent to
/// `to` (the events queue), then deleted from `from`; at most `max`
/// letters. A letter that cannot be redriven stays (hidden for
/// `visibility` seconds, so one redrive sees each message once).
pub async fn redrive(
    from: &Queue,
    to: &Queue,
    max: usize,
    visibility: i32,
) -> Result<Redriven, AwsError> {
    let mut out = Redriven::default();
    while out.moved + out.kept.len() < max {
        let messages = from
            .client()
            .receive_message()
            .queue_url(from.url())
            .max_number_of_messages(10)
            .visibility_timeout(visibility)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| AwsError::sdk(Service::Sqs, "ReceiveMessage", e))?
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let id = m.message_id.clone().unwrap_or_default();
            let mut attributes: HashMap<String, String> = m
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_string(), v))
                .collect();
            for (k, v) in m.message_attributes.unwrap_or_default() {
                if let Some(s) = v.string_value {
                    attributes.insert(k, s);
                }
            }
            let sent_at = attributes
                .get(MessageSystemAttributeName::SentTimestamp.as_str())
                .and_then(|ms| ms.parse::<i64>().ok())
                .and_then(DateTime::from_timestamp_millis);
            let letter = DeadLetter::from_message(
                &id,
                m.body.as_deref().unwrap_or(""),
                &attributes,
                sent_at,
            );
            if !letter.redrivable() {
                out.kept.push((
                    letter.source.clone(),
                    format!(
                        "not redriven: {}; fix the file and drop it again, then delete this letter",
                        letter.reason
                    ),
                ));
                continue;
            }
            let body = match &letter.event {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            to.send_raw(&body).await?;
            if let Some(handle) = m.receipt_handle.as_deref() {
                from.delete(handle).await?;
            }
            tracing::info!(source = %letter.source, failed = ?letter.failed, "dead letter redriven");
            out.moved += 1;
        }
    }
    Ok(out)
}

/// The queue attribute a redrive's tests and tools read: how many letters
/// are waiting.
pub async fn waiting(queue: &Queue) -> Result<usize, AwsError> {
    let out = queue
        .client()
        .get_queue_attributes()
        .queue_url(queue.url())
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| AwsError::sdk(Service::Sqs, "GetQueueAttributes", e))?;
    Ok(out
        .attributes
        .unwrap_or_default()
        .get(&QueueAttributeName::ApproximateNumberOfMessages)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_of_message_reads_as_the_one_envelope() {
        let at = DateTime::from_timestamp(1_765_000_000, 0).unwrap();
        // The function's own letter, round trip.
        let own = DeadLetter::refused("no customer".into(), "sqs:m-1", json!({"type": "x"}), at);
        let body = serde_json::to_string(&own).unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        for field in [
            "format", "failed", "reason", "source", "event", "at", "attempts",
        ] {
            assert!(v.get(field).is_some(), "{field} in {body}");
        }
        assert_eq!(v["failed"], "refused");
        assert_eq!(
            DeadLetter::from_message("q-1", &body, &HashMap::new(), None),
            own
        );
        // A letter of the earlier release (three fields).
        let old = r#"{"reason": "r", "source": "sns:1", "event": {"a": 1}}"#;
        let read = DeadLetter::from_message("q-2", old, &HashMap::new(), None);
        assert_eq!(
            (read.format.as_str(), read.failed, read.attempts),
            (FORMAT, Failed::Refused, 1)
        );
        // EventBridge's dead letter: the event, the error in attributes.
        let attrs = HashMap::from([
            ("ERROR_MESSAGE".to_string(), "Lambda throttled".to_string()),
            ("RETRY_ATTEMPTS".to_string(), "8".to_string()),
        ]);
        let raw = r#"{"detail-type": "invoice_upserted", "detail": {}}"#;
        let read = DeadLetter::from_message("q-3", raw, &attrs, Some(at));
        assert_eq!(read.failed, Failed::NotApplied);
        assert_eq!(read.attempts, 8);
        assert!(read.reason.contains("Lambda throttled"), "{}", read.reason);
        assert_eq!(read.event["detail-type"], "invoice_upserted");
        assert_eq!(read.source, "dlq:q-3");
        // The events queue's backstop: the body as it was, not JSON even.
        let attrs = HashMap::from([("ApproximateReceiveCount".to_string(), "8".to_string())]);
        let read = DeadLetter::from_message("q-4", "not json", &attrs, None);
        assert_eq!(
            (read.attempts, read.event.clone()),
            (8, Value::from("not json"))
        );
        assert!(read.redrivable());
        // A refused line of a CSV drop is not redriven.
        let line = DeadLetter::refused("bad".into(), "s3://b/drops/invoices.csv:3", json!({}), at);
        assert_eq!(line.failed, Failed::RefusedLine);
        assert!(!line.redrivable());
    }
}
