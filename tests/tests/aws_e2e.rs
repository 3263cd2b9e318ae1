#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! End to end against a local AWS endpoint (moto server, started by the
//! tests): events in through the `events` handler, the sweep through the
//! coordinator and worker handlers, mail out through SES v2, SES's events
//! back, and every re-delivery changing nothing.

use std::collections::{BTreeMap, BTreeSet};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, NaiveDate, Utc};
use collect_core::aws::artifacts::Artifacts;
use collect_core::aws::bundle;
use collect_core::aws::config::Settings;
use collect_core::aws::dynamo::Dynamo;
use collect_core::aws::events::EventsService;
use collect_core::aws::queue::{DeadLetter, Queue, ShardJob};
use collect_core::aws::sweep::{SendSettings, SweepService};
use collect_core::delivery::Sender;
use collect_core::domain::ActionStatus;
use collect_core::ledger::{Ledger, MessageStatus, StoredMessage};
use collect_core::sweep::plan_sweep;
use collect_e2e::{Stack, moto, policy_dir, stack};
use collect_sweep::{Coordinator, ScheduleInput};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

const SHARDS: u32 = 4;
const REVISION: &str = "e2e-rev-1";

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn sqs_event(bodies: &[Value]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            json!({
                "messageId": format!("m-{i}"),
                "receiptHandle": "rh",
                "body": if b.is_string() { b.as_str().unwrap().to_string() } else { b.to_string() },
                "attributes": {},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:events",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

fn invoke<T>(payload: T) -> LambdaEvent<T> {
    LambdaEvent::new(payload, Context::default())
}

struct World {
    st: Stack,
    uniq: String,
    dynamo: Dynamo,
    artifacts: Artifacts,
    events: EventsService,
    coordinator: Coordinator,
    shard_queue: Queue,
    dead_letters: Queue,
    scratch: tempfile::TempDir,
}

impl World {
    async fn new(prefix: &str) -> World {
        let st = stack(moto(), prefix).await;
        let uniq = st.names.table.trim_end_matches("-table").to_string();
        let dynamo = Dynamo::new(st.clients.dynamodb.clone(), &st.names.table, SHARDS);
        let artifacts = Artifacts::new(st.clients.s3.clone(), &st.names.bucket);
        let dead_letters = Queue::new(st.clients.sqs.clone(), &st.dead_letter_queue_url);
        let shard_queue = Queue::new(st.clients.sqs.clone(), &st.shard_queue_url);
        let events = EventsService {
            dynamo: dynamo.clone(),
            dead_letters: dead_letters.clone(),
            s3: st.clients.s3.clone(),
        };
        let coordinator = Coordinator {
            queue: shard_queue.clone(),
            shards: SHARDS,
        };
        let bytes = bundle::build(&policy_dir(), REVISION, None).unwrap();
        artifacts.publish_bundle(bytes).await.unwrap();
        World {
            st,
            uniq,
            dynamo,
            artifacts,
            events,
            coordinator,
            shard_queue,
            dead_letters,
            scratch: tempfile::tempdir().unwrap(),
        }
    }

    fn email(&self, customer: &str) -> String {
        format!("{}-{customer}@customer.example", self.uniq).to_ascii_lowercase()
    }

    fn settings(&self) -> Settings {
        Settings {
            table: self.st.names.table.clone(),
            bucket: self.st.names.bucket.clone(),
            shards: SHARDS,
        }
    }

    fn send_settings(&self) -> SendSettings {
        SendSettings {
            sender: Sender {
                company: "Supplier Ltd".into(),
                email: self.st.names.sender.clone(),
                reply_to: None,
            },
            pay_url: "https://pay.supplier.example/i/{token}".into(),
            pay_link_secret: self.st.names.secret.clone(),
            configuration_set: Some(self.st.names.configuration_set.clone()),
            send_time_utc: chrono::NaiveTime::from_hms_opt(14, 0, 0).unwrap(),
            pay_link_days: 45,
            grace_minutes: 60,
        }
    }

    async fn sweep_service(&self) -> SweepService {
        SweepService::load(
            &self.st.clients,
            &self.settings(),
            &self.send_settings(),
            self.scratch.path(),
        )
        .await
        .unwrap()
    }

    async fn events_handler(&self, payload: Value) -> Value {
        collect_events::handler(&self.events, invoke(payload))
            .await
            .unwrap()
    }

    async fn dead_letters(&self) -> Vec<DeadLetter> {
        let mut out = Vec::new();
        for _ in 0..5 {
            let got = self.dead_letters.receive().await.unwrap();
            if got.is_empty() {
                break;
            }
            out.extend(
                got.into_iter()
                    .map(|(_, body)| serde_json::from_str::<DeadLetter>(&body).unwrap()),
            );
        }
        out
    }

    /// Runs the coordinator, then the worker on every shard message.
    async fn sweep(&self, svc: &SweepService, on: NaiveDate) -> SqsBatchResponse {
        let enqueued = collect_sweep::coordinator(
            &self.coordinator,
            invoke(ScheduleInput {
                day: Some(on),
                scheduled_time: None,
            }),
        )
        .await
        .unwrap();
        assert_eq!(enqueued.shards, SHARDS as usize);
        let mut bodies = Vec::new();
        for _ in 0..20 {
            bodies.extend(
                self.shard_queue
                    .receive()
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|(_, b)| Value::from(b)),
            );
            if bodies.len() >= SHARDS as usize {
                break;
            }
        }
        assert_eq!(bodies.len(), SHARDS as usize, "one job per shard");
        let jobs: BTreeSet<u32> = bodies
            .iter()
            .map(|b| {
                serde_json::from_str::<ShardJob>(b.as_str().unwrap())
                    .unwrap()
                    .shard
            })
            .collect();
        assert_eq!(jobs, (0..SHARDS).collect());
        let event: SqsEvent = serde_json::from_value(sqs_event(&bodies)).unwrap();
        collect_sweep::worker(svc, invoke(event)).await.unwrap()
    }

    /// The mail moto recorded for this test's customers.
    fn mail(&self) -> Vec<(Vec<String>, String)> {
        moto()
            .sent_raw_mail()
            .unwrap()
            .into_iter()
            .filter(|(to, _)| {
                to.iter()
                    .any(|t| t.contains(&self.uniq.to_ascii_lowercase()))
            })
            .collect()
    }

    async fn customers(&self) -> Vec<String> {
        let mut all = Vec::new();
        for shard in 0..SHARDS {
            all.extend(self.dynamo.shard_customers(shard).await.unwrap());
        }
        all.sort();
        all
    }
}

fn customer(w: &World, id: &str) -> Value {
    json!({"type": "customer_upserted", "customer_id": id, "name": format!("Customer {id}"),
           "email": w.email(id), "timezone": "UTC", "language": "en"})
}

fn invoice(id: &str, customer: &str, due: &str, amount: &str) -> Value {
    json!({"type": "invoice_upserted", "invoice_id": id, "customer_id": customer,
           "number": format!("N-{id}"), "issue_date": "2026-11-10", "due_date": due,
           "amount": amount, "currency": "USD", "disputed": false})
}

fn ses_event(kind: &str, message_id: &str, action: Option<&str>, at: &str) -> Value {
    let mut tags = json!({"message_id": [message_id], "ses:configuration-set": ["mail"]});
    if let Some(a) = action {
        tags["action_id"] = json!([a]);
    }
    json!({
        "eventType": kind,
        "mail": {"timestamp": at, "messageId": format!("ses-{message_id}"), "tags": tags},
        kind.to_ascii_lowercase(): {"timestamp": at}
    })
}

fn sns(inner: &Value) -> Value {
    json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
        "Sns": {"Type": "Notification", "MessageId": "sns-1", "Message": inner.to_string()}}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_sweep_mail_and_feedback_end_to_end() {
    let w = World::new("e2e").await;
    let sweep_day = day("2026-12-07");

    // 1. The ERP's events through SQS, one of them malformed.
    let mut bodies = Vec::new();
    for c in ["C1", "C2", "C3", "C4", "C5"] {
        bodies.push(customer(&w, c));
    }
    for (i, c) in ["C1", "C2", "C3", "C4", "C5"].iter().enumerate() {
        bodies.push(invoice(&format!("I{}", i + 1), c, "2026-12-10", "500.00"));
    }
    bodies.push(
        json!({"type": "invoice_upserted", "invoice_id": "BAD-1", "customer_id": "C1",
        "number": "N", "issue_date": "2026-11-10", "due_date": "2026-12-10",
        "amount": "12,5k", "currency": "USD"}),
    );
    bodies.push(Value::from("this is not JSON"));
    let response = w.events_handler(sqs_event(&bodies)).await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let dead = w.dead_letters().await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(
        dead.iter()
            .any(|d| d.reason.contains("field `amount`") && d.event["invoice_id"] == "BAD-1"),
        "{dead:?}"
    );
    assert!(
        dead.iter().any(|d| d.reason.contains("not JSON")),
        "{dead:?}"
    );
    assert_eq!(w.customers().await.len(), 5);

    // 2. A CSV drop in S3: C5's invoice paid in full; a payment for an
    //    unknown invoice is refused with its line.
    let csv =
        "payment_id,invoice_id,paid_on,amount\nP1,I5,2026-12-01,500.00\nP2,NOPE,2026-12-01,1.00\n";
    w.st.clients
        .s3
        .put_object()
        .bucket(&w.st.names.bucket)
        .key("drops/payments-2026-12-01.csv")
        .body(csv.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap();
    let s3_event = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": w.st.names.bucket}, "object": {"key": "drops/payments-2026-12-01.csv"}}}]});
    let applied = w.events_handler(s3_event).await;
    let file = applied
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["outcome"] == "file")
        .unwrap();
    assert_eq!(file["applied"], 1, "{applied}");
    assert_eq!(file["rejected"], 1, "{applied}");
    let dead = w.dead_letters().await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].reason.contains("no invoice `NOPE`"), "{dead:?}");
    assert!(
        dead[0].source.ends_with("payments-2026-12-01.csv:3"),
        "{dead:?}"
    );

    // 3. A promise to pay through EventBridge holds C4's invoice; its
    //    re-delivery is recognised.
    let promise = json!({"version": "0", "id": "eb-1", "detail-type": "promise_to_pay",
        "source": "erp.receivables", "detail": {"date": "2026-12-01", "invoice_id": "I4",
        "promised_until": "2026-12-20", "event_id": "PTP-4"}});
    let first = w.events_handler(promise.clone()).await;
    assert_eq!(
        first[0],
        json!({"outcome": "event", "event_id": "PTP-4", "new": true})
    );
    let again = w.events_handler(promise).await;
    assert_eq!(
        again[0],
        json!({"outcome": "event", "event_id": "PTP-4", "new": false})
    );

    // What the pure engine decides on the same book: the cloud run must
    // send exactly these.
    let svc = w.sweep_service().await;
    let book = w.dynamo.load_book(&w.customers().await).await.unwrap();
    let expected = plan_sweep(
        &book,
        &svc.policy,
        svc.scorer.as_ref(),
        sweep_day,
        &svc.options,
    );
    assert!(
        !expected.messages.is_empty(),
        "the scenario should send mail"
    );
    let expected_to: BTreeSet<String> = expected
        .messages
        .iter()
        .map(|m| w.email(&m.customer_id))
        .collect();
    assert!(!expected_to.contains(&w.email("C4")), "C4 is on hold");
    assert!(!expected_to.contains(&w.email("C5")), "C5 has paid");

    // 4. The sweep: coordinator, then the worker on every shard.
    let response = w.sweep(&svc, sweep_day).await;
    assert!(response.batch_item_failures.is_empty());
    let mail = w.mail();
    let sent_to: BTreeSet<String> = mail.iter().flat_map(|(to, _)| to.clone()).collect();
    assert_eq!(sent_to, expected_to);
    assert_eq!(mail.len(), expected.messages.len());
    for m in &expected.messages {
        let (_, raw) = mail
            .iter()
            .find(|(to, _)| to.contains(&w.email(&m.customer_id)))
            .unwrap();
        assert!(raw.contains(&format!("<{}@proactive-collections>", m.message_id)));
        assert!(raw.contains("X-Collect-Tags:"), "{raw}");
        for a in &m.action_ids {
            assert!(raw.contains(a.as_str()), "{raw}");
            let record = w.dynamo.action(&m.customer_id, a).await.unwrap().unwrap();
            assert_eq!(record.status, ActionStatus::Sent);
            assert_eq!(record.git_revision.as_deref(), Some(REVISION));
            assert_eq!(record.sent_on, Some(sweep_day));
        }
        let state = Ledger::message(&w.dynamo, &m.message_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(state.status, MessageStatus::Sent);
        assert!(state.provider_message_id.is_some());
    }

    // 5. SES's events come back (SNS) and are matched to the actions.
    let m = &expected.messages[0];
    let delivery = ses_event(
        "Delivery",
        &m.message_id,
        m.action_ids.first().map(String::as_str),
        "2026-12-07T14:00:05.000Z",
    );
    let applied = w.events_handler(sns(&delivery)).await;
    assert_eq!(applied[0]["outcome"], "mail", "{applied}");
    assert_eq!(applied[0]["new"], true);
    assert_eq!(applied[0]["actions"], json!(m.action_ids));
    let again = w.events_handler(sns(&delivery)).await;
    assert_eq!(
        again[0]["new"], false,
        "a re-delivered SES event is applied once"
    );
    assert_eq!(w.dynamo.mail_events(&m.message_id).await.unwrap().len(), 1);
    // An SES event of mail this engine did not send is refused, with why.
    let foreign = json!({"eventType": "Open", "mail": {"timestamp": "2026-12-07T15:00:00Z",
        "messageId": "x", "tags": {}}, "open": {"timestamp": "2026-12-07T15:00:00Z"}});
    w.events_handler(sns(&foreign)).await;
    let dead = w.dead_letters().await;
    assert!(
        dead.iter()
            .any(|d| d.reason.contains("not sent by this engine")),
        "{dead:?}"
    );

    // 6. A re-run of the same day (a re-delivered schedule) changes nothing.
    let before: BTreeMap<String, String> = actions_snapshot(&w).await;
    let response = w.sweep(&svc, sweep_day).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        w.mail().len(),
        expected.messages.len(),
        "nothing sent twice"
    );
    assert_eq!(actions_snapshot(&w).await, before, "nothing recorded twice");

    // 7. A tampered policy bundle is refused: the function does not start.
    let good = bundle::build(&policy_dir(), REVISION, None).unwrap();
    let bad = tamper(&good, "standard-net30.policy");
    w.artifacts
        .put(&format!("bundles/{REVISION}.tar"), bad, "application/x-tar")
        .await
        .unwrap();
    let refused = SweepService::load(
        &w.st.clients,
        &w.settings(),
        &w.send_settings(),
        w.scratch.path(),
    )
    .await;
    let err = refused.err().expect("a tampered bundle must be refused");
    assert!(err.to_string().contains("policy bundle refused"), "{err}");
    // Also when the pointer carries no hash: the manifest check catches it.
    let pointer = json!({"key": format!("bundles/{REVISION}.tar"), "revision": REVISION});
    w.artifacts
        .put(
            "bundles/current",
            pointer.to_string().into_bytes(),
            "application/json",
        )
        .await
        .unwrap();
    let err = SweepService::load(
        &w.st.clients,
        &w.settings(),
        &w.send_settings(),
        w.scratch.path(),
    )
    .await
    .err()
    .expect("refused");
    assert!(
        err.to_string().contains("does not match the manifest"),
        "{err}"
    );
}

