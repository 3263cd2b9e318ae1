//! The `events` Lambda function: the ERP's events (EventBridge or SQS),
//! SES's events (SNS or EventBridge) and CSV drops in S3 (object created:
//! split into chunks, each a message on the events queue that comes back
//! here, [`collect_aws::drops`]).
//!
//! A malformed event goes to the dead-letter queue with its reason and is
//! not retried; the valid events of the same batch still apply. A failure
//! of AWS itself fails only that SQS message (partial batch response), or
//! the invocation for direct sources (their failures come back through the
//! events queue, `infra/template.yaml`). At its last attempt
//! ([`GIVE_UP_AFTER`] receives) an SQS message that still fails is written
//! to the dead-letter queue in the one envelope
//! ([`collect_aws::dead_letter`]) instead of being left to the queue's own
//! redrive, which stays as a backstop for a message that crashes the
//! function.
//!
//! `{"redrive": {}}` (or `{"redrive": {"max": 100}}`) moves the dead letters
//! back to the events queue (README, "Operations").
//!
//! Every invocation writes its counts as an EMF metric line
//! ([`collect_aws::metrics`]).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use collect_aws::AwsError;
use collect_aws::dead_letter::{DeadLetter, Redriven};
use collect_aws::events::{Applied, Batch, EventsService};
use collect_aws::metrics::{self, Function, MetricLine};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

/// What the handlers drive: applying one event of any shape, and sending a
/// batch's refused events to the dead-letter queue. On Lambda it is
/// [`EventsService`] (DynamoDB, S3, SQS); the tests below use the
/// in-memory ledger.
#[allow(async_fn_in_trait)]
pub trait EventSink {
    /// Applies one event; refusals go to `batch`, only failures of the
    /// service itself are errors.
    async fn apply_json(&self, v: &Value, source: &str, batch: &mut Batch) -> Result<(), AwsError>;
    /// Sends the batch's refused events to the dead-letter queue.
    async fn flush(&self, batch: &mut Batch) -> Result<(), AwsError>;
    /// Moves up to `max` dead letters back to the events queue.
    async fn redrive(&self, max: usize) -> Result<Redriven, AwsError>;
}

/// The receive count at which an SQS message that still fails is written
/// to the dead-letter queue (in the envelope) and taken off the events
/// queue. The queue's own `maxReceiveCount` (`infra/template.yaml`) is
/// higher: it only catches a message that crashes the function every time.
pub const GIVE_UP_AFTER: u32 = 4;

/// `{"redrive": {"max": N}}`: the redrive mode's input.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct RedriveInput {
    #[serde(default)]
    max: Option<usize>,
}

/// How many letters one redrive invocation moves at most by default.
const REDRIVE_MAX: usize = 1000;

impl EventSink for EventsService {
    async fn apply_json(&self, v: &Value, source: &str, batch: &mut Batch) -> Result<(), AwsError> {
        EventsService::apply_json(self, v, source, batch).await
    }
    async fn flush(&self, batch: &mut Batch) -> Result<(), AwsError> {
        EventsService::flush(self, batch).await
    }
    async fn redrive(&self, max: usize) -> Result<Redriven, AwsError> {
        EventsService::redrive(self, max).await
    }
}

/// What one invocation did, for its metric line.
#[derive(Debug, Default)]
struct Counts {
    records_in: usize,
    retried: usize,
    dead_lettered: usize,
}

fn emit(counts: &Counts, applied: &[Applied], started: std::time::Instant) {
    let rejected = applied
        .iter()
        .filter(|a| matches!(a, Applied::Rejected { .. }))
        .count();
    let chunks = applied
        .iter()
        .filter(|a| matches!(a, Applied::Chunk { .. }))
        .count();
    let completed = applied
        .iter()
        .filter(|a| {
            matches!(
                a,
                Applied::Chunk {
                    drop_done: true,
                    ..
                }
            )
        })
        .count();
    MetricLine::new(&metrics::namespace(), Function::Events)
        .count(metrics::RECORDS_IN, counts.records_in)
        .count(metrics::RECORDS_APPLIED, applied.len() - rejected)
        .count(metrics::RECORDS_REJECTED, rejected)
        .count(metrics::RECORDS_DEAD_LETTERED, counts.dead_lettered)
        .count(metrics::RECORDS_RETRIED, counts.retried)
        .count(metrics::DROP_CHUNKS, chunks)
        .count(metrics::DROPS_COMPLETED, completed)
        .millis(metrics::DURATION, started.elapsed().as_millis())
        .emit();
}

