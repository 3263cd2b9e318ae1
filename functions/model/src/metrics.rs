//! How good a probability of late payment is: ranking (ROC AUC, PR AUC),
//! probability quality (Brier, log-loss, the calibration table) and the
//! plain accuracy at 0.5 finance ops ask about.

use serde::{Deserialize, Serialize};

/// Probabilities are clipped to this distance from 0 and 1 for the log-loss.
const EPS: f64 = 1e-15;

/// One bin of the calibration table: predictions in `[lo, hi)` (the last bin
/// includes 1), how many, their mean, and how many of them were late.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub lo: f64,
    pub hi: f64,
    pub count: usize,
    pub mean_predicted: Option<f64>,
    pub observed_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub rows: usize,
    /// Share of rows paid late.
    pub base_rate: Option<f64>,
    pub mean_predicted: Option<f64>,
    /// `None` when the rows hold only one class.
    pub roc_auc: Option<f64>,
    /// Average precision (the step-wise area under the precision-recall curve).
    pub pr_auc: Option<f64>,
    pub brier: Option<f64>,
    pub log_loss: Option<f64>,
    pub accuracy: Option<f64>,
    pub calibration: Vec<CalibrationBin>,
}

impl Metrics {
    /// Scores `p` (probabilities of late payment) against outcomes `y`.
    pub fn of(p: &[f64], y: &[bool]) -> Metrics {
        let n = p.len().min(y.len());
        let pairs: Vec<(f64, bool)> = p.iter().copied().zip(y.iter().copied()).collect();
        let nf = n as f64;
        let avg = |f: &dyn Fn(f64, bool) -> f64| -> Option<f64> {
            (n > 0).then(|| pairs.iter().map(|&(p, y)| f(p, y)).sum::<f64>() / nf)
        };
        Metrics {
            rows: n,
            base_rate: avg(&|_, y| if y { 1.0 } else { 0.0 }),
            mean_predicted: avg(&|p, _| p),
            roc_auc: roc_auc(&pairs),
            pr_auc: average_precision(&pairs),
            brier: avg(&|p, y| {
                let t = if y { 1.0 } else { 0.0 };
                (p - t) * (p - t)
            }),
            log_loss: avg(&|p, y| {
                let p = p.clamp(EPS, 1.0 - EPS);
                if y { -p.ln() } else { -(1.0 - p).ln() }
            }),
            accuracy: avg(&|p, y| if (p >= 0.5) == y { 1.0 } else { 0.0 }),
            calibration: calibration(&pairs, 10),
        }
    }
}

/// Area under the ROC curve by the rank-sum, ties counted half.
pub fn roc_auc(pairs: &[(f64, bool)]) -> Option<f64> {
    let pos = pairs.iter().filter(|(_, y)| *y).count();
    let neg = pairs.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut sorted: Vec<(f64, bool)> = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    for group in sorted.chunk_by(|a, b| a.0 == b.0) {
        let len = group.len();
        // Ranks i+1 ..= i+len share their mean.
        let mean_rank = i as f64 + (len as f64 + 1.0) / 2.0;
        rank_sum += mean_rank * group.iter().filter(|(_, y)| *y).count() as f64;
        i += len;
    }
    let posf = pos as f64;
    Some((rank_sum - posf * (posf + 1.0) / 2.0) / (posf * neg as f64))
}

/// Average precision: the sum over thresholds of precision × recall gained.
pub fn average_precision(pairs: &[(f64, bool)]) -> Option<f64> {
    let pos = pairs.iter().filter(|(_, y)| *y).count();
    if pos == 0 {
        return None;
    }
    let mut sorted: Vec<(f64, bool)> = pairs.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut seen, mut ap, mut last_recall) = (0usize, 0usize, 0.0, 0.0);
    for group in sorted.chunk_by(|a, b| a.0 == b.0) {
        tp += group.iter().filter(|(_, y)| *y).count();
        seen += group.len();
        let recall = tp as f64 / pos as f64;
        let precision = tp as f64 / seen as f64;
        ap += (recall - last_recall) * precision;
        last_recall = recall;
    }
    Some(ap)
}

/// Equal-width bins over [0, 1].
pub fn calibration(pairs: &[(f64, bool)], bins: usize) -> Vec<CalibrationBin> {
    let bins = bins.max(1);
    let mut sums = vec![(0usize, 0.0f64, 0usize); bins];
    for &(p, y) in pairs {
        let k = ((p.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
        if let Some(s) = sums.get_mut(k) {
            s.0 += 1;
            s.1 += p;
            s.2 += usize::from(y);
        }
    }
    sums.iter()
        .enumerate()
        .map(|(k, &(count, sum, late))| CalibrationBin {
            lo: k as f64 / bins as f64,
            hi: (k + 1) as f64 / bins as f64,
            count,
            mean_predicted: (count > 0).then(|| sum / count as f64),
            observed_rate: (count > 0).then(|| late as f64 / count as f64),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn auc_of_a_perfect_and_a_reversed_ranking() {
        let y = [false, false, true, true];
        let m = Metrics::of(&[0.1, 0.2, 0.8, 0.9], &y);
        assert_eq!(m.roc_auc, Some(1.0));
        assert_eq!(m.pr_auc, Some(1.0));
        assert_eq!(m.accuracy, Some(1.0));
        let r = Metrics::of(&[0.9, 0.8, 0.2, 0.1], &y);
        assert_eq!(r.roc_auc, Some(0.0));
    }

    #[test]
    fn ties_count_half() {
        let m = Metrics::of(&[0.5, 0.5], &[false, true]);
        assert_eq!(m.roc_auc, Some(0.5));
        assert_eq!(m.pr_auc, Some(0.5));
        assert!((m.log_loss.unwrap() - std::f64::consts::LN_2).abs() < 1e-12);
        assert!((m.brier.unwrap() - 0.25).abs() < 1e-12);
    }

    #[test]
    fn known_auc_and_average_precision() {
        // sklearn: roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) == 0.75,
        // average_precision_score(...) == 0.8333...
        let y = [false, false, true, true];
        let p = [0.1, 0.4, 0.35, 0.8];
        let m = Metrics::of(&p, &y);
        assert!((m.roc_auc.unwrap() - 0.75).abs() < 1e-12);
        assert!((m.pr_auc.unwrap() - 0.833_333_333_333_333_4).abs() < 1e-12);
        assert_eq!(m.calibration.len(), 10);
        assert_eq!(m.calibration.iter().map(|b| b.count).sum::<usize>(), 4);
    }

    #[test]
    fn one_class_has_no_auc() {
        let m = Metrics::of(&[0.1, 0.2], &[false, false]);
        assert_eq!(m.roc_auc, None);
        assert_eq!(m.pr_auc, None);
        assert_eq!(m.base_rate, Some(0.0));
    }
}
