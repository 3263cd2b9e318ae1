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
use collect_aws::dynamo::Dynamo;
use collect_aws::queue::ShardJob;
use collect_aws::sweep::SweepService;
use collect_delivery::bundle;
use collect_delivery::ledger::{Ledger, MessageStatus, StoredMessage};
use collect_e2e::{Fixture, day, invoice, invoke, payment, policy_dir, sqs_event};
use collect_engine::domain::{ActionStatus, MessageId};
use collect_engine::sweep::plan_sweep;
use collect_sweep::{Coordinator, ScheduleInput};
use serde_json::{Value, json};

const SHARDS: u32 = 4;
const REVISION: &str = "e2e-rev-1";

/// A stack of its own for one test, with the policy bundle published as
/// CI does.
async fn world(prefix: &str) -> Fixture {
    let w = Fixture::new(prefix, SHARDS).await;
    w.publish_policy(REVISION).await;
    w
}

/// Runs the coordinator, then the worker on every shard message, through
/// their handlers.
async fn sweep(w: &Fixture, svc: &SweepService, on: NaiveDate) -> SqsBatchResponse {
    let coordinator = Coordinator {
        queue: w.shard_queue.clone(),
        shards: SHARDS,
        virtual_shards: SHARDS,
        preflight: Some(w.preflight(&w.clients)),
    };
    let enqueued = collect_sweep::coordinator(
        &coordinator,
        invoke(ScheduleInput {
            day: Some(on),
            scheduled_time: None,
            allow_future_day: false,
            preflight: false,
            shard: None,
        }),
    )
    .await
    .unwrap();
    assert_eq!(enqueued.shards, SHARDS as usize);
    let mut bodies = Vec::new();
    for _ in 0..20 {
        bodies.extend(
            w.shard_queue
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
    let w = world("e2e").await;
    let sweep_day = day("2026-12-07");

    // 1. The ERP's events through SQS, one of them malformed.
    let mut bodies = Vec::new();
    for c in ["C1", "C2", "C3", "C4", "C5"] {
        bodies.push(w.customer(c));
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
    let response = w.handle_events(sqs_event(&bodies)).await;
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
    let drop = w.drop_file("drops/payments-2026-12-01.csv", csv).await;
    assert_eq!(drop.applied, 1, "{drop:?}");
    assert_eq!(drop.rejected, 1, "{drop:?}");
    assert!(drop.completed, "{drop:?}");
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
    let first = w.handle_events(promise.clone()).await;
    assert_eq!(
        first[0],
        json!({"outcome": "event", "event_id": "PTP-4", "new": true})
    );
    let again = w.handle_events(promise).await;
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
    let response = sweep(&w, &svc, sweep_day).await;
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
        assert!(raw.contains(&format!("<{}@supplier.example>", m.message_id)));
        assert!(raw.contains("X-Collect-Tags:"), "{raw}");
        for a in &m.action_ids {
            assert!(raw.contains(a.as_str()), "{raw}");
            let record = w.dynamo.action(&m.customer_id, a).await.unwrap().unwrap();
            assert_eq!(record.status, ActionStatus::Sent);
            assert_eq!(record.git_revision.as_deref(), Some(REVISION));
            // The bundle's revision: the same as a checkout of its files gives.
            let files = collect_delivery::revision::of_policy_file(
                &policy_dir().join("standard-net30.policy"),
            )
            .unwrap();
            assert_eq!(
                record.bundle_revision.as_deref(),
                Some(files.revision.as_str())
            );
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
        m.action_ids.first().map(|a| a.as_str()),
        "2026-12-07T14:00:05.000Z",
    );
    let applied = w.handle_events(sns(&delivery)).await;
    assert_eq!(applied[0]["outcome"], "mail", "{applied}");
    assert_eq!(applied[0]["new"], true);
    assert_eq!(applied[0]["actions"], json!(m.action_ids));
    let again = w.handle_events(sns(&delivery)).await;
    assert_eq!(
        again[0]["new"], false,
        "a re-delivered SES event is applied once"
    );
    assert_eq!(w.dynamo.mail_events(&m.message_id).await.unwrap().len(), 1);
    // An SES event of mail this engine did not send is refused, with why.
    let foreign = json!({"eventType": "Open", "mail": {"timestamp": "2026-12-07T15:00:00Z",
        "messageId": "x", "tags": {}}, "open": {"timestamp": "2026-12-07T15:00:00Z"}});
    w.handle_events(sns(&foreign)).await;
    let dead = w.dead_letters().await;
    assert!(
        dead.iter()
            .any(|d| d.reason.contains("not sent by this engine")),
        "{dead:?}"
    );

    // 6. A re-run of the same day (a re-delivered schedule) changes nothing.
    let before: BTreeMap<String, String> = actions_snapshot(&w).await;
    let response = sweep(&w, &svc, sweep_day).await;
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
        &w.clients,
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
        &w.clients,
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

async fn actions_snapshot(w: &Fixture) -> BTreeMap<String, String> {
    let book = w.dynamo.load_book(&w.customers().await).await.unwrap();
    book.actions
        .values()
        .flatten()
        .map(|a| (a.action_id.to_string(), serde_json::to_string(a).unwrap()))
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
    let w = world("crash").await;
    let sweep_day = day("2026-12-07");
    let mut bodies = Vec::new();
    for c in ["K1", "K2", "K3", "K4"] {
        bodies.push(w.customer(c));
        bodies.push(invoice(&format!("{c}-INV"), c, "2026-12-10", "300.00"));
    }
    let response = w.handle_events(sqs_event(&bodies)).await;
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
        .record_actions(&plan.records, &Default::default(), sweep_day)
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
                    .put_action(&r, &[ActionStatus::Planned], sweep_day)
                    .await
                    .unwrap()
            );
        }
    }
    let shards: BTreeSet<u32> = plan
        .messages
        .iter()
        .map(|m| collect_aws::keys::shard_of(&m.customer_id, SHARDS))
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
    w.handle_events(sns(&send)).await;

    // After the grace period: the first is reconciled, the others (no
    // event at all) are sent, each exactly once.
    let reports = run_all(t0 + chrono::Duration::hours(2)).await;
    let reconciled: Vec<MessageId> = reports.iter().flat_map(|r| r.reconciled.clone()).collect();
    let sent: Vec<MessageId> = reports.iter().flat_map(|r| r.sent.clone()).collect();
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
    use collect_aws::train::PriorRateTrainer;
    let w = world("train").await;
    let mut bodies = Vec::new();
    for (n, paid_on) in [(1, "2026-12-05"), (2, "2026-11-25"), (3, "2026-12-10")] {
        let c = format!("T{n}");
        bodies.push(w.customer(&c));
        bodies.push(invoice(&format!("{c}-A"), &c, "2026-12-01", "100.00"));
        bodies.push(payment(
            &format!("{c}-P"),
            &format!("{c}-A"),
            paid_on,
            "100.00",
        ));
    }
    let response = w.handle_events(sqs_event(&bodies)).await;
    assert_eq!(response["batchItemFailures"], json!([]));
    assert!(w.dead_letters().await.is_empty());

    let svc = collect_train::TrainService {
        dynamo: w.dynamo.clone(),
        artifacts: w.artifacts.clone(),
        trainer: Box::new(PriorRateTrainer),
        window_days: 56,
        sample: collect_aws::train::Sample::default(),
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
    let scorer = collect_aws::train::load_scorer(&w.artifacts).await.unwrap();
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
    let w = world("two-workers").await;
    let sweep_day = day("2026-12-07");
    let mut bodies = Vec::new();
    for c in ["T1", "T2", "T3", "T4", "T5", "T6"] {
        bodies.push(w.customer(c));
        bodies.push(invoice(&format!("{c}-INV"), c, "2026-12-10", "120.00"));
    }
    let response = w.handle_events(sqs_event(&bodies)).await;
    assert_eq!(response["batchItemFailures"], json!([]));
    let svc = w.sweep_service().await;
    let now: DateTime<Utc> = "2026-12-07T14:00:00Z".parse().unwrap();
    let shards: BTreeSet<u32> = ["T1", "T2", "T3", "T4", "T5", "T6"]
        .iter()
        .map(|c| collect_aws::keys::shard_of(c, SHARDS))
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

/// A worker that finds its shard's lease held by a live worker (SQS
/// delivered the job twice, the first copy is still running) fails that
/// SQS record: a batch item failure, delivered again after the visibility
/// timeout; it records and sends nothing. A lease whose holder's time ran
/// out (a worker that died) blocks nobody: the next delivery takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_shard_is_a_batch_item_failure() {
    use collect_delivery::ledger::{LeaseHolder, LeaseOutcome, Scope};
    let w = world("held").await;
    let sweep_day = day("2026-12-07");
    let names = ["H1", "H2", "H3", "H4", "H5", "H6", "H7", "H8"];
    let mut bodies = Vec::new();
    for c in names {
        bodies.push(w.customer(c));
        bodies.push(invoice(&format!("{c}-INV"), c, "2026-12-10", "250.00"));
    }
    let response = w.handle_events(sqs_event(&bodies)).await;
    assert_eq!(response["batchItemFailures"], json!([]));
    let svc = w.sweep_service().await;
    let shard = collect_aws::keys::shard_of("H1", SHARDS);
    let in_shard: BTreeSet<String> = names
        .iter()
        .filter(|c| collect_aws::keys::shard_of(c, SHARDS) == shard)
        .map(|c| w.email(c))
        .collect();
    let job = ShardJob {
        day: sweep_day,
        shard,
    };
    let job_event = || -> SqsEvent {
        serde_json::from_value(sqs_event(&[serde_json::to_value(job).unwrap()])).unwrap()
    };
    let lease = Scope::Shard {
        shard,
        through: sweep_day,
    }
    .lease_name();
    let other = LeaseHolder {
        id: "another-worker".into(),
        pid: 4242,
        host: "2026/12/07/[$LATEST]other".into(),
    };
    let ttl = chrono::Duration::minutes(16);

    // Another worker holds the shard: this delivery fails, and nothing moves.
    let now = Utc::now();
    assert!(matches!(
        Ledger::take_lease(&w.dynamo, &lease, &other, now, ttl)
            .await
            .unwrap(),
        LeaseOutcome::Taken(_)
    ));
    let response = collect_sweep::worker(&svc, invoke(job_event()))
        .await
        .unwrap();
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["m-0"], "the held shard's record comes back");
    assert!(w.mail().is_empty());
    assert!(actions_snapshot(&w).await.is_empty(), "nothing recorded");
    // The holder is still the other worker, untouched.
    let me = LeaseHolder::this_process(now);
    match Ledger::take_lease(&w.dynamo, &lease, &me, now, ttl)
        .await
        .unwrap()
    {
        LeaseOutcome::HeldBy(l) => {
            assert_eq!(l.holder, other);
            assert_eq!(l.since, now);
        }
        taken => panic!("the lease moved: {taken:?}"),
    }

    // The other worker dies: its lease runs out (renewed in the past here).
    let long_ago = now - chrono::Duration::minutes(40);
    assert!(matches!(
        Ledger::take_lease(&w.dynamo, &lease, &other, long_ago, ttl)
            .await
            .unwrap(),
        LeaseOutcome::Taken(_)
    ));
    let response = collect_sweep::worker(&svc, invoke(job_event()))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let mail = w.mail();
    let recipients: BTreeSet<String> = mail.iter().flat_map(|(to, _)| to.clone()).collect();
    assert!(!mail.is_empty());
    assert_eq!(recipients.len(), mail.len(), "a customer got two: {mail:?}");
    assert!(
        recipients.is_subset(&in_shard),
        "{recipients:?} ⊄ {in_shard:?}"
    );
    // The worker gave its lease back: anyone may take it now.
    assert!(matches!(
        Ledger::take_lease(&w.dynamo, &lease, &me, Utc::now(), ttl)
            .await
            .unwrap(),
        LeaseOutcome::Taken(_)
    ));
    Ledger::release_lease(&w.dynamo, &lease, &me).await.unwrap();

    // The first copy's re-delivery: it finds everything done.
    let response = collect_sweep::worker(&svc, invoke(job_event()))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.mail().len(), mail.len());
}

