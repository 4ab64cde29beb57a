//! `/pipelines`: the pipelines by name, fifty a page (`after`), filtered by
//! name (`q`), each with its last executions (read for that page only);
//! `/pipelines/NAME`:
//! one pipeline, its recent executions and the form that runs it, generated
//! from its parameter definitions.

use askama::Template;
use axum::extract::{Path, Query, State};
use futures::future::join_all;
use gantry_wire::executions::{Execution, ExecutionList};
use gantry_wire::pipelines::{Pipeline, PipelineList};
use serde::Deserialize;
use serde_json::Value;

use crate::api_client::Api;
use crate::error::{PageResult, html};
use crate::format;
use crate::layout::{Badge, Layout};
use crate::pages::encode;
use crate::session::Session;

/// How many executions the list shows per pipeline.
const LAST_RUNS: usize = 5;

/// Pipelines per page.
pub const PIPELINE_PAGE: usize = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ListFilter {
    #[serde(default)]
    q: Option<String>,
    /// The name of the last pipeline of the previous page.
    #[serde(default)]
    after: Option<String>,
}

#[derive(Template)]
#[template(path = "pipelines.html")]
struct ListPage {
    layout: Layout,
    q: String,
    total: usize,
    rows: Vec<Row>,
    next_href: Option<String>,
    first_href: Option<String>,
}

struct Row {
    pipeline: Pipeline,
    href: String,
    last: Vec<RunCell>,
}

/// One execution as a small badge linking to it.
pub struct RunCell {
    pub href: String,
    pub badge: Badge,
    pub label: String,
}

impl RunCell {
    pub fn of(execution: &Execution) -> RunCell {
        RunCell {
            href: format!("/executions/{}", encode(&execution.id)),
            badge: Badge(execution.status),
            label: format!(
                "{} {}, {}",
                execution.status,
                format::when(&execution.created_at),
                execution.id
            ),
        }
    }
}

pub async fn list(
    State(api): State<Api>,
    session: Session,
    Query(filter): Query<ListFilter>,
) -> PageResult {
    let q = filter.q.unwrap_or_default();
    let needle = q.to_lowercase();
    let mut matching: Vec<Pipeline> = api
        .get::<PipelineList>(&session, "/api/v1/pipelines")
        .await?
        .pipelines
        .into_iter()
        .filter(|p| needle.is_empty() || p.name.to_lowercase().contains(&needle))
        .collect();
    matching.sort_by(|a, b| a.name.cmp(&b.name));
    let total = matching.len();
    let after = filter.after.unwrap_or_default();
    let page: Vec<Pipeline> = matching
        .into_iter()
        .filter(|p| after.is_empty() || p.name > after)
        .take(PIPELINE_PAGE + 1)
        .collect();
    let with = |extra: Option<String>| {
        let parts: Vec<String> = (!q.is_empty())
            .then(|| format!("q={}", encode(&q)))
            .into_iter()
            .chain(extra)
            .collect();
        format!("/pipelines?{}", parts.join("&"))
    };
    let next_href = (page.len() > PIPELINE_PAGE).then(|| {
        with(Some(format!(
            "after={}",
            encode(&page[PIPELINE_PAGE - 1].name)
        )))
    });
    let first_href = (!after.is_empty()).then(|| with(None));
    let page: Vec<Pipeline> = page.into_iter().take(PIPELINE_PAGE).collect();
    let lasts = executions_of(
        &api,
        &session,
        page.iter().map(|p| {
            format!(
                "/api/v1/executions?pipeline={}&limit={LAST_RUNS}",
                encode(&p.name)
            )
        }),
    )
    .await;
    let mut rows = Vec::new();
    for (pipeline, last) in page.into_iter().zip(lasts) {
        rows.push(Row {
            href: format!("/pipelines/{}", encode(&pipeline.name)),
            last: last?.executions.iter().map(RunCell::of).collect(),
            pipeline,
        });
    }
    html(&ListPage {
        layout: Layout::new("Pipelines", "pipelines", session),
        q,
        total,
        rows,
        next_href,
        first_href,
    })
}

/// The executions each of `uris` lists, read at once.
pub async fn executions_of(
    api: &Api,
    session: &Session,
    uris: impl Iterator<Item = String>,
) -> Vec<Result<ExecutionList, crate::error::UiError>> {
    join_all(uris.map(|uri| async move { api.get::<ExecutionList>(session, &uri).await })).await
}

#[derive(Template)]
#[template(path = "pipeline.html")]
struct ShowPage {
    layout: Layout,
    pipeline: Pipeline,
    parameters: Vec<ParameterField>,
    run_api: String,
    recent: Vec<ExecutionRow>,
    all_href: String,
}

/// A parameter definition of the pipeline file, read loosely from the
/// stored spec so an older or newer file still shows.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ParameterDef {
    name: String,
    description: Option<String>,
    default: Option<String>,
    options: Vec<String>,
    required: bool,
    secret: bool,
}

/// One field of the run form.
struct ParameterField {
    def: ParameterDef,
    /// The `id` of its input.
    input_id: String,
}

impl ParameterField {
    fn default_value(&self) -> &str {
        self.def.default.as_deref().unwrap_or("")
    }

    fn is_selected(&self, option: &str) -> bool {
        self.def.default.as_deref() == Some(option)
    }
}

/// One execution as a row of a table.
pub struct ExecutionRow {
    pub id: String,
    pub href: String,
    pub pipeline: String,
    pub badge: Badge,
    pub trigger: String,
    pub created: String,
    pub duration: String,
}

impl ExecutionRow {
    pub fn of(execution: &Execution) -> ExecutionRow {
        ExecutionRow {
            id: execution.id.clone(),
            href: format!("/executions/{}", encode(&execution.id)),
            pipeline: execution.pipeline.clone(),
            badge: Badge(execution.status),
            trigger: trigger_text(&execution.trigger),
            created: format::when(&execution.created_at),
            duration: format::duration(
                execution.started_at.as_deref(),
                execution.ended_at.as_deref(),
            ),
        }
    }
}

/// `manual by ana`, `git push`, `cron`.
pub fn trigger_text(trigger: &Value) -> String {
    let kind = trigger
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    match trigger.get("user").and_then(Value::as_str) {
        Some(user) => format!("{kind} by {user}"),
        None => kind.to_owned(),
    }
}

pub async fn show(
    State(api): State<Api>,
    session: Session,
    Path(name): Path<String>,
) -> PageResult {
    let pipeline: Pipeline = api
        .get(&session, &format!("/api/v1/pipelines/{}", encode(&name)))
        .await?;
    let recent: ExecutionList = api
        .get(
            &session,
            &format!("/api/v1/executions?pipeline={}&limit=10", encode(&name)),
        )
        .await?;
    let parameters = pipeline
        .spec
        .as_ref()
        .and_then(|spec| spec.get("parameters"))
        .and_then(Value::as_array)
        .map(|defs| {
            defs.iter()
                .filter_map(|d| serde_json::from_value::<ParameterDef>(d.clone()).ok())
                .enumerate()
                .map(|(i, def)| ParameterField {
                    input_id: format!("param-{i}"),
                    def,
                })
                .collect()
        })
        .unwrap_or_default();
    html(&ShowPage {
        layout: Layout::new(format!("Pipeline {name}"), "pipelines", session),
        run_api: format!("POST /api/v1/pipelines/{}/executions", encode(&name)),
        all_href: format!("/executions?pipeline={}", encode(&name)),
        recent: recent.executions.iter().map(ExecutionRow::of).collect(),
        parameters,
        pipeline,
    })
}
