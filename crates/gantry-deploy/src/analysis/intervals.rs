//! An analysis as people read it: the window cut into equal intervals, each
//! with the canary's and the baseline's median, 99th percentile and error
//! rate, beside the judgment on the whole window. The judgment itself
//! ([`super::judge`]) uses every sample at once; the intervals only show
//! how the two groups moved over the window.

use gantry_wire::deploy::{
    AnalysisInterval, AnalysisMetric, CanaryAnalysis, CanaryVerdict, IntervalFigures,
};

use super::{AnalysisConfig, Judgment, Measurement, Report, Verdict};

/// How many intervals a window is cut into: enough for a line to show a
/// trend, few enough that each holds samples at a few requests a second.
pub const INTERVALS: u64 = 12;

/// Who was compared in an analysis, and when its window ended.
pub struct Compared<'a> {
    /// The 1-based step of the canary's steps.
    pub step: usize,
    pub canary: &'a str,
    pub baseline: &'a str,
    /// Milliseconds since the Unix epoch.
    pub ended_at: u64,
}

/// The record of one analysis, for the deploy stage's outputs.
pub fn record(
    compared: &Compared<'_>,
    canary: &[Measurement],
    baseline: &[Measurement],
    config: &AnalysisConfig,
    report: &Report,
) -> CanaryAnalysis {
    let window_ms = u64::try_from(config.window.as_millis()).unwrap_or(u64::MAX);
    let width = (window_ms / INTERVALS).max(1);
    let count = window_ms.div_ceil(width).max(1);
    let intervals = (0..count)
        .map(|index| {
            let start_ms = index * width;
            let end_ms = (start_ms + width).min(window_ms);
            AnalysisInterval {
                start_ms,
                end_ms,
                canary: figures(within(canary, window_ms, start_ms, end_ms)),
                baseline: figures(within(baseline, window_ms, start_ms, end_ms)),
            }
        })
        .collect();
    CanaryAnalysis {
        step: compared.step,
        canary: compared.canary.to_owned(),
        baseline: compared.baseline.to_owned(),
        window_ms,
        ended_at: compared.ended_at,
        intervals,
        score: report.score,
        pass_score: config.pass,
        marginal_score: config.marginal,
        verdict: match report.verdict {
            Verdict::Pass => CanaryVerdict::Pass,
            Verdict::Marginal => CanaryVerdict::Marginal,
            Verdict::Fail => CanaryVerdict::Fail,
        },
        metrics: report
            .metrics
            .iter()
            .map(|m| AnalysisMetric {
                metric: m.metric.to_owned(),
                judgment: judgment_word(m.judgment).to_owned(),
                canary: m.canary,
                baseline: m.baseline,
            })
            .collect(),
    }
}

/// The samples taken from `start_ms` to `end_ms` of the window (the last
/// interval also takes those at its very end).
fn within(
    samples: &[Measurement],
    window_ms: u64,
    start_ms: u64,
    end_ms: u64,
) -> impl Iterator<Item = &Measurement> {
    samples.iter().filter(move |m| {
        let at = window_ms.saturating_sub(m.ago_ms);
        at >= start_ms && (at < end_ms || (end_ms == window_ms && at == end_ms))
    })
}

fn figures<'a>(samples: impl Iterator<Item = &'a Measurement>) -> IntervalFigures {
    let mut millis = Vec::new();
    let mut errors = 0u64;
    for sample in samples {
        millis.push(sample.micros as f64 / 1000.0);
        errors += u64::from(sample.error);
    }
    if millis.is_empty() {
        return IntervalFigures::default();
    }
    millis.sort_by(f64::total_cmp);
    let requests = millis.len() as u64;
    IntervalFigures {
        requests,
        p50_ms: Some(quantile(&millis, 0.50)),
        p99_ms: Some(quantile(&millis, 0.99)),
        error_rate: Some(100.0 * errors as f64 / requests as f64),
    }
}

/// The nearest-rank quantile of sorted, non-empty values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn judgment_word(judgment: Judgment) -> &'static str {
    match judgment {
        Judgment::Pass => "pass",
        Judgment::High => "high",
        Judgment::Low => "low",
        Judgment::NoData => "noData",
    }
}
