//! `/executions/ID`: one execution. The part that changes (summary, stage
//! graph, stages with their actions) is its own template, served alone at
//! `/executions/ID/live` so that `live.js` swaps in the server's rendering
//! when the execution's events say something changed; log lines arrive from
//! the events themselves. `/executions/ID/log.txt` downloads the whole log.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use gantry_wire::Status;
use gantry_wire::executions::{
    Execution, JudgmentPrompt, LogPage, Stage, StageAttempt, StageSignal,
};
use serde_json::Value;

use crate::api_client::Api;
use crate::canary_chart::{self, AnalysisChart};
use crate::error::{PageResult, UiError, fragment, html};
use crate::format;
use crate::graph::{self, Graph, NODE_HEIGHT, NODE_WIDTH};
use crate::layout::{Badge, Layout};
use crate::pages::encode;
use crate::pages::pipelines::{RunCell, trigger_text};
use crate::session::Session;

#[derive(Template)]
#[template(path = "execution.html")]
struct ExecutionPage {
    layout: Layout,
    id: String,
    pipeline: String,
    pipeline_href: String,
    live: String,
    stage_ids: Vec<String>,
    log_href: String,
    live_js: String,
}

#[derive(Template)]
#[template(path = "execution_live.html")]
struct LivePart {
    can_operate: bool,
    badge: Badge,
    terminal: bool,
    trigger: String,
    created: String,
    duration: String,
    error: Option<String>,
    canceled_by: Option<String>,
    parent: Option<RunCell>,
    parameters: Vec<(String, String)>,
    graph: Graph,
    node_width: u32,
    node_height: u32,
    stages: Vec<StageView>,
    cancel_api: String,
    rerun_api: String,
    judgment_api: String,
    skip_api: String,
    chart_width: f64,
    left: f64,
    bottom: f64,
}

struct StageView {
    id: String,
    anchor: String,
    label: String,
    kind: String,
    badge: Badge,
    attempt: i64,
    duration: String,
    error: Option<String>,
    outputs: Option<String>,
    /// Set while the stage waits for this judgment.
    judgment: Option<JudgmentPrompt>,
    /// A running `wait` stage, which a person may cut short.
    skippable: bool,
    /// An ended stage of an ended execution, which may run again.
    restartable: bool,
    restart_api: String,
    /// A canary deploy's analyses, drawn.
    analyses: Vec<AnalysisChart>,
    /// Every attempt, when there was more than one (a retry, a restart).
    attempts: Vec<AttemptRow>,
}

struct AttemptRow {
    attempt: i64,
    badge: Badge,
    started: String,
    duration: String,
    error: String,
}

pub async fn show(State(api): State<Api>, session: Session, Path(id): Path<String>) -> PageResult {
    let execution = read(&api, &session, &id).await?;
    let live = live_part(&execution, &session).render()?;
    html(&ExecutionPage {
        layout: Layout::new(
            format!("Execution {} of {}", execution.id, execution.pipeline),
            "executions",
            session,
        ),
        pipeline_href: format!("/pipelines/{}", encode(&execution.pipeline)),
        log_href: format!("/executions/{}/log.txt", encode(&execution.id)),
        live_js: crate::assets::url("live.js"),
        stage_ids: execution
            .stages
            .iter()
            .flatten()
            .map(|s| s.id.clone())
            .collect(),
        pipeline: execution.pipeline.clone(),
        id: execution.id,
        live,
    })
}

pub async fn live_fragment(
    State(api): State<Api>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let execution = read(&api, &session, &id).await?;
    fragment(&live_part(&execution, &session))
}

