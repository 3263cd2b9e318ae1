//! Training: smartcore logistic regression and random forest, chosen by
//! validation log-loss, calibrated by Platt scaling on the validation rows,
//! evaluated on the latest (test) rows beside the transparent baseline.
//!
//! Deterministic: the split is by time, the forest's seed is fixed, the
//! optimiser starts from zero, and nothing time- or machine-dependent goes
//! into the model, so the same rows and seed give the same model id.

use chrono::NaiveDate;
use collect_model::ModelError;
use collect_model::artifact::{
    Candidate, Estimator, Evaluation, Model, ModelContent, Platt, Standardization, Training, Tree,
    sigmoid,
};
use collect_model::dataset::{DatasetConfig, Row, Split, SplitConfig, split};
use collect_model::features::{FEATURES, FeatureSchema, expand};
use collect_model::metrics::Metrics;
use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_classifier::{
    RandomForestClassifier, RandomForestClassifierParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForestConfig {
    /// Zero leaves the forest out of the candidates.
    pub n_trees: u16,
    pub max_depth: Option<u16>,
    pub min_samples_leaf: usize,
    pub min_samples_split: usize,
    /// Features tried per split; `None` is √(features).
    pub mtry: Option<usize>,
}

impl Default for ForestConfig {
    fn default() -> Self {
        ForestConfig {
            n_trees: 100,
            max_depth: Some(8),
            min_samples_leaf: 30,
            min_samples_split: 60,
            mtry: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub seed: u64,
    pub dataset: DatasetConfig,
    pub split: SplitConfig,
    /// L2 penalties tried for the logistic regression, per training row:
    /// smartcore's `alpha` (its loss is summed over rows) is `penalty × rows`,
    /// i.e. scikit-learn's `C = 1 / (penalty × rows)`. Per row, the same
    /// penalty means the same strength whether fitted on the training rows
    /// or refitted on training + validation rows.
    pub lr_penalties: Vec<f64>,
    pub forest: ForestConfig,
    /// Fit the best candidate of each kind again on training + validation
    /// rows once chosen and calibrated.
    pub refit: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 42,
            dataset: DatasetConfig::default(),
            split: SplitConfig::default(),
            lr_penalties: vec![0.01, 0.03, 0.1, 0.3, 1.0],
            forest: ForestConfig::default(),
            refit: true,
        }
    }
}

/// What training produced: the chosen model, the best model of each kind
/// (the chosen one first),
/// the split and the time each fit took (timings stay out of the model).
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub model: Model,
    pub candidates: Vec<Model>,
    pub split: Split,
    pub fit_seconds: Vec<(String, f64)>,
}

impl TrainOutcome {
    /// The rows the model was evaluated on (test, or validation without test rows).
    pub fn evaluation_rows<'a>(&self, rows: &'a [Row]) -> Vec<&'a Row> {
        let idx = if self.split.test.is_empty() {
            &self.split.valid
        } else {
            &self.split.test
        };
        idx.iter().filter_map(|&i| rows.get(i)).collect()
    }
}

fn pick<'a>(rows: &'a [Row], idx: &[usize]) -> Vec<&'a Row> {
    idx.iter().filter_map(|&i| rows.get(i)).collect()
}

/// Per base feature, the mean of the known values (0 when none is known).
pub fn fills(rows: &[&Row]) -> Vec<f64> {
    let mut sum = vec![0.0; FEATURES.len()];
    let mut n = vec![0usize; FEATURES.len()];
    for r in rows {
        for ((s, c), v) in sum.iter_mut().zip(n.iter_mut()).zip(&r.raw) {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                *s += v;
                *c += 1;
            }
        }
    }
    sum.iter()
        .zip(&n)
        .map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 })
        .collect()
}

fn matrix(x: &[Vec<f64>], width: usize) -> Result<DenseMatrix<f64>, ModelError> {
    let values: Vec<f64> = x.iter().flatten().copied().collect();
    DenseMatrix::new(x.len(), width, values, false).map_err(|e| ModelError::Fit(e.to_string()))
}