/// The jobs of two days delivered out of order: the later day's first,
/// then the earlier day's (delayed in the queue). The late job must not
/// send what the later day already sent, nor a second letter for a step
/// the later day settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_job_for_an_earlier_day_sends_nothing_twice() {
    let w = world("late-job").await;
    let names = ["O1", "O2", "O3", "O4", "O5", "O6"];
    let mut bodies = Vec::new();
    for c in names {
        bodies.push(w.customer(c));
        bodies.push(invoice(&format!("{c}-INV"), c, "2026-12-10", "180.00"));
    }
    let response = w.handle_events(sqs_event(&bodies)).await;
    assert_eq!(response["batchItemFailures"], json!([]));
    let svc = w.sweep_service().await;
    let now: DateTime<Utc> = "2026-12-10T14:00:00Z".parse().unwrap();
    let run_day = |on: NaiveDate, now: DateTime<Utc>| {
        let svc = &svc;
        async move {
            let mut sent = Vec::new();
            for shard in 0..SHARDS {
                let r = svc
                    .run_shard(ShardJob { day: on, shard }, now)
                    .await
                    .unwrap();
                sent.extend(r.sent);
            }
            sent
        }
    };
    // The due date's jobs run first: the reminder of 2026-12-07 was missed
    // (skipped, with the reason), the urgent notice goes out.
    let later = run_day(day("2026-12-10"), now).await;
    assert_eq!(
        later.len(),
        names.len(),
        "one notice per customer: {later:?}"
    );
    let after_later = actions_snapshot(&w).await;
    let mail = w.mail();
    assert_eq!(mail.len(), names.len());
    assert!(
        mail.iter()
            .all(|(_, raw)| raw.contains("Subject: Payment due")),
        "{mail:?}"
    );

    // Then the delayed jobs of 2026-12-07: the reminder is not sent after
    // the notice, nothing is recorded again or rewritten.
    let earlier = run_day(day("2026-12-07"), now + chrono::Duration::hours(1)).await;
    assert!(earlier.is_empty(), "{earlier:?}");
    assert_eq!(actions_snapshot(&w).await, after_later);
    assert_eq!(w.mail().len(), names.len());
    let recipients: BTreeSet<String> = w.mail().into_iter().flat_map(|(to, _)| to).collect();
    assert_eq!(recipients.len(), names.len());
}

