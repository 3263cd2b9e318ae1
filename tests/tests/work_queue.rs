#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The work queue on AWS, end to end on the local endpoint (moto): the
//! sweep records a legal letter awaiting approval and a call task in
//! DynamoDB; the queue function (`collect-queue`: collect-web's router on
//! the DynamoDB ledger and the S3 bundles) is called with API Gateway HTTP
//! API (payload 2.0) events carrying a JWT authorizer's claims in their
//! request context, as the Lambda receives them on `/api/…`; it lists the
//! tasks, an approver approves the letter (the trail records the email),
//! an auditor may not; the next sweep sends the letter through SES; the
//! audit export shows the trail with the approver's email.
//!
//! Also the benchmark's figure: the DynamoDB requests of one queue page
//! over N open tasks (the open-work index is one Query per shard and per
//! ~3,000 entries, the page's rows one BatchGetItem; never a scan),
//! printed and bounded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::http::{StatusCode, header};
use chrono::{DateTime, Utc};
use collect_aws::config::Clients;
use collect_aws::queue::ShardJob;
use collect_e2e::work_queue::{body, claims, csrf, event, links, queue_function};
use collect_e2e::{Fixture, day, invoice};
use serde_json::Value;

const CSRF_KEY: &[u8] = b"the-csrf-key-of-the-test-stack-0123456789";

const SHARDS: u32 = 2;

