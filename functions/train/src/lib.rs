//! The `train` Lambda function (weekly): build the training set from a
//! bounded sample of the table's customers (`TRAIN_SAMPLE_CUSTOMERS`,
//! `TRAIN_SAMPLE_INVOICES`,
//! [`collect_aws::train::Sample`]), train, evaluate against the current model on the same
//! recent window, promote only when not worse. The orchestration is
//! [`collect_aws::train::run_training`]; the model kind is a
//! [`ModelTrainer`]. Each run writes its duration, rows and score as an
//! EMF metric line ([`collect_aws::metrics`]).

use chrono::NaiveDate;
use collect_aws::artifacts::Artifacts;
use collect_aws::config::scheduled_time;
use collect_aws::dynamo::Dynamo;
use collect_aws::metrics::{self, Function, MetricLine};
use collect_aws::train::{
    History, ModelKind, ModelStore, ModelTrainer, RiskModel, Sample, TrainReport, run_training,
};
use collect_engine::book::Book;
use collect_engine::sweep::RiskScorer;
use collect_model::ModelError;
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;

/// The train function's work: the history (the table on Lambda, the
/// in-memory ledger in the tests below), where models are kept (S3, or
/// memory), and the kind of model.
pub struct TrainService<H = Dynamo, S = Artifacts> {
    pub dynamo: H,
    pub artifacts: S,
    pub trainer: Box<dyn ModelTrainer>,
    /// The evaluation window: the most recent days, held out of training.
    pub window_days: u64,
    /// How many customers a run reads and invoices it trains on at most
    /// (`TRAIN_SAMPLE_CUSTOMERS`, `TRAIN_SAMPLE_INVOICES`).
    pub sample: Sample,
}

/// `{"day": "2026-03-02"}` or the schedule's `{"scheduled_time": …}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TrainInput {
    #[serde(default)]
    pub day: Option<NaiveDate>,
    #[serde(default)]
    pub scheduled_time: Option<String>,
}

pub async fn handler<H: History, S: ModelStore>(
    svc: &TrainService<H, S>,
    event: LambdaEvent<TrainInput>,
) -> Result<TrainReport, Error> {
    let input = event.payload;
    let today = match (input.day, &input.scheduled_time) {
        (Some(d), _) => d,
        (None, Some(t)) => scheduled_time(t)?.date_naive(),
        // The edge of the system: the only place the clock is read.
        (None, None) => chrono::Utc::now().date_naive(),
    };
    let started = std::time::Instant::now();
    let report = run_training(
        &svc.dynamo,
        &svc.artifacts,
        svc.trainer.as_ref(),
        today,
        svc.window_days,
        &svc.sample,
    )
    .await?;
    let mut line = MetricLine::new(&metrics::namespace(), Function::Train)
        .property("model_version", report.version.as_str())
        .property("customers", report.customers)
        .property("customers_seen", report.customers_seen)
        .count(metrics::TRAINING_ROWS, report.invoices)
        .count(metrics::PROMOTED, usize::from(report.promoted))
        .millis(metrics::DURATION, started.elapsed().as_millis());
    if let Some(brier) = report.challenger_brier {
        line = line.value(metrics::CHALLENGER_BRIER, brier);
    }
    line.emit();
    Ok(report)
}

/// The trained risk model: features as of each day, logistic regression or
/// random forest chosen on validation log-loss, calibrated (smartcore,
/// [`collect_training`]); its artifact is the model file the sweep reads as
/// a [`RiskModel`].
#[derive(Debug, Clone, Default)]
pub struct RiskModelTrainer {
    pub config: collect_training::train::TrainConfig,
}

impl ModelKind for RiskModelTrainer {
    fn kind(&self) -> &'static str {
        RiskModel.kind()
    }
    fn scorer(&self, artifact: &[u8]) -> Result<Box<dyn RiskScorer + Send + Sync>, ModelError> {
        RiskModel.scorer(artifact)
    }
}

impl ModelTrainer for RiskModelTrainer {
    fn train(&self, book: &Book, until: NaiveDate) -> Result<Vec<u8>, ModelError> {
        let rows = collect_model::dataset::build(book, until, &self.config.dataset);
        let outcome = collect_training::train::train(&rows, until, &self.config)?;
        outcome.model.to_json().map(String::into_bytes)
    }
}

