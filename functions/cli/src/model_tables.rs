//! The risk model's figures as text tables, for `collect train` and
//! `collect eval-ibm`: metrics next to the baseline's, and calibration.

use collect_model::metrics::Metrics;
use std::fmt::Write as _;

/// A metric with three decimals, `n/a` when it cannot be computed.
pub fn f3(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"))
}

pub fn metrics_table(model: &Metrics, baseline: &Metrics) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "  {:<14} {:>8} {:>10}", "", "model", "baseline");
    let rows: [(&str, Option<f64>, Option<f64>); 7] = [
        ("ROC AUC", model.roc_auc, baseline.roc_auc),
        ("PR AUC", model.pr_auc, baseline.pr_auc),
        ("Brier", model.brier, baseline.brier),
        ("log-loss", model.log_loss, baseline.log_loss),
        ("accuracy@0.5", model.accuracy, baseline.accuracy),
        (
            "mean predicted",
            model.mean_predicted,
            baseline.mean_predicted,
        ),
        ("base rate", model.base_rate, baseline.base_rate),
    ];
    for (name, a, b) in rows {
        let _ = writeln!(out, "  {name:<14} {:>8} {:>10}", f3(a), f3(b));
    }
    out
}

pub fn calibration_table(m: &Metrics) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {:<11} {:>6} {:>10} {:>9}",
        "predicted", "rows", "mean", "observed"
    );
    for b in &m.calibration {
        let _ = writeln!(
            out,
            "  {:.1} - {:.1}  {:>6} {:>10} {:>9}",
            b.lo,
            b.hi,
            b.count,
            f3(b.mean_predicted),
            f3(b.observed_rate)
        );
    }
    out
}
