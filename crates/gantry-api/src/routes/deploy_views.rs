//! The deploy controller's snapshot as `gantry_wire::deploy` answers: one
//! conversion per shape, field by field, so a field the model gains reaches
//! the wire only when its wire type names it.

use gantry_deploy::model::{self, Snapshot};
use gantry_wire::deploy as wire;

pub(crate) fn applications(index: &model::ApplicationIndex) -> wire::ApplicationList {
    let mut names: Vec<&str> = index.applications.iter().map(|a| a.name.as_str()).collect();
    for of in &index.clusters {
        if !names.contains(&of.application.as_str()) {
            names.push(&of.application);
        }
    }
    let applications = names
        .into_iter()
        .map(|name| {
            let declared = index.applications.iter().find(|a| a.name == name);
            let mut clusters: Vec<String> = index
                .clusters
                .iter()
                .filter(|of| of.application == name)
                .map(|of| of.cluster.clone())
                .collect();
            clusters.sort();
            clusters.dedup();
            wire::ApplicationSummary {
                name: name.to_owned(),
                description: declared.and_then(|a| a.description.clone()),
                clusters,
            }
        })
        .collect();
    wire::ApplicationList { applications }
}

pub(crate) fn cluster_summary(summary: model::ClusterSummary) -> wire::ClusterSummary {
    wire::ClusterSummary {
        name: summary.name,
        application: summary.application,
        server_groups: summary.server_groups,
        enabled: summary.enabled,
        instances: summary.instances,
        healthy: summary.healthy,
    }
}

pub(crate) fn cluster(snapshot: &Snapshot, cluster: &str) -> wire::Cluster {
    let groups = snapshot.cluster(cluster);
    wire::Cluster {
        name: cluster.to_owned(),
        application: groups.first().map(|g| g.group.application.clone()),
        load_balancers: snapshot
            .load_balancers
            .iter()
            .filter(|lb| lb.load_balancer.rules.iter().any(|r| r.cluster == cluster))
            .map(|lb| lb.load_balancer.name.clone())
            .collect(),
        server_groups: groups.into_iter().map(group_status).collect(),
        history: snapshot
            .server_groups
            .iter()
            .filter(|g| g.group.cluster == cluster && !g.group.is_live())
            .map(|g| group(&g.group))
            .collect(),
    }
}

pub(crate) fn group_status(status: &model::ServerGroupStatus) -> wire::ServerGroupStatus {
    wire::ServerGroupStatus {
        group: group(&status.group),
        instances: status.instances.iter().map(instance).collect(),
        stats: status.stats.as_ref().map(stats),
    }
}

pub(crate) fn group(group: &model::ServerGroup) -> wire::ServerGroup {
    let spec = &group.spec;
    wire::ServerGroup {
        name: group.name.clone(),
        application: group.application.clone(),
        cluster: group.cluster.clone(),
        version: group.version,
        request_id: group.request_id.clone(),
        spec: wire::ServerGroupSpec {
            command: spec.command.clone(),
            image: spec.image.clone(),
            artifact: spec.artifact.clone(),
            env: spec.env.clone(),
            grace_seconds: spec.grace_seconds,
            placement: spec.placement.as_ref().map(|p| wire::Placement {
                labels: p.labels.clone(),
                max_per_host: p.max_per_host,
            }),
        },
        size: group.size,
        enabled: group.enabled,
        weight: group.weight,
        created_at: group.created_at,
        destroyed_at: group.destroyed_at,
        provider: group.provider.clone(),
    }
}

fn instance(instance: &model::Instance) -> wire::Instance {
    wire::Instance {
        id: instance.id.clone(),
        port: instance.port,
        pid: instance.pid,
        state: instance.state.clone(),
        healthy: instance.healthy,
        in_flight: instance.in_flight,
        restarts: instance.restarts,
        crash_looping: instance.crash_looping,
        host: instance.host.clone(),
        address: instance.address.clone(),
        version: instance.version.clone(),
        image: instance.image.clone(),
        digest: instance.digest.clone(),
    }
}

fn stats(stats: &model::GroupStatsSnapshotView) -> wire::GroupStats {
    wire::GroupStats {
        requests: stats.requests,
        status_5xx: stats.status_5xx,
        connect_errors: stats.connect_errors,
        p50_ms: stats.p50_ms,
        p95_ms: stats.p95_ms,
        p99_ms: stats.p99_ms,
        rate: stats.rate,
    }
}

/// A load balancer with, per cluster it routes to, the groups taking
/// traffic, their weights, instance health and live request rates.
pub(crate) fn load_balancer(
    snapshot: &Snapshot,
    lb: &model::LoadBalancerStatus,
) -> wire::LoadBalancer {
    let mut clusters: Vec<&str> = lb
        .load_balancer
        .rules
        .iter()
        .map(|r| r.cluster.as_str())
        .collect();
    clusters.dedup();
    let health = &lb.load_balancer.health_check;
    wire::LoadBalancer {
        name: lb.load_balancer.name.clone(),
        port: lb.load_balancer.port,
        listening: lb.listening,
        rules: lb
            .load_balancer
            .rules
            .iter()
            .map(|r| wire::RouteRule {
                host: r.host.clone(),
                path_prefix: r.path_prefix.clone(),
                cluster: r.cluster.clone(),
            })
            .collect(),
        health_check: wire::HealthCheck {
            path: health.path.clone(),
            interval: millis(health.interval),
            timeout: millis(health.timeout),
            healthy_threshold: health.healthy_threshold,
            unhealthy_threshold: health.unhealthy_threshold,
        },
        clusters: clusters
            .into_iter()
            .map(|cluster| traffic(snapshot, cluster))
            .collect(),
    }
}

fn traffic(snapshot: &Snapshot, cluster: &str) -> wire::LoadBalancerCluster {
    let groups = snapshot.cluster(cluster);
    let takes_traffic = |g: &model::ServerGroupStatus| g.group.enabled && g.healthy_instances() > 0;
    let total: u32 = groups
        .iter()
        .filter(|g| takes_traffic(g))
        .map(|g| g.group.weight)
        .sum();
    wire::LoadBalancerCluster {
        cluster: cluster.to_owned(),
        server_groups: groups
            .iter()
            .map(|g| wire::GroupTraffic {
                name: g.group.name.clone(),
                enabled: g.group.enabled,
                weight: g.group.weight,
                traffic_percent: if takes_traffic(g) && total > 0 {
                    100.0 * f64::from(g.group.weight) / f64::from(total)
                } else {
                    0.0
                },
                size: g.group.size,
                instances: g.instances.iter().map(instance).collect(),
                stats: g.stats.as_ref().map(stats),
            })
            .collect(),
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
