//! Pipelines as code: validate and apply `gantry.yaml`, list, show and
//! delete pipelines, and start executions of them.
//!
//! A pipeline stored before names were checked may have a name no URL path
//! can carry (`..`, which clients resolve away, or one longer than a request
//! line): `GET /api/v1/pipelines?name=NAME` shows it and `DELETE
//! /api/v1/pipelines` with `{"name": NAME}` deletes it.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use gantry_config::Document;
use gantry_engine::RunRequest;
use gantry_store::TriggerData;
use gantry_wire::Deleted;
use gantry_wire::executions::Execution;
use gantry_wire::pipelines::{
    ApplyReport, DeleteBody, FileBody, PipelineList, RunBody, ValidPipeline, ValidateReport,
};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, PathParams, QueryParams};
use crate::views;
use crate::{AppState, now_millis};

pub async fn validate(
    State(state): State<AppState>,
    Json(body): Json<FileBody>,
) -> ApiResult<axum::Json<ValidateReport>> {
    let document = parse(&state, &body)?;
    let pipelines = document
        .pipelines
        .iter()
        .map(|p| ValidPipeline {
            name: p.name.clone(),
            stages: p.stages.len(),
        })
        .collect();
    Ok(axum::Json(ValidateReport { pipelines }))
}

/// A thin adapter: the file is parsed here (diagnostics become a 400), the
/// use case is [`crate::apply::apply`].
pub async fn apply(
    State(state): State<AppState>,
    Json(body): Json<FileBody>,
) -> ApiResult<axum::Json<ApplyReport>> {
    let document = parse(&state, &body)?;
    let report =
        crate::apply::apply(state.engine(), state.deploy(), &document, now_millis()).await?;
    Ok(axum::Json(report))
}

/// Parses and validates; every problem is reported at once, with positions. A deploy's
/// `provider:` must name one this server registered (a server without deploys refuses
/// them when they run).
fn parse(state: &AppState, body: &FileBody) -> ApiResult<Document> {
    let parsed = match state.deploy() {
        Some(deploy) => {
            let providers = deploy.providers().names();
            gantry_config::parse_document_for(&body.file, &body.content, &providers)
        }
        None => gantry_config::parse_document(&body.file, &body.content),
    };
    parsed.map_err(|diagnostics| {
        let count = diagnostics.0.len();
        let noun = if count == 1 { "problem" } else { "problems" };
        let value = serde_json::to_value(&diagnostics).unwrap_or(Value::Null);
        ApiError::invalid(format!("{} has {count} {noun}:\n{diagnostics}", body.file))
            .with_diagnostics(value)
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only the pipeline of this name, with its spec (none when there is no such pipeline).
    pub name: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> ApiResult<axum::Json<PipelineList>> {
    let pipelines = match &query.name {
        Some(name) => state
            .store()
            .pipeline(name)
            .await?
            .into_iter()
            .map(|p| views::pipeline(p, true))
            .collect(),
        None => state
            .store()
            .pipelines()
            .await?
            .into_iter()
            .map(|p| views::pipeline(p, false))
            .collect(),
    };
    Ok(axum::Json(PipelineList { pipelines }))
}

pub async fn show(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<gantry_wire::pipelines::Pipeline>> {
    let record = state
        .store()
        .pipeline(&name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    Ok(axum::Json(views::pipeline(record, true)))
}

pub async fn delete(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<Deleted>> {
    delete_named(&state, name).await
}

/// `DELETE /api/v1/pipelines` with `{"name": …}`: for a name no path can carry.
pub async fn delete_by_body(
    State(state): State<AppState>,
    Json(body): Json<DeleteBody>,
) -> ApiResult<axum::Json<Deleted>> {
    delete_named(&state, body.name).await
}

async fn delete_named(state: &AppState, name: String) -> ApiResult<axum::Json<Deleted>> {
    if !state.store().delete_pipeline(&name).await? {
        return Err(not_found(&name));
    }
    tracing::info!(pipeline = %name, "pipeline deleted");
    Ok(axum::Json(Deleted { deleted: name }))
}

pub async fn run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(name): PathParams<String>,
    Json(body): Json<RunBody>,
) -> ApiResult<(StatusCode, axum::Json<Execution>)> {
    let Some(record) = state.store().pipeline(&name).await? else {
        return Err(not_found(&name));
    };
    let mut parameters = BTreeMap::new();
    for (key, value) in body.parameters {
        let text = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(ApiError::invalid(format!(
                    "parameter {key:?} must be a string, a number or a boolean"
                )));
            }
        };
        parameters.insert(key, text);
    }
    let request = RunRequest {
        pipeline: name,
        parameters,
        trigger: TriggerData::manual(Some(caller.name.clone())),
        spec: None,
    };
    let mut request = request;
    if let Some(reference) = &body.reference {
        let pipeline: gantry_config::Pipeline =
            serde_json::from_value(record.spec).map_err(|e| {
                ApiError::internal(format!(
                    "pipeline {:?} is unreadable: {e}",
                    request.pipeline
                ))
            })?;
        let on_ref = crate::routes::git::triggers(&state)
            .manual_ref(&pipeline, reference, &caller.name)
            .await
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        request.trigger = on_ref.trigger;
        request.spec = on_ref.spec;
    }
    let execution = state.engine().run(request).await?;
    tracing::info!(execution = %execution.id, pipeline = %execution.pipeline, user = %caller.name, "execution started");
    let stages = state.store().stages(&execution.id).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(views::execution(execution, Some(stages))),
    ))
}

fn not_found(name: &str) -> ApiError {
    let shown: String = name.chars().take(100).collect();
    let more = if shown.len() < name.len() { "…" } else { "" };
    ApiError::not_found(format!("pipeline {shown:?}{more} not found"))
}
