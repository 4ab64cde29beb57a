//! The deploy reads that ask the data plane for part of its state (the applications list,
//! one server group, the load balancers, `/metrics`) answer what the whole list of server
//! groups says: after two red/black deploys of the shop, each partial answer agrees with
//! `/api/v1/server-groups`.

use serde_json::{Value, json};

use crate::deploy_support::{deploy, free_port, shop_yaml};
use crate::harness::{Backend, Server};

#[test]
fn each_partial_deploy_read_agrees_with_the_whole_list_of_server_groups() {
    let server = Server::start(Backend::Sqlite);
    let port = free_port();
    server.apply(&shop_yaml(port, ""));
    for version in ["version=v1", "version=v2"] {
        let execution = deploy(&server, "redblack", &[version]);
        assert_eq!(execution["status"], "succeeded", "{execution:#}");
    }
    let whole = server.get("/api/v1/server-groups");
    let whole = whole["serverGroups"]
        .as_array()
        .expect("serverGroups")
        .clone();
    let names: Vec<&str> = whole.iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["shop-web-v000", "shop-web-v001"], "{whole:#?}");

    let applications = server.get("/api/v1/applications");
    assert_eq!(
        applications,
        json!({"applications": [
            {"name": "shop", "description": "the test shop", "clusters": ["shop-web"]}
        ]})
    );

    for group in &whole {
        let name = group["name"].as_str().unwrap();
        let one = server.get(&format!("/api/v1/server-groups/{name}"));
        for field in [
            "name",
            "version",
            "enabled",
            "size",
            "weight",
            "createdAt",
            "spec",
        ] {
            assert_eq!(one[field], group[field], "{name}: {field}\n{one:#}");
        }
        assert_eq!(instance_ids(&one), instance_ids(group), "{name}");
    }
    let (status, _) = server.api("GET", "/api/v1/server-groups/shop-web-v999", None);
    assert_eq!(status, 404);

    let balancers = server.get("/api/v1/load-balancers");
    let balancers = balancers["loadBalancers"]
        .as_array()
        .expect("loadBalancers");
    assert_eq!(balancers.len(), 1, "{balancers:#?}");
    assert_eq!(balancers[0]["port"], port);
    let clusters = balancers[0]["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 1, "{clusters:#?}");
    let routed: Vec<(&str, bool)> = clusters[0]["serverGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["name"].as_str().unwrap(), g["enabled"].as_bool().unwrap()))
        .collect();
    let live: Vec<(&str, bool)> = whole
        .iter()
        .filter(|g| g["destroyedAt"].is_null())
        .map(|g| (g["name"].as_str().unwrap(), g["enabled"].as_bool().unwrap()))
        .collect();
    assert_eq!(routed, live, "{clusters:#?}");
    assert_eq!(
        server.get("/api/v1/load-balancers/shop")["clusters"],
        balancers[0]["clusters"]
    );

    let (status, metrics) = server.api("GET", "/metrics", None);
    assert_eq!(status, 200);
    let metrics = metrics.as_str().expect("text");
    for group in live.iter().map(|(name, _)| name) {
        let healthy = whole
            .iter()
            .find(|g| g["name"] == *group)
            .map(|g| {
                g["instances"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|i| i["healthy"] == true)
                    .count()
            })
            .unwrap();
        let line = format!(
            "gantry_server_group_instances{{server_group=\"{group}\",cluster=\"shop-web\",health=\"healthy\"}} {healthy}"
        );
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
}

fn instance_ids(group: &Value) -> Vec<String> {
    group["instances"]
        .as_array()
        .map(|instances| {
            instances
                .iter()
                .map(|i| i["id"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
