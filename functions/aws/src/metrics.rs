//! The functions' own metrics, in CloudWatch's *embedded metric format*
//! (EMF): one JSON log line per record, written to standard output, which
//! CloudWatch Logs turns into metrics without a call of ours (no
//! `cloudwatch:PutMetricData`, no client, nothing added to what the Lambdas
//! link but serde_json).
//!
//! Every line names its function (`Function`: `sweep-coordinator`,
//! `sweep-worker`, `events`, `train`) in the namespace `METRICS_NAMESPACE`
//! (the template sets `ProactiveCollections/<stack>`); the line of a sweep
//! worker also carries the day and the shard as properties, so a shard's
//! line is found in Logs Insights while the metrics themselves stay one
//! series per function (a `Shard` dimension would be 64 series per metric).
//!
//! What the sweep counts, per run and shard ([`shard_lines`]): `Planned`,
//! `Recorded`, `Sent`, `Held`, `Throttled`, `DurationMs`, `ShardsDone` (the
//! job's last invocation) or `ShardsContinued` (its rest enqueued), and two metrics
//! split by a bounded dimension:
//! - `Deferred` by `Reason` ([`DeferReason`]: a fixed set of kinds, never
//!   the free text of the report);
//! - `Failed` by `Class` ([`FailedClass`]: transient, recipient, service,
//!   or message: our side, a message that could not be composed).
//!
//! The alarms and the dashboard in `infra/template.yaml` read these names
//! (a test in `tests/tests/infra_drift.rs` keeps the two in step).

use serde_json::{Map, Value, json};

use super::sweep::ShardReport;

/// The namespace when `METRICS_NAMESPACE` is not set (tests, a local run).
pub const DEFAULT_NAMESPACE: &str = "ProactiveCollections";

/// The dimension naming the function of every line.
pub const FUNCTION: &str = "Function";
/// The dimension of [`FAILED`]: a [`FailedClass`].
pub const CLASS: &str = "Class";
/// The dimension of [`DEFERRED`]: a [`DeferReason`].
pub const REASON: &str = "Reason";

/// Sweep worker, per shard and run.
pub const PLANNED: &str = "Planned";
pub const RECORDED: &str = "Recorded";
pub const SENT: &str = "Sent";
pub const HELD: &str = "Held";
pub const THROTTLED: &str = "Throttled";
pub const DEFERRED: &str = "Deferred";
pub const FAILED: &str = "Failed";
pub const DURATION: &str = "DurationMs";
/// Shards whose run failed (left for SQS to deliver again): the worker
/// answers with a partial batch failure, so Lambda's `Errors` stays 0.
pub const SHARDS_FAILED: &str = "ShardsFailed";
/// Jobs that stopped before their invocation's time limit and enqueued
/// their rest (a continuation).
pub const SHARDS_CONTINUED: &str = "ShardsContinued";
/// Jobs whose last virtual shard was swept: the day's jobs are done when
/// `ShardsDone` reaches `ShardsEnqueued`.
pub const SHARDS_DONE: &str = "ShardsDone";
/// Sweep coordinator.
pub const SHARDS_ENQUEUED: &str = "ShardsEnqueued";
/// Events function, per invocation.
pub const RECORDS_IN: &str = "RecordsIn";
pub const RECORDS_APPLIED: &str = "RecordsApplied";
pub const RECORDS_REJECTED: &str = "RecordsRejected";
pub const RECORDS_DEAD_LETTERED: &str = "RecordsDeadLettered";
pub const RECORDS_RETRIED: &str = "RecordsRetried";
pub const REDRIVEN: &str = "Redriven";
/// Events function: chunks of CSV drops applied, and drops whose last
/// chunk was applied (counted once per drop).
pub const DROP_CHUNKS: &str = "DropChunks";
pub const DROPS_COMPLETED: &str = "DropsCompleted";
/// Train function, per run.
pub const TRAINING_ROWS: &str = "TrainingRows";
pub const CHALLENGER_BRIER: &str = "ChallengerBrier";
pub const PROMOTED: &str = "Promoted";

/// A metric's unit, as the EMF specification spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::None => "None",
        }
    }
}

/// Which function writes a line (the value of the `Function` dimension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    SweepCoordinator,
    SweepWorker,
    Events,
    Train,
}

