#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `collect tasks`, `collect explain` and `collect audit` against a
//! deployed stack, end to end on the local AWS endpoint (moto server,
//! started by `collect_e2e`): the sweep Lambda's service writes a legal
//! letter awaiting approval into DynamoDB; the `collect` binary, pointed at
//! the stack's table and bucket with `AWS_ENDPOINT_URL` and the default
//! credentials chain, lists it, approves it as a person's email, explains
//! and audits it; the next sweep sends it. On a server that enforces IAM,
//! an auditor's read-only credentials list and audit, and an approval is
//! refused with AWS's words.
//!
//! (Here rather than in `tests/tests/`: this package's tests are the ones
//! the `collect` binary is built for.)

use chrono::{NaiveDate, TimeZone, Utc};
use collect_aws::queue::ShardJob;
use collect_e2e::{AccessKey, Fixture, Moto, day};
use serde_json::Value;
use std::process::{Command, Output};

const SHARDS: u32 = 4;
/// Invoices due on a Tuesday, a month before the standard policy's
/// `effective 2026-12-01`: the legal letter (due + 30 days) is on Thursday
/// 2026-12-03, the first sweeps in effect the days before.
const DUE: &str = "2026-11-03";
const LETTER_DAY: &str = "2026-12-03";

/// `collect ARGS --table … --bucket … --shards 4` with the endpoint and
/// credentials of `key` (the shared server's test keys when `None`).
fn collect(w: &Fixture, endpoint: &str, key: Option<&AccessKey>, args: &[&str]) -> Output {
    let (id, secret) = key.map_or(("testing", "testing"), |k| {
        (k.id.as_str(), k.secret.as_str())
    });
    Command::new(env!("CARGO_BIN_EXE_collect"))
        .args(args)
        .args([
            "--table",
            &w.names.table,
            "--bucket",
            &w.names.bucket,
            "--shards",
            &SHARDS.to_string(),
        ])
        .current_dir(std::env::temp_dir())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", "us-east-1")
        .env("NO_COLOR", "1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("COLLECT_HOME")
        .env_remove("COLLECT_TABLE")
        .env_remove("COLLECT_BUCKET")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ERP's `invoice_upserted` of an invoice issued 30 days before [`DUE`].
fn invoice(id: &str, customer: &str, amount: &str) -> Value {
    serde_json::json!({"type": "invoice_upserted", "invoice_id": id, "customer_id": customer,
        "number": format!("N-{id}"), "issue_date": "2026-10-04", "due_date": DUE,
        "amount": amount, "currency": "USD", "disputed": false})
}

/// Sweeps every shard of the stack for `on`, as the workers do.
async fn sweep(w: &Fixture, on: NaiveDate) {
    let svc = w.sweep_service().await;
    let now = Utc.from_utc_datetime(&on.and_hms_opt(14, 0, 0).unwrap());
    for shard in 0..SHARDS {
        svc.run_shard(ShardJob { day: on, shard }, now)
            .await
            .unwrap_or_else(|e| panic!("sweep of shard {shard} on {on}: {e}"));
    }
}

/// A stack with two customers' invoices swept to the day of the legal
/// letter: two letters await approval, two calls are planned.
async fn swept(w: &Fixture) {
    w.publish_policy("cli-rev-1").await;
    w.seed(&[
        w.customer("C1"),
        w.customer("C2"),
        invoice("I1", "C1", "1200.00"),
        invoice("I2", "C2", "800.00"),
    ])
    .await;
    for d in ["2026-12-01", LETTER_DAY] {
        sweep(w, day(d)).await;
    }
}

/// The letters awaiting approval the queue lists, `(task id, customer)`.
fn letters(queue: &Value) -> Vec<(String, String)> {
    queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "approval")
        .map(|r| {
            (
                r["task_id"].as_str().unwrap().to_string(),
                r["customer_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_explain_and_audit_work_on_the_stack() {
    let w = Fixture::new("cli", SHARDS).await;
    let endpoint = w.moto.endpoint.clone();
    swept(&w).await;
    let run = |args: &[&str]| collect(&w, &endpoint, None, args);

    // The queue, read through the port from DynamoDB's index of open work.
    let queue: Value = serde_json::from_str(&ok(run(&[
        "tasks", "list", "--date", LETTER_DAY, "--format", "json",
    ])))
    .unwrap();
    let letters = letters(&queue);
    assert_eq!(
        letters.len(),
        2,
        "{queue:#}\n{}",
        text(&run(&["audit", "--format", "csv"]))
    );
    let human = ok(run(&["tasks", "--date", LETTER_DAY]));
    assert!(
        human.contains("letter legal-notice") && human.contains("1,200.00 USD"),
        "{human}"
    );
    assert!(human.contains("by queue: approvals 2"), "{human}");
    let (id, customer) = letters.iter().find(|(_, c)| c == "C1").unwrap().clone();

    // One task: its facts from the customer's partition.
    let shown = ok(run(&["tasks", "show", &id, "--date", LETTER_DAY]));
    assert!(
        shown.contains("Customer C1") && shown.contains("amount 1,200.00 USD"),
        "{shown}"
    );

    // Approved as the person's email: said when it goes out.
    let said = ok(run(&[
        "tasks",
        "approve",
        &id,
        "--by",
        "ana@example.com",
        "--role",
        "approver",
        "--date",
        LETTER_DAY,
    ]));
    assert!(
        said.contains(&format!("approved by ana@example.com on {LETTER_DAY}; goes out with the stack's next scheduled sweep")),
        "{said}"
    );
    // Rejecting the other one needs a reason; with it, it is recorded.
    let (other, _) = letters.iter().find(|(_, c)| c == "C2").unwrap().clone();
    let said = ok(run(&[
        "tasks",
        "reject",
        &other,
        "--by",
        "ana@example.com",
        "--reason",
        "paid by cheque",
        "--date",
        LETTER_DAY,
    ]));
    assert!(said.contains("rejected by ana@example.com"), "{said}");

    // The explanation, replayed with the bundle revision kept in the bucket.
    let explained = ok(run(&["explain", "I1"]));
    assert!(explained.contains("legal-notice"), "{explained}");
    let explained = ok(run(&["explain", &id, "--customer", &customer]));
    assert!(
        explained.starts_with(&format!("Action {id} of invoice I1")),
        "{explained}"
    );
    let needs = run(&["explain", &id]);
    assert!(
        !needs.status.success() && text(&needs).contains("--customer C"),
        "{}",
        text(&needs)
    );

    // The next sweep sends the approved letter; the audit shows the trail.
    sweep(&w, day("2026-12-04")).await;
    let audit: Value = serde_json::from_str(&ok(run(&["audit", "--customer", "C1"]))).unwrap();
    let letter = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action_id"] == id.as_str())
        .unwrap_or_else(|| panic!("{audit:#}"));
    assert_eq!(letter["approved_by"], "ana@example.com", "{letter:#}");
    assert_eq!(letter["status"], "sent", "{letter:#}");
    let trail: Vec<(&str, Option<&str>)> = letter["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["status"].as_str().unwrap(), e["by"].as_str()))
        .collect();
    assert!(
        trail.contains(&("approved", Some("ana@example.com"))),
        "{trail:?}"
    );
    let csv = ok(run(&["audit", "--format", "csv"]));
    assert!(csv.contains("paid by cheque"), "{csv}");
}

/// The policy of a read-only auditor: the table's reads and the bucket's
/// objects, nothing written.
const AUDITOR: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"], "Resource": "*"},
  {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}
]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_with_read_only_credentials_reads_and_cannot_act() {
    let (server, admin) = Moto::start_enforcing_iam().unwrap();
    let server: &'static Moto = Box::leak(Box::new(server));
    let config = server.sdk_config_as(&admin).await;
    let w = Fixture::on(server, &config, "cli-iam", SHARDS).await;
    swept(&w).await;
    let auditor = server.create_user(&admin, "audrey", AUDITOR).unwrap();
    let run = |args: &[&str]| collect(&w, &server.endpoint, Some(&auditor), args);

    let queue: Value = serde_json::from_str(&ok(run(&[
        "tasks", "--date", LETTER_DAY, "--format", "json", "--role", "auditor",
    ])))
    .unwrap();
    let (id, _) = letters(&queue).into_iter().next().unwrap();
    let audit: Value = serde_json::from_str(&ok(run(&["audit"]))).unwrap();
    assert!(!audit.as_array().unwrap().is_empty(), "{audit:#}");

    // Acting is AWS's to refuse: said in plain words, nothing changed.
    let refused = run(&[
        "tasks",
        "approve",
        &id,
        "--by",
        "audrey@example.com",
        "--date",
        LETTER_DAY,
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    let said = String::from_utf8_lossy(&refused.stderr);
    // (moto answers the refusal as a bare HTTP 403; AWS names
    // AccessDeniedException and the action.)
    assert!(
        said.contains("DynamoDB UpdateItem") && said.contains("403"),
        "{said}"
    );
    assert!(
        said.contains("help: AWS refused the call") && said.contains("read-only"),
        "{said}"
    );
    let again: Value = serde_json::from_str(&ok(run(&[
        "tasks", "--date", LETTER_DAY, "--format", "json",
    ])))
    .unwrap();
    assert!(letters(&again).iter().any(|(t, _)| *t == id), "{again:#}");
    // And the desk refuses an auditor's act before AWS is asked.
    let role = run(&[
        "tasks",
        "approve",
        &id,
        "--by",
        "audrey@example.com",
        "--role",
        "auditor",
        "--date",
        LETTER_DAY,
    ]);
    assert!(text(&role).contains("may not approve"), "{}", text(&role));
}
