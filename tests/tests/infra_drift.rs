#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The table keys, the index and the TTL attribute the code uses are the
//! ones `infra/template.yaml` declares; the environment variables the
//! functions read are the ones the template sets. CloudFormation's short
//! tags (`!Ref`, `!GetAtt`, `!Sub`) parse as YAML tags and are kept as such.

use std::collections::BTreeSet;

use collect_aws::keys;
use serde_yaml::Value;

fn template() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not text: {other:?}"),
    }
}

fn tables(t: &Value) -> Vec<&Value> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::DynamoDB::Table")
        .collect()
}

#[test]
fn the_table_the_code_uses_is_the_one_the_template_declares() {
    let t = template();
    let tables = tables(&t);
    assert_eq!(tables.len(), 1, "one table (single-table design)");
    let p = &tables[0]["Properties"];

    let key_schema: Vec<(String, String)> = p["KeySchema"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| (text(&k["AttributeName"]), text(&k["KeyType"])))
        .collect();
    assert_eq!(
        key_schema,
        vec![
            (keys::PK.to_string(), "HASH".to_string()),
            (keys::SK.to_string(), "RANGE".to_string())
        ]
    );

    let declared: BTreeSet<(String, String)> = p["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| (text(&a["AttributeName"]), text(&a["AttributeType"])))
        .collect();
    let used: BTreeSet<(String, String)> = keys::KEY_ATTRIBUTES
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    assert_eq!(declared, used);

    let indexes = p["GlobalSecondaryIndexes"].as_sequence().unwrap();
    assert_eq!(indexes.len(), 1);
    let gsi = &indexes[0];
    assert_eq!(text(&gsi["IndexName"]), keys::GSI1);
    let gsi_keys: Vec<(String, String)> = gsi["KeySchema"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| (text(&k["AttributeName"]), text(&k["KeyType"])))
        .collect();
    assert_eq!(
        gsi_keys,
        vec![
            (keys::GSI1PK.to_string(), "HASH".to_string()),
            (keys::GSI1SK.to_string(), "RANGE".to_string())
        ]
    );
    // The worker reads only keys from the index (then the base table).
    assert_eq!(text(&gsi["Projection"]["ProjectionType"]), "KEYS_ONLY");

    assert_eq!(
        text(&p["TimeToLiveSpecification"]["AttributeName"]),
        keys::TTL
    );
    assert_eq!(p["TimeToLiveSpecification"]["Enabled"], Value::Bool(true));
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        Value::Bool(true)
    );
    assert_eq!(p["SSESpecification"]["SSEEnabled"], Value::Bool(true));
}

#[test]
fn the_functions_get_every_setting_they_read() {
    let raw = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml"),
    )
    .unwrap();
    for var in [
        "TABLE_NAME",
        "BUCKET_NAME",
        "SHARDS",
        "VIRTUAL_SHARDS",
        "SWEEP_MARGIN_PERCENT",
        "TRAIN_SAMPLE_CUSTOMERS",
        "TRAIN_SAMPLE_INVOICES",
        "SWEEP_ROLE",
        "SHARD_QUEUE_URL",
        "DEAD_LETTER_QUEUE_URL",
        "SENDER_ADDRESS",
        "PAY_URL_PATTERN",
        "PAY_LINK_SECRET_ID",
        "SES_CONFIGURATION_SET",
        "SEND_TIME_UTC",
        "SENDER_IDENTITY",
        "WORKER_CONCURRENCY",
        "SHADOW_MODE",
        "EXPECTED_DAILY_MESSAGES",
        "METRICS_NAMESPACE",
        "EVENTS_QUEUE_URL",
        "DROP_CHUNK_BYTES",
        "DROP_CHUNK_ROWS",
        // The work queue (functions/queue/src/start.rs).
        "SWEEP_SCHEDULE",
        "SCHEDULE_TIMEZONE",
        "QUEUE_KEY_SECRET_ID",
        "USER_POOL_CLIENT_ID",
        "USER_POOL_ISSUER",
        "SIGN_IN_URL",
        "QUEUE_URL",
    ] {
        assert!(
            raw.contains(&format!("{var}:")),
            "the template does not set {var}"
        );
    }
    let t = template();
    let functions: Vec<&Value> = t["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::Serverless::Function")
        .collect();
    assert_eq!(functions.len(), 5);
    for f in functions {
        let binary = text(&f["Metadata"]["BuildProperties"]["Binary"]);
        assert!(
            ["sweep", "events", "train", "queue"].contains(&binary.as_str()),
            "{binary}"
        );
        assert_eq!(text(&f["Metadata"]["BuildMethod"]), "rust-cargolambda");
        // Least privilege: no `*` action or resource in a function's policy,
        // except for the actions that have no resource to name (IAM's
        // Service Authorization Reference lists none for them).
        let no_resource = ["ses:GetAccount"];
        let mut kept = f["Properties"]["Policies"].clone();
        for policy in kept.as_sequence_mut().unwrap() {
            if let Some(statements) = policy["Statement"].as_sequence_mut() {
                statements.retain(|st| {
                    let bare = st["Action"]
                        .as_str()
                        .is_some_and(|a| no_resource.contains(&a));
                    if bare {
                        assert_eq!(st["Resource"], Value::from("*"), "{st:?}");
                    }
                    !bare
                });
            }
        }
        let policies = serde_yaml::to_string(&kept).unwrap();
        assert!(
            !policies.contains("'*'") && !policies.contains(":*\n"),
            "{policies}"
        );
    }
    let globals = &t["Globals"]["Function"];
    assert_eq!(text(&globals["Runtime"]), "provided.al2023");
    assert_eq!(globals["Architectures"][0], Value::from("arm64"));
}