fn labels(rows: &[&Row]) -> Vec<i32> {
    rows.iter().map(|r| i32::from(r.late)).collect()
}

/// smartcore's logistic regression on standardized rows: `(coefficients, intercept)`.
pub fn fit_logistic(z: &[Vec<f64>], y: &[i32], alpha: f64) -> Result<(Vec<f64>, f64), ModelError> {
    let width = z.first().map_or(0, Vec::len);
    let x = matrix(z, width)?;
    let params = LogisticRegressionParameters::default().with_alpha(alpha);
    let y = y.to_vec();
    let lr = LogisticRegression::fit(&x, &y, params).map_err(|e| ModelError::Fit(e.to_string()))?;
    // Read the weights through serde: the accessors panic on an unfitted model.
    let v = serde_json::to_value(&lr).map_err(ModelError::Encode)?;
    let floats = |key: &str| -> Vec<f64> {
        v.get(key)
            .and_then(|m| m.get("values"))
            .and_then(|a| a.as_array())
            .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
            .unwrap_or_default()
    };
    let coefficients = floats("coefficients");
    let intercept = floats("intercept").first().copied();
    let classes: Vec<i64> = v
        .get("classes")
        .and_then(|c| c.as_array())
        .map(|a| a.iter().filter_map(serde_json::Value::as_i64).collect())
        .unwrap_or_default();
    match (intercept, classes.as_slice()) {
        (Some(b), [0, 1]) if coefficients.len() == width => Ok((coefficients, b)),
        _ => Err(ModelError::Fit(
            "the logistic regression did not fit a binary model".to_string(),
        )),
    }
}

/// smartcore's random forest; its trees are read through serde into flat
/// trees whose node values are the late share of the training rows reaching them.
pub fn fit_forest(
    x: &[Vec<f64>],
    y: &[i32],
    cfg: &ForestConfig,
    seed: u64,
) -> Result<Estimator, ModelError> {
    let width = x.first().map_or(0, Vec::len);
    let mtry = cfg
        .mtry
        .unwrap_or_else(|| ((width as f64).sqrt().floor() as usize).max(1));
    let mut params = RandomForestClassifierParameters::default()
        .with_n_trees(cfg.n_trees)
        .with_min_samples_leaf(cfg.min_samples_leaf)
        .with_min_samples_split(cfg.min_samples_split)
        .with_m(mtry)
        .with_seed(seed);
    if let Some(d) = cfg.max_depth {
        params = params.with_max_depth(d);
    }
    let m = matrix(x, width)?;
    let yv = y.to_vec();
    let rf: RandomForestClassifier<f64, i32, DenseMatrix<f64>, Vec<i32>> =
        RandomForestClassifier::fit(&m, &yv, params).map_err(|e| ModelError::Fit(e.to_string()))?;
    let v = serde_json::to_value(&rf).map_err(ModelError::Encode)?;
    let trees_json = v
        .get("trees")
        .and_then(|t| t.as_array())
        .ok_or_else(|| ModelError::Fit("the forest has no trees".to_string()))?;
    let mut trees = Vec::with_capacity(trees_json.len());
    for t in trees_json {
        let mut tree = tree_from_json(t, width)?;
        fill_values(&mut tree, x, y);
        trees.push(tree);
    }
    Ok(Estimator::RandomForest {
        n_trees: cfg.n_trees,
        max_depth: cfg.max_depth,
        min_samples_leaf: cfg.min_samples_leaf,
        mtry,
        trees,
    })
}

