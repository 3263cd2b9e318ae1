#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The Lambda functions against the local endpoint (moto): cold start of
//! each release binary up to its first handled event (bundle and model
//! loaded from S3, clients built), binary sizes, and sweep throughput.
//!
//! Run with `bash infra/bench.sh` (builds the release binaries first).
//! Cold start is measured with a minimal Lambda Runtime API served here:
//! `init` is the time from spawning the binary to its first
//! `GET /runtime/invocation/next`, `first event` to its response.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use collect_aws::queue::ShardJob;
use collect_aws::sweep::{SendSettings, SweepService};
use collect_aws::train::{ModelTrainer, PriorRateTrainer};
use collect_delivery::delivery::Sender;
use collect_e2e::Fixture;
use serde_json::json;

const SHARDS: u32 = 8;

fn release_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release")
}

/// Serves one invocation to a freshly spawned binary; returns (init, first
/// event answered, the error it answered with if any).
fn cold_start(
    binary: &Path,
    env: &[(&str, String)],
    event: &serde_json::Value,
) -> (Duration, Duration, Option<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let start = Instant::now();
    let mut child = Command::new(binary)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let body = event.to_string();
    let mut init = None;
    let mut done = None;
    let mut error = None;
    listener.set_nonblocking(false).unwrap();
    for stream in listener.incoming() {
        let mut stream = stream.unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            if h.trim().is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut content = vec![0u8; length];
        reader.read_exact(&mut content).unwrap();
        if request_line.contains("/invocation/next") {
            if init.is_some() {
                // Second poll: the first event was answered already.
                break;
            }
            init = Some(start.elapsed());
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 600_000;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-1\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\nLambda-Runtime-Trace-Id: Root=1-0-0\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        } else {
            if request_line.contains("/error") {
                error = Some(String::from_utf8_lossy(&content).into_owned());
            }
            done = Some(start.elapsed());
            write!(stream, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n").unwrap();
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    (init.unwrap(), done.unwrap(), error)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// The book of the benchmark, dropped as CSV exports and ingested by the
/// events service (BatchWriteItem).
async fn seed(fx: &Fixture, customers: usize) {
    let mut c = String::from("customer_id,name,email,timezone\n");
    let mut i = String::from("invoice_id,customer_id,number,issue_date,due_date,amount,currency\n");
    let mut p = String::from("payment_id,invoice_id,paid_on,amount\n");
    for n in 0..customers {
        c.push_str(&format!("B{n},Customer {n},b{n}@customer.example,UTC\n"));
        // History for training: two settled invoices, some paid late.
        for (k, due) in [(1, "2026-09-01"), (2, "2026-10-01")] {
            i.push_str(&format!(
                "BH{n}-{k},B{n},H{n}-{k},2026-08-01,{due},{}.00,USD\n",
                100 + n % 300
            ));
            let paid = if (n + k) % 3 == 0 {
                "2026-10-20"
            } else {
                "2026-08-20"
            };
            p.push_str(&format!(
                "BP{n}-{k},BH{n}-{k},{paid},{}.00\n",
                100 + n % 300
            ));
        }
        // The open invoice the sweep acts on.
        i.push_str(&format!(
            "BI{n},B{n},N{n},2026-11-10,2026-12-10,{}.00,USD\n",
            200 + n % 700
        ));
    }
    for (key, text) in [
        ("drops/customers.csv", c),
        ("drops/invoices.csv", i),
        ("drops/payments.csv", p),
    ] {
        // Split into chunks, each delivered through the events queue.
        let drop = fx.drop_file(key, text).await;
        assert!(drop.completed && drop.rejected == 0, "{drop:?}");
    }
}

#[tokio::main]
async fn main() {
    let fx = Fixture::new("bench", SHARDS).await;
    fx.publish_policy("bench-rev").await;
    let artifacts = &fx.artifacts;
    let model = PriorRateTrainer
        .train(&Default::default(), "2026-12-01".parse().unwrap())
        .unwrap();
    let pointer = artifacts.put_model("bench-1", model).await.unwrap();
    artifacts.promote_model(&pointer).await.unwrap();
    let customers: usize = std::env::var("BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(800);
    let t = Instant::now();
    seed(&fx, customers).await;
    let seeded = t.elapsed();

    // ---------------------------------------------------------- binaries
    println!("| binary | release size |");
    println!("|---|---|");
    for b in ["sweep", "events", "train"] {
        let p = release_dir().join(b);
        let size = std::fs::metadata(&p)
            .unwrap_or_else(|_| panic!("{} is missing: run infra/bench.sh", p.display()))
            .len();
        println!("| `{b}` | {:.1} MB |", size as f64 / 1_000_000.0);
    }

    let common = vec![
        ("AWS_ENDPOINT_URL", fx.moto.endpoint.clone()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("TABLE_NAME", fx.names.table.clone()),
        ("BUCKET_NAME", fx.names.bucket.clone()),
        ("SHARDS", SHARDS.to_string()),
    ];
    let with = |extra: &[(&'static str, String)]| {
        let mut v = common.clone();
        v.extend_from_slice(extra);
        v
    };
    let job = serde_json::to_string(&ShardJob {
        day: "2026-12-01".parse().unwrap(),
        shard: 0,
    })
    .unwrap();
    let sqs = json!({"Records": [{"messageId": "m1", "receiptHandle": "r", "body": job,
        "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs"}]});
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, String)>, serde_json::Value);
    let cases: Vec<Case> = vec![
        (
            "sweep (coordinator)",
            "sweep",
            with(&[
                ("SWEEP_ROLE", "coordinator".into()),
                ("SHARD_QUEUE_URL", fx.shard_queue_url.clone()),
            ]),
            json!({"day": "2026-12-01"}),
        ),
        (
            "sweep (worker: bundle + model + secret loaded, one shard swept)",
            "sweep",
            with(&[
                ("SWEEP_ROLE", "worker".into()),
                ("SENDER_ADDRESS", fx.names.sender.clone()),
                ("PAY_URL_PATTERN", "https://pay.example/{token}".into()),
                ("PAY_LINK_SECRET_ID", fx.names.secret.clone()),
                ("SES_CONFIGURATION_SET", fx.names.configuration_set.clone()),
            ]),
            sqs,
        ),
        (
            "events (one ERP event)",
            "events",
            with(&[("DEAD_LETTER_QUEUE_URL", fx.dead_letter_queue_url.clone())]),
            json!({"type": "dispute_opened", "date": "2026-12-01", "invoice_id": "BI1"}),
        ),
        (
            "train (whole history, evaluate, promote)",
            "train",
            with(&[]),
            json!({"day": "2026-12-20"}),
        ),
    ];
    let runs = 5;
    println!();
    println!("| function | init (median of {runs}) | first event handled (median) |");
    println!("|---|---|---|");
    for (label, bin, env, event) in &cases {
        let mut inits = Vec::new();
        let mut firsts = Vec::new();
        let mut errors = None;
        for _ in 0..runs {
            let (i, f, e) = cold_start(&release_dir().join(bin), env, event);
            inits.push(i);
            firsts.push(f);
            errors = errors.or(e);
        }
        let note = errors
            .map(|e| format!(" (answered with an error: {})", e.replace('|', "/")))
            .unwrap_or_default();
        println!(
            "| {label} | {} | {}{note} |",
            ms(median(inits)),
            ms(median(firsts))
        );
    }

    // ---------------------------------------------------------- throughput
    let stack = fx.send_settings();
    let send = SendSettings {
        sender: Sender {
            company: "Bench".into(),
            ..stack.sender
        },
        pay_url: "https://pay.example/{token}".into(),
        pay_link_secret: fx.names.secret.clone(),
        ..stack
    };
    let mut svc = SweepService::load(&fx.clients, &fx.settings(), &send, fx.scratch.path())
        .await
        .unwrap();
    // moto does not implement GetAccount: a recorded answer (no pacing to speak of).
    svc.sending.account =
        collect_aws::preflight::AccountSource::Fixed(collect_e2e::Fixture::ses_account());
    let day = "2026-12-07".parse().unwrap();
    let t = Instant::now();
    let mut sent = 0;
    let mut open = 0;
    for shard in 0..SHARDS {
        let r = svc
            .run_shard(ShardJob { day, shard }, chrono::Utc::now())
            .await
            .unwrap();
        sent += r.sent.len();
        open += r.open_invoices;
    }
    let swept = t.elapsed();
    let t = Instant::now();
    for shard in 0..SHARDS {
        svc.run_shard(ShardJob { day, shard }, chrono::Utc::now())
            .await
            .unwrap();
    }
    let rerun = t.elapsed();
    println!();
    println!("| sweep against the local endpoint | figure |");
    println!("|---|---|");
    println!(
        "| seeding {customers} customers + invoices (2 CSV drops, BatchWriteItem) | {} |",
        ms(seeded)
    );
    println!(
        "| sweep of {open} open invoices, {SHARDS} shards one after another, {sent} mails sent | {} ({:.0} invoices/s, {:.0} mails/s) |",
        ms(swept),
        open as f64 / swept.as_secs_f64(),
        sent as f64 / swept.as_secs_f64()
    );
    println!(
        "| re-run of the same day (nothing to record or send) | {} ({:.0} invoices/s) |",
        ms(rerun),
        open as f64 / rerun.as_secs_f64()
    );
}