async fn actions_snapshot(w: &World) -> BTreeMap<String, String> {
    let book = w.dynamo.load_book(&w.customers().await).await.unwrap();
    book.actions
        .values()
        .flatten()
        .map(|a| (a.action_id.clone(), serde_json::to_string(a).unwrap()))
        .collect()
}

/// The bundle with one file changed and the manifest left as it was.
fn tamper(bytes: &[u8], path: &str) -> Vec<u8> {
    use std::io::Read;
    let mut archive = tar::Archive::new(bytes);
    let mut out = tar::Builder::new(Vec::new());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if name == path {
            data.extend_from_slice(b"\n## an unreviewed change\n");
        }
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        out.append_data(&mut header, &name, data.as_slice())
            .unwrap();
    }
    out.into_inner().unwrap()
}

/// A worker that died after recording `sending` and before SES answered:
/// within the grace period the message is left alone; an SES event shows
/// it went out, so it is marked sent and never sent again. Without any
/// event after the grace period, SES never had it: it is sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_left_sending_is_reconciled_before_any_resend() {
    let w = World::new("crash").await;
    let sweep_day = day("2026-12-07");
    let mut bodies = Vec::new();
    for c in ["K1", "K2", "K3", "K4"] {
        bodies.push(customer(&w, c));
        bodies.push(invoice(&format!("{c}-INV"), c, "2026-12-10", "300.00"));
    }
    let response = w.events_handler(sqs_event(&bodies)).await;
    assert_eq!(response["batchItemFailures"], json!([]));
    let svc = w.sweep_service().await;

    // The crash: plan, record, move to `sending`, and nothing else.
    let book = w.dynamo.load_book(&w.customers().await).await.unwrap();
    let plan = plan_sweep(
        &book,
        &svc.policy,
        svc.scorer.as_ref(),
        sweep_day,
        &svc.options,
    );
    assert!(
        plan.messages.len() >= 2,
        "need two messages for the two cases"
    );
    let recorded = w
        .dynamo
        .record_actions(&plan.records, &Default::default())
        .await
        .unwrap();
    assert!(recorded.conflicts.is_empty());
    let t0: DateTime<Utc> = "2026-12-07T14:00:00Z".parse().unwrap();
    for m in &plan.messages {
        let mut stored = StoredMessage::planned(m, sweep_day);
        assert!(Ledger::put_message(&w.dynamo, &stored).await.unwrap());
        stored.status = MessageStatus::Sending;
        stored.sending_since = Some(t0);
        assert!(
            Ledger::move_message(&w.dynamo, &stored, MessageStatus::Planned)
                .await
                .unwrap()
        );
        for a in &m.action_ids {
            let mut r = plan
                .records
                .iter()
                .find(|r| &r.action_id == a)
                .unwrap()
                .clone();
            r.status = ActionStatus::Sending;
            assert!(
                w.dynamo
                    .put_action(&r, &[ActionStatus::Planned])
                    .await
                    .unwrap()
            );
        }
    }
    let shards: BTreeSet<u32> = plan
        .messages
        .iter()
        .map(|m| collect_core::aws::keys::shard_of(&m.customer_id, SHARDS))
        .collect();
    let run_all = |now: DateTime<Utc>| {
        let svc = &svc;
        let shards = shards.clone();
        async move {
            let mut reports = Vec::new();
            for shard in shards {
                reports.push(
                    svc.run_shard(
                        ShardJob {
                            day: sweep_day,
                            shard,
                        },
                        now,
                    )
                    .await
                    .unwrap(),
                );
            }
            reports
        }
    };

    // Within the grace period: nothing is sent.
    let reports = run_all(t0 + chrono::Duration::minutes(5)).await;
    let in_doubt: usize = reports.iter().map(|r| r.in_doubt.len()).sum();
    assert_eq!(in_doubt, plan.messages.len());
    assert!(w.mail().is_empty());

    // SES's `Send` event for the first message arrives: it went out.
    let first = &plan.messages[0];
    let send = ses_event("Send", &first.message_id, None, "2026-12-07T14:00:01Z");
    w.events_handler(sns(&send)).await;

    // After the grace period: the first is reconciled, the others (no
    // event at all) are sent, each exactly once.
    let reports = run_all(t0 + chrono::Duration::hours(2)).await;
    let reconciled: Vec<String> = reports.iter().flat_map(|r| r.reconciled.clone()).collect();
    let sent: Vec<String> = reports.iter().flat_map(|r| r.sent.clone()).collect();
    assert_eq!(reconciled, vec![first.message_id.clone()]);
    assert_eq!(sent.len(), plan.messages.len() - 1);
    assert!(!sent.contains(&first.message_id));
    let mail = w.mail();
    assert_eq!(mail.len(), plan.messages.len() - 1);
    assert!(
        !mail
            .iter()
            .any(|(to, _)| to.contains(&w.email(&first.customer_id)))
    );
    for m in &plan.messages {
        for a in &m.action_ids {
            let r = w.dynamo.action(&m.customer_id, a).await.unwrap().unwrap();
            assert_eq!(r.status, ActionStatus::Sent, "{a}");
        }
    }

    // And once more: all sent, nothing moves.
    let reports = run_all(t0 + chrono::Duration::hours(3)).await;
    assert!(reports.iter().all(|r| r.sent.is_empty() && r.recorded == 0));
    assert_eq!(w.mail().len(), plan.messages.len() - 1);
}

