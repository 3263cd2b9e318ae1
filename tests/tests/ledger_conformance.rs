#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The delivery protocol's conformance suite against the DynamoDB ledger,
//! on the local AWS endpoint (moto server, started by the test setup): the
//! same scenarios the in-memory and SQLite ledgers pass in `cargo test -p
//! collect-sqlite`, each on a fresh table of the fixture.

use aws_sdk_dynamodb::types::AttributeValue;
use collect_aws::dynamo::Dynamo;
use collect_aws::keys::{DOC, KIND};
use collect_delivery::ledger::StoredMessage;
use collect_e2e::Fixture;
use collect_engine::domain::{ActionRecord, Customer, Event, Invoice, Payment};
use collect_testkit::Harness;
use collect_testkit::conformance;

/// Shards of the test tables: customers spread over several, so the
/// sparse indexes of more than one shard are exercised.
const SHARDS: u32 = 3;

struct DynamoHarness {
    dynamo: Dynamo,
}

impl DynamoHarness {
    async fn new() -> DynamoHarness {
        DynamoHarness {
            dynamo: Fixture::table("conformance", SHARDS).await,
        }
    }

    /// Every item of a kind, decoded from its document.
    async fn all<T: serde::de::DeserializeOwned>(&self, kind: &str) -> Vec<T> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .dynamo
                .client()
                .scan()
                .table_name(self.dynamo.table())
                .filter_expression("#kind = :kind")
                .expression_attribute_names("#kind", KIND)
                .expression_attribute_values(":kind", AttributeValue::S(kind.to_string()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .unwrap();
            for it in page.items() {
                if let Some(AttributeValue::S(doc)) = it.get(DOC) {
                    out.push(serde_json::from_str(doc).unwrap());
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out
    }
}

impl Harness for DynamoHarness {
    type L = Dynamo;
    fn name(&self) -> &str {
        "dynamodb"
    }
    fn ledger(&self) -> &Dynamo {
        &self.dynamo
    }
    async fn put_customer(&self, c: &Customer) {
        self.dynamo.put_customer(c).await.unwrap();
    }
    async fn put_invoice(&self, i: &Invoice) {
        self.dynamo.put_invoice(i).await.unwrap();
    }
    async fn put_payment(&self, p: &Payment) {
        assert!(self.dynamo.put_payment(p).await.unwrap());
    }
    async fn put_event(&self, e: &Event) {
        self.dynamo.put_invoice_event(e).await.unwrap();
    }
    async fn actions(&self) -> Vec<ActionRecord> {
        self.all("action").await
    }
    async fn messages(&self) -> Vec<StoredMessage> {
        self.all("message").await
    }
}

/// Every scenario of the suite, as the local ledgers run it.
///
/// The suite is one large future (every scenario's state in one): it is
/// polled on a thread with room for it, not on a test thread's 2 MB stack.
#[test]
fn dynamodb_ledger_conforms() {
    let suite = std::thread::Builder::new()
        .name("conformance".into())
        .stack_size(256 << 20)
        .spawn(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(conformance::run_all(DynamoHarness::new));
        })
        .unwrap();
    if let Err(panic) = suite.join() {
        std::panic::resume_unwind(panic);
    }
}