fn tree_from_json(t: &serde_json::Value, width: usize) -> Result<Tree, ModelError> {
    let bad = || ModelError::Fit("unexpected layout of a smartcore tree".to_string());
    let nodes = t.get("nodes").and_then(|n| n.as_array()).ok_or_else(bad)?;
    let mut tree = Tree {
        feature: Vec::with_capacity(nodes.len()),
        threshold: Vec::with_capacity(nodes.len()),
        left: Vec::with_capacity(nodes.len()),
        right: Vec::with_capacity(nodes.len()),
        value: vec![0.0; nodes.len()],
    };
    let idx = |n: &serde_json::Value, key: &str| n.get(key).and_then(serde_json::Value::as_u64);
    for (i, n) in nodes.iter().enumerate() {
        match (idx(n, "true_child"), idx(n, "false_child")) {
            (Some(l), Some(r)) => {
                let f = idx(n, "split_feature").ok_or_else(bad)? as usize;
                let th = n
                    .get("split_value")
                    .and_then(serde_json::Value::as_f64)
                    .ok_or_else(bad)?;
                let ok = |c: u64| (c as usize) > i && (c as usize) < nodes.len();
                if f >= width || !ok(l) || !ok(r) {
                    return Err(bad());
                }
                tree.feature.push(f as i32);
                tree.threshold.push(th);
                tree.left.push(l as u32);
                tree.right.push(r as u32);
            }
            _ => {
                tree.feature.push(-1);
                tree.threshold.push(0.0);
                tree.left.push(0);
                tree.right.push(0);
            }
        }
    }
    Ok(tree)
}

/// Node values: the late share of the training rows that pass through each
/// node (a node no row reaches keeps its parent's value).
fn fill_values(tree: &mut Tree, x: &[Vec<f64>], y: &[i32]) {
    let n = tree.feature.len();
    let mut late = vec![0.0f64; n];
    let mut total = vec![0.0f64; n];
    for (row, &label) in x.iter().zip(y) {
        let mut i = 0usize;
        loop {
            if let (Some(l), Some(t)) = (late.get_mut(i), total.get_mut(i)) {
                *l += f64::from(label);
                *t += 1.0;
            }
            let (Some(&f), Some(&th)) = (tree.feature.get(i), tree.threshold.get(i)) else {
                break;
            };
            if f < 0 {
                break;
            }
            let v = row.get(f as usize).copied().unwrap_or(0.0);
            let next = if v <= th {
                tree.left.get(i)
            } else {
                tree.right.get(i)
            };
            match next {
                Some(&c) if (c as usize) > i => i = c as usize,
                _ => break,
            }
        }
    }
    // Children come after their parents: one forward pass fills the gaps.
    let mut parent_value = vec![0.0f64; n];
    for i in 0..n {
        let own = match (late.get(i), total.get(i)) {
            (Some(&l), Some(&t)) if t > 0.0 => l / t,
            _ => parent_value.get(i).copied().unwrap_or(0.0),
        };
        if let Some(v) = tree.value.get_mut(i) {
            *v = own;
        }
        if tree.feature.get(i).is_some_and(|f| *f >= 0) {
            for c in [tree.left.get(i), tree.right.get(i)].into_iter().flatten() {
                if let Some(p) = parent_value.get_mut(*c as usize) {
                    *p = own;
                }
            }
        }
    }
}

fn log_loss(p: &[f64], y: &[bool]) -> Option<f64> {
    Metrics::of(p, y).log_loss
}