/// Leftovers of a dead worker whose customers have since paid: one message
/// left `planned`, one left `sending` (SES never had it). The payments take
/// the invoices out of the index of open invoices, so the shard's sweep no
/// longer loads these customers; the sparse index of unfinished messages
/// still finds both, and each is checked again and cancelled, not sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_customers_who_paid_are_found_and_cancelled() {
    use collect_delivery::ledger::Scope;
    let w = world("paid-leftover").await;
    let sweep_day = day("2026-12-07");
    let names = ["P1", "P2"];
    let mut bodies = Vec::new();
    for c in names {
        bodies.push(w.customer(c));
        bodies.push(invoice(&format!("{c}-INV"), c, "2026-12-10", "640.00"));
    }
    let response = w.handle_events(sqs_event(&bodies)).await;
    assert_eq!(response["batchItemFailures"], json!([]));
    let svc = w.sweep_service().await;

    // The dead worker: planned, recorded, the second message taken.
    let book = w.dynamo.load_book(&w.customers().await).await.unwrap();
    let plan = plan_sweep(
        &book,
        &svc.policy,
        svc.scorer.as_ref(),
        sweep_day,
        &svc.options,
    );
    assert_eq!(plan.messages.len(), 2, "{:?}", plan.messages);
    w.dynamo
        .record_actions(&plan.records, &Default::default(), sweep_day)
        .await
        .unwrap();
    let t0: DateTime<Utc> = "2026-12-07T14:00:00Z".parse().unwrap();
    for (k, m) in plan.messages.iter().enumerate() {
        let mut stored = StoredMessage::planned(m, sweep_day);
        assert!(Ledger::put_message(&w.dynamo, &stored).await.unwrap());
        if k == 1 {
            stored.status = MessageStatus::Sending;
            stored.sending_since = Some(t0);
            assert!(
                Ledger::move_message(&w.dynamo, &stored, MessageStatus::Planned)
                    .await
                    .unwrap()
            );
        }
    }

    // Both customers pay in full.
    let payments: Vec<Value> = names
        .iter()
        .map(|c| {
            payment(
                &format!("{c}-P"),
                &format!("{c}-INV"),
                "2026-12-07",
                "640.00",
            )
        })
        .collect();
    let response = w.handle_events(sqs_event(&payments)).await;
    assert_eq!(response["batchItemFailures"], json!([]));
    let shards: BTreeSet<u32> = names
        .iter()
        .map(|c| collect_aws::keys::shard_of(c, SHARDS))
        .collect();
    for &shard in &shards {
        assert!(
            w.dynamo
                .open_customers(shard, day("2027-01-31"))
                .await
                .unwrap()
                .is_empty(),
            "a paid invoice left the index of open invoices"
        );
    }

    // After the grace period, the shards' sweeps find and cancel both.
    let mut cancelled = Vec::new();
    for &shard in &shards {
        let r = svc
            .run_shard(
                ShardJob {
                    day: sweep_day,
                    shard,
                },
                t0 + chrono::Duration::hours(2),
            )
            .await
            .unwrap();
        assert!(r.sent.is_empty(), "{r:?}");
        assert_eq!(r.customers, 0, "the paid customers are not swept again");
        cancelled.extend(r.cancelled.into_iter().map(|(id, _)| id));
    }
    cancelled.sort();
    let mut expected: Vec<MessageId> = plan.messages.iter().map(|m| m.message_id.clone()).collect();
    expected.sort();
    assert_eq!(cancelled, expected);
    assert!(w.mail().is_empty(), "nothing to customers who paid");
    for m in &plan.messages {
        let stored = Ledger::message(&w.dynamo, &m.message_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.status, MessageStatus::Cancelled);
        assert!(stored.note.is_some(), "cancelled with its reason");
        for a in &m.action_ids {
            let r = w.dynamo.action(&m.customer_id, a).await.unwrap().unwrap();
            assert!(
                !matches!(
                    r.status,
                    ActionStatus::Planned | ActionStatus::Sending | ActionStatus::Sent
                ),
                "{a}: {:?}",
                r.status
            );
            assert!(r.note.is_some(), "{a} has its reason");
        }
    }
    // Finished: out of the index of unfinished messages.
    for &shard in &shards {
        let scope = Scope::Shard {
            shard,
            through: sweep_day,
        };
        assert!(
            Ledger::unfinished_messages(&w.dynamo, &scope)
                .await
                .unwrap()
                .is_empty()
        );
        let keys = w
            .dynamo
            .client()
            .query()
            .table_name(w.dynamo.table())
            .index_name(collect_aws::keys::GSI1)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", collect_aws::keys::GSI1PK)
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(collect_aws::keys::unfinished_gsi_pk(
                    shard,
                )),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(keys.count(), 0, "the index entry is removed");
    }
}

