use super::{ApplicationIndex, ClusterOf};
use crate::model::{
    Application, HealthCheck, LoadBalancer, LoadBalancerStatus, RouteRule, ServerGroup,
    ServerGroupSpec, ServerGroupStatus, Snapshot,
};

fn group(application: &str, cluster: &str, version: u32, live: bool) -> ServerGroupStatus {
    ServerGroupStatus {
        group: ServerGroup {
            name: format!("{cluster}-v{version:03}"),
            application: application.to_owned(),
            cluster: cluster.to_owned(),
            version,
            request_id: format!("r{version}"),
            spec: ServerGroupSpec::default(),
            size: 1,
            enabled: true,
            weight: 100,
            created_at: 0,
            destroyed_at: (!live).then_some(1),
            provider: None,
        },
        instances: Vec::new(),
        stats: None,
    }
}

/// `shop-web` (two live groups, one destroyed), `shop-api` (destroyed only), `blog-web`;
/// one load balancer routing to `shop-web`.
fn snapshot() -> Snapshot {
    Snapshot {
        applications: vec![Application {
            name: "shop".to_owned(),
            description: Some("the shop".to_owned()),
        }],
        load_balancers: vec![LoadBalancerStatus {
            load_balancer: LoadBalancer {
                name: "front".to_owned(),
                port: 8080,
                rules: vec![RouteRule {
                    host: None,
                    path_prefix: None,
                    cluster: "shop-web".to_owned(),
                }],
                health_check: HealthCheck::default(),
                response_timeout: None,
                client_timeouts: Default::default(),
                limits: Default::default(),
            },
            listening: true,
        }],
        server_groups: vec![
            group("shop", "shop-web", 0, false),
            group("shop", "shop-web", 1, true),
            group("shop", "shop-api", 0, false),
            group("blog", "blog-web", 0, true),
            group("shop", "shop-web", 2, true),
        ],
    }
}

fn of(application: &str, cluster: &str) -> ClusterOf {
    ClusterOf {
        application: application.to_owned(),
        cluster: cluster.to_owned(),
    }
}

#[test]
fn the_application_index_names_each_cluster_once_destroyed_groups_included() {
    let index = snapshot().application_index();
    assert_eq!(
        index,
        ApplicationIndex {
            applications: snapshot().applications,
            clusters: vec![
                of("shop", "shop-web"),
                of("shop", "shop-api"),
                of("blog", "blog-web")
            ],
        }
    );
}

#[test]
fn the_routed_part_holds_the_live_groups_of_the_clusters_a_load_balancer_routes_to() {
    let routed = snapshot().only_routed();
    let names: Vec<&str> = routed
        .server_groups
        .iter()
        .map(|g| g.group.name.as_str())
        .collect();
    assert_eq!(names, ["shop-web-v001", "shop-web-v002"]);
    assert_eq!(routed.load_balancers.len(), 1);
    assert!(routed.applications.is_empty());
}

#[test]
fn figures_are_those_of_the_live_groups_only() {
    let names: Vec<String> = snapshot().figures().into_iter().map(|f| f.name).collect();
    assert_eq!(names, ["shop-web-v001", "blog-web-v000", "shop-web-v002"]);
}