/// The DynamoDB actions each function's policy allows: exactly the
/// operations its code makes (all of them, or it fails in AWS; no more, for
/// least privilege). `iam_enforced.rs` runs the functions under these
/// policies on an endpoint that checks IAM; this test pins the table's
/// resources and conditions, which that endpoint does not check.
fn dynamodb_actions(f: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for policy in f["Properties"]["Policies"].as_sequence().unwrap() {
        for st in policy["Statement"].as_sequence().unwrap_or(&Vec::new()) {
            let actions = match &st["Action"] {
                Value::Sequence(a) => a.iter().map(text).collect(),
                other => vec![text(other)],
            };
            out.extend(actions.into_iter().filter(|a| a.starts_with("dynamodb:")));
        }
    }
    out
}

#[test]
fn each_function_may_make_exactly_the_table_calls_it_makes() {
    let t = template();
    let r = &t["Resources"];
    let set = |a: &[&str]| -> BTreeSet<String> { a.iter().map(|s| s.to_string()).collect() };
    // The sweep worker: the ledger (`aws/ledger.rs`, `aws/dynamo.rs`) reads
    // with Query, GetItem and BatchGetItem (unfinished messages), writes
    // messages and leases with conditional PutItem (a lease given back is
    // kept, expired: no DeleteItem) and actions with conditional UpdateItem
    // (the write appends to the action's trail), and moves messages to
    // `sending` in TransactWriteItems with a ConditionCheck of the lease;
    // the fold of settled invoices (`aws/dynamo/fold.rs`) copies them with
    // BatchWriteItem and deletes the live items with conditional DeleteItem.
    assert_eq!(
        dynamodb_actions(&r["SweepWorkerFunction"]),
        set(&[
            "dynamodb:Query",
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:DeleteItem"
        ])
    );
    // The events function: upserts, conditional puts, CSV drops in chunks
    // (what is stored read with BatchGetItem, written in batches; each
    // chunk sets its entry in the drop's item with UpdateItem).
    assert_eq!(
        dynamodb_actions(&r["EventsFunction"]),
        set(&[
            "dynamodb:Query",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:BatchGetItem",
            "dynamodb:UpdateItem"
        ])
    );
    // Training only reads.
    assert_eq!(
        dynamodb_actions(&r["TrainFunction"]),
        set(&["dynamodb:Query"])
    );
    assert!(dynamodb_actions(&r["SweepCoordinatorFunction"]).is_empty());
    // The work queue: the open-work index (one Query per shard) and the
    // customers' partitions (Query), a page's rows (one BatchGetItem), the
    // tasks' items (GetItem), a person's acts (the action's conditional
    // UpdateItem with its trail line; the events a call's outcome or an
    // end-of-ladder decision records: PutItem). No DeleteItem: a reopened
    // decision is a new trail line.
    assert_eq!(
        dynamodb_actions(&r["QueueFunction"]),
        set(&[
            "dynamodb:Query",
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem"
        ])
    );
}

