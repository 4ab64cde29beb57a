//! Applications, clusters, server groups and load balancers: read from the
//! deploy controller (which reads the data plane), and the server group
//! operations people run by hand (resize, enable, disable, destroy, rollback).

use gantry_wire::pipelines::{Applied, Upsert};
use std::time::Duration;

use axum::extract::State;
use gantry_deploy::model;
use gantry_deploy::providers::ServerGroupUpdate;
use gantry_deploy::{DeployController, DeployError, DisableConfig};
use gantry_wire::deploy as wire;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::deploy_views as views;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, PathParams, QueryParams};

fn controller(state: &AppState) -> ApiResult<&DeployController> {
    state
        .deploy()
        .ok_or_else(|| ApiError::internal("this server has no deploy controller"))
}

fn error(e: DeployError) -> ApiError {
    match e {
        DeployError::Invalid(m) | DeployError::Failed(m) => ApiError::invalid(m),
        DeployError::NotFound(m) => ApiError::not_found(m),
        other => ApiError::internal(other.to_string()),
    }
}

// Each read asks the controller for only what it answers with: with a
// thousand groups the whole snapshot (every group with its instances) is
// what costs.

pub async fn applications(
    State(state): State<AppState>,
) -> ApiResult<axum::Json<wire::ApplicationList>> {
    let index = controller(&state)?.applications().await.map_err(error)?;
    Ok(axum::Json(views::applications(&index)))
}

/// `GET /api/v1/clusters?q=&limit=&after=`: a page of clusters by name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterQuery {
    /// Only clusters whose name or application contains this text.
    pub q: Option<String>,
    pub limit: Option<i64>,
    /// The name of the last cluster of the previous page.
    pub after: Option<String>,
}

/// The most clusters one page holds; without `limit`, every cluster.
const MAX_CLUSTER_PAGE: i64 = 1000;

pub async fn clusters(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ClusterQuery>,
) -> ApiResult<axum::Json<wire::ClusterList>> {
    let limit = match query.limit {
        Some(limit) if !(1..=MAX_CLUSTER_PAGE).contains(&limit) => {
            return Err(ApiError::invalid(format!(
                "limit must be between 1 and {MAX_CLUSTER_PAGE}, not {limit}"
            )));
        }
        Some(limit) => Some(limit as usize),
        None => None,
    };
    let query = model::ClusterQuery {
        q: query.q.filter(|q| !q.is_empty()),
        after: query.after,
        limit,
    };
    let page = controller(&state)?.clusters(&query).await.map_err(error)?;
    Ok(axum::Json(wire::ClusterList {
        clusters: page
            .clusters
            .into_iter()
            .map(views::cluster_summary)
            .collect(),
        total: page.total,
        next: page.next,
    }))
}

