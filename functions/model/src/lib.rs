//! The late-payment risk model behind the sweep's [`RiskScorer`] port.
//!
//! - `features`: leak-free features of an open invoice as of a day, and the
//!   versioned feature schema;
//! - `dataset`: training rows from a book's history and the time-ordered split;
//! - `artifact`: the model file (weights, schema, metrics, content-hash id),
//!   its checks at load time, and champion/challenger promotion;
//! - `predictor`: the compiled scoring fast path;
//! - `metrics`: ROC AUC, PR AUC, Brier, log-loss, accuracy, calibration table.
//!
//! Scoring links no training library: training (smartcore) and the
//! evaluation on IBM's public sample are `collect-training`'s, linked only
//! by what trains (`collect train`, the train Lambda).

pub mod artifact;
pub mod dataset;
pub mod features;
pub mod metrics;
pub mod predictor;

pub use artifact::{Decision, Model, promote};

use artifact::Estimator;
use collect_engine::sweep::{RiskScorer, ScoreInput};
use features::{FEATURES, FeatureSchema};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("not enough data to train: {0}")]
    NotEnoughData(String),
    #[error("training failed: {0}")]
    Fit(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the model could not be encoded: {0}")]
    Encode(serde_json::Error),
    #[error("invalid model file: {0}")]
    Invalid(String),
    #[error("the artifact is not a model file: {0}")]
    Decode(#[source] serde_json::Error),
    #[error("`{found}` is not a {expected} artifact")]
    OtherKind {
        found: String,
        expected: &'static str,
    },
    #[error(
        "model file format v{found} is not supported by this build (it reads v{expected}); retrain with `collect train`"
    )]
    FormatVersion { found: u64, expected: u32 },
    #[error(
        "the model's feature schema does not match this build: {0}; retrain with `collect train`"
    )]
    SchemaMismatch(String),
    #[error("{path}: {source}")]
    InFile {
        path: String,
        source: Box<ModelError>,
    },
    #[error("the data set {path}, line {line}: {reason}")]
    Data {
        path: String,
        line: u64,
        reason: String,
    },
}

impl ModelError {
    fn in_file(self, path: &Path) -> ModelError {
        ModelError::InFile {
            path: path.display().to_string(),
            source: Box::new(self),
        }
    }

    /// The error without the file it came from.
    pub fn root(&self) -> &ModelError {
        match self {
            ModelError::InFile { source, .. } => source.root(),
            other => other,
        }
    }
}

/// A trained model as the sweep's scorer.
#[derive(Debug, Clone)]
pub struct ModelScorer {
    model: Model,
    predictor: predictor::Predictor,
}

impl ModelScorer {
    pub fn new(model: Model) -> ModelScorer {
        let predictor = predictor::Predictor::new(&model);
        ModelScorer { model, predictor }
    }

    /// The calibrated probability for a full model input row (fast path).
    pub fn predict_row(&self, x: &[f64]) -> f64 {
        self.predictor.predict_row(x)
    }

    /// Probabilities for many model input rows.
    pub fn predict_batch(&self, rows: &[Vec<f64>]) -> Vec<f64> {
        self.predictor.predict_batch(rows)
    }

    pub fn load(path: &Path) -> Result<ModelScorer, ModelError> {
        Model::load(path).map(ModelScorer::new)
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Why the score is what it is, largest effect first.
    ///
    /// - Logistic regression: coefficient × standardized value per column,
    ///   in logit units before calibration (positive pushes towards late).
    /// - Random forest: Saabas' path decomposition, averaged over the trees:
    ///   for every split on the invoice's path, the change in the share of
    ///   late training rows, credited to the split's feature (probability
    ///   units before calibration; they add up to the forest's probability
    ///   minus the share of late rows at the roots).
    pub fn explain(&self, input: &ScoreInput<'_>) -> Vec<(String, f64)> {
        let raw = features::compute(input.book, input.invoice, input.day);
        self.explain_row(&self.model.row(&raw))
    }

    /// As [`ModelScorer::explain`], for a full model input row.
    pub fn explain_row(&self, x: &[f64]) -> Vec<(String, f64)> {
        let c = &self.model.content;
        let mut out: Vec<(String, f64)> = match &c.estimator {
            Estimator::LogisticRegression { coefficients, .. } => c
                .schema
                .names
                .iter()
                .zip(coefficients)
                .zip(c.standardization.apply(x))
                .map(|((n, w), z)| (n.clone(), w * z))
                .collect(),
            Estimator::RandomForest { trees, .. } => {
                let mut sums = vec![0.0; c.schema.len()];
                for t in trees {
                    t.contributions(x, &mut sums);
                }
                let n = trees.len().max(1) as f64;
                c.schema
                    .names
                    .iter()
                    .zip(sums)
                    .map(|(name, s)| (name.clone(), s / n))
                    .collect()
            }
        };
        out.retain(|(_, v)| *v != 0.0);
        out.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
        out
    }

    /// The unit of [`ModelScorer::explain`]'s contributions.
    pub fn contribution_unit(&self) -> &'static str {
        match self.model.content.estimator {
            Estimator::LogisticRegression { .. } => "logit",
            Estimator::RandomForest { .. } => "probability",
        }
    }
}

impl RiskScorer for ModelScorer {
    fn name(&self) -> &str {
        "risk-model"
    }

    fn version(&self) -> &str {
        &self.model.model_id
    }

    fn score(&self, input: &ScoreInput<'_>) -> Option<f64> {
        let raw = features::compute(input.book, input.invoice, input.day);
        let p = self.predictor.predict_row(&self.model.row(&raw));
        p.is_finite().then_some(p)
    }
}

/// The names of the base features and the schema version, for documentation.
pub fn schema_summary() -> (u32, Vec<(&'static str, &'static str)>) {
    (
        FeatureSchema::current().version,
        FEATURES.iter().map(|d| (d.name, d.doc)).collect(),
    )
}
