//! API tokens: list, create (the secret is shown once), revoke.

use axum::extract::State;
use axum::http::StatusCode;
use gantry_store::TokenRecord;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{generate_token, hash_token};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, PathParams};
use crate::views::{TokenView, timestamp};
use crate::{AppState, now_millis};

pub async fn list(State(state): State<AppState>) -> ApiResult<axum::Json<Value>> {
    let tokens: Vec<TokenView> = state
        .store()
        .tokens()
        .await?
        .into_iter()
        .map(TokenView::from)
        .collect();
    Ok(axum::Json(json!({ "tokens": tokens })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    pub name: String,
}

pub async fn create(
    State(state): State<AppState>,
    Json(body): Json<CreateBody>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let name = body.name.trim();
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if !valid {
        return Err(ApiError::invalid(format!(
            "token name {name:?} must be 1 to 64 letters, digits or - _ . @"
        )));
    }
    if state
        .store()
        .tokens()
        .await?
        .iter()
        .any(|t| t.name == name && t.revoked_at.is_none())
    {
        return Err(ApiError::conflict(format!(
            "a token named {name:?} already exists"
        )));
    }
    let secret = generate_token();
    let record = TokenRecord {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        hash: hash_token(&secret),
        created_at: now_millis(),
        revoked_at: None,
        last_used_at: None,
    };
    state.store().create_token(&record).await?;
    tracing::info!(token = %record.name, "token created");
    let body = json!({
        "id": record.id,
        "name": record.name,
        "token": secret,
        "createdAt": timestamp(record.created_at),
    });
    Ok((StatusCode::CREATED, axum::Json(body)))
}

pub async fn revoke(
    State(state): State<AppState>,
    PathParams(token): PathParams<String>,
) -> ApiResult<axum::Json<Value>> {
    if !state.store().revoke_token(&token, now_millis()).await? {
        return Err(ApiError::not_found(format!(
            "token {token:?} not found or already revoked"
        )));
    }
    state.tokens().clear();
    tracing::info!(token = %token, "token revoked");
    Ok(axum::Json(json!({ "revoked": token })))
}
