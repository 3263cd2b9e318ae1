//! The model as one file: a versioned JSON document holding the weights, the
//! feature schema, the imputation and standardization, the calibration, the
//! metrics and the training window, identified by the SHA-256 of its content.
//!
//! Loading checks the format version and the feature schema against this
//! build and refuses a mismatch, naming what differs: a model must never be
//! fed columns it was not trained on.
//!
//! Champion/challenger: [`promote`] compares a new model with the current
//! one on the same recent test rows by **log-loss** (the thresholds finance
//! ops put on `risk` need good probabilities, not only a good ranking; a
//! ranking metric like ROC AUC would not see a model that is systematically
//! too high or too low). A tie promotes.

use crate::ModelError;
use crate::dataset::{DatasetConfig, Row};
use crate::features::{FeatureSchema, expand};
use crate::metrics::Metrics;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The document type written in every model file.
pub const FORMAT: &str = "collect-risk-model";
/// Bumped when the layout of the file changes.
pub const FORMAT_VERSION: u32 = 1;

/// Per-column mean and standard deviation of the training rows (after
/// imputation). The logistic regression sees `(x - mean) / std`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardization {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Standardization {
    pub fn fit(x: &[Vec<f64>], width: usize) -> Standardization {
        let n = x.len().max(1) as f64;
        let mut mean = vec![0.0; width];
        for row in x {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v / n;
            }
        }
        let mut var = vec![0.0; width];
        for row in x {
            for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v - m) * (v - m) / n;
            }
        }
        let std = var
            .into_iter()
            .map(|v| if v.sqrt() > 1e-12 { v.sqrt() } else { 1.0 })
            .collect();
        Standardization { mean, std }
    }

    pub fn apply(&self, row: &[f64]) -> Vec<f64> {
        row.iter()
            .zip(&self.mean)
            .zip(&self.std)
            .map(|((v, m), s)| (v - m) / s)
            .collect()
    }
}

/// Platt scaling: `p = 1 / (1 + exp(-(a * s + b)))` on the estimator's raw
/// score `s` (the logit for the logistic regression, the logit of the
/// forest's mean leaf probability for the forest).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    pub a: f64,
    pub b: f64,
}

impl Platt {
    pub const IDENTITY: Platt = Platt { a: 1.0, b: 0.0 };

    pub fn apply(&self, s: f64) -> f64 {
        sigmoid(self.a * s + self.b)
    }
}

pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

pub fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-4, 1.0 - 1e-4);
    (p / (1.0 - p)).ln()
}

/// One tree in flat arrays (as scikit-learn keeps them): node `i` is a leaf
/// when `feature[i] < 0`; otherwise rows with `x[feature] <= threshold` go to
/// `left[i]`, the others to `right[i]`. `value[i]` is the share of training
/// rows reaching node `i` that were late.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub feature: Vec<i32>,
    pub threshold: Vec<f64>,
    pub left: Vec<u32>,
    pub right: Vec<u32>,
    pub value: Vec<f64>,
}

impl Tree {
    /// The leaf value for `x`, and the path of nodes taken.
    pub fn leaf(&self, x: &[f64]) -> f64 {
        let mut i = 0usize;
        loop {
            let (Some(&f), Some(&t)) = (self.feature.get(i), self.threshold.get(i)) else {
                return 0.0;
            };
            if f < 0 {
                return self.value.get(i).copied().unwrap_or(0.0);
            }
            let v = x.get(f as usize).copied().unwrap_or(0.0);
            let next = if v <= t {
                self.left.get(i)
            } else {
                self.right.get(i)
            };
            match next {
                Some(&n) if (n as usize) > i => i = n as usize,
                _ => return self.value.get(i).copied().unwrap_or(0.0),
            }
        }
    }

    /// Adds each split's change of value along `x`'s path to `out[feature]`
    /// (Saabas' decomposition: root value + contributions = leaf value).
    pub fn contributions(&self, x: &[f64], out: &mut [f64]) -> f64 {
        let mut i = 0usize;
        let root = self.value.first().copied().unwrap_or(0.0);
        loop {
            let (Some(&f), Some(&t), Some(&here)) = (
                self.feature.get(i),
                self.threshold.get(i),
                self.value.get(i),
            ) else {
                return root;
            };
            if f < 0 {
                return root;
            }
            let v = x.get(f as usize).copied().unwrap_or(0.0);
            let next = if v <= t {
                self.left.get(i)
            } else {
                self.right.get(i)
            };
            let Some(&n) = next.filter(|n| (**n as usize) > i) else {
                return root;
            };
            i = n as usize;
            if let (Some(o), Some(&there)) = (out.get_mut(f as usize), self.value.get(i)) {
                *o += there - here;
            }
        }
    }
}

