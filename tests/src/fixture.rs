//! The one fixture of the AWS tests: a test's own resources on a local
//! endpoint, created as `infra/template.yaml` declares them (the table with
//! its sparse index and TTL, the versioned bucket, the shard and
//! dead-letter queues, the SES identity and configuration set, the
//! pay-link secret), the adapters and services over them, and the ERP's
//! events that seed a book.
//!
//! Every name carries a prefix, the process id and a counter, so the tests
//! of one binary share a server without seeing each other's items; the
//! customers' addresses carry the same (see [`Fixture::email`]), so the
//! mail of one test is told apart from the others' in moto's record.

use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use chrono::NaiveDate;
use collect_aws::artifacts::Artifacts;
use collect_aws::config::{Clients, Settings};
use collect_aws::drops::{self, ChunkSettings};
use collect_aws::dynamo::Dynamo;
use collect_aws::events::{Batch, EventsService};
use collect_aws::keys;
use collect_aws::pacing::SesQuota;
use collect_aws::preflight::{AccountCheck, AccountSource, Checker, SesAccount};
use collect_aws::queue::{DeadLetter, Queue};
use collect_aws::sweep::{SendSettings, SweepService};
use collect_delivery::bundle;
use collect_delivery::delivery::Sender;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

use super::{Moto, moto, policy_dir};

/// The names of one test's resources, unique on the shared server.
#[derive(Debug, Clone)]
pub struct Names {
    pub table: String,
    pub bucket: String,
    pub shard_queue: String,
    pub dead_letter_queue: String,
    pub events_queue: String,
    pub configuration_set: String,
    pub secret: String,
    pub sender: String,
}

impl Names {
    pub fn new(prefix: &str) -> Names {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let id = format!("{prefix}-{}-{n}", std::process::id());
        Names {
            table: format!("{id}-table"),
            bucket: format!("{id}-bucket").to_ascii_lowercase(),
            shard_queue: format!("{id}-shards"),
            dead_letter_queue: format!("{id}-dead-letters"),
            events_queue: format!("{id}-events"),
            configuration_set: format!("{id}-mail"),
            secret: format!("{id}-pay-link-key"),
            sender: "receivables@supplier.example".to_string(),
        }
    }

    /// What the names have in common: `<prefix>-<pid>-<n>`.
    pub fn unique(&self) -> &str {
        self.table.trim_end_matches("-table")
    }
}

/// One test's stack on a local endpoint, and the adapters over it (built
/// with the clients that created it: the shared server's test credentials,
/// or an administrator's on the server that enforces IAM).
pub struct Fixture {
    /// The server the stack lives on (its record of sent mail is read).
    pub moto: &'static Moto,
    pub clients: Clients,
    pub names: Names,
    pub shards: u32,
    pub shard_queue_url: String,
    pub dead_letter_queue_url: String,
    /// The events queue (where a redrive puts dead letters back).
    pub events_queue_url: String,
    /// The pay-link secret's ARN (what the template hands the worker).
    pub secret_arn: String,
    pub dynamo: Dynamo,
    pub artifacts: Artifacts,
    /// The events function's service.
    pub events: EventsService,
    pub shard_queue: Queue,
    pub dead_letters: Queue,
    /// Where a sweep worker writes the bundle's templates.
    pub scratch: tempfile::TempDir,
}

impl Fixture {
    /// A new stack on the shared server; tables spread customers over
    /// `shards` shards.
    pub async fn new(prefix: &str, shards: u32) -> Fixture {
        let server = moto();
        Fixture::on(server, &server.sdk_config().await, prefix, shards).await
    }

