//! `/executions`: every execution, newest first, a page at a time, filtered
//! by pipeline and status on the server (the API's `pipeline`, `status` and
//! `before`).

use askama::Template;
use axum::extract::{Query, State};
use gantry_wire::Status;
use gantry_wire::executions::ExecutionList;
use gantry_wire::pipelines::PipelineList;
use serde::Deserialize;

use crate::api_client::Api;
use crate::error::{PageResult, html};
use crate::layout::Layout;
use crate::pages::encode;
use crate::pages::pipelines::ExecutionRow;
use crate::session::Session;

/// Executions per page.
pub const PAGE_SIZE: usize = 50;

#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    pipeline: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    before: Option<String>,
}

#[derive(Template)]
#[template(path = "executions.html")]
struct ListPage {
    layout: Layout,
    pipelines: Vec<String>,
    statuses: Vec<&'static str>,
    pipeline: String,
    status: String,
    recent: Vec<ExecutionRow>,
    older_href: Option<String>,
    first_href: Option<String>,
}

impl ListPage {
    fn is_pipeline(&self, name: &str) -> bool {
        self.pipeline == name
    }

    fn is_status(&self, word: &str) -> bool {
        self.status == word
    }
}

pub async fn list(
    State(api): State<Api>,
    session: Session,
    Query(filter): Query<Filter>,
) -> PageResult {
    let pipeline = filter.pipeline.unwrap_or_default();
    let status = filter.status.unwrap_or_default();
    let mut query = Vec::new();
    if !pipeline.is_empty() {
        query.push(format!("pipeline={}", encode(&pipeline)));
    }
    if !status.is_empty() {
        query.push(format!("status={}", encode(&status)));
    }
    let filters = query.join("&");
    if let Some(before) = filter.before.as_deref().filter(|b| !b.is_empty()) {
        query.push(format!("before={}", encode(before)));
    }
    query.push(format!("limit={PAGE_SIZE}"));
    let list_uri = format!("/api/v1/executions?{}", query.join("&"));
    let (executions, pipelines) = futures::join!(
        api.get::<ExecutionList>(&session, &list_uri),
        api.get::<PipelineList>(&session, "/api/v1/pipelines"),
    );
    let executions = executions?;
    let with = |extra: String| {
        let all: Vec<&str> = [filters.as_str(), extra.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        format!("/executions?{}", all.join("&"))
    };
    html(&ListPage {
        layout: Layout::new("Executions", "executions", session),
        pipelines: pipelines?.pipelines.into_iter().map(|p| p.name).collect(),
        statuses: Status::ALL.iter().map(|s| s.as_str()).collect(),
        recent: executions.executions.iter().map(ExecutionRow::of).collect(),
        older_href: executions
            .next
            .as_deref()
            .map(|next| with(format!("before={}", encode(next)))),
        first_href: filter.before.is_some().then(|| with(String::new())),
        pipeline,
        status,
    })
}
