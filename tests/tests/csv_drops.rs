#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! CSV drops in chunks, end to end on the local AWS endpoint: the S3
//! notification splits a drop of a few thousand rows into many chunk
//! messages on the events queue, and each chunk is delivered to the events
//! function through SQS, as Lambda's event source mapping does.
//!
//! - every valid record lands once; an older record (by `updated_at`) does
//!   not overwrite the stored one; rows with a quoted line break are read
//!   whole, wherever the chunks are cut;
//! - refused rows, spread over several chunks, are dead letters and
//!   rejects files naming the file's real line numbers;
//! - a chunk that keeps failing (the table unreachable) is given up alone,
//!   to the dead-letter queue, while the others land; once redriven it
//!   lands and the drop completes;
//! - a chunk delivered twice changes nothing.
//!
//! It prints what BENCHMARKS.md quotes ("AWS: a 1,000,000-row CSV drop"):
//! time per chunk and DynamoDB requests per row on the local endpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use collect_aws::drops::ChunkSettings;
use collect_aws::dynamo::Dynamo;
use collect_aws::events::EventsService;
use collect_e2e::{Fixture, invoice, invoke};
use serde_json::{Value, json};

const SHARDS: u32 = 4;
const CUSTOMERS: usize = 120;
const ROWS: usize = 3000;
const KEY: &str = "drops/invoices-2026-12-07.csv";