    /// A new stack on `server`, created with `config` (e.g. an
    /// administrator's keys on a server that enforces IAM).
    pub async fn on(
        server: &'static Moto,
        config: &SdkConfig,
        prefix: &str,
        shards: u32,
    ) -> Fixture {
        let clients = Clients::new(config);
        let names = Names::new(prefix);
        create_table(&clients.dynamodb, &names.table).await;
        clients
            .s3
            .create_bucket()
            .bucket(&names.bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateBucket: {e:?}"));
        clients
            .s3
            .put_bucket_versioning()
            .bucket(&names.bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutBucketVersioning: {e:?}"));
        let queue = |name: String| {
            let sqs = clients.sqs.clone();
            async move {
                sqs.create_queue()
                    .queue_name(name)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("CreateQueue: {e:?}"))
                    .queue_url
                    .unwrap_or_default()
            }
        };
        let shard_queue_url = queue(names.shard_queue.clone()).await;
        let dead_letter_queue_url = queue(names.dead_letter_queue.clone()).await;
        let events_queue_url = queue(names.events_queue.clone()).await;
        clients
            .ses
            .create_email_identity()
            .email_identity(&names.sender)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateEmailIdentity: {e:?}"));
        clients
            .ses
            .create_configuration_set()
            .configuration_set_name(&names.configuration_set)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateConfigurationSet: {e:?}"));
        let secret_arn = clients
            .secrets
            .create_secret()
            .name(&names.secret)
            .secret_string("0123456789abcdef0123456789abcdef0123456789abcdef")
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateSecret: {e:?}"))
            .arn
            .unwrap_or_else(|| panic!("CreateSecret: no ARN for {}", names.secret));
        let dynamo = Dynamo::new(clients.dynamodb.clone(), &names.table, shards);
        let dead_letters = Queue::new(clients.sqs.clone(), &dead_letter_queue_url);
        Fixture {
            moto: server,
            artifacts: Artifacts::new(clients.s3.clone(), &names.bucket),
            events: EventsService {
                dynamo: dynamo.clone(),
                dead_letters: dead_letters.clone(),
                events_queue: Some(Queue::new(clients.sqs.clone(), &events_queue_url)),
                s3: clients.s3.clone(),
                chunks: ChunkSettings::default(),
            },
            shard_queue: Queue::new(clients.sqs.clone(), &shard_queue_url),
            dead_letters,
            dynamo,
            clients,
            names,
            shards,
            shard_queue_url,
            dead_letter_queue_url,
            events_queue_url,
            secret_arn,
            scratch: tempfile::tempdir().unwrap_or_else(|e| panic!("a scratch folder: {e}")),
        }
    }

    /// A fresh table alone on the shared server (the ledger conformance
    /// suite takes one per scenario, and needs nothing else).
    pub async fn table(prefix: &str, shards: u32) -> Dynamo {
        let client = aws_sdk_dynamodb::Client::new(&moto().sdk_config().await);
        let names = Names::new(prefix);
        create_table(&client, &names.table).await;
        Dynamo::new(client, names.table, shards)
    }

    /// Publishes the repository's policy bundle as `revision`, as CI does
    /// after a merge.
    pub async fn publish_policy(&self, revision: &str) {
        let bytes = bundle::build(&policy_dir(), revision, None)
            .unwrap_or_else(|e| panic!("the policy bundle builds: {e}"));
        self.artifacts
            .publish_bundle(bytes)
            .await
            .unwrap_or_else(|e| panic!("the policy bundle is published: {e}"));
    }

    /// `<prefix>-<pid>-<n>`: in every name of this stack and every address
    /// of its customers.
    pub fn unique(&self) -> &str {
        self.names.unique()
    }

    /// A customer's address, unique to this stack.
    pub fn email(&self, customer: &str) -> String {
        format!("{}-{customer}@customer.example", self.unique()).to_ascii_lowercase()
    }

    /// The ERP's `customer_upserted` event of a customer with this stack's
    /// address for it.
    pub fn customer(&self, id: &str) -> Value {
        json!({"type": "customer_upserted", "customer_id": id, "name": format!("Customer {id}"),
               "email": self.email(id), "timezone": "UTC", "language": "en"})
    }

    /// Writes the ERP's events straight through the events service (the
    /// handler's own tests send them through the handler): every one must
    /// apply.
    pub async fn seed(&self, events: &[Value]) {
        for e in events {
            let mut batch = Batch::default();
            self.events
                .apply_json(e, "seed", &mut batch)
                .await
                .unwrap_or_else(|err| panic!("seeding {e}: {err}"));
            assert!(batch.dead_letters.is_empty(), "{:?}", batch.dead_letters);
        }
    }

    /// Drops an export in the bucket, as the ERP's nightly job does.
    pub async fn put_drop(&self, key: &str, body: impl Into<Vec<u8>>) {
        self.clients
            .s3
            .put_object()
            .bucket(&self.names.bucket)
            .key(key)
            .body(body.into().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutObject {key}: {e:?}"));
    }

    /// S3's notification that `key` was created in the bucket.
    pub fn object_created(&self, key: &str) -> Value {
        json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": self.names.bucket}, "object": {"key": key}}}]})
    }

    /// What every function reads from its environment, for this stack.
    pub fn settings(&self) -> Settings {
        Settings {
            table: self.names.table.clone(),
            bucket: self.names.bucket.clone(),
            shards: self.shards,
            virtual_shards: self.shards,
        }
    }

    /// The sweep worker's sending settings, for this stack.
    pub fn send_settings(&self) -> SendSettings {
        SendSettings {
            sender: Sender {
                company: "Supplier Ltd".into(),
                email: self.names.sender.clone(),
                reply_to: None,
                address: Vec::new(),
                country: None,
            },
            pay_url: "https://pay.supplier.example/i/{token}".into(),
            pay_link_secret: self.secret_arn.clone(),
            configuration_set: Some(self.names.configuration_set.clone()),
            send_time_utc: chrono::NaiveTime::from_hms_opt(14, 0, 0).unwrap_or_default(),
            pay_link_days: 45,
            grace_minutes: 60,
            check: AccountCheck {
                workers: 2,
                margin_percent: 10,
                expected: None,
                shadow: false,
            },
        }
    }

    /// What `GetAccount` answers for this stack: moto does not implement
    /// it, so the workers and the preflight are given this recorded answer
    /// of a healthy production account (the judging of other answers is
    /// tested in `functions/aws/src/preflight.rs` and `functions/sweep`).
    pub fn ses_account() -> SesAccount {
        SesAccount {
            production_access: true,
            sending_enabled: true,
            enforcement_status: Some("HEALTHY".into()),
            quota: SesQuota {
                max_send_rate: 1000.0,
                max_24_hour_send: 1_000_000.0,
                sent_last_24_hours: 0.0,
            },
        }
    }

    /// The coordinator's preflight over this stack, with `clients`.
    pub fn preflight(&self, clients: &Clients) -> Checker {
        Checker {
            ses: clients.ses.clone(),
            account: AccountSource::Fixed(Fixture::ses_account()),
            artifacts: Artifacts::new(clients.s3.clone(), &self.names.bucket),
            sender: self.names.sender.clone(),
            identity: self.names.sender.clone(),
            check: self.send_settings().check,
        }
    }

    /// The sweep worker's service, loaded as a container loads it (the
    /// bundle, the model or the fallback, the pay-link key).
    pub async fn sweep_service(&self) -> SweepService {
        let mut svc = SweepService::load(
            &self.clients,
            &self.settings(),
            &self.send_settings(),
            self.scratch.path(),
        )
        .await
        .unwrap_or_else(|e| panic!("the sweep worker loads: {e}"));
        svc.sending.account = AccountSource::Fixed(Fixture::ses_account());
        svc
    }

    /// The events function's service over this stack, with `clients` (e.g.
    /// those of a user carrying the function's policy).
    pub fn events_service(&self, clients: &Clients) -> EventsService {
        EventsService {
            dynamo: Dynamo::new(clients.dynamodb.clone(), &self.names.table, self.shards),
            dead_letters: Queue::new(clients.sqs.clone(), &self.dead_letter_queue_url),
            events_queue: Some(Queue::new(clients.sqs.clone(), &self.events_queue_url)),
            s3: clients.s3.clone(),
            chunks: self.events.chunks,
        }
    }

    /// Calls the events function's handler with `payload`.
    pub async fn handle_events(&self, payload: Value) -> Value {
        collect_events::handler(&self.events, invoke(payload))
            .await
            .unwrap_or_else(|e| panic!("the events handler failed: {e}"))
    }

    /// Drops `body` as `key` and runs the drop as Lambda would: the
    /// notification splits it, then every chunk message on the events
    /// queue is delivered to the handler through SQS (ten at a time,
    /// deleted unless the handler reported it failed) until the queue is
    /// empty. What the drop's item says at the end.
    pub async fn drop_file(&self, key: &str, body: impl Into<Vec<u8>>) -> DropReport {
        self.put_drop(key, body).await;
        let split = self.handle_events(self.object_created(key)).await;
        let Some(drop) = split
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|a| a.get("outcome").and_then(Value::as_str) == Some("split"))
            })
            .and_then(|a| a.get("drop")?.as_str())
            .map(str::to_string)
        else {
            return DropReport {
                split,
                ..DropReport::default()
            };
        };
        self.drain_events(&self.events).await;
        let mut report = self.drop_report(&drop).await;
        report.split = split;
        report
    }

    /// Delivers the events queue's messages to the handler over `svc`
    /// until the queue is empty (or only failing messages are left,
    /// invisible for their timeout); returns the ids it reported failed.
    pub async fn drain_events(&self, svc: &EventsService) -> Vec<String> {
        let mut failed = Vec::new();
        loop {
            let out = self
                .clients
                .sqs
                .receive_message()
                .queue_url(&self.events_queue_url)
                .max_number_of_messages(10)
                .message_system_attribute_names(
                    aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
                )
                .send()
                .await
                .unwrap_or_else(|e| panic!("ReceiveMessage: {e:?}"));
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return failed;
            }
            let records: Vec<Value> = messages
                .iter()
                .map(|m| {
                    let count = m
                        .attributes
                        .as_ref()
                        .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                        .cloned()
                        .unwrap_or_else(|| "1".into());
                    json!({"messageId": m.message_id, "receiptHandle": m.receipt_handle,
                        "body": m.body, "attributes": {"ApproximateReceiveCount": count},
                        "messageAttributes": {}, "eventSource": "aws:sqs",
                        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:events",
                        "awsRegion": "us-east-1"})
                })
                .collect();
            let response = collect_events::handler(svc, invoke(json!({ "Records": records })))
                .await
                .unwrap_or_else(|e| panic!("the events handler failed: {e}"));
            let failures: Vec<String> = response
                .get("batchItemFailures")
                .and_then(Value::as_array)
                .map(|f| {
                    f.iter()
                        .filter_map(|f| f.get("itemIdentifier")?.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            for m in &messages {
                let id = m.message_id.clone().unwrap_or_default();
                if failures.contains(&id) {
                    continue;
                }
                self.clients
                    .sqs
                    .delete_message()
                    .queue_url(&self.events_queue_url)
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("DeleteMessage: {e:?}"));
            }
            failed.extend(failures);
        }
    }

    /// What a drop's item says: chunks, chunks done, rows applied and
    /// refused, whether it completed.
    pub async fn drop_report(&self, drop: &str) -> DropReport {
        use aws_sdk_dynamodb::types::AttributeValue;
        let item = self
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.names.table)
            .key(keys::PK, AttributeValue::S(drops::drop_pk(drop)))
            .key(keys::SK, AttributeValue::S(drops::DROP_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetItem of the drop {drop}: {e:?}"))
            .item
            .unwrap_or_else(|| panic!("no item of the drop {drop}"));
        let number = |v: Option<&AttributeValue>| match v {
            Some(AttributeValue::N(n)) => n.parse::<usize>().unwrap_or(0),
            _ => 0,
        };
        let mut report = DropReport {
            drop: drop.to_string(),
            chunks: number(item.get("chunks_total")),
            completed: item.contains_key("completed_at"),
            ..DropReport::default()
        };
        if let Some(AttributeValue::M(done)) = item.get("chunks") {
            report.done = done.len();
            for entry in done.values() {
                if let AttributeValue::M(e) = entry {
                    report.applied += number(e.get("applied"));
                    report.rejected += number(e.get("rejected"));
                }
            }
        }
        report
    }

    /// What reached the dead-letter queue since the last call.
    pub async fn dead_letters(&self) -> Vec<DeadLetter> {
        let mut out = Vec::new();
        for _ in 0..5 {
            let got = self
                .dead_letters
                .receive()
                .await
                .unwrap_or_else(|e| panic!("ReceiveMessage: {e}"));
            if got.is_empty() {
                break;
            }
            out.extend(got.into_iter().map(|(_, body)| {
                serde_json::from_str::<DeadLetter>(&body)
                    .unwrap_or_else(|e| panic!("a dead letter: {e}: {body}"))
            }));
        }
        out
    }

    /// The mail moto recorded for this stack's customers: `(destinations,
    /// raw MIME)`.
    pub fn mail(&self) -> Vec<(Vec<String>, String)> {
        let unique = self.unique().to_ascii_lowercase();
        self.moto
            .sent_raw_mail()
            .unwrap_or_else(|e| panic!("moto's record of sent mail: {e}"))
            .into_iter()
            .filter(|(to, _)| to.iter().any(|t| t.contains(&unique)))
            .collect()
    }

    /// Every customer in the table, sorted.
    pub async fn customers(&self) -> Vec<String> {
        let mut all = Vec::new();
        for shard in 0..self.shards {
            all.extend(
                self.dynamo
                    .shard_customers(shard)
                    .await
                    .unwrap_or_else(|e| panic!("the customers of shard {shard}: {e}")),
            );
        }
        all.sort();
        all
    }
}

/// How far a CSV drop got, from its item ([`Fixture::drop_report`]).
#[derive(Debug, Clone, Default)]
pub struct DropReport {
    pub drop: String,
    /// The handler's answer to the notification.
    pub split: Value,
    pub chunks: usize,
    /// Chunks whose entry is set.
    pub done: usize,
    pub applied: usize,
    pub rejected: usize,
    pub completed: bool,
}

/// The ERP's `invoice_upserted` event of an invoice issued on 2026-11-10.
pub fn invoice(id: &str, customer: &str, due: &str, amount: &str) -> Value {
    json!({"type": "invoice_upserted", "invoice_id": id, "customer_id": customer,
           "number": format!("N-{id}"), "issue_date": "2026-11-10", "due_date": due,
           "amount": amount, "currency": "USD", "disputed": false})
}

/// The ERP's `payment_received` event.
pub fn payment(id: &str, invoice: &str, paid_on: &str, amount: &str) -> Value {
    json!({"type": "payment_received", "payment_id": id, "invoice_id": invoice,
           "paid_on": paid_on, "amount": amount})
}

/// An SQS event (as Lambda's event source mapping delivers it) with one
/// record per body: `m-0`, `m-1`, … A string body is sent as it is, any
/// other value as its JSON.
pub fn sqs_event(bodies: &[Value]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            json!({
                "messageId": format!("m-{i}"),
                "receiptHandle": "rh",
                "body": b.as_str().map(str::to_string).unwrap_or_else(|| b.to_string()),
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

/// A handler's input, with a default context.
pub fn invoke<T>(payload: T) -> LambdaEvent<T> {
    LambdaEvent::new(payload, Context::default())
}

/// A date written `YYYY-MM-DD`.
pub fn day(s: &str) -> NaiveDate {
    s.parse()
        .unwrap_or_else(|e| panic!("`{s}` is not a date: {e}"))
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The table as the template declares it (`KEY_ATTRIBUTES`, `GSI1`, TTL).
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) {
    let mut create = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(keys::PK, KeyType::Hash))
        .key_schema(key(keys::SK, KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(keys::GSI1)
                .key_schema(key(keys::GSI1PK, KeyType::Hash))
                .key_schema(key(keys::GSI1SK, KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        );
    for (name, _) in keys::KEY_ATTRIBUTES {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    create
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable: {e:?}"));
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(keys::TTL)
                .enabled(true)
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateTimeToLive: {e:?}"));
}
