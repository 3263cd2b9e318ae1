#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! IAM proven, not assumed: each function runs under exactly the
//! permissions `infra/template.yaml` grants it, on a local endpoint that
//! enforces IAM (moto with `INITIAL_NO_AUTH_ACTION_COUNT`), with the real
//! AWS SDK signing as an IAM user that carries the function's policy
//! statements, read from the template.
//!
//! - **Missing permission**: with the template's statements, every function
//!   does its whole job on a fresh stack — day one: no model yet, so the
//!   sweep scores with the prior late rate and mails; training promotes
//!   the first model; the next sweep reads it.
//! - **Excess permission**: each granted action (and each resource of a
//!   statement naming several S3 or SQS resources) is taken away in turn,
//!   on a fresh stack; the function's run must then fail. A grant whose
//!   removal changes nothing is reported as excess.
//!
//! What moto (5.1) cannot check, and how it is covered instead:
//! - **resources of DynamoDB, SES and Secrets Manager calls**: moto checks
//!   them against the resource `*`, so their statements are given `*` here
//!   (their actions are still enforced); the table and index ARNs are
//!   checked by `infra_drift.rs`;
//! - **conditions** (`dynamodb:LeadingKeys` on DeleteItem, `s3:prefix` on
//!   ListBucket) are not evaluated by moto;
//! - **`s3:ListBucket`**: moto answers 404 for a missing key whatever the
//!   grants (AWS answers 403 without ListBucket). The code takes either as
//!   "not there yet": `a_pointer_s3_refuses_is_not_there_yet` below shows
//!   the 403 path (moto answers 403 for a key the user may not read);
//! - **`ses:GetAccount`** is not implemented by moto: the coordinator's
//!   preflight and the worker read a recorded answer instead
//!   (`Fixture::ses_account`), and the grant is listed in `unprovable`;
//! - **`ses:GetEmailIdentity`**: moto, enforcing IAM, answers 403 to SES v2
//!   reads whatever the grants (the administrator's too): the coordinator's
//!   preflight is checked here for the bundle and the model only (the
//!   identity is read without IAM in `aws_e2e.rs`), and the grant is listed
//!   in `unprovable`;
//! - SQS's `SendMessageBatch` is authorised by `sqs:SendMessage` on AWS;
//!   moto asks for `sqs:SendMessageBatch`, so a statement granting
//!   `sqs:SendMessage` is given both here.
//! - DynamoDB's `TransactWriteItems` is authorised item by item on AWS
//!   (`dynamodb:PutItem` for its puts, `dynamodb:ConditionCheckItem` for
//!   its condition checks); moto asks for `dynamodb:TransactWriteItems`,
//!   so a statement granting `dynamodb:ConditionCheckItem` (the sweep
//!   worker's fenced move to `sending`) is given it too here.

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::SqsEvent;
use collect_aws::artifacts::{Artifacts, Fetched};
use collect_aws::config::Clients;
use collect_aws::dynamo::Dynamo;
use collect_aws::preflight::{AccountSource, Severity};
use collect_aws::queue::Queue;
use collect_aws::sweep::SweepService;
use collect_aws::train::{ModelTrainer, PriorRateTrainer, load_scorer};
use collect_e2e::{Fixture, day, iam_moto, invoice, invoke, payment};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use serde_yaml::Value as Yaml;

const SHARDS: u32 = 4;
/// moto's account.
const ACCOUNT: &str = "123456789012";

// ------------------------------------------------------------ the template

