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
use gantry_store::{TriggerData, Upsert};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, PathParams, QueryParams};
use crate::views::{ExecutionView, PipelineView};
use crate::{AppState, now_millis};

/// A pipeline file sent for validation or apply.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileBody {
    /// The name used in diagnostics.
    #[serde(default = "default_file")]
    pub file: String,
    pub content: String,
}

fn default_file() -> String {
    "gantry.yaml".to_owned()
}

/// What `apply` did, one list per kind of the file. Later kinds
/// (applications, load balancers, repositories) add their own lists.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    pub pipelines: Vec<Applied>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub load_balancers: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<Applied>,
}

#[derive(Debug, Serialize)]
pub struct Applied {
    pub name: String,
    pub result: Upsert,
}

pub async fn validate(Json(body): Json<FileBody>) -> ApiResult<axum::Json<Value>> {
    let document = parse(&body)?;
    let pipelines: Vec<Value> = document
        .pipelines
        .iter()
        .map(|p| json!({"name": p.name, "stages": p.stages.len()}))
        .collect();
    Ok(axum::Json(json!({ "pipelines": pipelines })))
}

pub async fn apply(
    State(state): State<AppState>,
    Json(body): Json<FileBody>,
) -> ApiResult<axum::Json<ApplyReport>> {
    let document = parse(&body)?;
    let mut report = ApplyReport::default();
    // Load balancers first: a port in use fails the apply before any
    // pipeline is written.
    (report.applications, report.load_balancers) =
        crate::routes::deploy::apply(&state, &document).await?;
    // Repositories before pipelines, so that no trigger watches one that does not exist.
    for repository in &document.repositories {
        let created = state
            .engine()
            .git()
            .ensure(&repository.name, repository.public)
            .await
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        report.repositories.push(Applied {
            name: repository.name.clone(),
            result: if created {
                Upsert::Created
            } else {
                Upsert::Unchanged
            },
        });
    }
    let now = now_millis();
    for pipeline in &document.pipelines {
        let spec = serde_json::to_value(pipeline).map_err(|e| {
            ApiError::internal(format!("cannot encode pipeline {:?}: {e}", pipeline.name))
        })?;
        let result = state
            .store()
            .upsert_pipeline(&pipeline.name, pipeline.application.as_deref(), &spec, now)
            .await?;
        tracing::info!(pipeline = %pipeline.name, ?result, "pipeline applied");
        report.pipelines.push(Applied {
            name: pipeline.name.clone(),
            result,
        });
    }
    Ok(axum::Json(report))
}

/// Parses and validates; every problem is reported at once, with positions.
fn parse(body: &FileBody) -> ApiResult<Document> {
    gantry_config::parse_document(&body.file, &body.content).map_err(|diagnostics| {
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
) -> ApiResult<axum::Json<Value>> {
    let pipelines: Vec<PipelineView> = match &query.name {
        Some(name) => state
            .store()
            .pipeline(name)
            .await?
            .into_iter()
            .map(|p| PipelineView::new(p, true))
            .collect(),
        None => state
            .store()
            .pipelines()
            .await?
            .into_iter()
            .map(|p| PipelineView::new(p, false))
            .collect(),
    };
    Ok(axum::Json(json!({ "pipelines": pipelines })))
}

pub async fn show(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<PipelineView>> {
    let record = state
        .store()
        .pipeline(&name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    Ok(axum::Json(PipelineView::new(record, true)))
}

pub async fn delete(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<Value>> {
    delete_named(&state, name).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteBody {
    pub name: String,
}

/// `DELETE /api/v1/pipelines` with `{"name": …}`: for a name no path can carry.
pub async fn delete_by_body(
    State(state): State<AppState>,
    Json(body): Json<DeleteBody>,
) -> ApiResult<axum::Json<Value>> {
    delete_named(&state, body.name).await
}

async fn delete_named(state: &AppState, name: String) -> ApiResult<axum::Json<Value>> {
    if !state.store().delete_pipeline(&name).await? {
        return Err(not_found(&name));
    }
    tracing::info!(pipeline = %name, "pipeline deleted");
    Ok(axum::Json(json!({ "deleted": name })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunBody {
    #[serde(default)]
    pub parameters: BTreeMap<String, Value>,
    /// A branch or tag of the repository the pipeline's git trigger watches: the execution
    /// runs on that commit, as if it had been pushed.
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
}

pub async fn run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(name): PathParams<String>,
    Json(body): Json<RunBody>,
) -> ApiResult<(StatusCode, axum::Json<ExecutionView>)> {
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
        axum::Json(ExecutionView::new(execution, Some(stages))),
    ))
}

fn not_found(name: &str) -> ApiError {
    let shown: String = name.chars().take(100).collect();
    let more = if shown.len() < name.len() { "…" } else { "" };
    ApiError::not_found(format!("pipeline {shown:?}{more} not found"))
}