/// The work queue's sign-in, as the template wires it and the function
/// reads it: the JWT authorizer trusts exactly the user pool and app client
/// the function verifies session cookies with; only `/api/…` sits behind it
/// (browsers send cookies, not `Authorization`), the sign-in routes and the
/// pages reach the function, which verifies the cookie itself; the groups
/// are the roles the function knows; the app client's callback is the
/// function's `/auth/callback`.
#[test]
fn the_work_queue_signs_in_with_the_pool_the_authorizer_trusts() {
    let t = template();
    let r = &t["Resources"];
    let yaml = |v: &Value| serde_yaml::to_string(v).unwrap();
    let env = &r["QueueFunction"]["Properties"]["Environment"]["Variables"];
    let authorizer = &r["QueueAuthorizer"]["Properties"];
    assert_eq!(text(&authorizer["AuthorizerType"]), "JWT");
    assert_eq!(
        authorizer["IdentitySource"],
        Value::Sequence(vec![Value::from("$request.header.Authorization")])
    );
    // The same issuer expression and the same client on both sides.
    assert_eq!(
        yaml(&authorizer["JwtConfiguration"]["Issuer"]),
        yaml(&env["USER_POOL_ISSUER"])
    );
    assert_eq!(
        reference(&authorizer["JwtConfiguration"]["Audience"][0]),
        "QueueUserPoolClient"
    );
    assert_eq!(
        reference(&env["USER_POOL_CLIENT_ID"]),
        "QueueUserPoolClient"
    );
    // The routes: which are behind the authorizer, which the function guards.
    let mut routes = Vec::new();
    for res in r.as_mapping().unwrap().values() {
        if res["Type"] == "AWS::ApiGatewayV2::Route" {
            let p = &res["Properties"];
            routes.push((text(&p["RouteKey"]), text(&p["AuthorizationType"])));
            assert!(yaml(&p["Target"]).contains("QueueIntegration"));
        }
    }
    routes.sort();
    assert_eq!(
        routes,
        vec![
            ("$default".to_string(), "NONE".to_string()),
            ("ANY /api/{proxy+}".to_string(), "JWT".to_string()),
            ("GET /auth/{proxy+}".to_string(), "NONE".to_string()),
        ]
    );
    assert_eq!(collect_queue::app::API_PREFIX, "/api");
    // The groups are the roles the function maps.
    let mut groups: Vec<String> = r
        .as_mapping()
        .unwrap()
        .values()
        .filter(|res| res["Type"] == "AWS::Cognito::UserPoolGroup")
        .map(|g| text(&g["Properties"]["GroupName"]))
        .collect();
    groups.sort();
    let mut known: Vec<String> = collect_queue::claims::GROUPS
        .iter()
        .map(|g| g.to_string())
        .collect();
    known.sort();
    assert_eq!(groups, known);
    // The callback and sign-out addresses are the function's.
    let client = &r["QueueUserPoolClient"]["Properties"];
    let queue_url = yaml(&env["QUEUE_URL"]);
    let queue_url = queue_url
        .trim()
        .trim_start_matches("!Sub")
        .trim()
        .trim_matches('\'');
    assert!(
        yaml(&client["CallbackURLs"]).contains(&format!("{queue_url}/auth/callback")),
        "{queue_url}"
    );
    assert!(yaml(&client["LogoutURLs"]).contains(&format!("{queue_url}/auth/signed-out")));
    assert_eq!(client["GenerateSecret"], Value::Bool(false));
    assert_eq!(
        client["AllowedOAuthFlows"],
        Value::Sequence(vec![Value::from("code")])
    );
    // Only administrators add people.
    assert_eq!(
        r["UserPool"]["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"],
        Value::Bool(true)
    );
    // The sweep's schedule the function is told is the one that runs.
    assert_eq!(reference(&env["SWEEP_SCHEDULE"]), "SweepSchedule");
    assert_eq!(
        reference(
            &r["SweepCoordinatorFunction"]["Properties"]["Events"]["Daily"]["Properties"]["ScheduleExpression"]
        ),
        "SweepSchedule"
    );
    assert_eq!(reference(&env["SCHEDULE_TIMEZONE"]), "ScheduleTimezone");
}

/// The logical name a `!Ref X` names.
fn reference(v: &Value) -> String {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => text(&t.value),
        other => panic!("not a !Ref: {other:?}"),
    }
}