/// Sweeps every shard of `on` at 14:00 UTC as the worker does.
async fn sweep(w: &Fixture, on: &str) {
    let svc = w.sweep_service().await;
    let now: DateTime<Utc> = format!("{on}T14:00:00Z").parse().unwrap();
    for shard in 0..SHARDS {
        svc.run_shard(
            ShardJob {
                day: day(on),
                shard,
            },
            now,
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_function_lists_approves_and_the_next_sweep_sends_the_letter() {
    let w = Fixture::new("queue", SHARDS).await;
    w.publish_policy("queue-rev-1").await;
    // On Monday 2027-04-12: L1 is 35 days overdue (its ladder's legal
    // letter, which needs approval), K1 16 days (its ladder's call).
    w.seed(&[
        w.customer("L"),
        invoice("L1", "L", "2027-03-08", "900.00"),
        w.customer("K"),
        invoice("K1", "K", "2027-03-27", "400.00"),
    ])
    .await;
    sweep(&w, "2027-04-12").await;
    assert!(w.mail().is_empty(), "nothing is mailed before the approval");

    let q = queue_function(&w, &w.clients, CSRF_KEY.to_vec())
        .await
        .unwrap()
        .0;
    let ana = claims("Ana@Example.com", "approver");
    let audrey = claims("audrey@example.com", "auditor");

    // The queue lists both tasks.
    let r = q.handle(event("GET", "/api/", None, &ana)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = body(r).await;
    let tasks = links(&page, "/customers/");
    let tasks: Vec<&String> = tasks.iter().filter(|l| l.contains("/tasks/")).collect();
    assert_eq!(tasks.len(), 2, "{page}");
    assert!(
        page.contains("Customer L") && page.contains("Customer K"),
        "{page}"
    );
    let letter = tasks
        .iter()
        .find(|l| l.starts_with("/customers/L/"))
        .unwrap();
    assert!(tasks.iter().any(|l| l.starts_with("/customers/K/")));

    // The letter's page: its preview and the approval form.
    let r = q
        .handle(event("GET", &format!("/api{letter}"), None, &ana))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let task_page = body(r).await;
    assert!(task_page.contains("/approve"), "{task_page}");
    let token = csrf(&task_page);

    // An auditor may read it but not approve it.
    let r = q
        .handle(event("GET", &format!("/api{letter}"), None, &audrey))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let auditor_token = csrf(&body(r).await);
    let r = q
        .handle(event(
            "POST",
            &format!("/api{letter}/approve"),
            Some(&format!("csrf={auditor_token}")),
            &audrey,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "{}", body(r).await);
    // A form without the token is refused.
    let r = q
        .handle(event(
            "POST",
            &format!("/api{letter}/approve"),
            Some("csrf="),
            &ana,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The approver approves; the page says when it goes out.
    let r = q
        .handle(event(
            "POST",
            &format!("/api{letter}/approve"),
            Some(&format!("csrf={token}")),
            &ana,
        ))
        .await;
    let status = r.status();
    let location = r
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string());
    let said = body(r).await;
    let said = match (status, location) {
        (StatusCode::SEE_OTHER | StatusCode::FOUND, Some(to)) => {
            body(
                q.handle(event("GET", &format!("/api{to}"), None, &ana))
                    .await,
            )
            .await
        }
        _ => said,
    };
    assert!(
        said.contains("2027-04-13 06:00 UTC"),
        "the approval says when the letter goes out (the next scheduled sweep): {said}"
    );

    // The audit export shows the approval with the approver's email.
    let r = q
        .handle(event(
            "GET",
            "/api/audit.json?from=2027-04-01&through=2027-04-30",
            None,
            &audrey,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let audit: Value = serde_json::from_str(&body(r).await).unwrap();
    let text = audit.to_string();
    assert!(text.contains("ana@example.com"), "{audit:#}");
    assert!(text.contains("approved"), "{audit:#}");

    // The next sweep sends the letter through SES.
    sweep(&w, "2027-04-13").await;
    let mail = w.mail();
    let to_l: Vec<&(Vec<String>, String)> = mail
        .iter()
        .filter(|(to, _)| to.contains(&w.email("L")))
        .collect();
    assert_eq!(to_l.len(), 1, "{mail:?}");
    assert!(
        to_l[0].1.contains("application/pdf"),
        "the legal letter goes out with its PDF"
    );
}

/// DynamoDB requests, by operation, through an interceptor.
#[derive(Debug, Default, Clone)]
struct Meter {
    calls: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Meter {
    fn take(&self) -> BTreeMap<String, usize> {
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
        let op = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("?")
            .to_string();
        *self.calls.lock().unwrap().entry(op).or_default() += 1;
        Ok(())
    }
}

/// The DynamoDB requests of the queue's first page over N open call tasks
/// (BENCHMARKS.md): bounded by the index's pages, not by N.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_page_costs_a_bounded_number_of_dynamodb_requests() {
    let mut report = String::new();
    // QUEUE_BENCH_TASKS=20,200,2000 for the benchmark's larger figures.
    let sizes: Vec<usize> = std::env::var("QUEUE_BENCH_TASKS")
        .unwrap_or_else(|_| "20,200".into())
        .split(',')
        .map(|n| n.trim().parse().unwrap())
        .collect();
    for n in sizes {
        let w = Fixture::new("queue-meter", SHARDS).await;
        w.publish_policy("queue-rev-1").await;
        let mut events = Vec::new();
        for i in 0..n {
            let c = format!("M{i:04}");
            events.push(w.customer(&c));
            events.push(invoice(&format!("{c}-1"), &c, "2027-03-27", "400.00"));
        }
        w.seed(&events).await;
        sweep(&w, "2027-04-12").await;
        let meter = Meter::default();
        let conf = aws_sdk_dynamodb::config::Builder::from(&w.moto.sdk_config().await)
            .interceptor(meter.clone())
            .build();
        let clients = Clients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(conf),
            ..w.clients.clone()
        };
        let q = queue_function(&w, &clients, CSRF_KEY.to_vec())
            .await
            .unwrap()
            .0;
        meter.take();
        let ana = claims("ana@example.com", "collector");
        let r = q.handle(event("GET", "/api/", None, &ana)).await;
        assert_eq!(r.status(), StatusCode::OK);
        let page = body(r).await;
        let rows = links(&page, "/customers/")
            .iter()
            .filter(|l| l.contains("/tasks/"))
            .count();
        let calls = meter.take();
        let total: usize = calls.values().sum();
        report.push_str(&format!(
            "{n} open tasks: first page {rows} rows, {total} DynamoDB requests {calls:?}\n"
        ));
        assert!(rows > 0 && rows <= n, "{page}");
        assert_eq!(calls.get("Scan"), None, "{report}");
        // The index: one Query per shard (a page of ~3,000 entries each);
        // the page's rows: BatchGetItem, 100 keys a request. Not N.
        let bound = SHARDS as usize * (1 + n / 3000) + rows.div_ceil(100);
        assert!(total <= bound, "{report}");
    }
    println!("{report}");
}