/// The fitted estimator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Estimator {
    /// smartcore's `LogisticRegression` on standardized columns; the raw
    /// score is the logit `intercept + coefficients · z`.
    LogisticRegression {
        /// smartcore's L2 penalty (on the summed loss).
        alpha: f64,
        coefficients: Vec<f64>,
        intercept: f64,
    },
    /// smartcore's `RandomForestClassifier`: its trees (structure as fitted)
    /// with each node's late share re-estimated on the training rows, so the
    /// forest gives a probability (the mean leaf value), not only votes.
    RandomForest {
        n_trees: u16,
        max_depth: Option<u16>,
        min_samples_leaf: usize,
        mtry: usize,
        trees: Vec<Tree>,
    },
}

impl Estimator {
    pub fn kind(&self) -> &'static str {
        match self {
            Estimator::LogisticRegression { .. } => "logistic_regression",
            Estimator::RandomForest { .. } => "random_forest",
        }
    }

    /// The uncalibrated score of a full (imputed) row.
    pub fn raw_score(&self, x: &[f64], standardization: &Standardization) -> f64 {
        match self {
            Estimator::LogisticRegression {
                coefficients,
                intercept,
                ..
            } => {
                let mut z = *intercept;
                for (((v, c), m), s) in x
                    .iter()
                    .zip(coefficients)
                    .zip(&standardization.mean)
                    .zip(&standardization.std)
                {
                    z += c * (v - m) / s;
                }
                z
            }
            Estimator::RandomForest { trees, .. } => {
                if trees.is_empty() {
                    return 0.0;
                }
                let p = trees.iter().map(|t| t.leaf(x)).sum::<f64>() / trees.len() as f64;
                logit(p)
            }
        }
    }
}

/// The metrics of a model and of the baseline on the same rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// `test` normally; `validation` when the split kept no test rows.
    pub evaluated_on: String,
    pub window_from: Option<NaiveDate>,
    pub window_to: Option<NaiveDate>,
    pub model: Metrics,
    /// The customer's prior late rate (the training base rate when unknown).
    pub baseline: Metrics,
    /// Higher ROC AUC and lower Brier score than the baseline.
    pub baseline_beaten: bool,
}

/// How one candidate fared on the validation rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub name: String,
    /// Log-loss of the candidate's own probabilities on the validation rows:
    /// the choice is made on it.
    pub valid_log_loss: Option<f64>,
    /// Log-loss after Platt scaling, cross-fitted on the two halves of the
    /// validation rows (each half calibrated on the other), for comparison.
    pub valid_log_loss_calibrated: Option<f64>,
    pub valid_roc_auc: Option<f64>,
}

/// Where the model came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Training {
    pub as_of: NaiveDate,
    /// Due dates of the training rows.
    pub window_from: Option<NaiveDate>,
    pub window_to: Option<NaiveDate>,
    pub rows_train: usize,
    pub rows_valid: usize,
    pub rows_test: usize,
    /// Whether the estimator was fitted again on training + validation rows.
    pub refit_on_validation: bool,
    /// Share of late rows among the rows the estimator was fitted on.
    pub base_rate_train: f64,
    pub seed: u64,
    pub dataset: DatasetConfig,
    pub candidates: Vec<Candidate>,
    /// The candidate training chose.
    pub chosen: String,
    /// The candidate this model is.
    pub estimator: String,
}

/// Everything the model id is the hash of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelContent {
    pub schema: FeatureSchema,
    /// Per base feature: the value used when it is missing (training mean).
    pub fills: Vec<f64>,
    pub standardization: Standardization,
    pub estimator: Estimator,
    pub calibration: Platt,
    pub evaluation: Evaluation,
    pub training: Training,
}

/// The champion/challenger outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub promote: bool,
    pub reason: String,
    /// The metric compared: `log_loss` (lower is better).
    pub metric: String,
    pub challenger_log_loss: Option<f64>,
    pub champion_log_loss: Option<f64>,
    pub champion_id: Option<String>,
    pub test_rows: usize,
}

/// A model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub format: String,
    pub format_version: u32,
    /// The SHA-256 (hex) of the canonical JSON of `content`.
    pub model_id: String,
    pub content: ModelContent,
    /// Set by [`promote`]; not part of the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

impl Model {
    pub fn new(content: ModelContent) -> Result<Model, ModelError> {
        let model_id = content_id(&content)?;
        Ok(Model {
            format: FORMAT.to_string(),
            format_version: FORMAT_VERSION,
            model_id,
            content,
            decision: None,
        })
    }

    /// A short form of the id for people: the first 12 hex digits.
    pub fn short_id(&self) -> &str {
        self.model_id.get(..12).unwrap_or(&self.model_id)
    }

    /// The model's input row for raw features.
    pub fn row(&self, raw: &[Option<f64>]) -> Vec<f64> {
        expand(raw, &self.content.fills)
    }

    /// The calibrated probability of late payment for a full row.
    pub fn predict_row(&self, x: &[f64]) -> f64 {
        let c = &self.content;
        c.calibration
            .apply(c.estimator.raw_score(x, &c.standardization))
    }

    /// The calibrated probability for raw features.
    pub fn predict(&self, raw: &[Option<f64>]) -> f64 {
        self.predict_row(&self.row(raw))
    }