/// Counts the DynamoDB requests a client makes, by operation, with the
/// bytes of the requests (moto does not meter capacity).
#[derive(Debug, Default, Clone)]
struct Meter {
    calls: std::sync::Arc<std::sync::Mutex<BTreeMap<String, (usize, usize)>>>,
}

impl Meter {
    fn take(&self) -> BTreeMap<String, (usize, usize)> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl aws_sdk_dynamodb::config::Intercept for Meter {
    fn name(&self) -> &'static str {
        "meter"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _rc: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request();
        let op = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("?")
            .to_string();
        let sent = request.body().bytes().map_or(0, <[u8]>::len);
        let mut calls = self.calls.lock().unwrap();
        let e = calls.entry(op).or_default();
        e.0 += 1;
        e.1 += sent;
        Ok(())
    }
}

/// The DynamoDB requests of a sweep, per open invoice: a first sweep of a
/// book (everything recorded, messages sent) and the next day's (little
/// changes). Prints the table BENCHMARKS.md quotes and keeps the counts
/// within bounds, so a change that reads a partition per message or writes
/// an item twice shows here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_requests_per_invoice() {
    let w = world("meter").await;
    // 40 customers with 3 open invoices each, due over the next weeks and
    // the last ones (overdue and upcoming steps both happen).
    let customers: Vec<String> = (1..=40).map(|i| format!("R{i:02}")).collect();
    let dues = ["2026-11-30", "2026-12-10", "2026-12-17"];
    let mut bodies = Vec::new();
    for c in &customers {
        bodies.push(w.customer(c));
    }
    let response = w.handle_events(sqs_event(&bodies)).await;
    assert_eq!(response["batchItemFailures"], json!([]));
    for c in &customers {
        let invoices: Vec<Value> = dues
            .iter()
            .enumerate()
            .map(|(k, due)| invoice(&format!("{c}-{k}"), c, due, "420.00"))
            .collect();
        let response = w.handle_events(sqs_event(&invoices)).await;
        assert_eq!(response["batchItemFailures"], json!([]));
    }
    let open = customers.len() * dues.len();

    let meter = Meter::default();
    let mut svc = w.sweep_service().await;
    let conf = aws_sdk_dynamodb::config::Builder::from(&w.moto.sdk_config().await)
        .interceptor(meter.clone())
        .build();
    let metered = Dynamo::new(
        aws_sdk_dynamodb::Client::from_conf(conf),
        w.dynamo.table(),
        SHARDS,
    );
    // The ledger and the mail service's reading of SES events, both metered.
    svc.ledger = metered.clone();
    svc.mailer.dynamo = metered;
    let mut table = String::new();
    // Reads of the steady day without history, then with a year of it
    // folded: (requests, bytes of the items the sweep's queries read).
    let mut steady: Vec<(usize, usize)> = Vec::new();
    for (label, on, at) in [
        ("first sweep", "2026-12-07", "2026-12-07T14:00:00Z"),
        ("next day", "2026-12-08", "2026-12-08T14:00:00Z"),
        // A year of settled monthly invoices per customer is added (below),
        // and the next day is swept again: the first run folds them, the
        // second is the steady day with history.
        (
            "next day, history added: the fold",
            "2026-12-08",
            "2026-12-08T15:00:00Z",
        ),
        (
            "next day, history folded",
            "2026-12-08",
            "2026-12-08T16:00:00Z",
        ),
    ] {
        if label.starts_with("next day, history added") {
            add_history(&w, &customers).await;
            meter.take();
        }
        let now: DateTime<Utc> = at.parse().unwrap();
        let mut sent = 0;
        let mut recorded = 0;
        for shard in 0..SHARDS {
            let r = svc
                .run_shard(
                    ShardJob {
                        day: day(on),
                        shard,
                    },
                    now,
                )
                .await
                .unwrap();
            sent += r.sent.len();
            recorded += r.recorded;
        }
        let calls = meter.take();
        let count =
            |ops: &[&str]| -> usize { ops.iter().map(|o| calls.get(*o).map_or(0, |c| c.0)).sum() };
        let reads = count(&["Query", "GetItem", "BatchGetItem"]);
        let writes = count(&[
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "TransactWriteItems",
            "BatchWriteItem",
        ]);
        let per = |n: usize| n as f64 / open as f64;
        table.push_str(&format!(
            "{label} ({on}): {open} open invoices, {recorded} actions recorded, {sent} messages sent\n"
        ));
        for (op, (n, out)) in &calls {
            table.push_str(&format!(
                "  {op:<10} {n:>5} requests  {:>5.2}/invoice  {:>8} bytes sent\n",
                per(*n),
                out,
            ));
        }
        let (live, whole) = partition_bytes(&w, &customers).await;
        table.push_str(&format!(
            "  reads {:.2}/invoice, writes {:.2}/invoice; a customer's partition after it: \
             {} bytes, of which the sweep's Query reads {}\n",
            per(reads),
            per(writes),
            whole / customers.len(),
            live / customers.len(),
        ));
        if label == "next day" || label == "next day, history folded" {
            steady.push((reads, live));
        }
        if label == "next day, history added: the fold" {
            // Once per settled invoice: its items copied (batches of 25),
            // each live item deleted, the aggregate written per customer.
            continue;
        }
        // Bounds: per message, one fresh read of its customer and one read
        // of itself before it is finished (the unfinished ones are read in
        // batches of 100, not one by one), its writes (planned, sending,
        // sent) and its actions'; per customer swept one Query; per shard
        // the index queries, a BatchGetItem and the lease.
        let messages = sent.max(1);
        // A day that records nothing writes only its leases.
        if label.starts_with("next day") {
            assert_eq!(recorded, 0, "{table}");
        }
        assert!(
            reads <= customers.len() + 2 * messages + 6 * SHARDS as usize,
            "{table}"
        );
        assert!(
            writes <= recorded + 3 * messages + 2 * recorded + 3 * SHARDS as usize,
            "{table}"
        );
    }
    // The steady day does not grow with history: the same requests, and
    // about the same bytes read (the aggregate item, under 1.5 KB, instead
    // of 24 settled records per customer).
    let [(reads_before, bytes_before), (reads_after, bytes_after)] = steady[..] else {
        panic!("{table}");
    };
    assert_eq!(reads_after, reads_before, "{table}");
    assert!(
        bytes_after <= bytes_before + 1_500 * customers.len(),
        "the steady day reads more with history: {bytes_before} → {bytes_after} bytes\n{table}"
    );
    for c in &customers {
        let h = w.dynamo.payment_history(c).await.unwrap().unwrap();
        assert_eq!(h.invoices, 12, "{c}");
    }
    // What a customer's Query reads: its partition, in DynamoDB's item
    // size (attribute names and values), after the two days.
    let mut bytes = 0usize;
    let mut actions: Vec<usize> = Vec::new();
    for c in &customers {
        let items = w
            .dynamo
            .client()
            .query()
            .table_name(w.dynamo.table())
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(collect_aws::keys::customer_pk(c)),
            )
            .send()
            .await
            .unwrap();
        for it in items.items() {
            let size = item_size(it);
            bytes += size;
            if it.get("kind") == Some(&aws_sdk_dynamodb::types::AttributeValue::S("action".into()))
            {
                actions.push(size);
            }
        }
    }
    table.push_str(&format!(
        "a customer's partition: {} bytes on average ({} open invoices each)\n",
        bytes / customers.len(),
        dues.len()
    ));
    // An action item with its trail (write units are per started KB).
    table.push_str(&format!(
        "an action item: {} bytes on average, {} at most ({} actions)\n",
        actions.iter().sum::<usize>() / actions.len().max(1),
        actions.iter().max().copied().unwrap_or(0),
        actions.len()
    ));
    println!("{table}");
}

