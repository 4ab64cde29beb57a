//! Prometheus metrics. The engine records stage counters and durations
//! through the `metrics` facade; this module installs the recorder, counts
//! HTTP requests, and adds gauges read from the store at scrape time.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use gantry_store::Status;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;
use crate::error::ApiResult;

/// Histograms span sub-millisecond transitions to stages that wait hours for
/// a judgment; one bucket set covers both.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0, 900.0, 3600.0, 14400.0,
];

/// A transition is one committed write: tens of microseconds to a few
/// milliseconds. Fine buckets there make its p50/p99 readable.
const TRANSITION_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00015, 0.0002, 0.0003, 0.0004, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003,
    0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// Installs the process-wide recorder; call once, before the engine starts.
pub fn install_recorder() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets(BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full("gantry_transition_seconds".into()),
            TRANSITION_BUCKETS,
        )?
        .install_recorder()?;
    metrics::describe_histogram!(
        "gantry_transition_seconds",
        metrics::Unit::Seconds,
        "How long persisting one execution state change took"
    );
    metrics::describe_gauge!("gantry_executions", "Executions in the store, by status");
    metrics::describe_counter!(
        "gantry_http_requests_total",
        "HTTP requests answered, by method, route and status"
    );
    metrics::describe_counter!(
        "gantry_stages_total",
        "Stages that ended, by status and type"
    );
    metrics::describe_histogram!(
        "gantry_stage_duration_seconds",
        metrics::Unit::Seconds,
        "How long stages ran"
    );
    Ok(handle)
}

/// The text exposition of every metric.
pub async fn render(state: &AppState) -> ApiResult<String> {
    let counts = state.store().execution_counts().await?;
    for status in Status::ALL {
        let count = counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n);
        metrics::gauge!("gantry_executions", "status" => status.as_str()).set(count as f64);
    }
    let handle = state.metrics_handle();
    handle.run_upkeep();
    let mut text = handle.render();
    text.push_str(&crate::routes::deploy::metrics(state).await);
    Ok(text)
}

/// Middleware counting requests by route template (not by raw path, which
/// would make one series per execution id).
pub async fn track(request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("gantry_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}