/// Platt scaling fitted by Newton's method on smoothed targets (Platt 1999:
/// `(N+ + 1) / (N+ + 2)` and `1 / (N- + 2)`), so a small or one-sided
/// validation set cannot push probabilities to 0 or 1.
pub fn fit_platt(s: &[f64], y: &[bool]) -> Platt {
    let npos = y.iter().filter(|v| **v).count() as f64;
    let nneg = y.len() as f64 - npos;
    if y.is_empty() {
        return Platt::IDENTITY;
    }
    let hi = (npos + 1.0) / (npos + 2.0);
    let lo = 1.0 / (nneg + 2.0);
    let t: Vec<f64> = y.iter().map(|&v| if v { hi } else { lo }).collect();
    let loss = |a: f64, b: f64| -> f64 {
        s.iter()
            .zip(&t)
            .map(|(&si, &ti)| {
                let z = a * si + b;
                // log(1 + e^z) - t z, computed stably.
                let softplus = if z > 0.0 {
                    z + (-z).exp().ln_1p()
                } else {
                    z.exp().ln_1p()
                };
                softplus - ti * z
            })
            .sum()
    };
    let (mut a, mut b) = (1.0, 0.0);
    let mut current = loss(a, b);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
        for (&si, &ti) in s.iter().zip(&t) {
            let p = sigmoid(a * si + b);
            let d = p - ti;
            let w = p * (1.0 - p);
            ga += d * si;
            gb += d;
            haa += w * si * si;
            hab += w * si;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-18 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        let mut step = 1.0;
        let mut improved = false;
        while step > 1e-10 {
            let (na, nb) = (a - step * da, b - step * db);
            let l = loss(na, nb);
            if l < current {
                a = na;
                b = nb;
                improved = current - l > 1e-12 * current.abs().max(1.0);
                current = l;
                break;
            }
            step /= 2.0;
        }
        if !improved {
            break;
        }
    }
    if a.is_finite() && b.is_finite() {
        Platt { a, b }
    } else {
        Platt::IDENTITY
    }
}

/// The intercept `b` for which the mean of `sigmoid(a * s + b)` equals the
/// share of late rows (Newton's method on the one-dimensional log-loss).
fn fit_intercept(s: &[f64], y: &[i32], a: f64) -> f64 {
    let target: f64 = y.iter().map(|v| f64::from(*v)).sum();
    let mut b = 0.0;
    for _ in 0..50 {
        let (mut g, mut h) = (-target, 1e-9);
        for v in s {
            let p = sigmoid(a * v + b);
            g += p;
            h += p * (1.0 - p);
        }
        let step = (g / h).clamp(-5.0, 5.0);
        b -= step;
        if step.abs() < 1e-10 {
            break;
        }
    }
    if b.is_finite() { b } else { 0.0 }
}

/// Mean and standard error of the per-invoice difference in log-loss
/// between two sets of probabilities for the same rows (`a` minus `b`).
fn per_invoice_difference(rows: &[&Row], a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    let ll = |p: f64, y: bool| {
        let p = p.clamp(1e-15, 1.0 - 1e-15);
        if y { -p.ln() } else { -(1.0 - p).ln() }
    };
    let mut diffs: Vec<f64> = Vec::new();
    let mut current: Option<(&str, f64, usize)> = None;
    for ((r, pa), pb) in rows.iter().zip(a).zip(b) {
        let d = ll(*pa, r.late) - ll(*pb, r.late);
        current = match current {
            Some((id, sum, n)) if id == r.invoice_id => Some((id, sum + d, n + 1)),
            Some((_, sum, n)) => {
                diffs.push(sum / n as f64);
                Some((r.invoice_id.as_str(), d, 1))
            }
            None => Some((r.invoice_id.as_str(), d, 1)),
        };
    }
    if let Some((_, sum, n)) = current {
        diffs.push(sum / n as f64);
    }
    let n = diffs.len();
    if n < 2 {
        return None;
    }
    let mean = diffs.iter().sum::<f64>() / n as f64;
    let var = diffs.iter().map(|d| (d - mean) * (d - mean)).sum::<f64>() / (n - 1) as f64;
    Some((mean, (var / n as f64).sqrt()))
}

/// Calibrated log-loss estimated without scoring a row with a calibration
/// fitted on it: each half of `s` (in time order) is calibrated on the other.
fn cross_fit_log_loss(s: &[f64], y: &[bool]) -> Option<f64> {
    let n = s.len();
    if n < 4 {
        let platt = fit_platt(s, y);
        let p: Vec<f64> = s.iter().map(|v| platt.apply(*v)).collect();
        return log_loss(&p, y);
    }
    let h = n / 2;
    let (s1, s2) = s.split_at(h);
    let (y1, y2) = y.split_at(h);
    let c1 = fit_platt(s2, y2);
    let c2 = fit_platt(s1, y1);
    let mut p: Vec<f64> = s1.iter().map(|v| c1.apply(*v)).collect();
    p.extend(s2.iter().map(|v| c2.apply(*v)));
    log_loss(&p, y)
}