/// The whole log as text, one line per log line, each after its stage.
pub async fn download_log(
    State(api): State<Api>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let mut text = String::new();
    let mut after = 0;
    loop {
        let page: LogPage = api
            .get(
                &session,
                &format!(
                    "/api/v1/executions/{}/logs?after={after}&limit=10000",
                    encode(&id)
                ),
            )
            .await?;
        if page.lines.is_empty() {
            break;
        }
        for line in &page.lines {
            text.push_str(&format!("[{}] {}\n", line.stage_id, line.line));
        }
        after = page.next;
    }
    let disposition = format!(
        "attachment; filename=\"execution-{}.log\"",
        id.replace('"', "")
    );
    let mut response = text.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

async fn read(api: &Api, session: &Session, id: &str) -> Result<Execution, UiError> {
    api.get(session, &format!("/api/v1/executions/{}", encode(id)))
        .await
}

fn live_part(execution: &Execution, session: &Session) -> LivePart {
    let stages: &[Stage] = execution.stages.as_deref().unwrap_or_default();
    let base = format!("/api/v1/executions/{}", encode(&execution.id));
    let terminal = execution.status.is_terminal();
    LivePart {
        can_operate: session.can_operate(),
        badge: Badge(execution.status),
        terminal,
        trigger: trigger_text(&execution.trigger),
        created: format::when(&execution.created_at),
        duration: format::duration(
            execution.started_at.as_deref(),
            execution.ended_at.as_deref(),
        ),
        error: execution.error.clone(),
        canceled_by: execution.canceled_by.clone(),
        parent: execution.parent.as_ref().map(|p| RunCell {
            href: format!("/executions/{}", encode(&p.execution)),
            badge: Badge(Status::Running),
            label: format!("{} (stage {})", p.execution, p.stage),
        }),
        parameters: match &execution.parameters {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), plain(v))).collect(),
            _ => Vec::new(),
        },
        graph: graph::layout(stages),
        node_width: NODE_WIDTH,
        node_height: NODE_HEIGHT,
        stages: stages
            .iter()
            .enumerate()
            .map(|(i, stage)| stage_view(i, stage, &base, terminal))
            .collect(),
        cancel_api: format!("POST {base}/cancel"),
        rerun_api: format!("POST {base}/rerun"),
        judgment_api: format!("POST {base}/judgment"),
        skip_api: format!("POST {base}/skip"),
        chart_width: canary_chart::LEFT + canary_chart::PLOT_WIDTH,
        left: canary_chart::LEFT,
        bottom: canary_chart::BOTTOM,
    }
}

fn stage_view(index: usize, stage: &Stage, base: &str, terminal: bool) -> StageView {
    let kind = stage.kind.clone().unwrap_or_default();
    let outputs = match &stage.outputs {
        Value::Object(map) if map.is_empty() => None,
        Value::Null => None,
        other => serde_json::to_string_pretty(other).ok(),
    };
    StageView {
        id: stage.id.clone(),
        anchor: graph::anchor(index),
        label: stage.name.clone().unwrap_or_else(|| stage.id.clone()),
        badge: Badge(stage.status),
        attempt: stage.attempt,
        duration: format::duration(stage.started_at.as_deref(), stage.ended_at.as_deref()),
        error: stage.error.clone(),
        outputs,
        judgment: stage
            .judgment
            .clone()
            .filter(|_| stage.status == Status::Waiting),
        skippable: stage.accepts.contains(&StageSignal::Skip) && stage.status == Status::Running,
        restartable: terminal && stage.status.is_terminal(),
        restart_api: format!("POST {base}/stages/{}/restart", encode(&stage.id)),
        attempts: attempt_rows(&stage.attempts),
        analyses: canary_chart::of_stage(stage),
        kind,
    }
}

fn attempt_rows(attempts: &[StageAttempt]) -> Vec<AttemptRow> {
    if attempts.len() < 2 {
        return Vec::new();
    }
    attempts
        .iter()
        .map(|a| AttemptRow {
            attempt: a.attempt,
            badge: Badge(a.status),
            started: a
                .started_at
                .as_deref()
                .map(format::when)
                .unwrap_or_default(),
            duration: format::duration(a.started_at.as_deref(), a.ended_at.as_deref()),
            error: a.error.clone().unwrap_or_default(),
        })
        .collect()
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
