//! Incoming webhooks: GitHub and GitLab push events, and the generic webhook. They are public
//! routes: each delivery proves itself with its signature or token, checked in
//! `gantry-triggers` before the body is read. Refusals are counted in
//! `gantry_webhook_refusals_total` and leave nothing else behind.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use gantry_triggers::{Delivery, WebhookError};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::PathParams;
use crate::routes::git::triggers;

pub async fn github(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<Delivery>)> {
    answer("github", triggers(&state).github(&headers, &body).await)
}

pub async fn gitlab(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<Delivery>)> {
    answer("gitlab", triggers(&state).gitlab(&headers, &body).await)
}

pub async fn generic(
    State(state): State<AppState>,
    PathParams(source): PathParams<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<Delivery>)> {
    answer(
        "generic",
        triggers(&state).generic(&source, &headers, &body).await,
    )
}

fn answer(
    provider: &'static str,
    result: Result<Delivery, WebhookError>,
) -> ApiResult<(StatusCode, axum::Json<Delivery>)> {
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
            Ok((status, axum::Json(delivery)))
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