/// The weekly retraining through its handler: history from DynamoDB, the
/// challenger evaluated on the recent window, promoted only when there is
/// no current model or it is not worse; an identical model is not promoted
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_promotes_only_when_not_worse() {
    use collect_core::aws::train::PriorRateTrainer;
    let w = World::new("train").await;
    let mut bodies = Vec::new();
    for (n, paid_on) in [(1, "2026-12-05"), (2, "2026-11-25"), (3, "2026-12-10")] {
        let c = format!("T{n}");
        bodies.push(customer(&w, &c));
        bodies.push(invoice(&format!("{c}-A"), &c, "2026-12-01", "100.00"));
        bodies.push(
            json!({"type": "payment_received", "payment_id": format!("{c}-P"),
            "invoice_id": format!("{c}-A"), "paid_on": paid_on, "amount": "100.00"}),
        );
    }
    let response = w.events_handler(sqs_event(&bodies)).await;
    assert_eq!(response["batchItemFailures"], json!([]));
    assert!(w.dead_letters().await.is_empty());

    let svc = collect_train::TrainService {
        dynamo: w.dynamo.clone(),
        artifacts: w.artifacts.clone(),
        trainer: Box::new(PriorRateTrainer),
        window_days: 56,
    };
    let input = || collect_train::TrainInput {
        day: Some(day("2026-12-20")),
        scheduled_time: None,
    };
    let first = collect_train::handler(&svc, invoke(input())).await.unwrap();
    assert!(first.promoted, "{first:?}");
    assert_eq!(first.invoices, 3);
    assert!(first.challenger_brier.is_some());
    let pointer = w.artifacts.current_model_pointer().await.unwrap().unwrap();
    assert_eq!(pointer.revision, first.version);
    let scorer = collect_core::aws::train::load_scorer(&w.artifacts)
        .await
        .unwrap();
    assert!(scorer.name().starts_with("prior-late-rate"));

    let second = collect_train::handler(&svc, invoke(input())).await.unwrap();
    assert!(!second.promoted, "{second:?}");
    assert_eq!(second.current_brier, first.challenger_brier);
    assert_eq!(
        w.artifacts.current_model_pointer().await.unwrap().unwrap(),
        pointer,
        "the pointer moves only on promotion"
    );
}

