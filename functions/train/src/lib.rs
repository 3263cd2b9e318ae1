//! The `train` Lambda function (weekly): build the training set from the
//! table's history, train, evaluate against the current model on the same
//! recent window, promote only when not worse. The orchestration is
//! [`collect_core::aws::train::run_training`]; the model kind is a
//! [`ModelTrainer`].

use chrono::NaiveDate;
use collect_core::aws::artifacts::Artifacts;
use collect_core::aws::dynamo::Dynamo;
use collect_core::aws::train::{ModelTrainer, TrainReport, run_training};
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;

pub struct TrainService {
    pub dynamo: Dynamo,
    pub artifacts: Artifacts,
    pub trainer: Box<dyn ModelTrainer>,
    /// The evaluation window: the most recent days, held out of training.
    pub window_days: u64,
}

/// `{"day": "2026-03-02"}` or the schedule's `{"scheduled_time": …}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TrainInput {
    #[serde(default)]
    pub day: Option<NaiveDate>,
    #[serde(default)]
    pub scheduled_time: Option<String>,
}

pub async fn handler(
    svc: &TrainService,
    event: LambdaEvent<TrainInput>,
) -> Result<TrainReport, Error> {
    let input = event.payload;
    let today = match (input.day, &input.scheduled_time) {
        (Some(d), _) => d,
        (None, Some(t)) => chrono::DateTime::parse_from_rfc3339(t)?.date_naive(),
        // The edge of the system: the only place the clock is read.
        (None, None) => chrono::Utc::now().date_naive(),
    };
    Ok(run_training(
        &svc.dynamo,
        &svc.artifacts,
        svc.trainer.as_ref(),
        today,
        svc.window_days,
    )
    .await?)
}