pub async fn cluster(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<wire::Cluster>> {
    // Only this cluster's groups: the whole snapshot is what costs.
    let snapshot = controller(&state)?.cluster(&name).await.map_err(error)?;
    if !snapshot
        .server_groups
        .iter()
        .any(|g| g.group.cluster == name)
    {
        return Err(ApiError::not_found(format!(
            "cluster {name:?} does not exist"
        )));
    }
    Ok(axum::Json(views::cluster(&snapshot, &name)))
}

/// Every group with its instances and figures: the answer is the whole
/// list, so it is read whole (without the applications and load balancers).
pub async fn server_groups(
    State(state): State<AppState>,
) -> ApiResult<axum::Json<wire::ServerGroupList>> {
    let snapshot = controller(&state)?.snapshot().await.map_err(error)?;
    Ok(axum::Json(wire::ServerGroupList {
        server_groups: snapshot
            .server_groups
            .iter()
            .map(views::group_status)
            .collect(),
    }))
}

pub async fn server_group(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<wire::ServerGroupStatus>> {
    let group = controller(&state)?
        .group(&name)
        .await
        .map_err(error)?
        .ok_or_else(|| ApiError::not_found(format!("server group {name:?} does not exist")))?;
    Ok(axum::Json(views::group_status(&group)))
}

pub async fn resize(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    Json(body): Json<wire::ResizeRequest>,
) -> ApiResult<axum::Json<wire::ServerGroup>> {
    let size = u32::try_from(body.size).map_err(|_| {
        ApiError::invalid(format!(
            "server group {name:?}: size must be from 0 to {}, not {}",
            u32::MAX,
            body.size
        ))
    })?;
    let group = controller(&state)?
        .update(
            &name,
            ServerGroupUpdate {
                size: Some(size),
                ..Default::default()
            },
        )
        .await
        .map_err(error)?;
    tracing::info!(server_group = %name, size = group.size, enabled = group.enabled, "server group changed");
    Ok(axum::Json(views::group(&group)))
}

pub async fn enable(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<wire::ServerGroup>> {
    let group = controller(&state)?.enable(&name).await.map_err(error)?;
    tracing::info!(server_group = %name, size = group.size, enabled = group.enabled, "server group changed");
    Ok(axum::Json(views::group(&group)))
}

/// `{"force": true}` also disables the last enabled group of a cluster.
pub async fn disable(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    Json(body): Json<wire::DisableRequest>,
) -> ApiResult<axum::Json<wire::ServerGroup>> {
    let group = controller(&state)?
        .disable(&name, DisableConfig { force: body.force })
        .await
        .map_err(error)?;
    tracing::info!(server_group = %name, force = body.force, "server group disabled");
    Ok(axum::Json(views::group(&group)))
}

pub async fn destroy(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<wire::ServerGroup>> {
    let group = controller(&state)?.destroy(&name).await.map_err(error)?;
    tracing::info!(server_group = %name, "server group destroyed");
    Ok(axum::Json(views::group(&group)))
}

pub async fn rollback(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<wire::Rollback>> {
    let notes = std::sync::Mutex::new(Vec::<String>::new());
    let progress = |line: String| notes.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    let enabled = controller(&state)?
        .rollback(
            &name,
            Duration::from_secs(120),
            &CancellationToken::new(),
            &progress,
        )
        .await
        .map_err(error)?;
    let notes = notes.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(axum::Json(wire::Rollback {
        cluster: name,
        enabled,
        notes,
    }))
}

pub async fn load_balancers(
    State(state): State<AppState>,
) -> ApiResult<axum::Json<wire::LoadBalancerList>> {
    let snapshot = controller(&state)?.load_balancers().await.map_err(error)?;
    Ok(axum::Json(wire::LoadBalancerList {
        load_balancers: snapshot
            .load_balancers
            .iter()
            .map(|lb| views::load_balancer(&snapshot, lb))
            .collect(),
    }))
}

pub async fn load_balancer(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> ApiResult<axum::Json<wire::LoadBalancer>> {
    let snapshot = controller(&state)?.load_balancers().await.map_err(error)?;
    let lb = snapshot
        .load_balancers
        .iter()
        .find(|lb| lb.load_balancer.name == name)
        .ok_or_else(|| ApiError::not_found(format!("load balancer {name:?} does not exist")))?;
    Ok(axum::Json(views::load_balancer(&snapshot, lb)))
}

/// Merges a file's applications and load balancers into the data plane's
/// (by name: those the file names are replaced, others stay).
pub(crate) async fn apply(
    deploy: Option<&DeployController>,
    document: &gantry_config::Document,
) -> ApiResult<(Vec<Applied>, Vec<Applied>)> {
    if let Some(controller) = deploy {
        check_sizes(controller, document)?;
    }
    if document.applications.is_empty() && document.load_balancers.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let controller =
        deploy.ok_or_else(|| ApiError::internal("this server has no deploy controller"))?;
    let snapshot = controller.snapshot().await.map_err(error)?;
    let result = |old: Option<bool>| match old {
        None => Upsert::Created,
        Some(true) => Upsert::Unchanged,
        Some(false) => Upsert::Updated,
    };
    let mut applications = snapshot.applications.clone();
    let mut applied_apps = Vec::new();
    for app in &document.applications {
        let new = model::Application {
            name: app.name.clone(),
            description: app.description.clone(),
        };
        let old = applications
            .iter()
            .find(|a| a.name == app.name)
            .map(|a| *a == new);
        applied_apps.push(Applied {
            name: app.name.clone(),
            result: result(old),
        });
        applications.retain(|a| a.name != app.name);
        applications.push(new);
    }
    let mut load_balancers: Vec<model::LoadBalancer> = snapshot
        .load_balancers
        .iter()
        .map(|lb| lb.load_balancer.clone())
        .collect();
    let mut applied_lbs = Vec::new();
    for lb in &document.load_balancers {
        let new = to_model(lb);
        let old = load_balancers
            .iter()
            .find(|l| l.name == lb.name)
            .map(|l| *l == new);
        applied_lbs.push(Applied {
            name: lb.name.clone(),
            result: result(old),
        });
        load_balancers.retain(|l| l.name != lb.name);
        load_balancers.push(new);
    }
    controller
        .configure(applications, load_balancers)
        .await
        .map_err(error)?;
    Ok((applied_apps, applied_lbs))
}

/// Refuses a file whose deploy or resize stages ask for more instances
/// than this server's ceiling, before anything of it is applied (a deploy
/// checks again when it runs).
fn check_sizes(controller: &DeployController, document: &gantry_config::Document) -> ApiResult<()> {
    let mut problems = Vec::new();
    for pipeline in &document.pipelines {
        for stage in &pipeline.stages {
            let size = match &stage.kind {
                gantry_config::StageKind::Deploy(deploy) => {
                    deploy.size.as_ref().and_then(|s| s.count())
                }
                gantry_config::StageKind::ResizeServerGroup(resize) => resize.size,
                _ => None,
            };
            let what = format!("pipeline {:?} stage {:?}", pipeline.name, stage.id);
            if let Some(Err(problem)) = size.map(|size| controller.check_size(&what, size)) {
                problems.push(problem.to_string());
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(problems.join("\n")))
    }
}

fn to_model(lb: &gantry_config::LoadBalancer) -> model::LoadBalancer {
    let mut rules: Vec<model::RouteRule> = lb
        .rules
        .iter()
        .map(|r| model::RouteRule {
            host: r.host.clone(),
            path_prefix: r.path.clone(),
            cluster: r.cluster.clone(),
        })
        .collect();
    if let Some(cluster) = &lb.cluster {
        rules.push(model::RouteRule {
            host: lb.host.clone(),
            path_prefix: lb.path.clone(),
            cluster: cluster.clone(),
        });
    }
    let defaults = model::HealthCheck::default();
    let health = lb.health_check.clone().unwrap_or_default();
    model::LoadBalancer {
        name: lb.name.clone(),
        port: lb.port,
        rules,
        response_timeout: lb.response_timeout,
        client_timeouts: lb
            .timeouts
            .as_ref()
            .map(|t| model::ClientTimeouts {
                header: t.header,
                keep_alive: t.keep_alive,
                body: t.body,
                send: t.send,
            })
            .unwrap_or_default(),
        limits: lb
            .limits
            .as_ref()
            .map(|l| model::ConnectionLimits {
                connections: l.connections.map(|n| n as usize),
                per_address: l.per_address.map(|n| n as usize),
            })
            .unwrap_or_default(),
        health_check: model::HealthCheck {
            path: health.path.unwrap_or(defaults.path),
            interval: health.interval.unwrap_or(defaults.interval),
            timeout: health.timeout.unwrap_or(defaults.timeout),
            healthy_threshold: health
                .healthy_threshold
                .unwrap_or(defaults.healthy_threshold),
            unhealthy_threshold: health
                .unhealthy_threshold
                .unwrap_or(defaults.unhealthy_threshold),
        },
    }
}

/// `/metrics` lines for every live server group: requests, 5xx, connection
/// errors, latency percentiles and instance health.
pub(crate) async fn metrics(state: &AppState) -> String {
    let Some(controller) = state.deploy() else {
        return String::new();
    };
    let Ok(figures) = controller.figures().await else {
        return String::new();
    };
    let mut out = String::new();
    out.push_str("# TYPE gantry_lb_requests_total counter\n# TYPE gantry_lb_5xx_total counter\n# TYPE gantry_lb_connect_errors_total counter\n# TYPE gantry_lb_latency_ms gauge\n# TYPE gantry_server_group_instances gauge\n");
    for group in &figures {
        let labels = format!(
            "server_group=\"{}\",cluster=\"{}\"",
            group.name, group.cluster
        );
        if let Some(stats) = &group.stats {
            out.push_str(&format!(
                "gantry_lb_requests_total{{{labels}}} {}\n",
                stats.requests
            ));
            out.push_str(&format!(
                "gantry_lb_5xx_total{{{labels}}} {}\n",
                stats.status_5xx
            ));
            out.push_str(&format!(
                "gantry_lb_connect_errors_total{{{labels}}} {}\n",
                stats.connect_errors
            ));
            for (q, v) in [
                ("0.5", stats.p50_ms),
                ("0.95", stats.p95_ms),
                ("0.99", stats.p99_ms),
            ] {
                out.push_str(&format!(
                    "gantry_lb_latency_ms{{{labels},quantile=\"{q}\"}} {v}\n"
                ));
            }
        }
        out.push_str(&format!(
            "gantry_server_group_instances{{{labels},health=\"healthy\"}} {}\n",
            group.healthy
        ));
        out.push_str(&format!(
            "gantry_server_group_instances{{{labels},health=\"unhealthy\"}} {}\n",
            group.instances - group.healthy
        ));
    }
    out
}
