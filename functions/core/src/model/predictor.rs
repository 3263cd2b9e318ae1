//! The scoring fast path: a model compiled once into the shape that scores
//! quickest, giving the same probabilities as [`Model::predict_row`].
//!
//! - Logistic regression: standardization and Platt scaling are folded into
//!   one weight vector and one bias, so a score is a dot product and a sigmoid.
//! - Random forest: all trees in one contiguous array of small nodes (leaf
//!   values stored in place of the threshold); batches walk tree by tree so
//!   each tree stays in cache while every row goes through it.

use crate::model::artifact::{Estimator, Model, logit, sigmoid};

#[derive(Debug, Clone, Copy)]
struct Node {
    /// The split threshold, or the leaf value when `feature < 0`.
    threshold: f64,
    feature: i32,
    left: u32,
    right: u32,
}

#[derive(Debug, Clone)]
enum Kind {
    Linear { w: Vec<f64>, bias: f64 },
    Forest { nodes: Vec<Node>, roots: Vec<u32> },
}

/// A model ready to score.
#[derive(Debug, Clone)]
pub struct Predictor {
    kind: Kind,
    a: f64,
    b: f64,
}

impl Predictor {
    pub fn new(model: &Model) -> Predictor {
        let c = &model.content;
        let (a, b) = (c.calibration.a, c.calibration.b);
        let kind = match &c.estimator {
            Estimator::LogisticRegression {
                coefficients,
                intercept,
                ..
            } => {
                // a * (intercept + Σ c (x - m) / s) + b  =  bias + Σ w x
                let mut bias = *intercept;
                let mut w = Vec::with_capacity(coefficients.len());
                for ((coef, m), s) in coefficients
                    .iter()
                    .zip(&c.standardization.mean)
                    .zip(&c.standardization.std)
                {
                    w.push(a * coef / s);
                    bias -= coef * m / s;
                }
                Kind::Linear {
                    w,
                    bias: a * bias + b,
                }
            }
            Estimator::RandomForest { trees, .. } => {
                let mut nodes = Vec::new();
                let mut roots = Vec::with_capacity(trees.len());
                for t in trees {
                    let base = nodes.len() as u32;
                    roots.push(base);
                    for i in 0..t.feature.len() {
                        let f = t.feature.get(i).copied().unwrap_or(-1);
                        let leaf = f < 0;
                        let value = t.value.get(i).copied().unwrap_or(0.0);
                        let th = t.threshold.get(i).copied().unwrap_or(0.0);
                        nodes.push(Node {
                            threshold: if leaf { value } else { th },
                            feature: f,
                            left: base + t.left.get(i).copied().unwrap_or(0),
                            right: base + t.right.get(i).copied().unwrap_or(0),
                        });
                    }
                }
                Kind::Forest { nodes, roots }
            }
        };
        Predictor { kind, a, b }
    }

    fn leaf(nodes: &[Node], root: u32, x: &[f64]) -> f64 {
        let mut i = root as usize;
        // Children always come after their parent, so this ends.
        while let Some(n) = nodes.get(i) {
            if n.feature < 0 {
                return n.threshold;
            }
            let v = x.get(n.feature as usize).copied().unwrap_or(0.0);
            let next = if v <= n.threshold { n.left } else { n.right } as usize;
            if next <= i {
                return 0.0;
            }
            i = next;
        }
        0.0
    }

    fn forest_probability(&self, mean_leaf: f64) -> f64 {
        sigmoid(self.a * logit(mean_leaf) + self.b)
    }

    /// The calibrated probability of late payment for one model input row.
    pub fn predict_row(&self, x: &[f64]) -> f64 {
        match &self.kind {
            Kind::Linear { w, bias } => {
                let z = w.iter().zip(x).fold(*bias, |acc, (w, v)| acc + w * v);
                sigmoid(z)
            }
            Kind::Forest { nodes, roots } => {
                if roots.is_empty() {
                    return self.forest_probability(0.0);
                }
                let sum: f64 = roots.iter().map(|&r| Self::leaf(nodes, r, x)).sum();
                self.forest_probability(sum / roots.len() as f64)
            }
        }
    }

    /// Probabilities for many rows at once.
    pub fn predict_batch(&self, rows: &[Vec<f64>]) -> Vec<f64> {
        match &self.kind {
            Kind::Linear { .. } => rows.iter().map(|x| self.predict_row(x)).collect(),
            Kind::Forest { nodes, roots } => {
                let mut sums = vec![0.0; rows.len()];
                for &r in roots {
                    for (s, x) in sums.iter_mut().zip(rows) {
                        *s += Self::leaf(nodes, r, x);
                    }
                }
                let n = roots.len().max(1) as f64;
                sums.into_iter()
                    .map(|s| self.forest_probability(s / n))
                    .collect()
            }
        }
    }
}