/// Two workers on one shard at the same moment (SQS delivered the job
/// twice), then the same jobs again, out of order: the shard's lease lets
/// one sweep; the other fails its SQS message (delivered again later) or,
/// starting after the first, finds nothing to do. Every message goes out
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_shard_send_once() {
    let w = World::new("two-workers").await;
    let sweep_day = day("2026-12-07");
    let mut bodies = Vec::new();
    for c in ["T1", "T2", "T3", "T4", "T5", "T6"] {
        bodies.push(customer(&w, c));
        bodies.push(invoice(&format!("{c}-INV"), c, "2026-12-10", "120.00"));
    }
    let response = w.events_handler(sqs_event(&bodies)).await;
    assert_eq!(response["batchItemFailures"], json!([]));
    let svc = w.sweep_service().await;
    let now: DateTime<Utc> = "2026-12-07T14:00:00Z".parse().unwrap();
    let shards: BTreeSet<u32> = ["T1", "T2", "T3", "T4", "T5", "T6"]
        .iter()
        .map(|c| collect_core::aws::keys::shard_of(c, SHARDS))
        .collect();
    let mut ok = 0;
    let mut refused = 0;
    for &shard in &shards {
        let job = ShardJob {
            day: sweep_day,
            shard,
        };
        let (a, b) = tokio::join!(svc.run_shard(job, now), svc.run_shard(job, now));
        for r in [a, b] {
            match r {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(e.to_string().contains("another sweep of this shard"), "{e}");
                    assert!(e.retryable(), "the SQS message must come back: {e}");
                    refused += 1;
                }
            }
        }
    }
    assert!(ok >= shards.len(), "{ok} ok, {refused} refused");
    let mail = w.mail();
    let sent_once = mail.len();
    let recipients: BTreeSet<&String> = mail.iter().flat_map(|(to, _)| to).collect();
    assert!(sent_once > 0);
    assert_eq!(recipients.len(), sent_once, "a customer got two: {mail:?}");
    // The jobs again, the last shard first (a re-delivery, out of order).
    for &shard in shards.iter().rev() {
        let report = svc
            .run_shard(
                ShardJob {
                    day: sweep_day,
                    shard,
                },
                now + chrono::Duration::minutes(20),
            )
            .await
            .unwrap();
        assert!(report.sent.is_empty() && report.recorded == 0, "{report:?}");
    }
    assert_eq!(w.mail().len(), sent_once);
}