/// A candidate before fitting.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Spec {
    Logistic(f64),
    Forest,
}

impl Spec {
    fn name(&self, forest: &ForestConfig) -> String {
        match self {
            Spec::Logistic(penalty) => format!("logistic_regression(l2={penalty}/row)"),
            Spec::Forest => format!(
                "random_forest(trees={}, depth={}, leaf={})",
                forest.n_trees,
                forest
                    .max_depth
                    .map_or_else(|| "none".to_string(), |d| d.to_string()),
                forest.min_samples_leaf
            ),
        }
    }

    fn is_forest(&self) -> bool {
        matches!(self, Spec::Forest)
    }
}

/// Imputation, standardization and the matrices of a set of rows.
struct Prepared {
    fills: Vec<f64>,
    standardization: Standardization,
    x: Vec<Vec<f64>>,
    y: Vec<i32>,
}

fn prepare(rows: &[&Row], width: usize) -> Prepared {
    let fills = fills(rows);
    let x: Vec<Vec<f64>> = rows.iter().map(|r| expand(&r.raw, &fills)).collect();
    let standardization = Standardization::fit(&x, width);
    Prepared {
        fills,
        standardization,
        x,
        y: labels(rows),
    }
}

fn fit_spec(spec: Spec, data: &Prepared, config: &TrainConfig) -> Result<Estimator, ModelError> {
    match spec {
        Spec::Logistic(penalty) => {
            let alpha = penalty * data.x.len() as f64;
            let z: Vec<Vec<f64>> = data
                .x
                .iter()
                .map(|r| data.standardization.apply(r))
                .collect();
            let (coefficients, intercept) = fit_logistic(&z, &data.y, alpha)?;
            Ok(Estimator::LogisticRegression {
                alpha,
                coefficients,
                intercept,
            })
        }
        Spec::Forest => fit_forest(&data.x, &data.y, &config.forest, config.seed),
    }
}

