//! The scoring fast path: a model compiled once into the shape that scores
//! quickest, giving the same probabilities as [`Model::predict_row`].
//!
//! - Logistic regression: standardization and Platt scaling are folded into
//!   one weight vector and one bias, so a score is a dot product and a sigmoid.
//! - Random forest: all trees in one contiguous array of small nodes, each
//!   node's children side by side so a step is branch-free; batches walk
//!   tree by tree and level by level, so each tree stays in cache and the
//!   rows' steps overlap.

use crate::artifact::{Estimator, Model, Tree, logit, sigmoid};

/// A forest node. Children are laid out side by side, so the next node is
/// `left + (x[feature] > threshold)` without a branch. A leaf points at
/// itself with an infinite threshold, so extra steps stay on it: a batch
/// walks every row the same number of steps (the tree's depth), and the rows'
/// independent steps overlap in the processor.
#[derive(Debug, Clone, Copy)]
struct Node {
    threshold: f64,
    feature: u32,
    left: u32,
}

#[derive(Debug, Clone, Copy)]
struct Root {
    node: u32,
    depth: u32,
}

#[derive(Debug, Clone)]
enum Kind {
    Linear {
        w: Vec<f64>,
        bias: f64,
    },
    Forest {
        nodes: Vec<Node>,
        /// The leaf value of each node (unused for inner nodes).
        values: Vec<f64>,
        roots: Vec<Root>,
    },
}

/// Copies `tree` into `nodes`/`values` with children side by side.
fn lay_out(tree: &Tree, nodes: &mut Vec<Node>, values: &mut Vec<f64>) -> Root {
    let root = nodes.len() as u32;
    // (old index, new index, depth)
    let mut queue = std::collections::VecDeque::from([(0usize, root, 0u32)]);
    nodes.push(Node {
        threshold: f64::INFINITY,
        feature: 0,
        left: root,
    });
    values.push(tree.value.first().copied().unwrap_or(0.0));
    let mut depth = 0;
    while let Some((old, new, level)) = queue.pop_front() {
        depth = depth.max(level);
        let f = tree.feature.get(old).copied().unwrap_or(-1);
        let (Some(&l), Some(&r), Some(&th)) = (
            tree.left.get(old),
            tree.right.get(old),
            tree.threshold.get(old),
        ) else {
            continue;
        };
        // A malformed child (not after its parent) makes the node a leaf.
        if f < 0 || (l as usize) <= old || (r as usize) <= old {
            continue;
        }
        let left = nodes.len() as u32;
        for child in [l as usize, r as usize] {
            let me = nodes.len() as u32;
            nodes.push(Node {
                threshold: f64::INFINITY,
                feature: 0,
                left: me,
            });
            values.push(tree.value.get(child).copied().unwrap_or(0.0));
            queue.push_back((child, me, level + 1));
        }
        if let Some(n) = nodes.get_mut(new as usize) {
            *n = Node {
                threshold: th,
                feature: f as u32,
                left,
            };
        }
    }
    Root { node: root, depth }
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
                let mut values = Vec::new();
                let roots = trees
                    .iter()
                    .map(|t| lay_out(t, &mut nodes, &mut values))
                    .collect();
                Kind::Forest {
                    nodes,
                    values,
                    roots,
                }
            }
        };
        Predictor { kind, a, b }
    }

    #[inline]
    fn step(nodes: &[Node], i: u32, x: &[f64]) -> u32 {
        match nodes.get(i as usize) {
            Some(n) => {
                let v = x.get(n.feature as usize).copied().unwrap_or(0.0);
                n.left + u32::from(v > n.threshold)
            }
            None => i,
        }
    }

    fn leaf(nodes: &[Node], values: &[f64], root: Root, x: &[f64]) -> f64 {
        let mut i = root.node;
        for _ in 0..root.depth {
            i = Self::step(nodes, i, x);
        }
        values.get(i as usize).copied().unwrap_or(0.0)
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
            Kind::Forest {
                nodes,
                values,
                roots,
            } => {
                if roots.is_empty() {
                    return self.forest_probability(0.0);
                }
                let sum: f64 = roots.iter().map(|&r| Self::leaf(nodes, values, r, x)).sum();
                self.forest_probability(sum / roots.len() as f64)
            }
        }
    }

    /// Probabilities for many rows at once.
    pub fn predict_batch(&self, rows: &[Vec<f64>]) -> Vec<f64> {
        match &self.kind {
            Kind::Linear { .. } => rows.iter().map(|x| self.predict_row(x)).collect(),
            Kind::Forest {
                nodes,
                values,
                roots,
            } => {
                // Blocks of rows small enough to stay in cache while every
                // tree walks them.
                const BLOCK: usize = 64;
                let mut sums = vec![0.0; rows.len()];
                let mut at = [0u32; BLOCK];
                for (block, block_sums) in rows.chunks(BLOCK).zip(sums.chunks_mut(BLOCK)) {
                    let at = at.get_mut(..block.len()).unwrap_or_default();
                    for &root in roots {
                        at.fill(root.node);
                        for _ in 0..root.depth {
                            for (i, x) in at.iter_mut().zip(block) {
                                *i = Self::step(nodes, *i, x);
                            }
                        }
                        for (s, i) in block_sums.iter_mut().zip(at.iter()) {
                            *s += values.get(*i as usize).copied().unwrap_or(0.0);
                        }
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