impl Function {
    pub fn as_str(self) -> &'static str {
        match self {
            Function::SweepCoordinator => "sweep-coordinator",
            Function::SweepWorker => "sweep-worker",
            Function::Events => "events",
            Function::Train => "train",
        }
    }
}

/// Why a message or step was not sent by this run but is not lost: the
/// bounded set of kinds the `Deferred` metric is split by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeferReason {
    /// The checks before sending took everything out of the message
    /// (paid, disputed, held, do-not-contact, …): its reason is in the log.
    Checks,
    /// Left `sending` within the grace period: SES's events may still come.
    InDoubt,
    /// Another run recorded or moved it first.
    Conflict,
    /// A customer set aside (an absurd amount): everyone else was swept.
    SetAside,
    /// An open invoice no policy covers (currency, not yet in effect).
    NotCovered,
    /// An approved action a guardrail keeps waiting.
    AwaitingGuardrail,
}

impl DeferReason {
    pub const ALL: [DeferReason; 6] = [
        DeferReason::Checks,
        DeferReason::InDoubt,
        DeferReason::Conflict,
        DeferReason::SetAside,
        DeferReason::NotCovered,
        DeferReason::AwaitingGuardrail,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeferReason::Checks => "checks",
            DeferReason::InDoubt => "in_doubt",
            DeferReason::Conflict => "conflict",
            DeferReason::SetAside => "set_aside",
            DeferReason::NotCovered => "not_covered",
            DeferReason::AwaitingGuardrail => "awaiting_guardrail",
        }
    }
}

/// The class of a failed send, the `Class` of the `Failed` metric: the
/// mail service's three classes (`collect_delivery::mailer::FailureClass`:
/// transient: retried, then left planned; this recipient: held, a task for
/// a person; the whole service: the run stops) and `Message`, our own side
/// (a message that could not be composed: deferred until the template is
/// fixed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailedClass {
    Transient,
    Recipient,
    Service,
    Message,
}

impl FailedClass {
    pub const ALL: [FailedClass; 4] = [
        FailedClass::Transient,
        FailedClass::Recipient,
        FailedClass::Service,
        FailedClass::Message,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailedClass::Transient => "transient",
            FailedClass::Recipient => "recipient",
            FailedClass::Service => "service",
            FailedClass::Message => "message",
        }
    }

    /// How many sends of a shard's run failed in this class: transient
    /// ones left for the next sweep (`retry_later`, after the retries),
    /// recipients held (`recipients_held`), messages that could not be
    /// composed (`failed`). A service failure stops the run, so it has no
    /// shard report: the worker counts it when the shard fails
    /// (`ShardsFailed`, and `Failed` with `Class=service`).
    pub fn count_in(self, report: &ShardReport) -> usize {
        match self {
            FailedClass::Transient => report.retry_later.len(),
            FailedClass::Recipient => report.recipients_held,
            FailedClass::Service => 0,
            FailedClass::Message => report.failed.len(),
        }
    }
}

/// One EMF document: dimensions, metrics and extra properties.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricLine {
    namespace: String,
    dimensions: Vec<(&'static str, String)>,
    metrics: Vec<(&'static str, Unit, f64)>,
    properties: Map<String, Value>,
}

impl MetricLine {
    /// A line of `function` in `namespace`.
    pub fn new(namespace: &str, function: Function) -> MetricLine {
        MetricLine {
            namespace: namespace.to_string(),
            dimensions: vec![(FUNCTION, function.as_str().to_string())],
            metrics: Vec::new(),
            properties: Map::new(),
        }
    }

    /// Adds a dimension (its value must be one of a bounded set).
    pub fn dimension(mut self, name: &'static str, value: &str) -> MetricLine {
        self.dimensions.push((name, value.to_string()));
        self
    }

    pub fn count(mut self, name: &'static str, n: usize) -> MetricLine {
        // Counts are far below 2^53: exact as f64.
        #[allow(clippy::cast_precision_loss)]
        self.metrics.push((name, Unit::Count, n as f64));
        self
    }

    pub fn millis(mut self, name: &'static str, ms: u128) -> MetricLine {
        #[allow(clippy::cast_precision_loss)]
        self.metrics.push((name, Unit::Milliseconds, ms as f64));
        self
    }

    /// A value without a unit (a score); not finite values are left out, as
    /// EMF refuses them.
    pub fn value(mut self, name: &'static str, v: f64) -> MetricLine {
        if v.is_finite() {
            self.metrics.push((name, Unit::None, v));
        }
        self
    }

    /// A property: searchable in the logs, not a metric nor a dimension.
    pub fn property(mut self, name: &str, value: impl Into<Value>) -> MetricLine {
        self.properties.insert(name.to_string(), value.into());
        self
    }

    /// The document, stamped `timestamp_ms` (milliseconds since the epoch).
    pub fn to_json(&self, timestamp_ms: i64) -> Value {
        let mut root = self.properties.clone();
        for (name, value) in &self.dimensions {
            root.insert((*name).to_string(), Value::from(value.as_str()));
        }
        for (name, _, v) in &self.metrics {
            root.insert((*name).to_string(), json!(v));
        }
        let dims: Vec<&str> = self.dimensions.iter().map(|(n, _)| *n).collect();
        let metrics: Vec<Value> = self
            .metrics
            .iter()
            .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dims],
                    "Metrics": metrics,
                }],
            }),
        );
        Value::Object(root)
    }

    /// Writes the line to standard output, where Lambda's log agent picks
    /// it up. A line without metrics is not written.
    pub fn emit(&self) {
        if self.metrics.is_empty() {
            return;
        }
        // The edge of the system: the wall clock stamps the metric.
        let now = chrono::Utc::now().timestamp_millis();
        println!("{}", self.to_json(now));
    }
}