    pub fn to_json(&self) -> Result<String, ModelError> {
        serde_json::to_string(self).map_err(ModelError::Encode)
    }

    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let text = self.to_json()?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        // Write beside, then rename: a reader never sees half a model.
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(|source| ModelError::Io {
            path: tmp.display().to_string(),
            source,
        })?;
        std::fs::rename(&tmp, path).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Model::from_json(&text).map_err(|e| e.in_file(path))
    }

    /// Parses a model file and checks it can run on this build.
    pub fn from_json(text: &str) -> Result<Model, ModelError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ModelError::Invalid(e.to_string()))?;
        let format = value.get("format").and_then(|v| v.as_str()).unwrap_or("");
        if format != FORMAT {
            return Err(ModelError::Invalid(format!(
                "not a model file: `format` is `{format}`, expected `{FORMAT}`"
            )));
        }
        let version = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        if version != u64::from(FORMAT_VERSION) {
            return Err(ModelError::FormatVersion {
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        let model: Model =
            serde_json::from_value(value).map_err(|e| ModelError::Invalid(e.to_string()))?;
        if let Some(diff) = model.content.schema.difference(&FeatureSchema::current()) {
            return Err(ModelError::SchemaMismatch(diff));
        }
        model.check_shape()?;
        let id = content_id(&model.content)?;
        if id != model.model_id {
            return Err(ModelError::Invalid(format!(
                "the content does not match the model id {} (it hashes to {id}): the file was changed after training",
                model.model_id
            )));
        }
        Ok(model)
    }

    fn check_shape(&self) -> Result<(), ModelError> {
        let c = &self.content;
        let width = c.schema.len();
        let bad = |what: &str, n: usize, want: usize| {
            Err(ModelError::Invalid(format!(
                "{what} has {n} values for {want} features"
            )))
        };
        if c.fills.len() != crate::features::FEATURES.len() {
            return bad("fills", c.fills.len(), crate::features::FEATURES.len());
        }
        if c.standardization.mean.len() != width || c.standardization.std.len() != width {
            return bad("standardization", c.standardization.mean.len(), width);
        }
        match &c.estimator {
            Estimator::LogisticRegression { coefficients, .. } if coefficients.len() != width => {
                bad("coefficients", coefficients.len(), width)
            }
            Estimator::RandomForest { trees, .. } => {
                for t in trees {
                    let n = t.feature.len();
                    if t.threshold.len() != n
                        || t.left.len() != n
                        || t.right.len() != n
                        || t.value.len() != n
                        || t.feature.iter().any(|f| *f >= width as i32)
                    {
                        return Err(ModelError::Invalid(
                            "a tree of the forest is malformed".to_string(),
                        ));
                    }
                }
                Ok(())
            }
            Estimator::LogisticRegression { .. } => Ok(()),
        }
    }
}

/// The SHA-256 (hex) of the canonical JSON of the content (fields in declaration
/// order, floats printed shortest-round-trip).
pub fn content_id(content: &ModelContent) -> Result<String, ModelError> {
    let bytes = serde_json::to_vec(content).map_err(ModelError::Encode)?;
    let digest = Sha256::digest(&bytes);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// Log-loss of a model on rows.
pub fn log_loss_on(model: &Model, rows: &[Row]) -> Option<f64> {
    let p: Vec<f64> = rows.iter().map(|r| model.predict(&r.raw)).collect();
    let y: Vec<bool> = rows.iter().map(|r| r.late).collect();
    Metrics::of(&p, &y).log_loss
}

/// Decides whether `challenger` replaces `current`: only when its log-loss on
/// the same test rows is at most the current model's.
pub fn promote(current: Option<&Model>, challenger: &Model, test_rows: &[Row]) -> Decision {
    let challenger_ll = log_loss_on(challenger, test_rows);
    let mut d = Decision {
        promote: false,
        reason: String::new(),
        metric: "log_loss".to_string(),
        challenger_log_loss: challenger_ll,
        champion_log_loss: None,
        champion_id: current.map(|c| c.model_id.clone()),
        test_rows: test_rows.len(),
    };
    let Some(current) = current else {
        d.promote = true;
        d.reason = "no current model: the challenger becomes the first champion".to_string();
        return d;
    };
    if current.model_id == challenger.model_id {
        d.promote = false;
        d.champion_log_loss = challenger_ll;
        d.reason = "the challenger is the current model (same id)".to_string();
        return d;
    }
    let champion_ll = log_loss_on(current, test_rows);
    d.champion_log_loss = champion_ll;
    match (challenger_ll, champion_ll) {
        (Some(c), Some(k)) if c <= k + 1e-12 => {
            d.promote = true;
            d.reason = format!(
                "log-loss {c:.4} <= current {k:.4} on the same {} test rows",
                test_rows.len()
            );
        }
        (Some(c), Some(k)) => {
            d.reason = format!(
                "log-loss {c:.4} > current {k:.4} on the same {} test rows: the current model stays",
                test_rows.len()
            );
        }
        _ => {
            d.reason = "no test rows to compare on: the current model stays".to_string();
        }
    }
    d
}