/// Counts the DynamoDB requests a client makes, by operation.
#[derive(Debug, Default, Clone)]
struct Meter {
    calls: std::sync::Arc<std::sync::Mutex<BTreeMap<String, usize>>>,
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

/// The invoices export and what ingest must make of it: the ids that land
/// and the lines that are refused.
struct Export {
    csv: String,
    valid: BTreeSet<String>,
    refused_lines: BTreeSet<u64>,
}

fn invoices_export() -> Export {
    let mut csv = String::from(
        "invoice_id,customer_id,number,issue_date,due_date,amount,currency,updated_at\n",
    );
    let mut line = 2u64;
    let mut valid = BTreeSet::new();
    let mut refused_lines = BTreeSet::new();
    for i in 0..ROWS {
        let mut id = format!("I{i:05}");
        let mut customer = format!("C{:04}", i % CUSTOMERS);
        let mut number = format!("N-{i}");
        let mut amount = format!("{}.{:02}", 100 + i % 900, i % 100);
        let mut updated_at = String::new();
        let mut good = true;
        if i % 350 == 17 {
            // A bad amount (quoted: it has a comma).
            amount = "\"12,5k\"".into();
            good = false;
        } else if i % 400 == 123 {
            // A quoted value over two lines: refused (a line break in an
            // invoice number), and the row after it is on the line after.
            number = format!("\"N-{i}\nsecond line\"");
            good = false;
        } else if i == 1234 {
            customer = "NOBODY".into();
            good = false;
        } else if i == 2500 {
            // The id of a row of an early chunk: refused, as in one file.
            id = "I00010".into();
            amount = "999.99".into();
            good = false;
        } else if i == 5 {
            // Older than the stored record (below): not written.
            updated_at = "2026-12-01T00:00:00Z".into();
        } else if i % 100 == 50 {
            updated_at = "2026-12-02T00:00:00Z".into();
        }
        if good {
            valid.insert(id.clone());
        } else {
            refused_lines.insert(line);
        }
        let row =
            format!("{id},{customer},{number},2026-11-01,2026-12-01,{amount},USD,{updated_at}\n");
        line += row.matches('\n').count() as u64;
        csv.push_str(&row);
    }
    Export {
        csv,
        valid,
        refused_lines,
    }
}

/// `s3://bucket/key:LINE` → LINE.
fn line_of(source: &str) -> u64 {
    source.rsplit(':').next().unwrap().parse().unwrap()
}

/// Receives (and deletes) every message waiting in the events queue.
async fn take_events_queue(w: &Fixture) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let out = w
            .clients
            .sqs
            .receive_message()
            .queue_url(&w.events_queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        for m in messages {
            bodies.push(m.body.unwrap());
            w.clients
                .sqs
                .delete_message()
                .queue_url(&w.events_queue_url)
                .receipt_handle(m.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

/// Delivers bodies to the handler as one SQS batch, each on its
/// `receives`-th receive; returns the handler's answer.
async fn deliver(svc: &EventsService, bodies: &[&String], receives: u32) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            json!({"messageId": format!("chunk-{i}"), "receiptHandle": "rh", "body": b,
                "attributes": {"ApproximateReceiveCount": receives.to_string()},
                "messageAttributes": {}, "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:events",
                "awsRegion": "us-east-1"})
        })
        .collect();
    collect_events::handler(svc, invoke(json!({ "Records": records })))
        .await
        .unwrap()
}

/// Every invoice stored for the export's customers, by id, with how many
/// times each id is there.
async fn stored_invoices(w: &Fixture) -> BTreeMap<String, (usize, String)> {
    let ids: Vec<String> = (0..CUSTOMERS).map(|c| format!("C{c:04}")).collect();
    let book = w.dynamo.load_book(&ids).await.unwrap();
    let mut out: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for i in &book.invoices {
        let e = out.entry(i.invoice_id.clone()).or_default();
        e.0 += 1;
        e.1 = format!("{}/{}/{}", i.customer_id, i.amount, i.number);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_of_thousands_of_rows_lands_in_chunks_once_with_its_real_lines() {
    let mut w = Fixture::new("drops", SHARDS).await;
    w.events.chunks = ChunkSettings {
        bytes: 4096,
        rows: 1_000_000,
    };

    // The customers, by a drop of their own (one bad address on line 7).
    let mut customers = String::from("customer_id,name,email\n");
    for c in 0..CUSTOMERS {
        customers.push_str(&format!(
            "C{c:04},Customer {c},{}\n",
            w.email(&format!("C{c:04}"))
        ));
        if c == 4 {
            customers.push_str("CBAD,Bad Address,not-an-address\n");
        }
    }
    let report = w
        .drop_file("drops/customers-2026-12-07.csv", customers)
        .await;
    assert!(report.completed, "{report:?}");
    assert!(report.chunks > 1, "{report:?}");
    assert_eq!(
        (report.applied, report.rejected),
        (CUSTOMERS, 1),
        "{report:?}"
    );
    let dead = w.dead_letters().await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0].source.ends_with("customers-2026-12-07.csv:7"),
        "{dead:?}"
    );
    assert!(dead[0].reason.contains("column `email`"), "{dead:?}");

    // A newer version of one invoice is stored already.
    let mut newer = invoice("I00005", "C0005", "2026-12-01", "777.00");
    newer["updated_at"] = json!("2026-12-05T00:00:00Z");
    w.seed(&[newer]).await;

    // The split: one message per chunk on the events queue.
    let export = invoices_export();
    w.put_drop(KEY, export.csv.clone()).await;
    let split = w.handle_events(w.object_created(KEY)).await;
    assert_eq!(split[0]["outcome"], "split", "{split}");
    let chunks = split[0]["chunks"].as_u64().unwrap() as usize;
    let drop = split[0]["drop"].as_str().unwrap().to_string();
    assert!(
        chunks >= 30,
        "a small chunk size gives many chunks: {split}"
    );
    let bodies = take_events_queue(&w).await;
    assert_eq!(bodies.len(), chunks);
    let chunk_of = |n: u64| {
        bodies
            .iter()
            .find(|b| serde_json::from_str::<Value>(b).unwrap()["chunk"] == n)
            .unwrap()
    };

    // Chunk 3 meets an outage on each of its attempts: at its last one it
    // is given up, alone, to the dead-letter queue.
    let broken = EventsService {
        dynamo: Dynamo::new(w.dynamo.client().clone(), "no-such-table", SHARDS),
        ..w.events.clone()
    };
    let response = deliver(&broken, &[chunk_of(3)], 1).await;
    assert_eq!(
        response["batchItemFailures"][0]["itemIdentifier"],
        "chunk-0"
    );
    let response = deliver(&broken, &[chunk_of(3)], 4).await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");

    // Every other chunk, ten to a batch, on a metered table.
    let meter = Meter::default();
    let conf = aws_sdk_dynamodb::config::Builder::from(&w.moto.sdk_config().await)
        .interceptor(meter.clone())
        .build();
    let metered = EventsService {
        dynamo: Dynamo::new(
            aws_sdk_dynamodb::Client::from_conf(conf),
            w.dynamo.table(),
            SHARDS,
        ),
        ..w.events.clone()
    };
    let others: Vec<&String> = bodies
        .iter()
        .filter(|b| serde_json::from_str::<Value>(b).unwrap()["chunk"] != 3)
        .collect();
    let started = Instant::now();
    for batch in others.chunks(10) {
        let response = deliver(&metered, batch, 1).await;
        assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    }
    let elapsed = started.elapsed();
    let requests = meter.take();
    let partial = w.drop_report(&drop).await;
    assert_eq!(partial.done, chunks - 1, "{partial:?}");
    assert!(!partial.completed, "{partial:?}");

    // The redrive puts the given-up chunk back on the events queue (the
    // refused lines stay, named); it lands, and the drop completes.
    let redriven = w.handle_events(json!({"redrive": {}})).await;
    assert_eq!(redriven["moved"], 1, "{redriven}");
    let mut refused: Vec<u64> = redriven["kept"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k[0].as_str().filter(|s| s.contains(KEY)).map(line_of))
        .collect();
    assert!(w.drain_events(&w.events).await.is_empty());
    let report = w.drop_report(&drop).await;
    assert!(report.completed, "{report:?}");
    assert_eq!(report.done, chunks);
    assert_eq!(report.applied, export.valid.len(), "{report:?}");
    assert_eq!(report.rejected, export.refused_lines.len(), "{report:?}");

    // Every refused row is named by its line in the file, once; they were
    // spread over several chunks.
    refused.extend(
        w.dead_letters()
            .await
            .iter()
            .filter(|d| d.source.contains(KEY))
            .map(|d| line_of(&d.source)),
    );
    refused.sort_unstable();
    assert_eq!(
        refused,
        export.refused_lines.iter().copied().collect::<Vec<_>>()
    );
    let rejects = w
        .clients
        .s3
        .list_objects_v2()
        .bucket(&w.names.bucket)
        .prefix(format!("rejects/{KEY}/"))
        .send()
        .await
        .unwrap()
        .contents
        .unwrap_or_default();
    assert!(
        rejects.len() >= 4,
        "rejects files of several chunks: {rejects:?}"
    );
    let mut written = BTreeSet::new();
    let mut all_rejects = String::new();
    for o in &rejects {
        let body = w
            .clients
            .s3
            .get_object()
            .bucket(&w.names.bucket)
            .key(o.key().unwrap())
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            text.starts_with("file,line,column,value,reason\n"),
            "{text}"
        );
        all_rejects.push_str(&text);
        for row in text.lines().skip(1).filter(|r| r.starts_with("s3://")) {
            written.insert(row.split(',').nth(1).unwrap().parse::<u64>().unwrap());
        }
    }
    assert_eq!(written, export.refused_lines);

