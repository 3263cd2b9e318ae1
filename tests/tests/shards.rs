#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! A day's sweep at any size, end to end on the local AWS endpoint
//! (README, "Ten million on AWS"):
//! - **continuations**: a job whose invocation nears its time limit stops
//!   after a whole virtual shard and enqueues its rest on the shard queue;
//!   the continuations, one invocation each, end with what one run would
//!   have produced: the same customers mailed, once each;
//! - **re-sharding**: the stack's `Shards` changes from 4 to 3 between two
//!   days, and every customer is swept by exactly one job each day; a
//!   table keyed for 4 virtual shards (a stack of an earlier release) is
//!   re-indexed to 16, resumably, and swept by 3 jobs;
//! - **bounded training**: a run with a sample cap reads that many
//!   customers' histories, whatever the table holds.

use std::collections::{BTreeMap, BTreeSet};

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{DateTime, Utc};
use collect_aws::dynamo::Dynamo;
use collect_aws::keys::shard_of;
use collect_aws::queue::{Queue, SweepJob};
use collect_aws::reshard;
use collect_aws::sweep::SweepService;
use collect_aws::train::{PriorRateTrainer, Sample};
use collect_e2e::{Fixture, day, invoice, invoke, sqs_event};
use collect_sweep::{Continuations, Coordinator, ScheduleInput};
use serde_json::{Value, json};

/// Receives every message waiting in `queue` (and deletes it).
async fn drain(queue: &Queue) -> Vec<SweepJob> {
    let mut jobs = Vec::new();
    for _ in 0..20 {
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
            jobs.push(serde_json::from_str(m.body.as_deref().unwrap()).unwrap());
        }
    }
    jobs
}

/// Customers `<prefix>1..=n`, each with one invoice due 2026-12-10 (a
/// reminder goes out on 2026-12-07).
async fn seed(w: &Fixture, prefix: &str, n: usize) -> Vec<String> {
    let customers: Vec<String> = (1..=n).map(|k| format!("{prefix}{k}")).collect();
    let mut events = Vec::new();
    for c in &customers {
        events.push(w.customer(c));
        events.push(invoice(&format!("{c}-INV"), c, "2026-12-10", "240.00"));
    }
    w.seed(&events).await;
    customers
}

/// How many mails each customer got.
fn mails_per_customer(w: &Fixture, customers: &[String]) -> BTreeMap<String, usize> {
    let mail = w.mail();
    customers
        .iter()
        .map(|c| {
            let address = w.email(c);
            let n = mail
                .iter()
                .filter(|(to, _)| to.iter().any(|t| t.eq_ignore_ascii_case(&address)))
                .count();
            (c.clone(), n)
        })
        .collect()
}