/// Any event source: SQS batches get a partial batch response; everything
/// else (EventBridge, SNS, S3, a direct invocation) is applied as it is.
pub async fn handler<S: EventSink>(svc: &S, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = (event.payload, event.context);
    if let Some(input) = payload.get("redrive") {
        let input: RedriveInput = serde_json::from_value(input.clone())?;
        let started = std::time::Instant::now();
        let done = svc.redrive(input.max.unwrap_or(REDRIVE_MAX)).await?;
        tracing::info!(
            moved = done.moved,
            kept = done.kept.len(),
            "dead letters redriven"
        );
        MetricLine::new(&metrics::namespace(), Function::Events)
            .count(metrics::REDRIVEN, done.moved)
            .millis(metrics::DURATION, started.elapsed().as_millis())
            .emit();
        return Ok(serde_json::to_value(done)?);
    }
    let from_sqs = payload
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:sqs");
    if from_sqs {
        let sqs_event: SqsEvent = serde_json::from_value(payload)?;
        let response = sqs(svc, LambdaEvent::new(sqs_event, context)).await?;
        return Ok(serde_json::to_value(response)?);
    }
    let started = std::time::Instant::now();
    let mut batch = Batch::default();
    let source = format!("invoke:{}", context.request_id);
    let applied = svc.apply_json(&payload, &source, &mut batch).await;
    let counts = Counts {
        records_in: 1,
        retried: usize::from(applied.is_err()),
        dead_lettered: batch.dead_letters.len(),
    };
    // Refused events reach the dead-letter queue even if others failed.
    svc.flush(&mut batch).await?;
    emit(&counts, &batch.applied, started);
    applied?;
    Ok(serde_json::to_value(&batch.applied)?)
}

