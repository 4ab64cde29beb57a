//! Incoming webhooks: GitHub and GitLab push events, and the generic webhook. They are public
//! routes: each delivery proves itself with its signature or token, checked in
//! `gantry-triggers` once the body is read. Until then the sender is
//! unauthenticated: its body must arrive within a time limit and counts
//! against the budget all such bodies share (`bodies.rs`). Refusals are
//! counted in `gantry_webhook_refusals_total`; every delivery, refused or
//! not, is added to the bounded delivery log (`gantry-triggers`'
//! `deliveries.rs`), which `GET /api/v1/webhook-deliveries` shows.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gantry_store::DeliveryFilter;
use gantry_triggers::{Delivery, WebhookError, WebhookRoute};
use gantry_wire::git::{
    StartedExecution, WebhookDelivery, WebhookDeliveryEntry, WebhookDeliveryLog,
};
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{PathParams, QueryParams};
use crate::routes::git::triggers;

pub async fn github(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let body = match read(&state, body).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    deliver(&state, WebhookRoute::Github, &headers, &body).await
}

pub async fn gitlab(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let body = match read(&state, body).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    deliver(&state, WebhookRoute::Gitlab, &headers, &body).await
}

pub async fn generic(
    State(state): State<AppState>,
    PathParams(source): PathParams<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read(&state, body).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let route = WebhookRoute::Generic { source: &source };
    deliver(&state, route, &headers, &body).await
}

/// Hands the delivery to the trigger kind of its route.
async fn deliver(
    state: &AppState,
    route: WebhookRoute<'_>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let delivery = triggers(state).webhook(route, headers, body).await;
    answer(route.provider(), delivery).into_response()
}

/// The delivery's body, read within the limits of unauthenticated bodies.
async fn read(state: &AppState, body: Body) -> Result<Bytes, Response> {
    state
        .unauthenticated_bodies()
        .read(body, crate::bodies::WEBHOOK_BODY_LIMIT)
        .await
        .map_err(|refused| {
            tracing::warn!(error = %refused, "webhook body refused");
            refused.into_response()
        })
}

fn answer(
    provider: &'static str,
    result: Result<Delivery, WebhookError>,
) -> ApiResult<(StatusCode, axum::Json<WebhookDelivery>)> {
    let refuse = |reason: &'static str| {
        metrics::counter!("gantry_webhook_refusals_total", "provider" => provider, "reason" => reason)
            .increment(1);
    };
    match result {
        Ok(delivery) => {
            metrics::counter!("gantry_webhook_deliveries_total", "provider" => provider)
                .increment(1);
            let status = if delivery.started.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            Ok((status, axum::Json(delivery_view(delivery))))
        }
        Err(WebhookError::Unauthorized(message)) => {
            refuse("unauthorized");
            tracing::warn!(%provider, %message, "webhook refused");
            Err(ApiError::unauthorized(message))
        }
        Err(WebhookError::Invalid(message)) => {
            refuse("invalid");
            Err(ApiError::invalid(message))
        }
        Err(WebhookError::NotFound(message)) => {
            refuse("unknown_source");
            Err(ApiError::not_found(message))
        }
        Err(WebhookError::Internal(message)) => Err(ApiError::internal(message)),
    }
}

fn delivery_view(delivery: Delivery) -> WebhookDelivery {
    WebhookDelivery {
        started: delivery
            .started
            .into_iter()
            .map(|s| StartedExecution {
                pipeline: s.pipeline,
                execution: s.execution,
            })
            .collect(),
        ignored: delivery.ignored,
        duplicate: delivery.duplicate,
    }
}

/// `GET /api/v1/webhook-deliveries?limit=`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    pub limit: Option<i64>,
}

/// `GET /api/v1/trigger-deliveries?kind=&pipeline=&limit=`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerDeliveryQuery {
    pub kind: Option<String>,
    pub pipeline: Option<String>,
    pub limit: Option<i64>,
}

/// The webhook deliveries only.
pub async fn list_deliveries(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<DeliveryQuery>,
) -> ApiResult<axum::Json<WebhookDeliveryLog>> {
    let filter = DeliveryFilter {
        kind: Some("webhook".to_owned()),
        pipeline: None,
    };
    deliveries(&state, &filter, query.limit).await
}

/// The deliveries of every trigger kind, of one kind or one pipeline when asked.
pub async fn list_trigger_deliveries(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<TriggerDeliveryQuery>,
) -> ApiResult<axum::Json<WebhookDeliveryLog>> {
    let kind = query.kind.filter(|k| !k.is_empty());
    if let Some(kind) = &kind {
        let kinds = gantry_triggers::trigger_kind_names();
        if !kinds.contains(&kind.as_str()) {
            return Err(ApiError::invalid(format!(
                "kind must be one of {}, not {kind:?}",
                kinds.join(", ")
            )));
        }
    }
    let filter = DeliveryFilter {
        kind,
        pipeline: query.pipeline.filter(|p| !p.is_empty()),
    };
    deliveries(&state, &filter, query.limit).await
}

async fn deliveries(
    state: &AppState,
    filter: &DeliveryFilter,
    limit: Option<i64>,
) -> ApiResult<axum::Json<WebhookDeliveryLog>> {
    let kept = gantry_store::WEBHOOK_DELIVERIES_KEPT;
    let limit = limit.unwrap_or(50);
    if !(1..=kept).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {kept}, not {limit}"
        )));
    }
    let records = triggers(state).deliveries(filter, limit).await?;
    Ok(axum::Json(WebhookDeliveryLog {
        deliveries: records.into_iter().map(delivery_entry).collect(),
    }))
}

fn delivery_entry(record: gantry_store::WebhookDeliveryRecord) -> WebhookDeliveryEntry {
    let started = serde_json::from_value(record.started).unwrap_or_default();
    WebhookDeliveryEntry {
        id: record.id,
        received_at: crate::views::timestamp(record.received_at),
        kind: record.kind,
        provider: record.provider,
        source: record.source,
        pipeline: record.pipeline,
        outcome: record.outcome,
        reason: record.reason,
        started,
    }
}
