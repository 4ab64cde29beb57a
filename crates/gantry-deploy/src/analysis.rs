//! Canary analysis the Kayenta way: each metric of the canary is compared
//! with the baseline and judged pass, high or low; the score is the share
//! of metrics that pass, against `marginal` and `pass` thresholds. Latency
//! is compared with the Mann-Whitney U test, so that a few slow requests do
//! not fail a canary but a shifted distribution does.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod intervals;

pub use intervals::{Compared, INTERVALS, record};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisConfig {
    #[serde(with = "crate::millis")]
    pub window: Duration,
    /// Scores below this fail at once.
    pub marginal: f64,
    /// Scores at or above this pass.
    pub pass: f64,
    /// How much higher (in percentage points) the canary's error rate may be.
    #[serde(default = "default_error_tolerance")]
    pub max_error_rate_increase: f64,
    /// How much slower (relative, 0.2 = 20%) the canary's median may be
    /// before a significant difference counts as high.
    #[serde(default = "default_latency_tolerance")]
    pub latency_tolerance: f64,
}

fn default_error_tolerance() -> f64 {
    1.0
}

/// How much slower (relative) a canary's median may be by default.
pub const DEFAULT_LATENCY_TOLERANCE: f64 = 0.2;

fn default_latency_tolerance() -> f64 {
    DEFAULT_LATENCY_TOLERANCE
}

/// One request as the load balancer measured it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub micros: u64,
    pub error: bool,
    /// How long before the samples were read it was measured, in
    /// milliseconds (0 from a data plane that does not say), so that an
    /// analysis can show the window interval by interval.
    #[serde(default)]
    pub ago_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Judgment {
    Pass,
    High,
    Low,
    /// Too few samples to say.
    NoData,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    Pass,
    Marginal,
    Fail,
}

#[derive(Clone, Debug, Serialize)]
pub struct MetricResult {
    pub metric: &'static str,
    pub judgment: Judgment,
    pub canary: f64,
    pub baseline: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub score: f64,
    pub verdict: Verdict,
    pub metrics: Vec<MetricResult>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "score {:.0} ({:?})", self.score, self.verdict)?;
        for m in &self.metrics {
            write!(
                f,
                "; {} {:?} (canary {:.2}, baseline {:.2})",
                m.metric, m.judgment, m.canary, m.baseline
            )?;
        }
        Ok(())
    }
}

/// Latency differences below this never count as high or low.
const MIN_LATENCY_DIFFERENCE_MS: f64 = 1.0;

/// Fewer samples than this per group judge a metric `NoData` (which fails).
const MIN_SAMPLES: usize = 20;

pub fn judge(canary: &[Measurement], baseline: &[Measurement], config: &AnalysisConfig) -> Report {
    let metrics = vec![
        error_rate(canary, baseline, config),
        latency(canary, baseline, config),
    ];
    let passed = metrics
        .iter()
        .filter(|m| m.judgment == Judgment::Pass || m.judgment == Judgment::Low)
        .count();
    let score = 100.0 * passed as f64 / metrics.len() as f64;
    let verdict = if score >= config.pass {
        Verdict::Pass
    } else if score >= config.marginal {
        Verdict::Marginal
    } else {
        Verdict::Fail
    };
    Report {
        score,
        verdict,
        metrics,
    }
}

fn error_rate(
    canary: &[Measurement],
    baseline: &[Measurement],
    config: &AnalysisConfig,
) -> MetricResult {
    let rate = |m: &[Measurement]| {
        100.0 * m.iter().filter(|m| m.error).count() as f64 / m.len().max(1) as f64
    };
    let (c, b) = (rate(canary), rate(baseline));
    let judgment = if canary.len() < MIN_SAMPLES || baseline.len() < MIN_SAMPLES {
        Judgment::NoData
    } else if c > b + config.max_error_rate_increase {
        Judgment::High
    } else if c < b - config.max_error_rate_increase {
        Judgment::Low
    } else {
        Judgment::Pass
    };
    MetricResult {
        metric: "errorRate",
        judgment,
        canary: c,
        baseline: b,
    }
}

fn latency(
    canary: &[Measurement],
    baseline: &[Measurement],
    config: &AnalysisConfig,
) -> MetricResult {
    let millis =
        |m: &[Measurement]| -> Vec<f64> { m.iter().map(|m| m.micros as f64 / 1000.0).collect() };
    let (c, b) = (millis(canary), millis(baseline));
    let (cm, bm) = (median(&c), median(&b));
    let judgment = if c.len() < MIN_SAMPLES || b.len() < MIN_SAMPLES {
        Judgment::NoData
    } else {
        let p = mann_whitney_p(&c, &b);
        let significant = p < 0.05;
        // A difference must be significant and large enough to matter:
        // sub-millisecond medians differ by 20% on any busy machine.
        let margin = (bm * config.latency_tolerance).max(MIN_LATENCY_DIFFERENCE_MS);
        if significant && cm > bm + margin {
            Judgment::High
        } else if significant && cm < bm - margin {
            Judgment::Low
        } else {
            Judgment::Pass
        }
    };
    MetricResult {
        metric: "latencyMs",
        judgment,
        canary: cm,
        baseline: bm,
    }
}

fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    sorted[sorted.len() / 2]
}

/// Two-sided p-value of the Mann-Whitney U test (normal approximation with
/// tie correction; fine for the hundreds of samples a window holds).
pub fn mann_whitney_p(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    if a.is_empty() || b.is_empty() {
        return 1.0;
    }
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|v| (*v, true))
        .chain(b.iter().map(|v| (*v, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len();
    let mut rank_sum_a = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        let ties = (j - i + 1) as f64;
        tie_term += ties * ties * ties - ties;
        for item in &all[i..=j] {
            if item.1 {
                rank_sum_a += rank;
            }
        }
        i = j + 1;
    }
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let total = n1 + n2;
    let variance = n1 * n2 / 12.0 * ((total + 1.0) - tie_term / (total * (total - 1.0)));
    if variance <= 0.0 {
        return 1.0;
    }
    let z = (u - mean).abs() / variance.sqrt();
    (2.0 * (1.0 - normal_cdf(z))).clamp(0.0, 1.0)
}

fn normal_cdf(z: f64) -> f64 {
    0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2))
}

/// Abramowitz and Stegun 7.1.26 (error below 1.5e-7).
fn erf(x: f64) -> f64 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    sign * y
}

#[cfg(test)]
mod tests;
