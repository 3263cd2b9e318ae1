//! The `events` Lambda function: the ERP's events (EventBridge or SQS),
//! SES's events (SNS or EventBridge) and CSV drops in S3 (object created).
//!
//! A malformed event goes to the dead-letter queue with its reason and is
//! not retried; the valid events of the same batch still apply. A failure
//! of AWS itself fails only that SQS message (partial batch response), or
//! the invocation for direct sources (their retry policy and on-failure
//! destination take over).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use collect_core::aws::events::{Batch, EventsService};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

/// Any event source: SQS batches get a partial batch response; everything
/// else (EventBridge, SNS, S3, a direct invocation) is applied as it is.
pub async fn handler(svc: &EventsService, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = (event.payload, event.context);
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
    let mut batch = Batch::default();
    let source = format!("invoke:{}", context.request_id);
    let applied = svc.apply_json(&payload, &source, &mut batch).await;
    // Refused events reach the dead-letter queue even if others failed.
    svc.flush(&mut batch).await?;
    applied?;
    Ok(serde_json::to_value(&batch.applied)?)
}

/// SQS: each message's body is one event (or an SNS or S3 notification).
pub async fn sqs(
    svc: &EventsService,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    let mut refused = Batch::default();
    for record in event.payload.records {
        let id = record.message_id.clone().unwrap_or_default();
        let source = format!("sqs:{id}");
        let body = record.body.unwrap_or_default();
        let mut batch = Batch::default();
        let result = match serde_json::from_str::<Value>(&body) {
            Ok(v) => svc.apply_json(&v, &source, &mut batch).await,
            Err(e) => {
                let mut b = Batch::default();
                b.dead_letters.push(collect_core::aws::queue::DeadLetter {
                    reason: format!("the message body is not JSON: {e}"),
                    source: source.clone(),
                    event: Value::from(body),
                });
                batch = b;
                Ok(())
            }
        };
        match result {
            Ok(()) => refused.dead_letters.append(&mut batch.dead_letters),
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, "event not applied; it will be delivered again");
                response.add_failure(id);
            }
        }
    }
    svc.flush(&mut refused).await?;
    Ok(response)
}