/// SQS: each message's body is one event (or an SNS or S3 notification).
pub async fn sqs<S: EventSink>(
    svc: &S,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let started = std::time::Instant::now();
    let mut response = SqsBatchResponse::default();
    let mut refused = Batch::default();
    let mut counts = Counts::default();
    let mut applied = Vec::new();
    for record in event.payload.records {
        counts.records_in += 1;
        let id = record.message_id.clone().unwrap_or_default();
        let source = format!("sqs:{id}");
        let attempts: u32 = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let body = record.body.unwrap_or_default();
        let mut batch = Batch::default();
        let result = match serde_json::from_str::<Value>(&body) {
            Ok(v) => svc.apply_json(&v, &source, &mut batch).await,
            Err(e) => {
                let mut b = Batch::default();
                b.reject(
                    format!("the message body is not JSON: {e}"),
                    &source,
                    Value::from(body.as_str()),
                );
                batch = b;
                Ok(())
            }
        };
        applied.append(&mut batch.applied);
        match result {
            Ok(()) => refused.dead_letters.append(&mut batch.dead_letters),
            Err(e) if attempts >= GIVE_UP_AFTER => {
                tracing::error!(message_id = %id, error = %e, attempts, "event not applied on its last attempt; to the dead-letter queue");
                let event = serde_json::from_str::<Value>(&body).unwrap_or(Value::from(body));
                // The edge of the system: when the event was given up.
                refused.dead_letters.push(DeadLetter::not_applied(
                    format!("not applied after {attempts} attempts: {e}"),
                    &source,
                    event,
                    chrono::Utc::now(),
                    attempts,
                ));
            }
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, attempts, "event not applied; it will be delivered again");
                counts.retried += 1;
                response.add_failure(id);
            }
        }
    }
    counts.dead_lettered = refused.dead_letters.len();
    svc.flush(&mut refused).await?;
    emit(&counts, &applied, started);
    Ok(response)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    //! The handlers on the in-memory ledger: ERP events parsed by the
    //! engine's own reader and applied to it, refusals collected as the
    //! dead-letter queue would get them.
    use super::*;
    use collect_aws::events::Applied;
    use collect_aws::queue::DeadLetter;
    use collect_aws::{Service, ServiceError};
    use collect_delivery::ledger::memory::MemoryLedger;
    use collect_engine::ingest::{Incoming, incoming_from_json};
    use lambda_runtime::Context;
    use serde_json::json;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Default)]
    struct Memory {
        ledger: MemoryLedger,
        dead_letters: Mutex<Vec<DeadLetter>>,
        /// Events with this invoice id fail as a throttled table would.
        throttled: Mutex<Option<String>>,
        dead_letter_queue_down: AtomicBool,
    }

    impl EventSink for Memory {
        async fn apply_json(
            &self,
            v: &Value,
            source: &str,
            batch: &mut Batch,
        ) -> Result<(), AwsError> {
            let throttled = self.throttled.lock().unwrap().clone();
            if throttled.is_some()
                && throttled.as_deref() == v.get("invoice_id").and_then(Value::as_str)
            {
                return Err(ServiceError::refused(
                    Service::DynamoDb,
                    "PutItem",
                    "ThrottlingException",
                    None,
                )
                .into());
            }
            let refuse = |batch: &mut Batch, reason: String| {
                batch.applied.push(Applied::Rejected {
                    reason: reason.clone(),
                });
                batch.dead_letters.push(DeadLetter::refused(
                    reason,
                    source,
                    v.clone(),
                    chrono::Utc::now(),
                ));
            };
            match incoming_from_json(v) {
                Err(refused) => refuse(batch, refused.to_string()),
                Ok(Incoming::Customer(c)) => {
                    // The partial-update rule, as the DynamoDB sink applies it.
                    let id = c.record.customer_id.clone();
                    let stored = self.ledger.customer(&id);
                    self.ledger.upsert_customer(c.apply(stored.as_ref()));
                    batch.applied.push(Applied::Record {
                        kind: "customer",
                        id,
                    });
                }
                Ok(Incoming::Invoice(i))
                    if self.ledger.customer(&i.record.customer_id).is_none() =>
                {
                    refuse(batch, format!("no customer `{}`", i.record.customer_id))
                }
                Ok(Incoming::Invoice(i)) => {
                    let id = i.record.invoice_id.clone();
                    let stored = self.ledger.invoice(&id);
                    self.ledger.upsert_invoice(i.apply(stored.as_ref()));
                    batch.applied.push(Applied::Record {
                        kind: "invoice",
                        id,
                    });
                }
                Ok(Incoming::Payment(p)) => {
                    let id = p.payment_id.clone();
                    self.ledger.upsert_payment(p);
                    batch.applied.push(Applied::Record {
                        kind: "payment",
                        id,
                    });
                }
                Ok(Incoming::Event(e)) => {
                    let event_id = e.event_id.clone();
                    self.ledger.insert_event(e);
                    batch.applied.push(Applied::Event {
                        event_id,
                        new: true,
                    });
                }
            }
            Ok(())
        }

        async fn flush(&self, batch: &mut Batch) -> Result<(), AwsError> {
            if self.dead_letter_queue_down.load(Ordering::Relaxed) {
                return Err(ServiceError::refused(
                    Service::Sqs,
                    "SendMessageBatch",
                    "ServiceUnavailable",
                    None,
                )
                .into());
            }
            self.dead_letters
                .lock()
                .unwrap()
                .append(&mut batch.dead_letters);
            Ok(())
        }

        async fn redrive(&self, _max: usize) -> Result<Redriven, AwsError> {
            // Tested on the local endpoint (tests/tests/aws_e2e.rs).
            Ok(Redriven::default())
        }
    }

    fn customer(id: &str) -> Value {
        json!({"type": "customer_upserted", "customer_id": id, "name": id,
            "email": format!("{id}@customer.example"), "timezone": "UTC", "language": "en"})
    }

    fn invoice(id: &str, customer: &str) -> Value {
        json!({"type": "invoice_upserted", "invoice_id": id, "customer_id": customer,
            "number": format!("N-{id}"), "issue_date": "2026-11-10", "due_date": "2026-12-10",
            "amount": "500.00", "currency": "USD"})
    }

    fn sqs_records(bodies: &[Value]) -> Value {
        let records: Vec<Value> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                json!({"messageId": format!("m-{i}"), "receiptHandle": "rh",
                    "body": b.as_str().map(str::to_string).unwrap_or_else(|| b.to_string()),
                    "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:events",
                    "awsRegion": "us-east-1"})
            })
            .collect();
        json!({ "Records": records })
    }

    fn invoke(payload: Value) -> LambdaEvent<Value> {
        LambdaEvent::new(payload, Context::default())
    }

    #[tokio::test]
    async fn an_sqs_batch_applies_the_valid_and_refuses_the_rest_with_reasons() {
        let svc = Memory::default();
        let out = handler(
            &svc,
            invoke(sqs_records(&[
                customer("C1"),
                invoice("I1", "C1"),
                invoice("I2", "NOBODY"),
                Value::from("this is not JSON"),
            ])),
        )
        .await
        .unwrap();
        assert_eq!(out["batchItemFailures"], json!([]), "{out}");
        assert!(svc.ledger.customer("C1").is_some());
        let dead = svc.dead_letters.lock().unwrap().clone();
        assert_eq!(dead.len(), 2, "{dead:?}");
        assert!(dead[0].reason.contains("no customer `NOBODY`"), "{dead:?}");
        assert_eq!(dead[0].source, "sqs:m-2");
        assert!(dead[1].reason.contains("not JSON"), "{dead:?}");
        assert_eq!(dead[1].event, Value::from("this is not JSON"));
    }

    #[tokio::test]
    async fn a_failure_of_the_service_fails_only_that_message() {
        let svc = Memory::default();
        *svc.throttled.lock().unwrap() = Some("I2".into());
        let out = handler(
            &svc,
            invoke(sqs_records(&[
                customer("C1"),
                invoice("I2", "C1"),
                invoice("I3", "C1"),
            ])),
        )
        .await
        .unwrap();
        assert_eq!(
            out["batchItemFailures"],
            json!([{"itemIdentifier": "m-1"}]),
            "{out}"
        );
        assert!(svc.dead_letters.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_message_still_failing_at_its_last_attempt_becomes_one_envelope() {
        let svc = Memory::default();
        *svc.throttled.lock().unwrap() = Some("I2".into());
        let mut event = sqs_records(&[customer("C1"), invoice("I2", "C1")]);
        for (record, count) in event["Records"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .zip([1, 4])
        {
            record["attributes"] = json!({"ApproximateReceiveCount": count.to_string()});
        }
        let out = handler(&svc, invoke(event)).await.unwrap();
        // Taken off the queue, not failed again.
        assert_eq!(out["batchItemFailures"], json!([]), "{out}");
        let dead = svc.dead_letters.lock().unwrap().clone();
        assert_eq!(dead.len(), 1, "{dead:?}");
        let letter = serde_json::to_value(&dead[0]).unwrap();
        assert_eq!(letter["format"], collect_aws::dead_letter::FORMAT);
        assert_eq!(letter["failed"], "not_applied");
        assert_eq!(letter["attempts"], 4);
        assert_eq!(letter["source"], "sqs:m-1");
        assert_eq!(letter["event"], invoice("I2", "C1"));
        assert!(letter["at"].is_string(), "{letter}");
        assert!(
            dead[0].reason.contains("after 4 attempts")
                && dead[0].reason.contains("ThrottlingException"),
            "{}",
            dead[0].reason
        );
    }

    #[tokio::test]
    async fn a_direct_event_is_applied_and_answered_with_what_it_did() {
        let svc = Memory::default();
        let out = handler(&svc, invoke(customer("C9"))).await.unwrap();
        assert_eq!(
            out,
            json!([{"outcome": "record", "kind": "customer", "id": "C9"}])
        );
        // Refused: answered as refused, and sent to the dead-letter queue.
        let out = handler(&svc, invoke(json!({"type": "no_such_event"})))
            .await
            .unwrap();
        assert_eq!(out[0]["outcome"], "rejected", "{out}");
        let dead = svc.dead_letters.lock().unwrap().clone();
        assert_eq!(dead.len(), 1);
        assert!(dead[0].source.starts_with("invoke:"), "{dead:?}");
    }

    #[tokio::test]
    async fn a_customer_event_brings_its_postal_address_and_a_bad_one_is_refused() {
        let svc = Memory::default();
        let mut with_address = customer("C1");
        with_address["country"] = json!("DE");
        with_address["address_line1"] = json!("Hauptstraße 5");
        with_address["postal_code"] = json!("10115");
        with_address["city"] = json!("Berlin");
        let mut bad = customer("C2");
        bad["city"] = json!("B\u{202e}nilreB");
        let out = handler(&svc, invoke(sqs_records(&[with_address, bad])))
            .await
            .unwrap();
        assert_eq!(out["batchItemFailures"], json!([]), "{out}");
        let stored = svc.ledger.customer("C1").unwrap();
        assert_eq!(stored.address.city.as_deref(), Some("Berlin"));
        assert_eq!(stored.address.postal_code.as_deref(), Some("10115"));
        // An event without the address fields keeps the stored address.
        handler(&svc, invoke(customer("C1"))).await.unwrap();
        assert_eq!(svc.ledger.customer("C1").unwrap().address, stored.address);
        let dead = svc.dead_letters.lock().unwrap().clone();
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert!(dead[0].reason.starts_with("field `city`:"), "{dead:?}");
        assert!(svc.ledger.customer("C2").is_none());
    }

    #[tokio::test]
    async fn refusals_that_cannot_reach_the_dead_letter_queue_fail_the_invocation() {
        let svc = Memory::default();
        svc.dead_letter_queue_down.store(true, Ordering::Relaxed);
        let err = handler(&svc, invoke(invoice("I1", "NOBODY")))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("SendMessageBatch"), "{err}");
        // From SQS, the whole batch is tried again (nothing was lost).
        let err = handler(&svc, invoke(sqs_records(&[invoice("I1", "NOBODY")])))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ServiceUnavailable"), "{err}");
    }
}
