//! The statistics of the report: proportions with 95% intervals, the
//! difference of two proportions with its interval, and the design effect of
//! observations that come in groups (a customer's invoices).
//!
//! - **Wilson score interval** for one proportion `p = x / n`, with
//!   `z = 1.959964` (95%): centre `(p + z²/2n) / (1 + z²/n)`, half-width
//!   `z / (1 + z²/n) · √(p(1−p)/n + z²/4n²)`. Unlike `p ± z·√(p(1−p)/n)` it
//!   stays inside 0–100% and behaves at small `n` and at 0% or 100%.
//! - **Newcombe's hybrid score interval** (his method 10, 1998) for a
//!   difference `d = p₁ − p₂` of independent proportions, built from each
//!   arm's Wilson interval `[l, u]`:
//!   `d − √((p₁−l₁)² + (u₂−p₂)²)` to `d + √((u₁−p₁)² + (p₂−l₂)²)`.
//! - **Design effect** (Kish): experiments assign customers, not invoices,
//!   and one customer's invoices tend to be paid alike, so `n` invoices carry
//!   less information than `n` independent draws. The variance of the pay
//!   rate is estimated from the spread between customers (the ratio
//!   estimator: `Σ_c (y_c − p·m_c)² / n²` for a customer with `m_c` invoices
//!   of which `y_c` paid), divided by the binomial `p(1−p)/n`; the result
//!   (never below 1) divides `n` into the *effective* sample size the Wilson
//!   interval is computed on. With one invoice per customer it is exactly 1.

/// The 97.5% quantile of the standard normal distribution: 95% two-sided.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A proportion with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

/// The Wilson score interval of `p` observed on `n` (possibly effective,
/// so fractional) observations; `None` when `n` is not positive.
pub fn wilson(p: f64, n: f64, z: f64) -> Option<Interval> {
    if n.is_nan() || n <= 0.0 || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(Interval {
        estimate: p,
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    })
}

/// Wilson for `x` successes in `n` trials.
pub fn wilson_counts(x: u32, n: u32) -> Option<Interval> {
    (n > 0).then(|| wilson(f64::from(x) / f64::from(n), f64::from(n), Z95))?
}

/// Newcombe's hybrid score interval for `a − b`, from the two Wilson intervals.
pub fn newcombe(a: &Interval, b: &Interval) -> Interval {
    let d = a.estimate - b.estimate;
    let low = d - ((a.estimate - a.low).powi(2) + (b.high - b.estimate).powi(2)).sqrt();
    let high = d + ((a.high - a.estimate).powi(2) + (b.estimate - b.low).powi(2)).sqrt();
    Interval {
        estimate: d,
        low,
        high,
    }
}

/// The design effect of a pay rate observed in groups: `(units, successes)`
/// per customer. 1 when there is nothing to estimate it from.
pub fn design_effect(groups: &[(u32, u32)]) -> f64 {
    let n: f64 = groups.iter().map(|(m, _)| f64::from(*m)).sum();
    let x: f64 = groups.iter().map(|(_, y)| f64::from(*y)).sum();
    if n <= 0.0 {
        return 1.0;
    }
    let p = x / n;
    let binomial = p * (1.0 - p) / n;
    if binomial <= 0.0 {
        return 1.0;
    }
    let between: f64 = groups
        .iter()
        .map(|(m, y)| (f64::from(*y) - p * f64::from(*m)).powi(2))
        .sum::<f64>()
        / (n * n);
    (between / binomial).max(1.0)
}

/// A pay rate with its interval on the effective sample size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub n: u32,
    pub successes: u32,
    pub design_effect: f64,
    pub interval: Interval,
}

/// The pay rate of grouped observations, its design effect and its Wilson
/// interval on `n / design effect` observations.
pub fn grouped_rate(groups: &[(u32, u32)]) -> Option<Rate> {
    let n: u32 = groups.iter().map(|(m, _)| *m).sum();
    let successes: u32 = groups.iter().map(|(_, y)| *y).sum();
    if n == 0 {
        return None;
    }
    let deff = design_effect(groups);
    let p = f64::from(successes) / f64::from(n);
    let interval = wilson(p, f64::from(n) / deff, Z95)?;
    Some(Rate {
        n,
        successes,
        design_effect: deff,
        interval,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 5e-5, "{a} vs {b}");
    }

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe (1998), table I: 81/263 → 0.2553 to 0.3662.
        let i = wilson_counts(81, 263).unwrap();
        close(i.low, 0.2553);
        close(i.high, 0.3662);
        // 0/10 → 0 to 0.2775 (Wilson never goes below zero).
        let i = wilson_counts(0, 10).unwrap();
        close(i.low, 0.0);
        close(i.high, 0.2775);
        assert!(wilson_counts(0, 0).is_none());
    }

    #[test]
    fn newcombe_matches_the_published_example() {
        // Newcombe (1998), table II, example (a): 56/70 − 48/80 = 0.2000,
        // method 10: 0.0524 to 0.3339.
        let a = wilson_counts(56, 70).unwrap();
        let b = wilson_counts(48, 80).unwrap();
        let d = newcombe(&a, &b);
        close(d.estimate, 0.2);
        close(d.low, 0.0524);
        close(d.high, 0.3339);
    }

    #[test]
    fn one_invoice_per_customer_has_no_design_effect() {
        let groups = [(1, 1), (1, 0), (1, 1), (1, 0)];
        close(design_effect(&groups), 1.0);
        // Customers paying all or nothing: 2 customers × 2 invoices are
        // worth 2 observations. p = 0.5, between = (1² + 1²)/16 = 0.125,
        // binomial = 0.25/4 = 0.0625 → 2.
        close(design_effect(&[(2, 2), (2, 0)]), 2.0);
        let r = grouped_rate(&[(2, 2), (2, 0)]).unwrap();
        let plain = wilson(0.5, 2.0, Z95).unwrap();
        close(r.interval.low, plain.low);
    }
}