/// The customers' partitions in DynamoDB's item size: (what the sweep's
/// Query reads, `SK < "~"`; the whole partitions).
async fn partition_bytes(w: &Fixture, customers: &[String]) -> (usize, usize) {
    let (mut live, mut whole) = (0, 0);
    for c in customers {
        let items = w
            .dynamo
            .client()
            .query()
            .table_name(w.dynamo.table())
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(collect_aws::keys::customer_pk(c)),
            )
            .send()
            .await
            .unwrap();
        for it in items.items() {
            let size = item_size(it);
            whole += size;
            let sk = match it.get("SK") {
                Some(aws_sdk_dynamodb::types::AttributeValue::S(sk)) => sk.as_str(),
                _ => "",
            };
            if sk < collect_aws::keys::FOLDED_PREFIX {
                live += size;
            }
        }
    }
    (live, whole)
}

/// A year of settled monthly invoices for each customer (due from
/// 2025-09-15 to 2026-08-11, each paid a few days early or late), through
/// the events function.
async fn add_history(w: &Fixture, customers: &[String]) {
    for (k, c) in customers.iter().enumerate() {
        let mut bodies = Vec::new();
        for m in 0..12u64 {
            let due = day("2025-09-15") + chrono::Days::new(30 * m);
            let issued = due - chrono::Days::new(30);
            let id = format!("{c}-H{m:02}");
            let mut i = invoice(&id, c, &due.to_string(), "300.00");
            i["issue_date"] = json!(issued.to_string());
            bodies.push(i);
            let late = ((m as usize * 5 + k) % 20) as i64 - 5;
            let paid = due
                .checked_add_signed(chrono::Duration::days(late))
                .unwrap();
            bodies.push(payment(
                &format!("{id}-P"),
                &id,
                &paid.to_string(),
                "300.00",
            ));
        }
        let response = w.handle_events(sqs_event(&bodies)).await;
        assert_eq!(response["batchItemFailures"], json!([]));
    }
}