    // Every valid record once; the older record did not overwrite the
    // newer one.
    let stored = stored_invoices(&w).await;
    assert_eq!(
        stored.keys().cloned().collect::<BTreeSet<_>>(),
        export.valid,
        "every valid invoice, and no refused one"
    );
    assert!(stored.values().all(|(n, _)| *n == 1));
    assert_eq!(stored["I00005"].1, "C0005/777.00/N-I00005");
    assert_eq!(stored["I00050"].1, "C0050/150.50/N-50");
    assert_eq!(
        stored["I00010"].1, "C0010/110.10/N-10",
        "the duplicate is refused"
    );

    // A chunk delivered again changes nothing (its refused rows are
    // named again, by the same lines).
    let response = deliver(&w.events, &[chunk_of(7)], 1).await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    assert_eq!(stored_invoices(&w).await, stored);
    let again = w.drop_report(&drop).await;
    assert_eq!(
        (again.done, again.applied, again.rejected, again.completed),
        (report.done, report.applied, report.rejected, true)
    );
    for d in w
        .dead_letters()
        .await
        .iter()
        .filter(|d| d.source.contains(KEY))
    {
        assert!(export.refused_lines.contains(&line_of(&d.source)), "{d:?}");
    }

    let total: usize = requests.values().sum();
    let rows = ROWS as f64;
    println!(
        "CSV drop on the local endpoint, without the optional columns (each row merged by a \
         conditional write): {ROWS} rows, {chunks} chunks of 4 KiB ({:.0} rows each), \
         {:.1} ms per chunk, DynamoDB requests {total} ({:.3} per row): {requests:?}",
        rows / chunks as f64,
        elapsed.as_secs_f64() * 1000.0 / (chunks - 1) as f64,
        total as f64 / rows
    );

    // An export with every column and no `updated_at`: full records,
    // written 25 to a request.
    let mut full = String::from(
        "invoice_id,customer_id,number,issue_date,due_date,amount,currency,disputed,dispute_opened_on\n",
    );
    for i in 0..ROWS {
        full.push_str(&format!(
            "J{i:05},C{:04},M-{i},2026-11-01,2026-12-01,{}.00,USD,false,\n",
            i % CUSTOMERS,
            100 + i % 900
        ));
    }
    w.put_drop("drops/invoices-full.csv", full).await;
    let split = w
        .handle_events(w.object_created("drops/invoices-full.csv"))
        .await;
    let drop = split[0]["drop"].as_str().unwrap().to_string();
    let bodies = take_events_queue(&w).await;
    let started = Instant::now();
    for batch in bodies.iter().collect::<Vec<_>>().chunks(10) {
        let response = deliver(&metered, batch, 1).await;
        assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    }
    let elapsed = started.elapsed();
    let requests = meter.take();
    let report = w.drop_report(&drop).await;
    assert!(report.completed, "{report:?}");
    assert_eq!((report.applied, report.rejected), (ROWS, 0), "{report:?}");
    assert_eq!(stored_invoices(&w).await.len(), export.valid.len() + ROWS);
    let total: usize = requests.values().sum();
    println!(
        "CSV drop on the local endpoint, every column (full records in batches): {ROWS} rows, \
         {} chunks, {:.1} ms per chunk, DynamoDB requests {total} ({:.3} per row): {requests:?}",
        bodies.len(),
        elapsed.as_secs_f64() * 1000.0 / bodies.len() as f64,
        total as f64 / rows
    );
}
