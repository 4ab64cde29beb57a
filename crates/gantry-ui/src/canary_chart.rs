//! A canary analysis as pictures: baseline against canary over the
//! analysis window, one chart of latency (median and 99th percentile) and
//! one of error rate, drawn as inline SVG on the server from the record the
//! deploy stage keeps (`gantry_wire::deploy::CanaryAnalysis`), with the
//! verdict and the scores beside them. No chart library: a chart is a few
//! paths whose points are computed here, so the page needs no script to
//! show it and stays within its asset budget.

use gantry_wire::deploy::{AnalysisInterval, CanaryAnalysis, CanaryVerdict, IntervalFigures};
use gantry_wire::executions::Stage;
use serde_json::Value;

/// The drawing area of a chart, in SVG units; the axes' labels lie outside it.
pub const PLOT_WIDTH: f64 = 520.0;
pub const LATENCY_HEIGHT: f64 = 160.0;
pub const ERRORS_HEIGHT: f64 = 90.0;
/// Room left of the plot for the value labels, and below for the time labels.
pub const LEFT: f64 = 56.0;
pub const BOTTOM: f64 = 22.0;

/// What the template draws of one analysis.
pub struct AnalysisChart {
    pub title: String,
    pub verdict: &'static str,
    /// `st-succeeded`, `st-waiting` or `st-failed`: the colour of the verdict,
    /// which is also spelled out.
    pub verdict_class: &'static str,
    pub verdict_symbol: &'static str,
    pub scores: String,
    pub summary: String,
    /// Latency, then error rate.
    pub charts: Vec<Chart>,
    pub metrics: Vec<MetricRow>,
    pub rows: Vec<IntervalRow>,
}

/// One chart: its lines (an SVG path each; a gap where an interval had no
/// request) and the labels of its axes.
pub struct Chart {
    /// What it shows, for screen readers.
    pub label: &'static str,
    pub height: f64,
    pub lines: Vec<Line>,
    pub top_label: String,
    pub end_label: String,
}

pub struct Line {
    /// `baseline` or `canary`, and `dashed` for the 99th percentile.
    pub class: &'static str,
    pub path: String,
    pub legend: &'static str,
}

pub struct MetricRow {
    pub metric: &'static str,
    pub judgment: String,
    pub canary: String,
    pub baseline: String,
}

pub struct IntervalRow {
    pub span: String,
    pub canary: String,
    pub baseline: String,
}