/// An item's size as DynamoDB counts it, about: names and values, lists
/// and maps (an action's trail) with their elements and 3 bytes each.
fn item_size(
    it: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    fn value(v: &V) -> usize {
        match v {
            V::S(s) => s.len(),
            V::N(n) => n.len(),
            V::L(l) => 3 + l.iter().map(|e| 1 + value(e)).sum::<usize>(),
            V::M(m) => 3 + m.iter().map(|(k, e)| 1 + k.len() + value(e)).sum::<usize>(),
            _ => 8,
        }
    }
    it.iter().map(|(name, v)| name.len() + value(v)).sum()
}

/// The data contract on AWS: an event or a CSV drop that leaves a field
/// out keeps the stored value (do-not-contact above all), and payments are
/// checked against their invoice, as locally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_updates_and_payment_checks_on_aws() {
    let w = world("contract").await;
    let mut quiet = w.customer("Q1");
    quiet["do_not_contact"] = json!(true);
    quiet["phone"] = json!("+1 555 0100");
    let mut disputed = invoice("QI1", "Q1", "2026-12-10", "100.00");
    disputed["disputed"] = json!(true);
    let response = w.handle_events(sqs_event(&[quiet, disputed])).await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");

    // The same customer and invoice without the flags: nothing is cleared.
    let mut renamed = w.customer("Q1");
    renamed["name"] = json!("Quiet Corporation");
    let mut moved = invoice("QI1", "Q1", "2026-12-12", "100.00");
    moved.as_object_mut().unwrap().remove("disputed");
    let response = w.handle_events(sqs_event(&[renamed, moved])).await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    assert!(w.dead_letters().await.is_empty());
    let book = w.dynamo.load_book(&["Q1".to_string()]).await.unwrap();
    let q1 = &book.customers["Q1"];
    assert_eq!(q1.name, "Quiet Corporation");
    assert!(
        q1.do_not_contact,
        "an event without the field never clears it"
    );
    assert_eq!(q1.phone.as_deref(), Some("+1 555 0100"));
    let qi1 = book
        .invoices
        .iter()
        .find(|i| i.invoice_id == "QI1")
        .unwrap();
    assert_eq!(qi1.due_date, day("2026-12-12"));
    assert!(qi1.disputed);

    // A CSV drop without the do_not_contact column keeps it too.
    let csv = format!("customer_id,name,email\nQ1,Quiet Corp,{}\n", w.email("Q1"));
    w.drop_file("drops/customers-partial.csv", csv).await;
    let book = w.dynamo.load_book(&["Q1".to_string()]).await.unwrap();
    assert_eq!(book.customers["Q1"].name, "Quiet Corp");
    assert!(book.customers["Q1"].do_not_contact);

    // Payments: 10,000 times the invoice and before its issue date are
    // refused with the reason; a good one applies.
    let response = w
        .handle_events(sqs_event(&[
            payment("QP1", "QI1", "2026-11-20", "1000000.00"),
            payment("QP2", "QI1", "2026-11-01", "10.00"),
            payment("QP3", "QI1", "2026-11-20", "10.00"),
        ]))
        .await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let dead = w.dead_letters().await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(
        dead.iter().any(|d| d.reason
            == "field `amount`: `1000000.00` is more than the whole amount 100.00 USD of invoice `QI1` (10000×)"),
        "{dead:?}"
    );
    assert!(
        dead.iter().any(|d| d.reason
            == "field `paid_on`: `2026-11-01` is before invoice `QI1` was issued on 2026-11-10"),
        "{dead:?}"
    );
    let book = w.dynamo.load_book(&["Q1".to_string()]).await.unwrap();
    let paid: Vec<&str> = book
        .payments
        .values()
        .flatten()
        .map(|p| p.payment_id.as_str())
        .collect();
    assert_eq!(paid, vec!["QP3"]);
}

