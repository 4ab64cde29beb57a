//! `/applications`: every cluster with its application, a page at a time,
//! filtered on the server (the API's `q`, `limit` and `after`), so the page
//! costs the same with a thousand server groups as with three;
//! `/clusters/NAME`: Deck's clusters view of one cluster, newest server
//! group first, with its version and artifact, instances, traffic and the
//! load balancer's live figures, refreshed every two seconds from
//! `/clusters/NAME/live`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use askama::Template;
use axum::extract::{Path, Query, State};
use gantry_wire::deploy::{Cluster, ClusterList, Instance, ServerGroupStatus};
use serde::Deserialize;

use crate::api_client::Api;
use crate::error::{PageResult, fragment, html};
use crate::format;
use crate::layout::Layout;
use crate::pages::encode;
use crate::session::Session;

/// Clusters per page.
pub const CLUSTER_PAGE: usize = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ClusterFilter {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    after: Option<String>,
}

#[derive(Template)]
#[template(path = "applications.html")]
struct ApplicationsPage {
    layout: Layout,
    q: String,
    total: usize,
    clusters: Vec<ClusterRow>,
    next_href: Option<String>,
    first_href: Option<String>,
}

struct ClusterRow {
    application: String,
    name: String,
    href: String,
    groups: usize,
    enabled: String,
    health: String,
}

pub async fn list(
    State(api): State<Api>,
    session: Session,
    Query(filter): Query<ClusterFilter>,
) -> PageResult {
    let q = filter.q.unwrap_or_default();
    let mut query = vec![format!("limit={CLUSTER_PAGE}")];
    if !q.is_empty() {
        query.push(format!("q={}", encode(&q)));
    }
    if let Some(after) = filter.after.as_deref().filter(|a| !a.is_empty()) {
        query.push(format!("after={}", encode(after)));
    }
    // One read of the API, which asks the data plane for this page of
    // summaries only (not every group with its instances and figures).
    let clusters: ClusterList = api
        .get(&session, &format!("/api/v1/clusters?{}", query.join("&")))
        .await?;
    let with = |extra: Option<String>| {
        let mut parts = Vec::new();
        if !q.is_empty() {
            parts.push(format!("q={}", encode(&q)));
        }
        parts.extend(extra);
        format!("/applications?{}", parts.join("&"))
    };
    let rows = clusters
        .clusters
        .iter()
        .map(|c| {
            let application = c.application.clone().unwrap_or_default();
            ClusterRow {
                application,
                name: c.name.clone(),
                href: format!("/clusters/{}", encode(&c.name)),
                groups: c.server_groups.len(),
                enabled: c.enabled.join(", "),
                health: format!("{} of {} instances healthy", c.healthy, c.instances),
            }
        })
        .collect();
    html(&ApplicationsPage {
        layout: Layout::new("Applications", "applications", session),
        total: clusters.total,
        clusters: rows,
        next_href: clusters
            .next
            .as_deref()
            .map(|next| with(Some(format!("after={}", encode(next))))),
        first_href: filter.after.is_some().then(|| with(None)),
        q,
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

impl GroupView {
    /// Whether its instances run on fleet hosts: the table then says where
    /// and what each runs.
    fn on_hosts(&self) -> bool {
        self.instances.iter().any(|i| i.host.is_some())
    }

    /// The package version a fleet instance runs, or its image with the
    /// digest its host pulled.
    fn runs(&self, instance: &Instance) -> String {
        match (&instance.image, &instance.digest, &instance.version) {
            (Some(image), Some(digest), _) => format!("{image}@{digest}"),
            (Some(image), None, _) => image.clone(),
            (None, _, Some(version)) => version.clone(),
            (None, _, None) => "-".to_owned(),
        }
    }
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
    let mut groups: Vec<&ServerGroupStatus> = cluster.server_groups.iter().collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.group.version));
    ClusterLive {
        can_operate: session.can_operate(),
        groups: groups.into_iter().map(group_view).collect(),
    }
}

fn group_view(status: &ServerGroupStatus) -> GroupView {
    let group = &status.group;
    let spec = &group.spec;
    let version = spec
        .env
        .get("VERSION")
        .cloned()
        .unwrap_or_else(|| format!("v{:03}", group.version));
    let artifact = [&spec.artifact, &spec.image, &spec.command]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_default();
    let stats = status.stats.clone().unwrap_or_default();
    let errors = stats.status_5xx + stats.connect_errors;
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
            .rsplit_once("-deploy-")
            .map(|(execution, _)| format!("/executions/{}", encode(execution))),
        healthy: status.healthy_instances(),
        instances: status.instances.clone(),
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

fn age_of_millis(millis: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(millis);
    format!(
        "{} ago",
        format::short(SystemTime::now().duration_since(at).unwrap_or_default())
    )
}