#[test]
fn the_readme_lists_every_parameter() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"),
    )
    .unwrap();
    let t = template();
    let missing: Vec<String> = t["Parameters"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(text)
        .filter(|name| !readme.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's parameter table lacks {missing:?}"
    );
}

#[test]
fn state_is_kept_and_every_function_is_bounded_and_logged() {
    let t = template();
    let r = &t["Resources"];
    // Deleting or replacing the stack keeps the ledger, the artifacts and
    // the key that signed the pay links already sent.
    for name in ["Table", "ArtifactsBucket", "PayLinkKey"] {
        assert_eq!(r[name]["DeletionPolicy"], Value::from("Retain"), "{name}");
        assert_eq!(
            r[name]["UpdateReplacePolicy"],
            Value::from("Retain"),
            "{name}"
        );
    }
    for (name, f) in r.as_mapping().unwrap() {
        if f["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let p = &f["Properties"];
        let group = reference(&p["LoggingConfig"]["LogGroup"]);
        assert_eq!(
            r[group.as_str()]["Type"],
            Value::from("AWS::Logs::LogGroup"),
            "{name:?}"
        );
        assert_eq!(
            reference(&r[group.as_str()]["Properties"]["RetentionInDays"]),
            "LogRetentionDays",
            "{name:?}"
        );
        assert!(
            !p["ReservedConcurrentExecutions"].is_null(),
            "{name:?} has no reserved concurrency"
        );
    }
    for (name, res) in r.as_mapping().unwrap() {
        if res["Type"] == "AWS::SNS::Topic" {
            assert!(
                !res["Properties"]["KmsMasterKeyId"].is_null(),
                "{name:?} is not encrypted"
            );
        }
    }
    // No sweep at all is an alarm: no invocation, no data point.
    assert_eq!(
        r["SweepMissed"]["Properties"]["TreatMissingData"],
        Value::from("breaching")
    );
    // The drops expire after the configured days.
    let rules = r["ArtifactsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        .as_sequence()
        .unwrap();
    let drops = rules
        .iter()
        .find(|rule| rule["Prefix"] == "drops/")
        .unwrap();
    assert_eq!(reference(&drops["ExpirationInDays"]), "DropsExpirationDays");
    // So do the rejects files of their chunks (outside drops/, so writing
    // one is no new drop).
    let rejects = rules
        .iter()
        .find(|rule| rule["Prefix"] == "rejects/")
        .unwrap();
    assert_eq!(
        reference(&rejects["ExpirationInDays"]),
        "DropsExpirationDays"
    );
    // The word the functions log when S3 refuses a pointer is the one the
    // alarm's metric filters look for.
    for filter in [
        "WorkerArtifactAccessDeniedFilter",
        "TrainArtifactAccessDeniedFilter",
    ] {
        assert_eq!(
            text(&r[filter]["Properties"]["FilterPattern"]),
            format!("\"{}\"", collect_aws::artifacts::ACCESS_DENIED_MARKER)
        );
    }
}

/// The alarms and the dashboard read the metric names and dimension values
/// the functions write (functions/aws/src/metrics.rs), in the namespace
/// the functions are given; the events queue's own redrive is a backstop
/// behind the function's last attempt.
#[test]
fn the_alarms_and_the_dashboard_read_the_metrics_the_functions_write() {
    use collect_aws::metrics::{self, FailedClass};
    let t = template();
    let r = &t["Resources"];
    let namespace = serde_yaml::to_string(
        &t["Globals"]["Function"]["Environment"]["Variables"]["METRICS_NAMESPACE"],
    )
    .unwrap();
    // Metrics made by the template's own log filters (a marker in a log
    // line), not written as EMF by the functions.
    let filtered: Vec<String> = r
        .as_mapping()
        .unwrap()
        .values()
        .filter(|f| f["Type"] == "AWS::Logs::MetricFilter")
        .flat_map(|f| {
            f["Properties"]["MetricTransformations"]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(|m| text(&m["MetricName"]))
        })
        .collect();
    assert!(filtered.iter().any(|m| m == "SesQuotaStop"), "{filtered:?}");
    let ours: Vec<(&Value, &Value)> = r
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, a)| {
            a["Type"] == "AWS::CloudWatch::Alarm"
                && serde_yaml::to_string(&a["Properties"]["Namespace"])
                    .unwrap()
                    .contains("ProactiveCollections/${AWS::StackName}")
                && !filtered.contains(&text(&a["Properties"]["MetricName"]))
        })
        .collect();
    assert!(ours.len() >= 5, "{}", ours.len());
    assert!(
        namespace.contains("ProactiveCollections/${AWS::StackName}"),
        "{namespace}"
    );
    let written = [
        metrics::FAILED,
        metrics::SHARDS_FAILED,
        metrics::SENT,
        metrics::PLANNED,
    ];
    let mut classes = Vec::new();
    for (name, alarm) in ours {
        let p = &alarm["Properties"];
        let metric = text(&p["MetricName"]);
        assert!(written.contains(&metric.as_str()), "{name:?}: {metric}");
        for d in p["Dimensions"].as_sequence().unwrap() {
            match text(&d["Name"]).as_str() {
                "Function" => assert_eq!(text(&d["Value"]), "sweep-worker", "{name:?}"),
                "Class" => classes.push(text(&d["Value"])),
                other => panic!("{name:?}: dimension {other} is not written"),
            }
        }
    }
    classes.sort();
    let mut expected: Vec<String> = FailedClass::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    expected.sort();
    assert_eq!(classes, expected, "one alarm per failure class");
    // The dashboard names only metrics the functions write.
    let body =
        serde_yaml::to_string(&r["OperationsDashboard"]["Properties"]["DashboardBody"]).unwrap();
    for m in [
        metrics::PLANNED,
        metrics::SENT,
        metrics::HELD,
        metrics::THROTTLED,
        metrics::DEFERRED,
        metrics::FAILED,
        metrics::SHARDS_ENQUEUED,
        metrics::SHARDS_DONE,
        metrics::SHARDS_CONTINUED,
        metrics::SHARDS_FAILED,
        metrics::RECORDS_IN,
        metrics::RECORDS_DEAD_LETTERED,
        metrics::REDRIVEN,
        metrics::DROP_CHUNKS,
        metrics::DROPS_COMPLETED,
        metrics::TRAINING_ROWS,
        metrics::CHALLENGER_BRIER,
    ] {
        assert!(
            body.contains(&format!("\"{m}\"")) || body.contains(&format!("\\\"{m}\\\"")),
            "the dashboard lacks {m}"
        );
    }
    // The function gives up before the queue's own redrive does.
    let max = r["EventsQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
        .as_u64()
        .unwrap();
    assert!(u64::from(collect_events::GIVE_UP_AFTER) < max);
    // A CSV drop's chunks come through the events queue: a batch of
    // chunks fits the function's time (BENCHMARKS.md, "AWS: a
    // 1,000,000-row CSV drop": at most ~5 s a chunk of 1,000 rows when ten
    // share a new on-demand table's 4,000 writes a second), and a message
    // is not delivered again while a batch may still be running (AWS asks
    // for 6 times the timeout).
    let events = &r["EventsFunction"]["Properties"];
    let timeout = events["Timeout"].as_u64().unwrap();
    let mapping = &events["Events"]["ErpQueue"]["Properties"];
    let batch = mapping["BatchSize"].as_u64().unwrap();
    let rows: u64 = text(&events["Environment"]["Variables"]["DROP_CHUNK_ROWS"])
        .parse()
        .unwrap();
    let bytes: u64 = text(&events["Environment"]["Variables"]["DROP_CHUNK_BYTES"])
        .parse()
        .unwrap();
    assert!(
        rows <= 1_000 && bytes <= 4 * 1024 * 1024,
        "{rows} rows, {bytes} bytes"
    );
    let per_chunk = rows * 2 / 400;
    assert!(
        batch * per_chunk <= timeout / 2,
        "{batch} chunks of ≤ {per_chunk} s in {timeout} s"
    );
    let visibility = r["EventsQueue"]["Properties"]["VisibilityTimeout"]
        .as_u64()
        .unwrap();
    assert!(visibility >= 6 * timeout, "{visibility} s for {timeout} s");
    // Failed invocations and the rule's dead letters come back through the
    // events queue, not straight to the dead-letter queue.
    let target =
        serde_yaml::to_string(&r["EventsFunction"]["Properties"]["DeadLetterQueue"]["TargetArn"])
            .unwrap();
    assert!(target.contains("EventsQueue.Arn"), "{target}");
}