/// An SES event as SNS delivers it for a bounce of `bounce_type`
/// (`Permanent`, `Transient`) of one recipient.
fn ses_bounce(message_id: &str, to: &str, bounce_type: &str, at: &str) -> Value {
    json!({
        "eventType": "Bounce",
        "mail": {"timestamp": at, "messageId": format!("ses-{message_id}"),
                 "tags": {"message_id": [message_id], "ses:configuration-set": ["mail"]}},
        "bounce": {"bounceType": bounce_type, "bounceSubType": "General", "timestamp": at,
                   "bouncedRecipients": [{"emailAddress": to, "action": "failed",
                       "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_bounce_holds_the_customer_a_transient_one_does_not() {
    let w = world("hold").await;
    let sweep_day = day("2026-12-07");
    let mut bodies = Vec::new();
    for c in ["C1", "C2"] {
        bodies.push(w.customer(c));
    }
    for (i, c) in ["C1", "C2"].iter().enumerate() {
        bodies.push(invoice(&format!("I{}", i + 1), c, "2026-12-10", "500.00"));
    }
    let response = w.handle_events(sqs_event(&bodies)).await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let svc = w.sweep_service().await;
    let response = sweep(&w, &svc, sweep_day).await;
    assert!(response.batch_item_failures.is_empty());
    let book = w.dynamo.load_book(&w.customers().await).await.unwrap();
    let sent_to = |customer: &str| -> String {
        book.actions
            .values()
            .flatten()
            .find(|a| a.customer_id == customer && a.status == ActionStatus::Sent)
            .and_then(|a| a.message_id.clone())
            .map(|m| m.to_string())
            .unwrap_or_else(|| panic!("nothing sent to {customer}"))
    };
    let (m1, m2) = (sent_to("C1"), sent_to("C2"));

    // A permanent bounce of C1's reminder holds C1's address, once.
    let hard = ses_bounce(&m1, &w.email("C1"), "Permanent", "2026-12-07T14:00:09.000Z");
    let applied = w.handle_events(sns(&hard)).await;
    assert!(
        applied
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["outcome"] == "contact_hold"
                && a["customer_id"] == "C1"
                && a["new"] == true),
        "{applied}"
    );
    let again = w.handle_events(sns(&hard)).await;
    assert!(
        again
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["outcome"] == "contact_hold" && a["new"] == false),
        "a re-delivered bounce holds once: {again}"
    );
    let holds = w.dynamo.contact_holds("C1").await.unwrap();
    assert_eq!(holds.len(), 1, "{holds:?}");
    assert!(holds[0].ended.is_none());
    assert!(
        holds[0]
            .describe()
            .contains("bounced permanently on 2026-12-07 (SES: smtp; 550 5.1.1 user unknown)"),
        "{holds:?}"
    );
    // The book the checks before sending read carries it.
    let c1 = Ledger::customer_book(&w.dynamo, "C1").await.unwrap();
    let customer = c1.customers.get("C1").unwrap();
    assert!(c1.contact_hold(customer).is_some());

    // A transient bounce of C2's reminder holds nothing.
    let soft = ses_bounce(&m2, &w.email("C2"), "Transient", "2026-12-07T14:00:09.000Z");
    let applied = w.handle_events(sns(&soft)).await;
    assert!(
        !applied
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["outcome"] == "contact_hold"),
        "{applied}"
    );
    assert!(w.dynamo.contact_holds("C2").await.unwrap().is_empty());
    assert!(w.dead_letters().await.is_empty());
}

/// ERP ordering on DynamoDB (issue 21, item 7): a record older
/// (`updated_at`) than the stored one never overwrites it — a conditional
/// write on the stored `updated_at` — whether it comes as an event or in a
/// CSV drop; a newer one does; one without `updated_at` is applied as it
/// comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_record_never_overwrites_a_newer_one_on_aws() {
    let w = world("ordering").await;
    let mut newer = w.customer("O1");
    newer["name"] = json!("Ordered AG");
    newer["updated_at"] = json!("2026-12-02T10:00:00Z");
    let mut inv_newer = invoice("OI1", "O1", "2026-12-10", "900.00");
    inv_newer["updated_at"] = json!("2026-12-02T10:00:00Z");
    let response = w.handle_events(sqs_event(&[newer, inv_newer])).await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");

    // The older versions arrive late: as events, then in a CSV drop.
    let mut older = w.customer("O1");
    older["name"] = json!("Ordered GmbH (old)");
    older["updated_at"] = json!("2026-12-01T10:00:00+01:00");
    let mut inv_older = invoice("OI1", "O1", "2026-12-10", "9000.00");
    inv_older["updated_at"] = json!("2026-11-30T10:00:00Z");
    let response = w.handle_events(sqs_event(&[older, inv_older])).await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let csv = format!(
        "customer_id,name,email,updated_at\nO1,Ordered Old CSV,{},2026-12-01T23:59:59Z\n",
        w.email("O1")
    );
    w.drop_file("drops/customers-old.csv", csv).await;
    assert!(w.dead_letters().await.is_empty());
    let book = w.dynamo.load_book(&["O1".to_string()]).await.unwrap();
    assert_eq!(book.customers["O1"].name, "Ordered AG");
    let oi1 = book
        .invoices
        .iter()
        .find(|i| i.invoice_id == "OI1")
        .unwrap();
    assert_eq!(oi1.amount.to_string(), "900.00");

    // A newer one wins; one without `updated_at` is applied as it comes.
    let mut newest = w.customer("O1");
    newest["name"] = json!("Ordered SE");
    newest["updated_at"] = json!("2026-12-03T00:00:00Z");
    let mut plain = invoice("OI1", "O1", "2026-12-10", "950.00");
    plain.as_object_mut().unwrap().remove("updated_at");
    let response = w.handle_events(sqs_event(&[newest, plain])).await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let book = w.dynamo.load_book(&["O1".to_string()]).await.unwrap();
    assert_eq!(book.customers["O1"].name, "Ordered SE");
    let oi1 = book
        .invoices
        .iter()
        .find(|i| i.invoice_id == "OI1")
        .unwrap();
    assert_eq!(oi1.amount.to_string(), "950.00");
}

/// Shadow mode on the local endpoint: the sweep records and renders, SES
/// gets nothing, and the day's report of what would have gone out is in
/// S3; switched off, the next runs never send what was recorded in shadow
/// mode (its steps count as passed over).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_sends_nothing_reports_to_s3_and_nothing_is_sent_later() {
    let w = world("shadow").await;
    let sweep_day = day("2026-12-07");
    let mut bodies = Vec::new();
    for c in ["S1", "S2", "S3"] {
        bodies.push(w.customer(c));
        bodies.push(invoice(&format!("{c}-INV"), c, "2026-12-10", "120.00"));
    }
    let response = w.handle_events(sqs_event(&bodies)).await;
    assert_eq!(response["batchItemFailures"], json!([]));
    let mut svc = w.sweep_service().await;
    svc.sending.shadow = true;
    let now: DateTime<Utc> = "2026-12-07T14:00:00Z".parse().unwrap();
    let mut shadowed = 0;
    let mut reports = Vec::new();
    for shard in 0..SHARDS {
        let job = ShardJob {
            day: sweep_day,
            shard,
        };
        let r = svc.run_shard(job, now).await.unwrap();
        assert!(r.sent.is_empty(), "{r:?}");
        shadowed += r.shadowed;
        let key = collect_aws::sweep::shadow_report_key(sweep_day, shard, 0);
        assert_eq!(
            r.shadow_report.as_deref(),
            Some(format!("s3://{}/{key}", w.names.bucket).as_str())
        );
        let body = w.artifacts.get(&key).await.unwrap().expect("the report");
        reports.push(serde_json::from_slice::<Value>(&body).unwrap());
    }
    assert_eq!(shadowed, 3);
    assert!(w.mail().is_empty(), "SES got mail in shadow mode");
    let listed: Vec<&Value> = reports
        .iter()
        .flat_map(|r| r["would_send"].as_array().unwrap())
        .collect();
    assert_eq!(listed.len(), 3, "{reports:?}");
    assert!(
        listed
            .iter()
            .all(|m| m["subject"].as_str().is_some_and(|s| !s.is_empty())
                && m["to"].as_str().is_some_and(|t| t.contains('@'))),
        "{listed:?}"
    );
    // Shadow mode off: the same day and the next send none of it.
    svc.sending.shadow = false;
    for on in [sweep_day, day("2026-12-08")] {
        for shard in 0..SHARDS {
            let r = svc
                .run_shard(ShardJob { day: on, shard }, now)
                .await
                .unwrap();
            assert!(r.sent.is_empty(), "{on} shard {shard}: {r:?}");
        }
    }
    assert!(w.mail().is_empty(), "{:?}", w.mail());
}