/// The worker, with continuations on the stack's shard queue, given one
/// record `job` and a Lambda deadline `deadline_ms` (epoch milliseconds).
async fn invoke_worker(
    svc: &SweepService,
    continuations: &Continuations,
    job: &SweepJob,
    deadline_ms: u64,
) {
    let body = Value::from(serde_json::to_string(job).unwrap());
    let event: SqsEvent = serde_json::from_value(sqs_event(&[body])).unwrap();
    let mut event = invoke(event);
    event.context.deadline = deadline_ms;
    let response = collect_sweep::worker_continuing(svc, Some(continuations), event)
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_with_a_tiny_deadline_continues_until_done_as_one_run_would() {
    const VIRTUAL: u32 = 8;
    let far =
        u64::try_from((Utc::now() + chrono::Duration::minutes(15)).timestamp_millis()).unwrap();
    // What one run produces: the same book on another stack, swept by one
    // invocation with all the time it needs (the policy's experiment holds
    // some customers out: not everyone is mailed).
    let one = Fixture::new("one-run", VIRTUAL).await;
    one.publish_policy("shards-rev-1").await;
    let customers = seed(&one, "K", 12).await;
    let one_svc = one.sweep_service().await;
    let one_queue = Continuations::on(one.shard_queue.clone());
    let whole = SweepJob::new(day("2026-12-07"), 0, 0..VIRTUAL);
    invoke_worker(&one_svc, &one_queue, &whole, far).await;
    assert!(drain(&one.shard_queue).await.is_empty(), "no continuation");
    let expected = mails_per_customer(&one, &customers);
    assert!(expected.values().any(|n| *n == 1), "{expected:?}");

    let w = Fixture::new("continue", VIRTUAL).await;
    w.publish_policy("shards-rev-1").await;
    seed(&w, "K", 12).await;
    let svc = w.sweep_service().await;
    let continuations = Continuations::on(w.shard_queue.clone());
    // The whole day as one job over every virtual shard, on a Lambda whose
    // deadline has passed: one virtual shard per invocation.
    let mut job = SweepJob::new(day("2026-12-07"), 0, 0..VIRTUAL);
    let mut invocations = 0;
    loop {
        invocations += 1;
        invoke_worker(&svc, &continuations, &job, 1).await;
        let mut queued = drain(&w.shard_queue).await;
        assert!(queued.len() <= 1, "{queued:?}");
        let Some(next) = queued.pop() else { break };
        assert_eq!(next.remaining(), invocations..VIRTUAL, "{next:?}");
        assert_eq!(next.continuation, invocations);
        // The customers of the virtual shards done so far are mailed; the
        // rest not yet.
        let mailed = mails_per_customer(&w, &customers);
        for (c, n) in &mailed {
            let done = shard_of(c, VIRTUAL) < invocations;
            let owed = if done { expected[c] } else { 0 };
            assert_eq!(*n, owed, "{c} after {invocations} invocations");
        }
        job = next;
        assert!(invocations <= VIRTUAL, "the job never ends");
    }
    assert_eq!(invocations, VIRTUAL);
    // What one run produces: the same customers mailed, once each.
    assert_eq!(mails_per_customer(&w, &customers), expected);
    // The same job again, with all the time it needs (SQS delivered it
    // twice): one invocation, nothing sent twice.
    invoke_worker(&svc, &continuations, &whole, far).await;
    assert!(drain(&w.shard_queue).await.is_empty());
    assert_eq!(mails_per_customer(&w, &customers), expected);
}

/// Runs the coordinator for `on` with `shards` jobs over the fixture's
/// virtual shards, then each job it queued through `run_job`; returns
/// each job's range and the customers its run loaded.
async fn day_of_jobs(
    w: &Fixture,
    svc: &SweepService,
    virtual_shards: u32,
    shards: u32,
    on: &str,
) -> Vec<(std::ops::Range<u32>, usize)> {
    let coordinator = Coordinator {
        queue: w.shard_queue.clone(),
        shards,
        virtual_shards,
        preflight: None,
    };
    // A day after tomorrow by the clock is refused unless the event says so.
    let input: ScheduleInput =
        serde_json::from_value(json!({ "day": on, "allow_future_day": true })).unwrap();
    let out = collect_sweep::coordinator(&coordinator, invoke(input))
        .await
        .unwrap();
    assert_eq!(out.shards, shards as usize);
    let jobs = drain(&w.shard_queue).await;
    assert_eq!(jobs.len(), shards as usize);
    let now: DateTime<Utc> = format!("{on}T14:00:00Z").parse().unwrap();
    let mut out = Vec::new();
    for job in jobs {
        let clock = move || now;
        let r = svc
            .run_job(
                job,
                &clock,
                collect_delivery::ledger::LeaseHolder::this_process(now),
                None,
            )
            .await
            .unwrap();
        assert!(r.done());
        out.push((job.range(), r.customers));
    }
    out.sort_by_key(|(r, _)| r.start);
    out
}

/// Every customer in exactly one job: the jobs' ranges cover the virtual
/// shards once, and each job loaded the customers of its range.
fn each_customer_once(
    jobs: &[(std::ops::Range<u32>, usize)],
    customers: &[String],
    virtual_shards: u32,
) {
    let mut covered = BTreeSet::new();
    for (range, loaded) in jobs {
        for v in range.clone() {
            assert!(covered.insert(v), "virtual shard {v} in two jobs: {jobs:?}");
        }
        let expected = customers
            .iter()
            .filter(|c| range.contains(&shard_of(c, virtual_shards)))
            .count();
        assert_eq!(*loaded, expected, "job {range:?}");
    }
    assert_eq!(covered.len(), virtual_shards as usize);
    let total: usize = jobs.iter().map(|(_, n)| n).sum();
    assert_eq!(total, customers.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_jobs_then_three_sweep_every_customer_once_a_day() {
    const VIRTUAL: u32 = 16;
    let w = Fixture::new("reshard", VIRTUAL).await;
    w.publish_policy("shards-rev-1").await;
    let customers = seed(&w, "R", 20).await;
    let svc = w.sweep_service().await;
    let first = day_of_jobs(&w, &svc, VIRTUAL, 4, "2026-12-07").await;
    each_customer_once(&first, &customers, VIRTUAL);
    // Mailed at most once (the policy's experiment holds some out).
    let mailed = mails_per_customer(&w, &customers);
    assert!(mailed.values().all(|n| *n <= 1), "{mailed:?}");
    assert!(mailed.values().any(|n| *n == 1), "{mailed:?}");
    // `Shards` is now 3: no item moves, the next day's three jobs still
    // load every customer once, and nobody is mailed twice.
    let next = day_of_jobs(&w, &svc, VIRTUAL, 3, "2026-12-08").await;
    assert_eq!(next.len(), 3);
    each_customer_once(&next, &customers, VIRTUAL);
    assert_eq!(mails_per_customer(&w, &customers), mailed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_of_an_earlier_release_is_reindexed_resumably_and_swept_by_any_jobs() {
    // The stack of an earlier release: `Shards` = 4 was the index layout.
    const OLD: u32 = 4;
    const NEW: u32 = 16;
    let mut w = Fixture::new("reindex", OLD).await;
    w.publish_policy("shards-rev-1").await;
    let customers = seed(&w, "X", 14).await;
    let svc = w.sweep_service().await;
    let first = day_of_jobs(&w, &svc, OLD, OLD, "2026-12-07").await;
    each_customer_once(&first, &customers, OLD);
    let mailed = mails_per_customer(&w, &customers);
    assert!(mailed.values().all(|n| *n <= 1), "{mailed:?}");

    // Re-index to 16 virtual shards, a few items a page, stopping after
    // each page and going on from its cursor (as a run stopped anywhere).
    let table = Dynamo::new(w.clients.dynamodb.clone(), w.dynamo.table(), NEW);
    let mut cursor: Option<String> = None;
    let mut total = reshard::ReindexPage::default();
    let mut pages = 0;
    loop {
        let page = reshard::reindex_page(&table, NEW, None, cursor.as_deref(), 7)
            .await
            .unwrap();
        pages += 1;
        total.scanned += page.scanned;
        total.rewritten += page.rewritten;
        total.unchanged += page.unchanged;
        total.skipped.extend(page.skipped);
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
        assert!(pages < 1000);
    }
    assert!(pages > 1, "several pages");
    assert!(total.skipped.is_empty(), "{:?}", total.skipped);
    // Customers and open invoices at least; those whose new virtual shard
    // is their old one (about a quarter) are not written.
    assert!(total.scanned >= 2 * customers.len(), "{total:?}");
    assert!(total.rewritten > 0 && total.unchanged > 0, "{total:?}");
    // Once done, a run from the start rewrites nothing.
    let again = reshard::reindex(&table, NEW, None, None, |_| {})
        .await
        .unwrap();
    assert_eq!(again.rewritten, 0, "{again:?}");
    assert_eq!(again.scanned, total.scanned);
    // A cursor that is not one fails with what to do.
    let err = reshard::reindex_page(&table, NEW, None, Some("page 2"), 7)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("re-index cursor"), "{err}");

    // The stack now runs with 16 virtual shards and 3 jobs: every
    // customer is found once, and the day's re-run sends nothing twice.
    w.shards = NEW;
    let svc = w.sweep_service().await;
    let rerun = day_of_jobs(&w, &svc, NEW, 3, "2026-12-07").await;
    each_customer_once(&rerun, &customers, NEW);
    let next = day_of_jobs(&w, &svc, NEW, 3, "2026-12-08").await;
    each_customer_once(&next, &customers, NEW);
    assert_eq!(mails_per_customer(&w, &customers), mailed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_with_a_sample_cap_reads_that_many_customers() {
    const VIRTUAL: u32 = 8;
    let w = Fixture::new("train-sample", VIRTUAL).await;
    let customers = seed(&w, "T", 12).await;
    let svc = collect_train::TrainService {
        dynamo: w.dynamo.clone(),
        artifacts: w.artifacts.clone(),
        trainer: Box::new(PriorRateTrainer),
        window_days: 56,
        sample: Sample {
            max_customers: 5,
            ..Sample::default()
        },
    };
    let input = collect_train::TrainInput {
        day: Some(day("2026-12-20")),
        scheduled_time: None,
    };
    let report = collect_train::handler(&svc, invoke(input)).await.unwrap();
    assert_eq!(report.customers_seen, customers.len());
    assert_eq!(report.customers, 5);
    assert_eq!(report.invoices, 5, "one invoice each: {report:?}");
    // Without a cap smaller than the book: every customer.
    let all = collect_train::TrainService {
        sample: Sample::default(),
        ..svc
    };
    let input = collect_train::TrainInput {
        day: Some(day("2026-12-20")),
        scheduled_time: None,
    };
    let report = collect_train::handler(&all, invoke(input)).await.unwrap();
    assert_eq!(report.customers, customers.len());
    assert_eq!(report.invoices, customers.len());
}
