#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! What the cloud team does when something failed, end to end on the
//! local AWS endpoint (README, "Operations"):
//! - **redrive** the events dead-letter queue: every letter, whoever wrote
//!   it, is read as the one envelope, and its event goes back to the events
//!   queue, where it applies;
//! - **re-run one day for one shard**: the coordinator invoked with
//!   `{"day", "shard"}` enqueues that shard's job only; the worker sends
//!   what the shard still owes, and nothing twice.

use std::collections::BTreeSet;

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::MessageAttributeValue;
use collect_aws::dead_letter::{self, FORMAT, Failed};
use collect_aws::keys::shard_of;
use collect_aws::queue::{Queue, ShardJob};
use collect_e2e::{Fixture, day, invoice, invoke, sqs_event};
use collect_sweep::{Coordinator, ScheduleInput};
use serde_json::{Value, json};

const SHARDS: u32 = 4;

/// Receives every message waiting in `queue` (and deletes it).
async fn drain(queue: &Queue) -> Vec<String> {
    let mut bodies = Vec::new();
    for _ in 0..10 {
        let out = queue
            .client()
            .receive_message()
            .queue_url(queue.url())
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            queue
                .delete(m.receipt_handle.as_deref().unwrap())
                .await
                .unwrap();
            bodies.push(m.body.unwrap_or_default());
        }
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_of_every_writer_are_one_envelope_and_redrive_back() {
    let w = Fixture::new("redrive", SHARDS).await;
    // The function's own letter: an invoice whose customer is not there yet.
    let out = w
        .handle_events(sqs_event(&[invoice("R1-INV", "R1", "2026-12-10", "90.00")]))
        .await;
    assert_eq!(out["batchItemFailures"], json!([]));
    // A letter as AWS itself leaves it (EventBridge's dead letter: the
    // event as it was, the error in the message's attributes).
    let bus_event = json!({"version": "0", "id": "eb-1", "source": "erp.receivables",
        "detail-type": "customer_upserted", "detail": w.customer("R2")});
    w.dead_letters
        .client()
        .send_message()
        .queue_url(w.dead_letters.url())
        .message_body(bus_event.to_string())
        .message_attributes(
            "ERROR_MESSAGE",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("Lambda was throttled")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(dead_letter::waiting(&w.dead_letters).await.unwrap(), 2);

    // The customer the invoice needed arrives; then the redrive.
    w.seed(&[w.customer("R1")]).await;
    let done = collect_events::handler(&w.events, invoke(json!({"redrive": {}})))
        .await
        .unwrap();
    assert_eq!(done["moved"], 2, "{done}");
    assert_eq!(done["kept"], json!([]), "{done}");
    assert_eq!(dead_letter::waiting(&w.dead_letters).await.unwrap(), 0);

    // Back on the events queue: each body is the original record, which
    // the function applies like any other.
    let events_queue = Queue::new(w.clients.sqs.clone(), &w.events_queue_url);
    let bodies = drain(&events_queue).await;
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    let originals: BTreeSet<String> = bodies
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap()["detail-type"].to_string())
        .collect();
    assert!(originals.contains("\"customer_upserted\""), "{bodies:?}");
    let bodies: Vec<Value> = bodies.into_iter().map(Value::from).collect();
    let out = w.handle_events(sqs_event(&bodies)).await;
    assert_eq!(out["batchItemFailures"], json!([]), "{out}");
    assert_eq!(
        w.customers().await,
        vec!["R1".to_string(), "R2".to_string()]
    );
    assert!(w.dynamo.invoice("R1-INV").await.unwrap().is_some());
    assert!(w.dead_letters().await.is_empty(), "nothing refused again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_letter_the_function_writes_is_the_envelope() {
    let w = Fixture::new("envelope", SHARDS).await;
    w.handle_events(sqs_event(&[
        Value::from("not JSON"),
        json!({"type": "nonsense"}),
    ]))
    .await;
    let raw = drain(&w.dead_letters).await;
    assert_eq!(raw.len(), 2, "{raw:?}");
    for body in raw {
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["format"], FORMAT, "{body}");
        for field in ["failed", "reason", "source", "event", "at", "attempts"] {
            assert!(!v[field].is_null(), "{field} in {body}");
        }
        let letter: collect_aws::queue::DeadLetter = serde_json::from_value(v).unwrap();
        assert_eq!(letter.failed, Failed::Refused);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shard_of_one_day_is_run_again_and_nothing_goes_out_twice() {
    let w = Fixture::new("rerun-shard", SHARDS).await;
    w.publish_policy("ops-rev-1").await;
    let customers: Vec<String> = (1..=12).map(|n| format!("S{n}")).collect();
    let mut events = Vec::new();
    for c in &customers {
        events.push(w.customer(c));
        events.push(invoice(&format!("{c}-INV"), c, "2026-12-10", "240.00"));
    }
    w.seed(&events).await;
    // The shard whose job failed: the one with the most customers.
    let lost = (0..SHARDS)
        .max_by_key(|s| {
            customers
                .iter()
                .filter(|c| shard_of(c, SHARDS) == *s)
                .count()
        })
        .unwrap();
    let in_lost = customers
        .iter()
        .filter(|c| shard_of(c, SHARDS) == lost)
        .count();
    assert!(in_lost > 0);
    let svc = w.sweep_service().await;
    let coordinator = Coordinator {
        queue: w.shard_queue.clone(),
        shards: SHARDS,
        virtual_shards: SHARDS,
        preflight: None,
    };
    // Runs the coordinator with `input`, then the worker on the jobs it
    // queued (all but the lost shard's when `lose` is set).
    let run = |input: Value, lose: bool| {
        let (coordinator, svc, w) = (&coordinator, &svc, &w);
        async move {
            let input: ScheduleInput = serde_json::from_value(input).unwrap();
            collect_sweep::coordinator(coordinator, invoke(input))
                .await
                .unwrap();
            let jobs: Vec<ShardJob> = drain(&w.shard_queue)
                .await
                .iter()
                .map(|b| serde_json::from_str(b).unwrap())
                .collect();
            let bodies: Vec<Value> = jobs
                .iter()
                .filter(|j| !(lose && j.shard == lost))
                .map(|j| Value::from(serde_json::to_string(j).unwrap()))
                .collect();
            if !bodies.is_empty() {
                let event: SqsEvent = serde_json::from_value(sqs_event(&bodies)).unwrap();
                let response = collect_sweep::worker(svc, invoke(event)).await.unwrap();
                assert!(response.batch_item_failures.is_empty());
            }
            jobs
        }
    };
    // The day's sweep, with the lost shard's job never worked (it went to
    // the shard dead-letter queue).
    let jobs = run(json!({"day": "2026-12-07"}), true).await;
    assert_eq!(jobs.len(), SHARDS as usize);
    let before = w.mail().len();
    assert_eq!(before, customers.len() - in_lost);

    // The re-run of that shard: one job, its customers' reminders go out.
    let jobs = run(json!({"day": "2026-12-07", "shard": lost}), false).await;
    assert_eq!(
        jobs,
        vec![ShardJob {
            day: day("2026-12-07"),
            shard: lost
        }]
    );
    assert_eq!(w.mail().len(), customers.len());
    // Run again (by mistake, or for another shard that did go out):
    // nothing twice.
    run(json!({"day": "2026-12-07", "shard": lost}), false).await;
    let other = (lost + 1) % SHARDS;
    run(json!({"day": "2026-12-07", "shard": other}), false).await;
    let mail = w.mail();
    assert_eq!(mail.len(), customers.len());
    let recipients: BTreeSet<String> = mail.into_iter().flat_map(|(to, _)| to).collect();
    assert_eq!(recipients.len(), customers.len());
}