/// The coordinator's preflight against the local endpoint: the sender
/// identity (`GetEmailIdentity`), the bundle and the model are read for
/// real; the account is moto's missing `GetAccount`, given as a recorded
/// answer. An identity SES does not know stops the day: nothing enqueued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preflight_reads_the_identity_and_the_bundle_and_stops_a_day_that_cannot_send() {
    let w = world("preflight").await;
    let ready = Coordinator {
        queue: w.shard_queue.clone(),
        shards: SHARDS,
        virtual_shards: SHARDS,
        preflight: Some(w.preflight(&w.clients)),
    };
    let asked = |preflight| ScheduleInput {
        allow_future_day: false,
        shard: None,
        day: Some(day("2026-12-07")),
        scheduled_time: None,
        preflight,
    };
    let out = collect_sweep::coordinator(&ready, invoke(asked(true)))
        .await
        .unwrap();
    let report = out.preflight.unwrap();
    assert!(report.ready, "{report:#?}");
    assert_eq!(out.shards, 0, "asked for the preflight only");
    let checks: BTreeSet<&str> = report.findings.iter().map(|f| f.check).collect();
    for c in [
        "sender identity",
        "sandbox",
        "sending",
        "quota",
        "policy bundle",
        "risk model",
    ] {
        assert!(checks.contains(c), "{c} not checked: {report:#?}");
    }

    let mut wrong = w.preflight(&w.clients);
    wrong.identity = "not-verified.example".into();
    wrong.sender = "ar@not-verified.example".into();
    let blocked = Coordinator {
        queue: w.shard_queue.clone(),
        shards: SHARDS,
        virtual_shards: SHARDS,
        preflight: Some(wrong),
    };
    let err = collect_sweep::coordinator(&blocked, invoke(asked(false)))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SES has no identity `not-verified.example`"),
        "{err}"
    );
    assert!(err.contains("create-email-identity"), "{err}");
    assert!(
        w.shard_queue.receive().await.unwrap().is_empty(),
        "nothing enqueued"
    );
}