/// The namespace of this function's metrics: `METRICS_NAMESPACE`, or
/// [`DEFAULT_NAMESPACE`].
pub fn namespace() -> String {
    super::config::env_opt("METRICS_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.to_string())
}

/// The lines of one shard's run: the counts, then one line per deferral
/// reason and per failure class that occurred (a zero is written for the
/// classes an alarm watches, so their alarms see data, not gaps).
pub fn shard_lines(namespace: &str, report: &ShardReport, duration_ms: u128) -> Vec<MetricLine> {
    let base = || {
        let mut line =
            MetricLine::new(namespace, Function::SweepWorker).property("shard", report.shard);
        if let Some(day) = report.day {
            line = line.property("day", day.to_string());
        }
        line
    };
    let mut lines = vec![
        base()
            .count(PLANNED, report.planned)
            .count(RECORDED, report.recorded)
            .count(SENT, report.sent.len())
            .count(HELD, report.held)
            .count(THROTTLED, report.retry_later.len())
            .count(SHARDS_CONTINUED, usize::from(!report.done()))
            .count(SHARDS_DONE, usize::from(report.done()))
            .millis(DURATION, duration_ms),
    ];
    let deferred = |reason: DeferReason| match reason {
        DeferReason::Checks => report.cancelled.len(),
        DeferReason::InDoubt => report.in_doubt.len(),
        DeferReason::Conflict => report.conflicts,
        DeferReason::SetAside => report.unprocessable.len(),
        DeferReason::NotCovered => report.not_covered,
        DeferReason::AwaitingGuardrail => report.approved_waiting,
    };
    for reason in DeferReason::ALL {
        let n = deferred(reason);
        if n > 0 {
            lines.push(base().dimension(REASON, reason.as_str()).count(DEFERRED, n));
        }
    }
    for class in FailedClass::ALL {
        let n = class.count_in(report);
        lines.push(base().dimension(CLASS, class.as_str()).count(FAILED, n));
    }
    lines
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use collect_engine::domain::MessageId;

    /// The rules of the specification ("Specification: Embedded metric
    /// format", CloudWatch user guide) a document must follow, checked on
    /// the JSON itself.
    fn assert_valid_emf(doc: &Value) {
        let root = doc.as_object().expect("a JSON object");
        let aws = root["_aws"].as_object().expect("`_aws` is an object");
        let ts = aws["Timestamp"]
            .as_i64()
            .expect("Timestamp: ms since the epoch");
        assert!(ts > 0);
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert!(!directives.is_empty());
        for d in directives {
            let ns = d["Namespace"].as_str().unwrap();
            assert!((1..=255).contains(&ns.len()), "Namespace length");
            let sets = d["Dimensions"].as_array().unwrap();
            for set in sets {
                let set = set.as_array().unwrap();
                assert!(set.len() <= 30, "at most 30 dimensions in a set");
                for key in set {
                    // A dimension is a member of the root, with a string value.
                    let key = key.as_str().unwrap();
                    assert!(root[key].is_string(), "dimension {key} is a string member");
                }
            }
            let metrics = d["Metrics"].as_array().unwrap();
            assert!((1..=100).contains(&metrics.len()), "1 to 100 metrics");
            for m in metrics {
                let name = m["Name"].as_str().unwrap();
                assert!((1..=1024).contains(&name.len()));
                assert!(root[name].is_number(), "metric {name} is a number member");
                let unit = m["Unit"].as_str().unwrap();
                assert!(
                    [
                        "Count",
                        "Milliseconds",
                        "None",
                        "Seconds",
                        "Bytes",
                        "Percent"
                    ]
                    .contains(&unit),
                    "{unit}"
                );
            }
        }
    }

    fn report() -> ShardReport {
        ShardReport {
            day: Some(chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap()),
            shard: 5,
            planned: 7,
            recorded: 9,
            held: 2,
            sent: vec![MessageId::new("m1"), MessageId::new("m2")],
            cancelled: vec![(MessageId::new("m3"), "paid in full".into())],
            in_doubt: vec![MessageId::new("m4")],
            retry_later: vec![(MessageId::new("m5"), "throttled".into())],
            failed: vec![(MessageId::new("m6"), "rejected".into())],
            ..ShardReport::default()
        }
    }

    #[test]
    fn a_line_follows_the_embedded_metric_format() {
        let line = MetricLine::new("ProactiveCollections/test", Function::Events)
            .count(RECORDS_IN, 10)
            .count(RECORDS_REJECTED, 1)
            .millis(DURATION, 42)
            .value(CHALLENGER_BRIER, f64::NAN)
            .property("request_id", "r-1");
        let doc = line.to_json(1_765_000_000_000);
        assert_valid_emf(&doc);
        assert_eq!(doc["Function"], "events");
        assert_eq!(doc["RecordsIn"], 10.0);
        assert_eq!(doc["request_id"], "r-1");
        // A value EMF refuses (NaN) is left out, not written.
        assert!(doc.get(CHALLENGER_BRIER).is_none());
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function"]])
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][2],
            json!({"Name": "DurationMs", "Unit": "Milliseconds"})
        );
    }

    #[test]
    fn a_shard_run_is_counted_by_bounded_reasons_and_classes() {
        let lines = shard_lines("ns", &report(), 1234);
        let docs: Vec<Value> = lines.iter().map(|l| l.to_json(1)).collect();
        for d in &docs {
            assert_valid_emf(d);
            assert_eq!(d["shard"], 5);
            assert_eq!(d["day"], "2026-12-07");
            assert_eq!(d["Function"], "sweep-worker");
        }
        let head = &docs[0];
        assert_eq!(
            (
                head["Planned"].as_f64(),
                head["Sent"].as_f64(),
                head["Held"].as_f64()
            ),
            (Some(7.0), Some(2.0), Some(2.0))
        );
        assert_eq!(head["Throttled"], 1.0);
        assert_eq!(head["DurationMs"], 1234.0);
        assert_eq!(
            (
                head["ShardsDone"].as_f64(),
                head["ShardsContinued"].as_f64()
            ),
            (Some(1.0), Some(0.0))
        );
        // A job that continues in a new invocation is not done yet.
        let mut continued = report();
        let day = continued.day.unwrap();
        continued.continued = Some(crate::queue::SweepJob::new(day, 5, 0..4).continued_at(2));
        let head = shard_lines("ns", &continued, 1).remove(0).to_json(1);
        assert_eq!(
            (
                head["ShardsDone"].as_f64(),
                head["ShardsContinued"].as_f64()
            ),
            (Some(0.0), Some(1.0))
        );
        let by = |dim: &str, metric: &str| -> Vec<(String, f64)> {
            docs.iter()
                .filter(|d| d.get(dim).is_some())
                .map(|d| {
                    (
                        d[dim].as_str().unwrap().to_string(),
                        d[metric].as_f64().unwrap(),
                    )
                })
                .collect()
        };
        assert_eq!(
            by(REASON, DEFERRED),
            vec![("checks".into(), 1.0), ("in_doubt".into(), 1.0)]
        );
        // Every class is written, zero included, so its alarm sees data.
        assert_eq!(
            by(CLASS, FAILED),
            vec![
                ("transient".into(), 1.0),
                ("recipient".into(), 0.0),
                ("service".into(), 0.0),
                ("message".into(), 1.0)
            ]
        );
        // The reason text of the report never becomes a dimension.
        assert!(!docs.iter().any(|d| d.to_string().contains("paid in full")));
    }
}
