//! Executions: listing, one execution with its stages, the actions a person
//! takes on a running execution, and stored logs.

use axum::Extension;
use axum::extract::State;
use gantry_engine::Judgment;
use gantry_store::{ExecutionCursor, ExecutionFilter, Status};
use serde::Deserialize;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, PathParams, QueryParams};
use crate::views;
use gantry_wire::executions::{
    Decision, Execution, ExecutionList, JudgmentBody, LogPage, SkipBody,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub pipeline: Option<String>,
    pub status: Option<String>,
    pub trigger: Option<String>,
    pub limit: Option<i64>,
    /// The id of the last execution of the previous page.
    pub before: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> ApiResult<axum::Json<ExecutionList>> {
    let status = query
        .status
        .as_deref()
        .map(str::parse::<Status>)
        .transpose()
        .map_err(ApiError::invalid)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and 1000, not {limit}"
        )));
    }
    let before = match query.before {
        Some(id) => {
            let last = state.store().execution(&id).await?.ok_or_else(|| {
                ApiError::invalid(format!(
                    "before: no execution {id:?} to list the executions before"
                ))
            })?;
            Some(ExecutionCursor {
                created_at: last.created_at,
                id: last.id,
            })
        }
        None => None,
    };
    let filter = ExecutionFilter {
        pipeline: query.pipeline,
        status,
        trigger_type: query.trigger,
        limit: Some(limit),
        before,
    };
    let executions: Vec<Execution> = state
        .store()
        .executions(&filter)
        .await?
        .into_iter()
        .map(|e| views::execution(e, None))
        .collect();
    let next = (executions.len() as i64 == limit)
        .then(|| executions.last().map(|e| e.id.clone()))
        .flatten();
    Ok(axum::Json(ExecutionList { executions, next }))
}

pub async fn show(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> ApiResult<axum::Json<Execution>> {
    execution_view(&state, &id).await.map(axum::Json)
}

/// The execution with its stages, or 404.
pub async fn execution_view(state: &AppState, id: &str) -> ApiResult<Execution> {
    let execution = state
        .store()
        .execution(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let stages = state.store().stages(id).await?;
    let attempts = state.store().stage_attempts(id).await?;
    let mut view = views::execution(execution, Some(stages));
    views::with_attempts(&mut view, attempts);
    Ok(view)
}

pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
) -> ApiResult<axum::Json<Execution>> {
    ensure_exists(&state, &id).await?;
    state.engine().cancel(&id, &caller.name).await?;
    tracing::info!(execution = %id, user = %caller.name, "execution canceled");
    show(State(state), PathParams(id)).await
}

/// Starts a new execution with the spec, parameters and trigger of this one.
pub async fn rerun(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<Execution>)> {
    ensure_exists(&state, &id).await?;
    let execution = state.engine().rerun(&id, &caller.name).await?;
    let stages = state.store().stages(&execution.id).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        axum::Json(views::execution(execution, Some(stages))),
    ))
}

pub async fn restart_stage(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams((id, stage)): PathParams<(String, String)>,
) -> ApiResult<axum::Json<Execution>> {
    ensure_exists(&state, &id).await?;
    state
        .engine()
        .restart_stage(&id, &stage, &caller.name)
        .await?;
    tracing::info!(execution = %id, stage = %stage, user = %caller.name, "stage restarted");
    show(State(state), PathParams(id)).await
}

pub async fn judge(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
    Json(body): Json<JudgmentBody>,
) -> ApiResult<axum::Json<Execution>> {
    ensure_exists(&state, &id).await?;
    let judgment = Judgment {
        proceed: matches!(body.judgment, Decision::Continue),
        option: body.option,
        user: caller.name.clone(),
    };
    state
        .engine()
        .judge(&id, body.stage.as_deref(), judgment)
        .await?;
    tracing::info!(execution = %id, user = %caller.name, decision = ?body.judgment, "judgment recorded");
    show(State(state), PathParams(id)).await
}

pub async fn skip(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    Json(body): Json<SkipBody>,
) -> ApiResult<axum::Json<Execution>> {
    skip_wait(state, id, body.stage).await
}

pub async fn skip_stage(
    State(state): State<AppState>,
    PathParams((id, stage)): PathParams<(String, String)>,
) -> ApiResult<axum::Json<Execution>> {
    skip_wait(state, id, Some(stage)).await
}

async fn skip_wait(
    state: AppState,
    id: String,
    stage: Option<String>,
) -> ApiResult<axum::Json<Execution>> {
    ensure_exists(&state, &id).await?;
    state.engine().skip_wait(&id, stage.as_deref()).await?;
    tracing::info!(execution = %id, stage = ?stage, "wait skipped");
    show(State(state), PathParams(id)).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    pub stage: Option<String>,
    /// Only lines with a greater `seq`.
    #[serde(default)]
    pub after: i64,
    pub limit: Option<i64>,
}

pub async fn logs(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<LogsQuery>,
) -> ApiResult<axum::Json<LogPage>> {
    ensure_exists(&state, &id).await?;
    if let Some(stage) = &query.stage {
        ensure_stage_exists(&state, &id, stage).await?;
    }
    let limit = query.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and 10000, not {limit}"
        )));
    }
    let lines = state
        .store()
        .logs(&id, query.stage.as_deref(), query.after, limit)
        .await?;
    let next = lines.last().map_or(query.after, |line| line.seq);
    let lines = lines.into_iter().map(views::log_line).collect();
    Ok(axum::Json(LogPage { lines, next }))
}

pub async fn ensure_exists(state: &AppState, id: &str) -> ApiResult<()> {
    match state.store().execution(id).await? {
        Some(_) => Ok(()),
        None => Err(not_found(id)),
    }
}

pub async fn ensure_stage_exists(state: &AppState, id: &str, stage: &str) -> ApiResult<()> {
    match state.store().stage(id, stage).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!(
            "stage {stage:?} not found in execution {id:?}"
        ))),
    }
}

pub fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("execution {id:?} not found"))
}
