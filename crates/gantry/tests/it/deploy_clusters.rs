//! What a deploy takes from its cluster: the cluster itself, so that two
//! executions never roll out on it at once, and the current group's size
//! when the file sets none; a size from a parameter; a rolling deploy
//! scaling its old group down.

use std::time::{Duration, Instant};

use crate::deploy_support::{deploy, free_port, shop_pipeline, shop_yaml, testapp};
use crate::harness::{Backend, Server, stage};

/// The shop plus `canary-slow` (a canary that holds 50 % for a while),
/// `sized` (red/black at `replicas` instances) and `unsized` (rolling, no
/// size).
fn clusters_yaml(port: u16) -> String {
    let app = testapp();
    let app = app.display();
    format!(
        "{}{}{}{}",
        shop_yaml(port, ""),
        shop_pipeline(
            "canary-slow",
            &["{name: version}"],
            &format!(
                "command: {app}\nsize: 1\nstrategy: canary\nsteps: [{{setWeight: 50}}, {{pause: 3s}}]\nenv: {{VERSION: \"${{{{ parameters.version }}}}\"}}\n"
            ),
        ),
        shop_pipeline(
            "sized",
            &["{name: replicas, default: \"1\"}"],
            &format!(
                "command: {app}\nsize: \"${{{{ parameters.replicas }}}}\"\nenv: {{VERSION: sized}}\n"
            ),
        ),
        shop_pipeline(
            "unsized",
            &[],
            &format!(
                "command: {app}\nstrategy: rolling\ntargetPercentages: [50, 100]\nenv: {{VERSION: unsized}}\n"
            ),
        ),
    )
}

fn groups(server: &Server) -> Vec<serde_json::Value> {
    server.get("/api/v1/clusters/shop-web")["serverGroups"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn is_terminal(execution: &serde_json::Value) -> bool {
    matches!(
        execution["status"].as_str(),
        Some("succeeded" | "failed" | "canceled")
    )
}

#[test]
fn a_second_deploy_of_a_cluster_waits_for_the_first_to_finish() {
    let server = Server::start(Backend::Sqlite);
    let port = free_port();
    server.apply(&clusters_yaml(port));
    let first = deploy(&server, "redblack", &["version=v1"]);
    assert_eq!(first["status"], "succeeded", "{first:#}");

    let a = server.run("canary-slow", &["version=v2"]);
    let b = server.run("canary-slow", &["version=v3"]);
    // Until both end, the cluster never has three enabled groups: the
    // second canary starts only once the first was promoted.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut most_enabled = 0;
    let mut b_waited_while_a_ran = false;
    loop {
        let enabled = groups(&server)
            .iter()
            .filter(|g| g["enabled"] == true)
            .count();
        most_enabled = most_enabled.max(enabled);
        let (ea, eb) = (server.execution(&a), server.execution(&b));
        let b_log = crate::steps_podman::log_text(&server, &b);
        if !is_terminal(&ea)
            && b_log.contains(&format!(
                "waiting for the deploy of cluster shop-web by execution {a} to finish"
            ))
        {
            b_waited_while_a_ran = true;
        }
        if is_terminal(&ea) && is_terminal(&eb) {
            assert_eq!(ea["status"], "succeeded", "{ea:#}");
            assert_eq!(eb["status"], "succeeded", "{eb:#}");
            break;
        }
        assert!(Instant::now() < deadline, "the deploys never ended");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        most_enabled <= 2,
        "{most_enabled} groups were enabled at once"
    );
    assert!(
        b_waited_while_a_ran,
        "{}",
        crate::steps_podman::log_text(&server, &b)
    );
    // The second deploy read the cluster after the first: it replaced the
    // first canary's group, not the group both started from.
    let (ea, eb) = (server.execution(&a), server.execution(&b));
    let a_group = stage(&ea, "deploy")["outputs"]["serverGroup"]
        .as_str()
        .unwrap()
        .to_owned();
    let b_group = stage(&eb, "deploy")["outputs"]["serverGroup"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        (a_group.as_str(), b_group.as_str()),
        ("shop-web-v001", "shop-web-v002")
    );
    let enabled: Vec<_> = groups(&server)
        .into_iter()
        .filter(|g| g["enabled"] == true)
        .map(|g| g["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(enabled, vec!["shop-web-v002"]);
    assert!(
        crate::deploy_support::get(port, "/").1.starts_with("v3 "),
        "the later deploy serves"
    );
}

#[test]
fn a_redeploy_keeps_the_size_a_parameter_gave_and_rolling_scales_the_old_group_down() {
    let server = Server::start(Backend::Sqlite);
    let port = free_port();
    server.apply(&clusters_yaml(port));

    let sized = server.run("sized", &["replicas=3"]);
    let sized = server.wait_terminal(&sized);
    assert_eq!(sized["status"], "succeeded", "{sized:#}");
    let now = groups(&server);
    assert_eq!(now.len(), 1, "{now:#?}");
    assert_eq!(now[0]["size"], 3, "{now:#?}");

    // No size in the file: the current group's 3 instances, and the
    // rolling deploy leaves the old group disabled and empty.
    let resized = server.run("unsized", &[]);
    let resized = server.wait_terminal(&resized);
    assert_eq!(resized["status"], "succeeded", "{resized:#}");
    let now = groups(&server);
    assert_eq!(now.len(), 2, "{now:#?}");
    assert_eq!(
        (
            now[0]["name"].as_str(),
            now[0]["enabled"].as_bool(),
            now[0]["size"].as_u64()
        ),
        (Some("shop-web-v000"), Some(false), Some(0)),
        "{now:#?}"
    );
    assert_eq!(
        (
            now[1]["name"].as_str(),
            now[1]["enabled"].as_bool(),
            now[1]["size"].as_u64()
        ),
        (Some("shop-web-v001"), Some(true), Some(3)),
        "{now:#?}"
    );

    // A rendered size that is no number fails the deploy before it starts.
    let bad = server.run("sized", &["replicas=many"]);
    let bad = server.wait_terminal(&bad);
    assert_eq!(bad["status"], "failed", "{bad:#}");
    assert_eq!(groups(&server).len(), 2);
}

#[test]
fn deploys_that_say_overlap_share_the_cluster() {
    let server = Server::start(Backend::Sqlite);
    let port = free_port();
    let app = testapp();
    server.apply(&format!(
        "{}{}",
        clusters_yaml(port),
        shop_pipeline(
            "canary-overlapping",
            &["{name: version}"],
            &format!(
                "command: {}\noverlap: true\nsize: 1\nstrategy: canary\nsteps: [{{setWeight: 50}}, {{pause: 3s}}]\nenv: {{VERSION: \"${{{{ parameters.version }}}}\"}}\n",
                app.display()
            ),
        )
    ));
    let first = deploy(&server, "redblack", &["version=v1"]);
    assert_eq!(first["status"], "succeeded", "{first:#}");

    let a = server.run("canary-overlapping", &["version=v2"]);
    let b = server.run("canary-overlapping", &["version=v3"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut most_enabled = 0;
    while !(is_terminal(&server.execution(&a)) && is_terminal(&server.execution(&b))) {
        let enabled = groups(&server)
            .iter()
            .filter(|g| g["enabled"] == true)
            .count();
        most_enabled = most_enabled.max(enabled);
        assert!(Instant::now() < deadline, "the deploys never ended");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Asked for: both canaries ran beside the group they started from.
    assert_eq!(most_enabled, 3);
    let log = crate::steps_podman::log_text(&server, &b);
    assert!(!log.contains("waiting for the deploy of cluster"), "{log}");
}