fn template() -> Yaml {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The policy statements of a function, as written in the template.
fn statements(function: &str) -> Vec<Yaml> {
    let t = template();
    let f = &t["Resources"][function];
    assert!(f.is_mapping(), "no function {function} in the template");
    let mut out = Vec::new();
    for policy in f["Properties"]["Policies"].as_sequence().unwrap() {
        out.extend(policy["Statement"].as_sequence().unwrap().iter().cloned());
    }
    out
}

fn list(v: &Yaml) -> Vec<Yaml> {
    match v {
        Yaml::Sequence(s) => s.clone(),
        Yaml::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// A test stack (the fixture's, created by the administrator: its
/// adapters are the administrator's, who stands for CI and the ERP) and
/// what the template's references stand for in it.
struct World {
    fx: Fixture,
    /// The work queue's CSRF key (`QueueKey`), created as the template does.
    queue_key: String,
}

impl World {
    async fn new(prefix: &str) -> World {
        let s = iam_moto();
        let admin = s.moto.sdk_config_as(&s.admin).await;
        let fx = Fixture::on(&s.moto, &admin, prefix, SHARDS).await;
        // CI publishes the policy bundle (not a function's job).
        fx.publish_policy("iam-rev-1").await;
        let queue_key = fx
            .clients
            .secrets
            .create_secret()
            .name(format!("{}-queue-key", fx.unique()))
            .secret_string("the-work-queue-csrf-key-0123456789abcdef")
            .send()
            .await
            .unwrap()
            .arn
            .unwrap();
        World { fx, queue_key }
    }

    fn queue_arn(name: &str) -> String {
        format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{name}")
    }

    /// What `!Ref X`, `!GetAtt X.Y` and `${X}` / `${X.Y}` name in this stack.
    fn lookup(&self, name: &str) -> String {
        let n = &self.fx.names;
        match name {
            "Table.Arn" => format!("arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{}", n.table),
            "ArtifactsBucket.Arn" => format!("arn:aws:s3:::{}", n.bucket),
            "ShardQueue.Arn" => World::queue_arn(&n.shard_queue),
            "EventsDeadLetterQueue.Arn" => World::queue_arn(&n.dead_letter_queue),
            "EventsQueue.Arn" => World::queue_arn(&n.events_queue),
            "PayLinkKey" => self.fx.secret_arn.clone(),
            "QueueKey" => self.queue_key.clone(),
            "MailConfigurationSet" => n.configuration_set.clone(),
            "SenderIdentity" => n.sender.clone(),
            "AWS::Partition" => "aws".into(),
            "AWS::Region" => "us-east-1".into(),
            "AWS::AccountId" => ACCOUNT.into(),
            other => panic!(
                "the template's policies name `{other}`: say what it is on the test stack (iam_enforced.rs, World::lookup)"
            ),
        }
    }

    fn sub(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').unwrap() + start;
            out.push_str(&self.lookup(&rest[start + 2..end]));
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// A template value with its intrinsic functions resolved.
    fn resolve(&self, v: &Yaml) -> Value {
        match v {
            Yaml::Tagged(t) => {
                let tag = t.tag.to_string();
                let arg = t
                    .value
                    .as_str()
                    .unwrap_or_else(|| panic!("{tag} {:?}", t.value));
                Value::from(match tag.trim_start_matches('!') {
                    "GetAtt" | "Ref" => self.lookup(arg),
                    "Sub" => self.sub(arg),
                    other => panic!("intrinsic function !{other} in a policy"),
                })
            }
            Yaml::Sequence(s) => Value::Array(s.iter().map(|x| self.resolve(x)).collect()),
            Yaml::Mapping(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.as_str().unwrap().to_string(), self.resolve(v)))
                    .collect(),
            ),
            Yaml::String(s) => Value::from(s.clone()),
            Yaml::Bool(b) => Value::from(*b),
            Yaml::Number(n) => Value::from(n.as_f64().unwrap()),
            Yaml::Null => Value::Null,
        }
    }

    /// The policy document an IAM user gets for `statements`, as moto can
    /// check it (see the module docs).
    fn policy(&self, statements: &[Yaml]) -> String {
        let mut out = Vec::new();
        for st in statements {
            let mut st = self.resolve(st);
            let mut actions: Vec<String> = match &st["Action"] {
                Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
                Value::String(a) => vec![a.clone()],
                other => panic!("Action {other}"),
            };
            if actions.iter().any(|a| a == "sqs:SendMessage") {
                actions.push("sqs:SendMessageBatch".into());
            }
            if actions.iter().any(|a| a == "dynamodb:ConditionCheckItem") {
                actions.push("dynamodb:TransactWriteItems".into());
            }
            let resource_checked = actions
                .iter()
                .all(|a| a.starts_with("s3:") || a.starts_with("sqs:"));
            if !resource_checked {
                st["Resource"] = Value::from("*");
            }
            st["Action"] = json!(actions);
            out.push(st);
        }
        // IAM refuses a policy without statements; this one grants nothing
        // (GetCallerIdentity needs no permission).
        out.push(json!({"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}));
        json!({"Version": "2012-10-17", "Statement": out}).to_string()
    }

    /// The SDK configuration of a new IAM user carrying `statements`.
    async fn user(&self, name: &str, statements: &[Yaml]) -> SdkConfig {
        let s = iam_moto();
        let user = format!("{}-{name}", self.fx.unique());
        let key = s
            .moto
            .create_user(&s.admin, &user, &self.policy(statements))
            .unwrap();
        s.moto.sdk_config_as(&key).await
    }

    /// Customers with invoices due soon (the sweep has mail to send) and a
    /// paid one (training has an outcome), written as the administrator.
    async fn seed(&self) {
        let mut events = Vec::new();
        for (n, c) in ["C1", "C2", "C3"].iter().enumerate() {
            events.push(self.fx.customer(c));
            events.push(invoice(&format!("I{n}"), c, "2026-12-10", "500.00"));
            let mut settled = invoice(&format!("H{n}"), c, "2026-11-01", "100.00");
            settled["issue_date"] = json!("2026-10-01");
            events.push(settled);
            events.push(payment(
                &format!("P{n}"),
                &format!("H{n}"),
                &format!("2026-11-0{}", n + 3),
                "100.00",
            ));
        }
        self.fx.seed(&events).await;
    }
}

// ------------------------------------------------------------ the functions' runs

type Run = Result<(), String>;

fn failed(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

/// The coordinator: one job per shard on the shard queue.
async fn coordinator(w: &World, config: &SdkConfig) -> Run {
    let clients = Clients::new(config);
    // A model is promoted (by training; the administrator stands for it),
    // so the preflight reads the bundle and the model.
    let artifact = PriorRateTrainer
        .train(&Default::default(), day("2026-12-01"))
        .unwrap();
    let pointer = w.fx.artifacts.put_model("m0", artifact).await.unwrap();
    w.fx.artifacts.promote_model(&pointer).await.unwrap();
    // moto, enforcing IAM, answers 403 to every SES v2 read, even the
    // administrator's (see `unprovable`): the preflight is asked for alone,
    // and shows the bundle and the model read as the function.
    let preflight = w.fx.preflight(&clients);
    let c = collect_sweep::Coordinator {
        queue: Queue::new(clients.sqs.clone(), &w.fx.shard_queue_url),
        shards: SHARDS,
        virtual_shards: SHARDS,
        preflight: Some(preflight),
    };
    let asked = collect_sweep::ScheduleInput {
        day: Some(day("2026-12-07")),
        scheduled_time: None,
        allow_future_day: false,
        preflight: true,
        shard: None,
    };
    let report = collect_sweep::coordinator(&c, invoke(asked))
        .await
        .map_err(|e| failed("coordinator: preflight", e))?
        .preflight
        .unwrap();
    for check in ["policy bundle", "risk model"] {
        if !report
            .findings
            .iter()
            .any(|f| f.check == check && f.severity == Severity::Ok)
        {
            return Err(format!(
                "coordinator: the preflight's {check} was not read (refused?): {:#?}",
                report.findings
            ));
        }
    }
    let c = collect_sweep::Coordinator {
        preflight: None,
        ..c
    };
    let input = collect_sweep::ScheduleInput {
        day: Some(day("2026-12-07")),
        scheduled_time: None,
        allow_future_day: false,
        preflight: false,
        shard: None,
    };
    let out = collect_sweep::coordinator(&c, invoke(input))
        .await
        .map_err(|e| failed("coordinator", e))?;
    if out.shards != SHARDS as usize {
        return Err(format!("enqueued {} jobs", out.shards));
    }
    Ok(())
}

/// The events function: ERP events (upserts, a payment found by its
/// invoice), a refused event (dead-letter queue), a CSV drop (S3, batch
/// writes), an SES event through SNS, and the redrive of the dead letter
/// (receive and delete it, send its event to the events queue).
async fn events(w: &World, config: &SdkConfig) -> Run {
    let svc = w.fx.events_service(&Clients::new(config));
    let call = |payload: Value| {
        let svc = &svc;
        async move {
            collect_events::handler(svc, invoke(payload))
                .await
                .map_err(|e| failed("events", e))
        }
    };
    call(w.fx.customer("E1")).await?;
    call(invoice("EI1", "E1", "2026-12-10", "500.00")).await?;
    call(payment("EP1", "EI1", "2026-12-01", "100.00")).await?;
    // Refused (bad amount): to the dead-letter queue with its reason.
    call(
        json!({"type": "invoice_upserted", "invoice_id": "BAD", "customer_id": "E1",
        "number": "N", "issue_date": "2026-11-10", "due_date": "2026-12-10",
        "amount": "12,5k", "currency": "USD"}),
    )
    .await?;
    // A CSV drop (the administrator stands for the ERP's export) with every
    // column and one bad row: full records, written in batches (a drop that leaves columns
    // out is merged record by record, as the events above are).
    w.fx.put_drop(
        "drops/customers-1.csv",
        format!(
            "customer_id,name,email,phone,language,timezone,country,industry,annual_revenue,credit_score,credit_limit,tags,do_not_contact,address_line1,address_line2,postal_code,city,region\n\
             E2,E2,{},,en,UTC,,,,,,,false,,,,,\nE3,E3,{},,en,UTC,DE,,,,,,false,Hauptstraße 5,,10115,Berlin,\n\
             E4,E4,not-an-address,,en,UTC,,,,,,,false,,,,,\n",
            w.fx.email("E2"),
            w.fx.email("E3")
        ),
    )
    .await;
    // The notification splits the drop into chunk messages on the events
    // queue; the chunk is then delivered to the function through SQS.
    let split = call(w.fx.object_created("drops/customers-1.csv")).await?;
    if !split.to_string().contains("\"outcome\":\"split\"") {
        return Err(format!("the CSV drop was not split: {split}"));
    }
    // (Delivered as direct invocations, so that a refusal comes back with
    // its reason.)
    let chunks =
        w.fx.clients
            .sqs
            .receive_message()
            .queue_url(&w.fx.events_queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .map_err(|e| failed("receiving the chunks", e))?
            .messages
            .unwrap_or_default();
    if chunks.is_empty() {
        return Err("the CSV drop sent no chunk".into());
    }
    for m in chunks {
        let body: Value = serde_json::from_str(m.body().unwrap_or_default())
            .map_err(|e| failed("a chunk message", e))?;
        call(body).await?;
    }
    let drop = split[0]["drop"].as_str().unwrap_or_default().to_string();
    let report = w.fx.drop_report(&drop).await;
    // E4's row is refused: a dead letter and the chunk's rejects file.
    if report.applied != 2 || report.rejected != 1 || !report.completed {
        return Err(format!("the CSV drop was not applied: {report:?}"));
    }
    // SES's event of a message, through SNS.
    let ses = json!({"eventType": "Delivery", "mail": {"timestamp": "2026-12-07T14:00:00Z",
        "messageId": "ses-m1", "tags": {"message_id": ["m1"]}},
        "delivery": {"timestamp": "2026-12-07T14:00:05Z"}});
    call(
        json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
        "Sns": {"Type": "Notification", "MessageId": "sns-1", "Message": ses.to_string()}}]}),
    )
    .await?;
    // The redrive: the refused event goes back to the events queue.
    let redriven = call(json!({"redrive": {}})).await?;
    if redriven["moved"] != json!(1) {
        return Err(format!(
            "the redrive did not move the dead letter: {redriven}"
        ));
    }
    Ok(())
}

/// The sweep worker on day one (no model yet: the prior late rate; mail
/// goes out), then the next container after a model was promoted (it
/// reads the model).
async fn worker(w: &World, config: &SdkConfig) -> Run {
    w.seed().await;
    // An invoice settled long before the sweep's look-back: the sweep folds
    // it (copies in a batch, deletes the live items, writes the aggregate).
    let mut old = invoice("F1", "C1", "2026-07-01", "80.00");
    old["issue_date"] = json!("2026-06-01");
    w.fx.seed(&[old, payment("PF1", "F1", "2026-07-02", "80.00")])
        .await;
    let clients = Clients::new(config);
    let mut svc = SweepService::load(
        &clients,
        &w.fx.settings(),
        &w.fx.send_settings(),
        w.fx.scratch.path(),
    )
    .await
    .map_err(|e| failed("worker: load", e))?;
    // moto does not implement GetAccount (see `unprovable`).
    svc.sending.account = AccountSource::Fixed(Fixture::ses_account());
    if !svc.scorer.name().starts_with("prior-late-rate") {
        return Err(format!("day one scored with {}", svc.scorer.name()));
    }
    // A job over every virtual shard on an invocation whose time is up:
    // it sweeps one virtual shard and hands the rest of the job on through
    // the shard queue (`sqs:SendMessage`), a continuation.
    let continuations =
        collect_sweep::Continuations::on(Queue::new(clients.sqs.clone(), &w.fx.shard_queue_url));
    let whole = collect_aws::queue::SweepJob::new(day("2026-12-07"), 0, 0..SHARDS);
    let body = serde_json::to_string(&whole).unwrap();
    let event: SqsEvent = serde_json::from_value(json!({ "Records": [
        {"messageId": "job-whole", "receiptHandle": "rh", "body": body,
         "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
         "eventSourceARN": World::queue_arn(&w.fx.names.shard_queue), "awsRegion": "us-east-1"}
    ]}))
    .unwrap();
    let mut late = invoke(event);
    late.context.deadline = 1;
    let response = collect_sweep::worker_continuing(&svc, Some(&continuations), late)
        .await
        .map_err(|e| failed("worker: continuation", e))?;
    if !response.batch_item_failures.is_empty() {
        return Err(
            "worker: a job past its deadline could not hand its rest on (not authorized to send to the shard queue?)"
                .into(),
        );
    }
    // The other jobs sweep the rest (the first virtual shard again: done,
    // nothing twice).
    let records: Vec<Value> = (0..SHARDS)
        .map(|shard| {
            json!({"messageId": format!("job-{shard}"), "receiptHandle": "rh",
                "body": json!({"day": "2026-12-07", "shard": shard}).to_string(),
                "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
                "eventSourceARN": World::queue_arn(&w.fx.names.shard_queue), "awsRegion": "us-east-1"})
        })
        .collect();
    let event: SqsEvent = serde_json::from_value(json!({ "Records": records.clone() })).unwrap();
    let response = collect_sweep::worker(&svc, invoke(event))
        .await
        .map_err(|e| failed("worker", e))?;
    if let Some(f) = response.batch_item_failures.first() {
        // The handler logs the reason; run the shard again for it.
        let shard: u32 = f
            .item_identifier
            .trim_start_matches("job-")
            .parse()
            .unwrap();
        let why = svc
            .run_shard(
                collect_aws::queue::ShardJob {
                    day: day("2026-12-07"),
                    shard,
                },
                chrono::Utc::now(),
            )
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        if why.contains("another sweep of this shard") {
            // The handler's run finished but could not give its lease back.
            return Err(format!(
                "worker: shard {shard} failed and kept its lease (giving it back was not authorized?): {why}"
            ));
        }
        return Err(format!("worker: shard {shard} failed: {why}"));
    }
    if w.fx.mail().is_empty() {
        return Err("worker: no mail was sent (not authorized to send?)".into());
    }
    match w.fx.dynamo.payment_history("C1").await {
        Ok(Some(h)) if h.invoices == 1 => {}
        other => {
            return Err(format!(
                "worker: the settled invoice was not folded (not authorized?): {other:?}"
            ));
        }
    }
    // SQS delivers a job again to another invocation: the first gave the
    // shard's lease back, so the second runs (and has nothing left to do).
    let mut context = Context::default();
    context.request_id = "second-invocation".into();
    let again: SqsEvent =
        serde_json::from_value(json!({ "Records": [records[0].clone()] })).unwrap();
    let response = collect_sweep::worker(&svc, LambdaEvent::new(again, context))
        .await
        .map_err(|e| failed("worker", e))?;
    if !response.batch_item_failures.is_empty() {
        return Err(
            "worker: the shard's lease was not given back (not authorized to delete it?)".into(),
        );
    }
    // A day in shadow mode: the report of what would have gone out is
    // written to S3.
    svc.sending.shadow = true;
    let shadow = svc
        .run_shard(
            collect_aws::queue::ShardJob {
                day: day("2026-12-08"),
                shard: 0,
            },
            chrono::Utc::now(),
        )
        .await
        .map_err(|e| failed("worker: shadow mode", e))?;
    if shadow.shadow_report.is_none() {
        return Err("worker: shadow mode wrote no report".into());
    }
    svc.sending.shadow = false;
    // Training promoted a model (the administrator stands for it here).
    let artifact = PriorRateTrainer
        .train(&Default::default(), day("2026-12-01"))
        .unwrap();
    let pointer = w.fx.artifacts.put_model("m1", artifact).await.unwrap();
    w.fx.artifacts.promote_model(&pointer).await.unwrap();
    let artifacts = Artifacts::new(clients.s3.clone(), &w.fx.names.bucket);
    match artifacts.current_model().await {
        Ok(Some((p, _))) if p.revision == "m1" => Ok(()),
        other => Err(format!(
            "worker: the promoted model was not read: {other:?}"
        )),
    }
}

/// Training: the first model is promoted; the next run compares with it.
async fn train(w: &World, config: &SdkConfig) -> Run {
    w.seed().await;
    let clients = Clients::new(config);
    let svc = collect_train::TrainService {
        dynamo: Dynamo::new(clients.dynamodb.clone(), &w.fx.names.table, SHARDS),
        artifacts: Artifacts::new(clients.s3.clone(), &w.fx.names.bucket),
        trainer: Box::new(PriorRateTrainer),
        window_days: 56,
        sample: collect_aws::train::Sample::default(),
    };
    let input = || collect_train::TrainInput {
        day: Some(day("2026-12-20")),
        scheduled_time: None,
    };
    let first = collect_train::handler(&svc, invoke(input()))
        .await
        .map_err(|e| failed("train", e))?;
    if !first.promoted || first.invoices == 0 {
        return Err(format!(
            "train: the first model was not promoted: {first:?}"
        ));
    }
    let second = collect_train::handler(&svc, invoke(input()))
        .await
        .map_err(|e| failed("train", e))?;
    if second.current_version.as_deref() != Some(first.version.as_str()) {
        return Err(format!("train: the current model was not read: {second:?}"));
    }
    Ok(())
}

/// The work queue function: a container's start (the bundle, the model or
/// none yet, the pay-link key, the CSRF key), the queue page, a legal
/// letter's page with its preview, its approval, and the audit export, as
/// the HTTP API hands them over on `/api/…`. The sweep that made the
/// letter ran as the administrator (it is the worker's job).
async fn queue(w: &World, config: &SdkConfig) -> Run {
    use collect_e2e::work_queue::{body, claims, csrf, event, links, queue_function};
    w.fx.seed(&[
        w.fx.customer("L"),
        invoice("L1", "L", "2027-03-08", "900.00"),
        w.fx.customer("K"),
        invoice("K1", "K", "2027-03-27", "400.00"),
    ])
    .await;
    // Training promoted a model (the administrator stands for it): the
    // queue's explanations score with it.
    let artifact = PriorRateTrainer
        .train(&Default::default(), day("2027-04-01"))
        .unwrap();
    let pointer = w.fx.artifacts.put_model("q1", artifact).await.unwrap();
    w.fx.artifacts.promote_model(&pointer).await.unwrap();
    let svc = w.fx.sweep_service().await;
    for shard in 0..SHARDS {
        svc.run_shard(
            collect_aws::queue::ShardJob {
                day: day("2027-04-12"),
                shard,
            },
            "2027-04-12T14:00:00Z".parse().unwrap(),
        )
        .await
        .unwrap();
    }
    let clients = Clients::new(config);
    let key = collect_aws::config::secret(&clients.secrets, &w.queue_key)
        .await
        .map_err(|e| failed("queue: the CSRF key", e))?;
    let (q, _scorer) = queue_function(&w.fx, &clients, key.into_bytes()).await?;
    // The promoted model, read at the container's start as the worker
    // reads it (its scorer cannot be told from the fallback's here: the
    // model is the prior late rate's).
    match Artifacts::new(clients.s3.clone(), &w.fx.names.bucket)
        .current_model()
        .await
    {
        Ok(Some((p, _))) if p.revision == "q1" => {}
        other => return Err(format!("queue: the promoted model was not read: {other:?}")),
    }
    let ana = claims("ana@example.com", "approver");
    let page = |what: &'static str, status: axum::http::StatusCode, text: String| {
        format!(
            "queue: {what} answered {status} (refused by IAM? the function's log names the call): {text}"
        )
    };
    let r = q.handle(event("GET", "/api/", None, &ana)).await;
    let (status, listed) = (r.status(), body(r).await);
    let letters: Vec<String> = links(&listed, "/customers/L/tasks/");
    let Some(letter) = letters.first() else {
        return Err(page("the queue", status, listed));
    };
    let r = q
        .handle(event("GET", &format!("/api{letter}"), None, &ana))
        .await;
    let (status, shown) = (r.status(), body(r).await);
    if !status.is_success() || !shown.contains("/approve") {
        return Err(page("the letter's page", status, shown));
    }
    let form = format!("csrf={}", csrf(&shown));
    let r = q
        .handle(event(
            "POST",
            &format!("/api{letter}/approve"),
            Some(&form),
            &ana,
        ))
        .await;
    let status = r.status();
    if !(status.is_success() || status.is_redirection()) {
        return Err(page("the approval", status, body(r).await));
    }
    // A collector records a call's outcome: a promise to pay (an event).
    let bo = claims("bo@example.com", "collector");
    let r = q.handle(event("GET", "/api/", None, &bo)).await;
    let (status, listed) = (r.status(), body(r).await);
    let Some(call) = links(&listed, "/customers/K/tasks/").into_iter().next() else {
        return Err(page("the collector's queue", status, listed));
    };
    let r = q
        .handle(event("GET", &format!("/api{call}"), None, &bo))
        .await;
    let (status, shown) = (r.status(), body(r).await);
    if !status.is_success() || !shown.contains("/call") {
        return Err(page("the call's page", status, shown));
    }
    let form = format!(
        "csrf={}&outcome=promised&until=2027-04-30&note=pays+end+of+month",
        csrf(&shown)
    );
    let r = q
        .handle(event("POST", &format!("/api{call}/call"), Some(&form), &bo))
        .await;
    let status = r.status();
    if !(status.is_success() || status.is_redirection()) {
        return Err(page("the call's outcome", status, body(r).await));
    }
    let audrey = claims("audrey@example.com", "auditor");
    let r = q
        .handle(event(
            "GET",
            "/api/audit.json?from=2027-04-01&through=2027-04-30",
            None,
            &audrey,
        ))
        .await;
    let (status, audit) = (r.status(), body(r).await);
    if !status.is_success()
        || !audit.contains("ana@example.com")
        || !audit.contains("bo@example.com")
    {
        return Err(page("the audit export", status, audit));
    }
    Ok(())
}

// ------------------------------------------------------------ the proof

/// Grants moto cannot show to be needed (see the module docs), with why.
fn unprovable(action: &str) -> Option<&'static str> {
    match action {
        "s3:ListBucket" => Some(
            "moto answers 404 for a missing key whatever the grants; AWS answers 403 without it",
        ),
        "ses:GetAccount" => Some(
            "moto does not implement GetAccount; the tests give the account as a recorded answer",
        ),
        "ses:GetEmailIdentity" => Some(
            "moto enforcing IAM answers 403 to SES v2 reads whatever the grants; aws_e2e.rs tests the preflight's GetEmailIdentity without IAM",
        ),
        _ => None,
    }
}

/// The template's statements of a function with one grant taken away:
/// each action of each statement, and each resource of a statement naming
/// several S3 or SQS resources (the ones moto checks).
fn mutations(statements: &[Yaml]) -> Vec<(String, Vec<Yaml>)> {
    let mut out = Vec::new();
    for (i, st) in statements.iter().enumerate() {
        let actions = list(&st["Action"]);
        for (j, a) in actions.iter().enumerate() {
            let name = a.as_str().unwrap().to_string();
            if unprovable(&name).is_some() {
                continue;
            }
            let mut changed = statements.to_vec();
            if actions.len() == 1 {
                changed.remove(i);
            } else {
                let mut rest = actions.clone();
                rest.remove(j);
                changed[i]["Action"] = Yaml::Sequence(rest);
            }
            out.push((format!("without {name}"), changed));
        }
        let resources = list(&st["Resource"]);
        let checked = actions.iter().all(|a| {
            let a = a.as_str().unwrap();
            a.starts_with("s3:") || a.starts_with("sqs:")
        });
        if checked && resources.len() > 1 {
            for (j, r) in resources.iter().enumerate() {
                let mut rest = resources.clone();
                rest.remove(j);
                let mut changed = statements.to_vec();
                changed[i]["Resource"] = Yaml::Sequence(rest);
                out.push((
                    format!(
                        "{} without the resource {}",
                        actions[0].as_str().unwrap(),
                        serde_yaml::to_string(r).unwrap().trim()
                    ),
                    changed,
                ));
            }
        }
    }
    out
}

/// Runs a function under its template policy (must succeed) and under each
/// mutation (must fail).
async fn prove<F, Fut>(function: &str, run: F)
where
    F: Fn(World, SdkConfig) -> Fut,
    Fut: std::future::Future<Output = Run>,
{
    let granted = statements(function);
    let w = World::new(&format!("iam-{}", function.to_ascii_lowercase())).await;
    let config = w.user(function, &granted).await;
    if let Err(e) = run(w, config).await {
        panic!("{function} fails under the template's policy (a missing permission?):\n{e}");
    }
    let mut excess = Vec::new();
    for (what, statements) in mutations(&granted) {
        let w = World::new(&format!("iam-{}", function.to_ascii_lowercase())).await;
        let config = w.user(function, &statements).await;
        match run(w, config).await {
            Ok(()) => excess.push(what),
            Err(e) => assert!(
                [
                    "AccessDenied",
                    "Access Denied",
                    "HTTP 403",
                    "not authorized",
                    "not read",
                    "refused"
                ]
                .iter()
                .any(|w| e.contains(w)),
                "{function} {what} failed, but not for lack of permission:\n{e}"
            ),
        }
    }
    assert!(
        excess.is_empty(),
        "{function} does its whole job without these grants of the template (excess permissions): {excess:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_needs_exactly_its_grants() {
    prove("SweepCoordinatorFunction", |w, c| async move {
        coordinator(&w, &c).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_worker_needs_exactly_its_grants_and_runs_on_day_one() {
    prove(
        "SweepWorkerFunction",
        |w, c| async move { worker(&w, &c).await },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_function_needs_exactly_its_grants() {
    prove("EventsFunction", |w, c| async move { events(&w, &c).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_needs_exactly_its_grants_and_makes_the_first_model() {
    prove("TrainFunction", |w, c| async move { train(&w, &c).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_work_queue_needs_exactly_its_grants() {
    prove("QueueFunction", |w, c| async move { queue(&w, &c).await }).await;
}

/// On AWS, a role without `s3:ListBucket` gets 403 for a key that does not
/// exist. moto answers 403 for a key the user may not read: the pointer is
/// then "not there yet", and the sweep scores with the prior late rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pointer_s3_refuses_is_not_there_yet() {
    let w = World::new("iam-403").await;
    let only_bundles: Vec<Yaml> = vec![
        serde_yaml::from_str(
            "{Effect: Allow, Action: 's3:GetObject', Resource: !Sub '${ArtifactsBucket.Arn}/bundles/*'}",
        )
        .unwrap(),
    ];
    let config = w.user("bundles-only", &only_bundles).await;
    let artifacts = Artifacts::new(Clients::new(&config).s3.clone(), &w.fx.names.bucket);
    match artifacts.fetch("models/current").await.unwrap() {
        Fetched::Denied(message) => {
            assert!(message.to_string().contains("AccessDenied"), "{message}")
        }
        other => panic!("expected S3's 403, got {other:?}"),
    }
    assert_eq!(artifacts.current_model_pointer().await.unwrap(), None);
    let scorer = load_scorer(&artifacts).await.unwrap();
    assert!(
        scorer.name().starts_with("prior-late-rate"),
        "{}",
        scorer.name()
    );
    // The bundle, which it may read, is read.
    assert_eq!(
        artifacts.current_bundle().await.unwrap().manifest.revision,
        "iam-rev-1"
    );
    // A key it may read that does not exist is S3's 404.
    assert_eq!(
        artifacts.fetch("bundles/none.tar").await.unwrap(),
        Fetched::Missing
    );
}
