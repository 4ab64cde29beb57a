//! `/applications`: applications and their clusters; `/clusters/NAME`:
//! Deck's clusters view of one cluster, newest server group first, with its
//! version and artifact, instances, traffic and the load balancer's live
//! figures, refreshed every two seconds from `/clusters/NAME/live`.
//!
//! The deploy routes still answer with JSON built in their handlers rather
//! than `gantry-wire` types, so the shapes read here are local, read
//! loosely (`#[serde(default)]`): a field the API drops shows as empty
//! instead of failing the page. When those routes move to the wire model,
//! these structs give way to its types.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use askama::Template;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::Value;

use crate::api_client::Api;
use crate::error::{PageResult, fragment, html};
use crate::format;
use crate::layout::Layout;
use crate::pages::encode;
use crate::session::Session;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Applications {
    applications: Vec<Application>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Application {
    name: String,
    description: Option<String>,
    clusters: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Clusters {
    clusters: Vec<ClusterSummary>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ClusterSummary {
    name: String,
    #[serde(rename = "serverGroups")]
    server_groups: Vec<String>,
    enabled: Vec<String>,
    instances: usize,
    healthy: usize,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Cluster {
    name: String,
    application: Option<String>,
    load_balancers: Vec<String>,
    server_groups: Vec<ServerGroup>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ServerGroup {
    name: String,
    version: u32,
    enabled: bool,
    size: u32,
    weight: u32,
    created_at: i64,
    request_id: Option<String>,
    spec: Value,
    instances: Vec<Instance>,
    stats: Stats,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Instance {
    id: String,
    state: String,
    healthy: bool,
    crash_looping: bool,
    restarts: u32,
    port: Option<u16>,
    in_flight: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Stats {
    rate: f64,
    requests: u64,
    status5xx: u64,
    connect_errors: u64,
    p50_ms: f64,
    p99_ms: f64,
}

#[derive(Template)]
#[template(path = "applications.html")]
struct ApplicationsPage {
    layout: Layout,
    applications: Vec<ApplicationRow>,
}

struct ApplicationRow {
    name: String,
    description: Option<String>,
    clusters: Vec<ClusterRow>,
}

struct ClusterRow {
    name: String,
    href: String,
    groups: usize,
    enabled: String,
    health: String,
}

pub async fn list(State(api): State<Api>, session: Session) -> PageResult {
    let (applications, clusters) = futures::join!(
        api.get::<Applications>(&session, "/api/v1/applications"),
        api.get::<Clusters>(&session, "/api/v1/clusters"),
    );
    let clusters = clusters?.clusters;
    let applications = applications?
        .applications
        .into_iter()
        .map(|app| ApplicationRow {
            clusters: app
                .clusters
                .iter()
                .map(|name| {
                    let summary = clusters.iter().find(|c| &c.name == name);
                    ClusterRow {
                        href: format!("/clusters/{}", encode(name)),
                        groups: summary.map_or(0, |c| c.server_groups.len()),
                        enabled: summary.map_or_else(String::new, |c| c.enabled.join(", ")),
                        health: summary.map_or_else(String::new, |c| {
                            format!("{} of {} instances healthy", c.healthy, c.instances)
                        }),
                        name: name.clone(),
                    }
                })
                .collect(),
            name: app.name,
            description: app.description,
        })
        .collect();
    html(&ApplicationsPage {
        layout: Layout::new("Applications", "applications", session),
        applications,
    })
}

#[derive(Template)]
#[template(path = "cluster.html")]
struct ClusterPage {
    layout: Layout,
    name: String,
    application: String,
    load_balancers: String,
    live: String,
    live_href: String,
    rollback_api: String,
    can_operate: bool,
}

#[derive(Template)]
#[template(path = "cluster_live.html")]
struct ClusterLive {
    can_operate: bool,
    groups: Vec<GroupView>,
}

struct GroupView {
    name: String,
    version: String,
    artifact: String,
    enabled: bool,
    size: u32,
    weight: u32,
    age: String,
    execution_href: Option<String>,
    instances: Vec<Instance>,
    healthy: usize,
    rate: String,
    error_rate: String,
    p50: String,
    p99: String,
    api: String,
}

pub async fn cluster(
    State(api): State<Api>,
    session: Session,
    Path(name): Path<String>,
) -> PageResult {
    let cluster = read(&api, &session, &name).await?;
    let live = live_part(&cluster, &session).render()?;
    html(&ClusterPage {
        layout: Layout::new(format!("Cluster {name}"), "applications", session.clone()),
        application: cluster.application.clone().unwrap_or_default(),
        load_balancers: cluster.load_balancers.join(", "),
        live_href: format!("/clusters/{}/live", encode(&name)),
        rollback_api: format!("POST /api/v1/clusters/{}/rollback", encode(&name)),
        can_operate: session.can_operate(),
        name,
        live,
    })
}

pub async fn cluster_fragment(
    State(api): State<Api>,
    session: Session,
    Path(name): Path<String>,
) -> PageResult {
    let cluster = read(&api, &session, &name).await?;
    fragment(&live_part(&cluster, &session))
}

async fn read(api: &Api, session: &Session, name: &str) -> Result<Cluster, crate::error::UiError> {
    api.get(session, &format!("/api/v1/clusters/{}", encode(name)))
        .await
}

fn live_part(cluster: &Cluster, session: &Session) -> ClusterLive {
    let mut groups: Vec<&ServerGroup> = cluster.server_groups.iter().collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.version));
    ClusterLive {
        can_operate: session.can_operate(),
        groups: groups.into_iter().map(group_view).collect(),
    }
}

fn group_view(group: &ServerGroup) -> GroupView {
    let text = |field: &str| match group.spec.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let version = group
        .spec
        .get("env")
        .and_then(|env| env.get("VERSION"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("v{:03}", group.version));
    let artifact = [text("artifact"), text("image"), text("command")]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    let stats = &group.stats;
    let errors = stats.status5xx + stats.connect_errors;
    GroupView {
        name: group.name.clone(),
        version,
        artifact,
        enabled: group.enabled,
        size: group.size,
        weight: group.weight,
        age: age_of_millis(group.created_at),
        execution_href: group
            .request_id
            .as_deref()
            .and_then(|r| r.rsplit_once("-deploy-").map(|(execution, _)| execution))
            .map(|execution| format!("/executions/{}", encode(execution))),
        healthy: group.instances.iter().filter(|i| i.healthy).count(),
        instances: group
            .instances
            .iter()
            .map(|i| Instance {
                id: i.id.clone(),
                state: i.state.clone(),
                healthy: i.healthy,
                crash_looping: i.crash_looping,
                restarts: i.restarts,
                port: i.port,
                in_flight: i.in_flight,
            })
            .collect(),
        rate: format!("{:.1}/s", stats.rate),
        error_rate: if stats.requests == 0 {
            "0 %".to_owned()
        } else {
            format!("{:.2} %", errors as f64 * 100.0 / stats.requests as f64)
        },
        p50: format!("{:.1} ms", stats.p50_ms),
        p99: format!("{:.1} ms", stats.p99_ms),
        api: format!("/api/v1/server-groups/{}", encode(&group.name)),
    }
}

fn age_of_millis(millis: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0));
    format!(
        "{} ago",
        format::short(SystemTime::now().duration_since(at).unwrap_or_default())
    )
}
