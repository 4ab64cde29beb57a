//! Server-side secrets: set (the value goes in, never comes out), list
//! (names and times only), delete.

use axum::extract::State;
use gantry_secrets::{SecretError, SecretInfo, SecretStore};
use gantry_wire::Deleted;
use gantry_wire::secrets::{Secret, SecretList, SetSecret};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, PathParams};
use crate::views::timestamp;
use crate::{AppState, now_millis};

fn store(state: &AppState) -> ApiResult<&SecretStore> {
    state
        .engine()
        .secrets()
        .ok_or_else(|| ApiError::internal("this server has no secret store"))
}

fn view(info: &SecretInfo) -> Secret {
    Secret {
        name: info.name.clone(),
        created_at: timestamp(info.created_at),
        updated_at: timestamp(info.updated_at),
    }
}

fn api_error(error: SecretError) -> ApiError {
    match error {
        SecretError::BadName(_)
        | SecretError::Reserved(_)
        | SecretError::TooLarge(_)
        | SecretError::Empty(_) => ApiError::invalid(error.to_string()),
        _ => ApiError::internal(error.to_string()),
    }
}

pub async fn list(State(state): State<AppState>) -> ApiResult<axum::Json<SecretList>> {
    let secrets = store(&state)?.list().await.map_err(api_error)?;
    Ok(axum::Json(SecretList {
        secrets: secrets.iter().map(view).collect(),
    }))
}

pub async fn set(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    Json(body): Json<SetSecret>,
) -> ApiResult<axum::Json<Secret>> {
    let secrets = store(&state)?;
    secrets
        .set(&name, &body.value, now_millis())
        .await
        .map_err(api_error)?;
    tracing::info!(secret = %name, "secret set");
    let info = secrets
        .list()
        .await
        .map_err(api_error)?
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ApiError::internal(format!("secret {name:?} vanished after being set")))?;
    Ok(axum::Json(view(&info)))
}

pub async fn delete(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<Deleted>> {
    if !store(&state)?.delete(&name).await.map_err(api_error)? {
        return Err(ApiError::not_found(format!("secret {name:?} not found")));
    }
    tracing::info!(secret = %name, "secret deleted");
    Ok(axum::Json(Deleted { deleted: name }))
}