/// The trainer the train function uses: the trained risk model.
pub fn default_trainer() -> Box<dyn ModelTrainer> {
    Box::new(RiskModelTrainer::default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    //! The handler on the in-memory ledger and model store.

    #[test]
    fn the_risk_model_refuses_an_empty_history() {
        use collect_aws::train::ModelTrainer;
        let err = super::RiskModelTrainer::default()
            .train(
                &collect_engine::book::Book::default(),
                chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            )
            .unwrap_err();
        assert!(!err.to_string().is_empty());
    }
    use super::*;
    use collect_aws::train::{MemoryModels, PriorRateTrainer};
    use collect_delivery::ledger::memory::MemoryLedger;
    use collect_testkit::book::{customer, day, invoice, payment};
    use lambda_runtime::Context;

    fn service() -> TrainService<MemoryLedger, MemoryModels> {
        let ledger = MemoryLedger::new();
        for (n, paid) in [(1, "2026-12-05"), (2, "2026-11-25"), (3, "2026-12-12")] {
            let c = format!("T{n}");
            ledger.upsert_customer(customer(&c));
            let i = invoice(&format!("{c}-A"), &c, "2026-12-01", "100.00");
            ledger.upsert_payment(payment(&i, day(paid)));
            ledger.upsert_invoice(i);
        }
        TrainService {
            dynamo: ledger,
            artifacts: MemoryModels::default(),
            trainer: Box::new(PriorRateTrainer),
            window_days: 56,
            sample: Sample::default(),
        }
    }

    fn input(day: Option<&str>, scheduled_time: Option<&str>) -> LambdaEvent<TrainInput> {
        LambdaEvent::new(
            TrainInput {
                day: day.map(|d| d.parse().unwrap()),
                scheduled_time: scheduled_time.map(str::to_string),
            },
            Context::default(),
        )
    }

    #[tokio::test]
    async fn the_first_model_is_promoted_then_kept_while_not_beaten() {
        let svc = service();
        let first = handler(&svc, input(None, Some("2026-12-20T03:00:00Z")))
            .await
            .unwrap();
        assert!(first.promoted, "{first:?}");
        assert_eq!(first.invoices, 3);
        assert_eq!(first.window.1, day("2026-12-20"), "the schedule's day");
        assert!(first.challenger_brier.is_some());
        assert_eq!(
            svc.artifacts.keys(),
            vec![format!("models/{}/model.json", first.version)]
        );
        // The same history again: the same model, nothing new stored.
        let second = handler(&svc, input(Some("2026-12-20"), None))
            .await
            .unwrap();
        assert!(!second.promoted, "{second:?}");
        assert_eq!(
            second.current_version.as_deref(),
            Some(first.version.as_str())
        );
        assert_eq!(svc.artifacts.keys().len(), 1);
    }

    #[tokio::test]
    async fn a_run_reads_at_most_the_sample_of_customers() {
        let mut svc = service();
        svc.sample = Sample {
            max_customers: 2,
            ..Sample::default()
        };
        let report = handler(&svc, input(Some("2026-12-20"), None))
            .await
            .unwrap();
        assert_eq!((report.customers, report.customers_seen), (2, 3));
        assert_eq!(report.invoices, 2, "{report:?}");
    }

    #[tokio::test]
    async fn a_run_trains_on_at_most_the_sample_of_invoices() {
        let mut svc = service();
        svc.sample = Sample {
            max_invoices: 2,
            ..Sample::default()
        };
        let report = handler(&svc, input(Some("2026-12-20"), None))
            .await
            .unwrap();
        assert_eq!((report.customers, report.customers_seen), (2, 3));
        assert_eq!(report.invoices, 2, "{report:?}");
        // One customer is trained on even when its invoices alone are more.
        svc.sample.max_invoices = 0;
        let report = handler(&svc, input(Some("2026-12-20"), None))
            .await
            .unwrap();
        assert_eq!((report.customers, report.invoices), (1, 1), "{report:?}");
    }

    #[tokio::test]
    async fn a_scheduled_time_that_is_not_a_timestamp_fails_the_invocation() {
        let svc = service();
        let err = handler(&svc, input(None, Some("sunday")))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("scheduled_time `sunday` is not a timestamp"),
            "{err}"
        );
        assert!(svc.artifacts.keys().is_empty());
    }
}