/// The analyses of a deploy stage: from its outputs once it succeeded, from
/// its state while it runs or when it failed.
pub fn of_stage(stage: &Stage) -> Vec<AnalysisChart> {
    let recorded = stage
        .outputs
        .get("analysis")
        .or_else(|| stage.state.pointer("/rollout/analyses"));
    let analyses: Vec<CanaryAnalysis> = match recorded {
        Some(Value::Array(_)) => {
            serde_json::from_value(recorded.cloned().unwrap_or_default()).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    analyses.iter().map(chart).collect()
}

pub fn chart(analysis: &CanaryAnalysis) -> AnalysisChart {
    let (verdict_class, verdict_symbol) = match analysis.verdict {
        CanaryVerdict::Pass => ("st-succeeded", "✓"),
        CanaryVerdict::Marginal => ("st-waiting", "!"),
        CanaryVerdict::Fail => ("st-failed", "✗"),
    };
    let seconds = analysis.window_ms as f64 / 1000.0;
    // Latency's axis fits the slowest p99; error rate's shows at least 5 %.
    let latency_top = axis_top(analysis, 0.0, |f| f.p99_ms);
    let errors_top = axis_top(analysis, 5.0, |f| f.error_rate);
    let plot = |height: f64, top: f64, read: fn(&IntervalFigures) -> Option<f64>| {
        move |pick: fn(&AnalysisInterval) -> &IntervalFigures| {
            path(analysis, height, top, |i| read(pick(i)))
        }
    };
    let p50 = plot(LATENCY_HEIGHT, latency_top, |f| f.p50_ms);
    let p99 = plot(LATENCY_HEIGHT, latency_top, |f| f.p99_ms);
    let errors = plot(ERRORS_HEIGHT, errors_top, |f| f.error_rate);
    fn baseline(i: &AnalysisInterval) -> &IntervalFigures {
        &i.baseline
    }
    fn canary(i: &AnalysisInterval) -> &IntervalFigures {
        &i.canary
    }
    let end_label = format!("{seconds:.0} s");
    AnalysisChart {
        title: format!(
            "Canary analysis at step {}: {} against {}",
            analysis.step, analysis.canary, analysis.baseline
        ),
        verdict: analysis.verdict.as_str(),
        verdict_class,
        verdict_symbol,
        scores: format!(
            "score {:.0} (pass at {:.0}, marginal at {:.0})",
            analysis.score, analysis.pass_score, analysis.marginal_score
        ),
        summary: format!(
            "{} requests to the canary and {} to the baseline over {seconds:.0} s",
            analysis
                .intervals
                .iter()
                .map(|i| i.canary.requests)
                .sum::<u64>(),
            analysis
                .intervals
                .iter()
                .map(|i| i.baseline.requests)
                .sum::<u64>(),
        ),
        charts: vec![
            Chart {
                label: "Latency",
                height: LATENCY_HEIGHT,
                lines: vec![
                    line("baseline", p50(baseline), "baseline p50"),
                    line("baseline dashed", p99(baseline), "baseline p99"),
                    line("canary", p50(canary), "canary p50"),
                    line("canary dashed", p99(canary), "canary p99"),
                ],
                top_label: format!("{latency_top} ms"),
                end_label: end_label.clone(),
            },
            Chart {
                label: "Error rate",
                height: ERRORS_HEIGHT,
                lines: vec![
                    line("baseline", errors(baseline), "baseline errors"),
                    line("canary", errors(canary), "canary errors"),
                ],
                top_label: format!("{errors_top} %"),
                end_label,
            },
        ],
        metrics: analysis
            .metrics
            .iter()
            .map(|m| {
                let (metric, unit) = match m.metric.as_str() {
                    "errorRate" => ("error rate", "%"),
                    "latencyMs" => ("median latency", "ms"),
                    _ => ("other", ""),
                };
                MetricRow {
                    metric,
                    judgment: m.judgment.clone(),
                    canary: format!("{:.2} {unit}", m.canary),
                    baseline: format!("{:.2} {unit}", m.baseline),
                }
            })
            .collect(),
        rows: analysis
            .intervals
            .iter()
            .map(|i| IntervalRow {
                span: format!(
                    "{:.1}–{:.1} s",
                    i.start_ms as f64 / 1000.0,
                    i.end_ms as f64 / 1000.0
                ),
                canary: figures_text(&i.canary),
                baseline: figures_text(&i.baseline),
            })
            .collect(),
    }
}

fn line(class: &'static str, path: String, legend: &'static str) -> Line {
    Line {
        class,
        path,
        legend,
    }
}

/// An SVG path through each interval's middle; an interval without a value
/// breaks the line.
fn path(
    analysis: &CanaryAnalysis,
    height: f64,
    top: f64,
    value: impl Fn(&AnalysisInterval) -> Option<f64>,
) -> String {
    let window = analysis.window_ms.max(1) as f64;
    let mut d = String::new();
    let mut drawing = false;
    for interval in &analysis.intervals {
        let Some(v) = value(interval) else {
            drawing = false;
            continue;
        };
        let middle = (interval.start_ms + interval.end_ms) as f64 / 2.0;
        let x = LEFT + PLOT_WIDTH * middle / window;
        let y = height - height * (v / top).clamp(0.0, 1.0);
        d.push_str(&format!(
            "{}{x:.1} {y:.1} ",
            if drawing { "L" } else { "M" }
        ));
        drawing = true;
    }
    d.trim_end().to_owned()
}

/// The round top of an axis showing `read` of both groups over the window,
/// at least `floor`.
fn axis_top(
    analysis: &CanaryAnalysis,
    floor: f64,
    read: fn(&IntervalFigures) -> Option<f64>,
) -> f64 {
    nice_ceiling(
        analysis
            .intervals
            .iter()
            .flat_map(|i| [read(&i.canary), read(&i.baseline)])
            .flatten()
            .fold(floor, f64::max),
    )
}

/// The smallest of 1, 2 or 5 times a power of ten at or above `value`, so
/// an axis ends on a round number.
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * power)
        .find(|candidate| *candidate >= value)
        .unwrap_or(10.0 * power)
}

fn figures_text(figures: &IntervalFigures) -> String {
    match (figures.p50_ms, figures.p99_ms, figures.error_rate) {
        (Some(p50), Some(p99), Some(errors)) => format!(
            "{} requests, p50 {p50:.1} ms, p99 {p99:.1} ms, {errors:.1} % errors",
            figures.requests
        ),
        _ => "no requests".to_owned(),
    }
}

#[cfg(test)]
mod tests;