/// Trains on rows sorted by [`collect_model::dataset::build`].
///
/// 1. Every candidate is fitted on the training rows and scored on the
///    validation rows: its log-loss there (of its own probabilities, before
///    any calibration) is what the choice is made on. For information, the
///    log-loss after Platt scaling is estimated too, by cross-fitting it on
///    the two halves of the validation rows.
/// 2. The logistic regression with the lowest validation log-loss is the
///    default choice; the forest is chosen instead only when its validation
///    log-loss is lower by more than one standard error. Each candidate's
///    Platt scaling is fitted on all validation rows.
/// 3. With `refit` (the default), the best candidate of each kind is fitted
///    again on training + validation rows, so the most recent history counts
///    too. It keeps the Platt slope learned on the held-back validation rows
///    (how over- or under-confident this kind of estimator is), and its
///    intercept is fitted again on the refit rows given that slope
///    (calibration in the large): reusing the intercept would correct a
///    shift in the late rate of the validation period that the refit model
///    has already learned, twice.
/// 4. Each final model is evaluated on the test rows beside the baseline.
pub fn train(
    rows: &[Row],
    as_of: NaiveDate,
    config: &TrainConfig,
) -> Result<TrainOutcome, ModelError> {
    let parts = split(rows, &config.split);
    let train_rows = pick(rows, &parts.train);
    let valid_rows = pick(rows, &parts.valid);
    let test_rows = pick(rows, &parts.test);
    let both = |rs: &[&Row]| {
        let late = rs.iter().filter(|r| r.late).count();
        late > 0 && late < rs.len()
    };
    if !both(&train_rows) {
        return Err(ModelError::NotEnoughData(format!(
            "{} training rows, {} of them late: both outcomes are needed",
            train_rows.len(),
            train_rows.iter().filter(|r| r.late).count()
        )));
    }
    let schema = FeatureSchema::current();
    let width = schema.len();
    let stage1 = prepare(&train_rows, width);
    let x_valid: Vec<Vec<f64>> = valid_rows
        .iter()
        .map(|r| expand(&r.raw, &stage1.fills))
        .collect();
    let y_valid: Vec<bool> = valid_rows.iter().map(|r| r.late).collect();

    let mut specs: Vec<Spec> = config
        .lr_penalties
        .iter()
        .map(|a| Spec::Logistic(*a))
        .collect();
    if config.forest.n_trees > 0 {
        specs.push(Spec::Forest);
    }
    if specs.is_empty() {
        return Err(ModelError::Fit(
            "no candidate model was configured".to_string(),
        ));
    }
    let mut fit_seconds = Vec::new();
    let mut stage1_estimators = Vec::with_capacity(specs.len());
    let mut valid_probabilities: Vec<Vec<f64>> = Vec::with_capacity(specs.len());
    let mut candidates: Vec<Candidate> = Vec::with_capacity(specs.len());
    let mut calibrations: Vec<Platt> = Vec::with_capacity(specs.len());
    for spec in &specs {
        let name = spec.name(&config.forest);
        let start = Instant::now();
        let estimator = fit_spec(*spec, &stage1, config)?;
        fit_seconds.push((name.clone(), start.elapsed().as_secs_f64()));
        let s: Vec<f64> = x_valid
            .iter()
            .map(|x| estimator.raw_score(x, &stage1.standardization))
            .collect();
        let pairs: Vec<(f64, bool)> = s.iter().copied().zip(y_valid.iter().copied()).collect();
        let raw: Vec<f64> = s.iter().map(|v| sigmoid(*v)).collect();
        candidates.push(Candidate {
            name,
            valid_log_loss: log_loss(&raw, &y_valid),
            valid_log_loss_calibrated: cross_fit_log_loss(&s, &y_valid),
            valid_roc_auc: collect_model::metrics::roc_auc(&pairs),
        });
        calibrations.push(if s.is_empty() {
            Platt::IDENTITY
        } else {
            fit_platt(&s, &y_valid)
        });
        valid_probabilities.push(raw);
        stage1_estimators.push(estimator);
    }
    let ll = |i: usize| {
        candidates
            .get(i)
            .and_then(|c| c.valid_log_loss)
            .unwrap_or(f64::INFINITY)
    };
    let best_where = |want: &dyn Fn(&Spec) -> bool| -> Option<usize> {
        (0..specs.len())
            .filter(|&i| specs.get(i).is_some_and(want))
            .min_by(|&i, &j| ll(i).total_cmp(&ll(j)).then(i.cmp(&j)))
    };
    // The best logistic regression is the default; the forest replaces it
    // only when clearly better: its validation log-loss lower by more than
    // one standard error of the paired difference (per invoice, as the rows
    // of one invoice are not independent). A small validation slice should
    // not swap a simple model for a complex one on noise.
    let best_lr = best_where(&|s: &Spec| !s.is_forest());
    let best_rf = best_where(&|s: &Spec| s.is_forest());
    let chosen = match (best_lr, best_rf) {
        (Some(lr), Some(rf)) => {
            let diff = match (valid_probabilities.get(rf), valid_probabilities.get(lr)) {
                (Some(p_rf), Some(p_lr)) => per_invoice_difference(&valid_rows, p_rf, p_lr),
                _ => None,
            };
            match diff {
                Some((mean, se)) if mean < -se => rf,
                _ => lr,
            }
        }
        (Some(i), None) | (None, Some(i)) => i,
        (None, None) => 0,
    };
    // The best of each kind become final models; the chosen one first.
    let mut keep: Vec<usize> = vec![chosen];
    for want_forest in [false, true] {
        if let Some(i) = best_where(&|s: &Spec| s.is_forest() == want_forest)
            && !keep.contains(&i)
        {
            keep.push(i);
        }
    }

    let fit_rows: Vec<&Row> = train_rows.iter().chain(&valid_rows).copied().collect();
    let refit = config.refit && !valid_rows.is_empty() && both(&fit_rows);
    let stage2 = if refit {
        Some(prepare(&fit_rows, width))
    } else {
        None
    };
    let final_data = stage2.as_ref().unwrap_or(&stage1);
    let base_rate = {
        let rs = if refit { &fit_rows } else { &train_rows };
        rs.iter().filter(|r| r.late).count() as f64 / rs.len().max(1) as f64
    };

    let (eval_rows, evaluated_on) = if !test_rows.is_empty() {
        (&test_rows, "test")
    } else if refit {
        (
            &valid_rows,
            "validation (also fitted on: no test rows were kept)",
        )
    } else {
        (&valid_rows, "validation")
    };
    let y_eval: Vec<bool> = eval_rows.iter().map(|r| r.late).collect();
    let baseline_p: Vec<f64> = eval_rows
        .iter()
        .map(|r| r.prior_late_rate.unwrap_or(base_rate))
        .collect();
    let baseline = Metrics::of(&baseline_p, &y_eval);
    let due = |rs: &[&Row]| -> (Option<NaiveDate>, Option<NaiveDate>) {
        (
            rs.iter().map(|r| r.due_date).min(),
            rs.iter().map(|r| r.due_date).max(),
        )
    };
    let (eval_from, eval_to) = due(eval_rows);
    let (window_from, _) = due(&train_rows);
    let (_, window_to) = due(if refit { &fit_rows } else { &train_rows });
    let chosen_name = candidates
        .get(chosen)
        .map(|c| c.name.clone())
        .unwrap_or_default();

    let mut models = Vec::with_capacity(keep.len());
    for &i in &keep {
        let (Some(spec), Some(calibration)) = (specs.get(i), calibrations.get(i)) else {
            continue;
        };
        let name = spec.name(&config.forest);
        let mut calibration = *calibration;
        let estimator = if refit {
            let start = Instant::now();
            let e = fit_spec(*spec, final_data, config)?;
            fit_seconds.push((format!("{name} refit"), start.elapsed().as_secs_f64()));
            let s: Vec<f64> = final_data
                .x
                .iter()
                .map(|x| e.raw_score(x, &final_data.standardization))
                .collect();
            calibration.b = fit_intercept(&s, &final_data.y, calibration.a);
            e
        } else {
            stage1_estimators
                .get(i)
                .cloned()
                .ok_or_else(|| ModelError::Fit("a candidate went missing".to_string()))?
        };
        let p: Vec<f64> = eval_rows
            .iter()
            .map(|r| {
                let x = expand(&r.raw, &final_data.fills);
                calibration.apply(estimator.raw_score(&x, &final_data.standardization))
            })
            .collect();
        let metrics = Metrics::of(&p, &y_eval);
        let beaten = match (
            metrics.roc_auc,
            baseline.roc_auc,
            metrics.brier,
            baseline.brier,
        ) {
            (Some(a), Some(b), Some(c), Some(d)) => a > b && c < d,
            _ => false,
        };
        models.push(Model::new(ModelContent {
            schema: schema.clone(),
            fills: final_data.fills.clone(),
            standardization: final_data.standardization.clone(),
            estimator,
            calibration,
            evaluation: Evaluation {
                evaluated_on: evaluated_on.to_string(),
                window_from: eval_from,
                window_to: eval_to,
                model: metrics,
                baseline: baseline.clone(),
                baseline_beaten: beaten,
            },
            training: Training {
                as_of,
                window_from,
                window_to,
                rows_train: train_rows.len(),
                rows_valid: valid_rows.len(),
                rows_test: test_rows.len(),
                refit_on_validation: refit,
                base_rate_train: base_rate,
                seed: config.seed,
                dataset: config.dataset.clone(),
                candidates: candidates.clone(),
                chosen: chosen_name.clone(),
                estimator: name,
            },
        })?);
    }
    let model = models
        .first()
        .cloned()
        .ok_or_else(|| ModelError::Fit("no candidate model was configured".to_string()))?;
    Ok(TrainOutcome {
        model,
        candidates: models,
        split: parts,
        fit_seconds,
    })
}
