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
            // The suite sweeps the whole book (`Scope::All`): it folds as a
            // shard's sweep does.
            dynamo: Fixture::table("conformance", SHARDS)
                .await
                .folding_every_scope(),
        }
    }

    /// Every item of a kind, decoded from its document: a folded copy
    /// (`live_sk`) only when its live item is gone.
    async fn all<T: serde::de::DeserializeOwned>(&self, kind: &str) -> Vec<T> {
        let mut out: std::collections::BTreeMap<(String, String), (bool, T)> =
            std::collections::BTreeMap::new();
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
                let text = |n: &str| match it.get(n) {
                    Some(AttributeValue::S(v)) => v.clone(),
                    _ => String::new(),
                };
                let folded = it.contains_key(collect_aws::keys::LIVE_SK);
                let sk = text(if folded {
                    collect_aws::keys::LIVE_SK
                } else {
                    collect_aws::keys::SK
                });
                let key = (text(collect_aws::keys::PK), sk);
                if folded && out.get(&key).is_some_and(|(f, _)| !*f) {
                    continue;
                }
                if let Some(AttributeValue::S(doc)) = it.get(DOC) {
                    out.insert(key, (folded, serde_json::from_str(doc).unwrap()));
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.into_values().map(|(_, v)| v).collect()
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

/// Counts the DynamoDB requests a client makes, by operation.
#[derive(Debug, Default, Clone)]
struct Meter {
    calls: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, usize>>>,
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

/// A page of the desk's queue over many open tasks costs the index
/// Query's pages (one index partition a shard, keys only, the entry in
/// `GSI1SK`)
/// and one BatchGetItem for the page's customers: never a Scan, never a
/// read per task. `DESK_QUEUE_TASKS` sets how many (2,000 by default;
/// BENCHMARKS.md quotes 20,000).
#[test]
fn a_queue_page_costs_a_bounded_number_of_requests() {
    use collect_aws::dynamo::{work_gsi_pk, work_sk};
    use collect_aws::keys::shard_of;
    use collect_aws::keys::{GSI1PK, GSI1SK, PK, SK, STATUS};
    use collect_delivery::ledger::{Ledger, work_of_action};
    use collect_delivery::work::{Desk, DeskSettings, Role, WorkQuery};
    use collect_testkit::book::{customer, day};
    use collect_testkit::conformance::World;
    use collect_testkit::work::{person, policy_of};
    let n: usize = std::env::var("DESK_QUEUE_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let h = DynamoHarness::new().await;
            let w = World::start(&h).await;
            let on = day("2027-03-19");
            w.run(&h, on).await;
            let letter = h.dynamo.open_work(Some("approvals")).await.unwrap()[0].clone();
            let template = Ledger::customer_action(&h.dynamo, "C4", &letter.task_id)
                .await
                .unwrap()
                .unwrap();
            let customers: Vec<Customer> = (0..n).map(|i| customer(&format!("Q{i:05}"))).collect();
            h.dynamo.put_customers(&customers).await.unwrap();
            let mut items = Vec::with_capacity(n);
            for i in 0..n {
                let mut a = template.clone();
                a.action_id = format!("act-q{i:05}").into();
                a.customer_id = format!("Q{i:05}").into();
                a.invoice_id = format!("QI{i:05}").into();
                a.risk = Some(((i * 31) % 100) as f64 / 100.0);
                let mut entry = work_of_action(&a).unwrap();
                entry.balance = Some(format!("{}.00", 100 + (i * 7919) % 90_000).parse().unwrap());
                entry.currency = Some("USD".to_string());
                let s = |v: String| AttributeValue::S(v);
                items.push(std::collections::HashMap::from([
                    (PK.to_string(), s(format!("C#{}", a.customer_id))),
                    (SK.to_string(), s(format!("ACTION#{}", a.action_id))),
                    (KIND.to_string(), s("action".to_string())),
                    (DOC.to_string(), s(serde_json::to_string(&a).unwrap())),
                    (STATUS.to_string(), s(a.status.as_str().to_string())),
                    (
                        GSI1PK.to_string(),
                        s(work_gsi_pk(shard_of(&a.customer_id, SHARDS))),
                    ),
                    (GSI1SK.to_string(), s(work_sk(&entry).unwrap())),
                ]));
            }
            h.dynamo.batch_put(items).await.unwrap();

            let meter = Meter::default();
            let conf =
                aws_sdk_dynamodb::config::Builder::from(&collect_e2e::moto().sdk_config().await)
                    .interceptor(meter.clone())
                    .build();
            let metered = Dynamo::new(
                aws_sdk_dynamodb::Client::from_conf(conf),
                h.dynamo.table(),
                SHARDS,
            );
            let policy = policy_of(&w);
            let settings = DeskSettings::default();
            let desk = Desk::new(&metered, &policy, &settings, on);
            let q = WorkQuery::default();
            let t = std::time::Instant::now();
            let page = desk
                .queue(&person("ana@example.com", Role::Approver), &q)
                .await
                .unwrap();
            let took = t.elapsed();
            assert!(
                page.counts.contains(&("approvals".to_string(), n + 1)),
                "{:?}",
                page.counts
            );
            assert_eq!(page.items.len(), 50);
            assert!(page.items.iter().all(|i| !i.customer_name.is_empty()));
            let calls = meter.calls.lock().unwrap().clone();
            println!(
                "desk queue on DynamoDB (moto), {} open tasks, one page of 50: {calls:?}, {:.0} ms",
                page.total,
                took.as_secs_f64() * 1000.0
            );
            assert_eq!(calls.get("Scan"), None, "{calls:?}");
            assert_eq!(calls.get("GetItem"), None, "{calls:?}");
            assert_eq!(calls.get("BatchGetItem"), Some(&1), "{calls:?}");
            // One Query per shard, each paged (DynamoDB: 1 MB, about 3,000
            // entries; moto: 1,000 items).
            let pages = calls.get("Query").copied().unwrap_or(0);
            let bound = SHARDS as usize * (n / (1_000 * SHARDS as usize) + 2);
            assert!(pages >= SHARDS as usize && pages <= bound, "{calls:?}");
        });
}
