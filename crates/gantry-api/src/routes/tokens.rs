//! API tokens: list, create (the secret is shown once), revoke. Only an
//! admin creates or revokes tokens (the route table says so); anyone may list,
//! but a token that is not an admin's sees only itself.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use gantry_store::TokenRecord;
use gantry_wire::Revoked;
use gantry_wire::tokens::{CreateToken, CreatedToken, TokenList};

use crate::auth::{Caller, Role, generate_token, hash_token};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, PathParams};
use crate::views::{self, timestamp};
use crate::{AppState, now_millis};

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<axum::Json<TokenList>> {
    let tokens = state
        .store()
        .tokens()
        .await?
        .into_iter()
        .filter(|token| caller.role == Role::Admin || token.id == caller.token_id)
        .map(views::token)
        .collect();
    Ok(axum::Json(TokenList { tokens }))
}

pub async fn create(
    State(state): State<AppState>,
    Json(body): Json<CreateToken>,
) -> ApiResult<(StatusCode, axum::Json<CreatedToken>)> {
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
    let role = match body.role.as_deref() {
        None => Role::Viewer,
        Some(word) => Role::parse(word).ok_or_else(|| {
            ApiError::invalid(format!(
                "role {word:?} is not one of admin, operator, viewer"
            ))
        })?,
    };
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
        role: role.as_str().to_owned(),
    };
    state.store().create_token(&record).await?;
    tracing::info!(token = %record.name, role = %role, "token created");
    let body = CreatedToken {
        created_at: timestamp(record.created_at),
        id: record.id,
        name: record.name,
        role: record.role,
        token: secret,
    };
    Ok((StatusCode::CREATED, axum::Json(body)))
}

pub async fn revoke(
    State(state): State<AppState>,
    PathParams(token): PathParams<String>,
) -> ApiResult<axum::Json<Revoked>> {
    if !state.store().revoke_token(&token, now_millis()).await? {
        return Err(ApiError::not_found(format!(
            "token {token:?} not found or already revoked"
        )));
    }
    state.tokens().clear();
    tracing::info!(token = %token, "token revoked");
    Ok(axum::Json(Revoked { revoked: token }))
}
