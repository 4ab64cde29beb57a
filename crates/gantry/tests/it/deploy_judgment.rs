//! A rolling deploy with a manual judgment between its steps, under
//! continuous load: traffic stays split while people decide, approval
//! goes on to 100%, rejection (also after a server restart) rolls back.

use std::time::Duration;

use crate::deploy_support::{Load, assert_clean, deploy, free_port, get, shop_yaml};
use crate::harness::{Backend, Server, stage};

/// The shop's gantry file plus `deploy-judged`: rolling [50, 100] with a
/// judgment between the steps.
fn judged_yaml(port: u16) -> String {
    let app = crate::deploy_support::testapp();
    format!(
        r#"{}  - name: deploy-judged
    parameters:
      - {{name: version, default: v1}}
    stages:
      - id: deploy
        type: deploy
        application: shop
        stack: web
        command: {app}
        size: 2
        strategy: rolling
        targetPercentages: [50, 100]
        judgmentBetweenSteps:
          instructions: compare the versions' error rates
        healthTimeout: 6s
        gracePeriod: 2s
        env:
          VERSION: "${{{{ parameters.version }}}}"
"#,
        shop_yaml(port, ""),
        app = app.display()
    )
}

/// Versions answering `/` over `n` requests.
fn versions_seen(port: u16, n: usize) -> Vec<String> {
    let mut seen: Vec<String> = (0..n)
        .map(|_| get(port, "/").1)
        .map(|body| body.split_whitespace().next().unwrap_or("").to_owned())
        .collect();
    seen.sort();
    seen.dedup();
    seen
}

fn wait_for_judgment(server: &Server, id: &str) -> serde_json::Value {
    server.wait_for(id, "the deploy waiting for a judgment", |e| {
        stage(e, "deploy")["status"] == "waiting"
    })
}

fn weights(server: &Server) -> Vec<(String, bool, u64)> {
    server.get("/api/v1/clusters/shop-web")["serverGroups"]
        .as_array()
        .expect("server groups")
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap_or_default().to_owned(),
                g["enabled"] == true,
                g["weight"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn rolling_waits_for_a_judgment_between_steps() {
    let mut server = Server::start(Backend::Sqlite);
    let port = free_port();
    server.apply(&judged_yaml(port));
    let first = deploy(&server, "redblack", &["version=v1"]);
    assert_eq!(first["status"], "succeeded", "{first:#}");

    // Approved: 50% while waiting, then 100%.
    let load = Load::start(port, 4, 2);
    let id = server.run("deploy-judged", &["version=v2"]);
    wait_for_judgment(&server, &id);
    assert_eq!(
        weights(&server),
        vec![
            ("shop-web-v000".into(), true, 50),
            ("shop-web-v001".into(), true, 50)
        ]
    );
    assert_eq!(versions_seen(port, 40), vec!["v1", "v2"]);
    server.cli(&["approve", &id, "--stage", "deploy"]).ok();
    let done = server.wait_terminal(&id);
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_clean(&tally, "rolling [50, 100] approved at 50%");
    let judgments = &stage(&done, "deploy")["outputs"]["judgments"];
    assert_eq!(judgments[0]["step"], 50, "{judgments:#}");
    assert_eq!(judgments[0]["judgment"], "continue", "{judgments:#}");
    assert!(judgments[0]["judgedBy"].is_string(), "{judgments:#}");
    assert!(judgments[0]["judgedAt"].is_number(), "{judgments:#}");
    assert_eq!(versions_seen(port, 10), vec!["v2"]);

    // Rejected after a restart of the server: the old group serves alone.
    let load = Load::start(port, 4, 2);
    let id = server.run("deploy-judged", &["version=v3"]);
    wait_for_judgment(&server, &id);
    server.kill9();
    server.restart();
    let waiting = wait_for_judgment(&server, &id);
    assert!(
        stage(&waiting, "deploy")["outputs"]["judgments"].is_null(),
        "{waiting:#}"
    );
    assert_eq!(versions_seen(port, 40), vec!["v2", "v3"]);
    server.cli(&["reject", &id, "--stage", "deploy"]).ok();
    let done = server.wait_terminal(&id);
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();
    assert_eq!(done["status"], "failed", "{done:#}");
    let error = stage(&done, "deploy")["error"].to_string();
    assert!(
        error.contains("rejected by") && error.contains("after 50%"),
        "{error}"
    );
    assert_clean(&tally, "rolling [50, 100] rejected at 50%");
    let groups = weights(&server);
    assert!(
        groups.iter().all(|(name, _, _)| name != "shop-web-v002"),
        "the new group is removed: {groups:?}"
    );
    let enabled: Vec<_> = groups.iter().filter(|(_, enabled, _)| *enabled).collect();
    assert_eq!(
        enabled,
        vec![&("shop-web-v001".to_owned(), true, 100)],
        "the old group serves alone, at full weight"
    );
    assert_eq!(versions_seen(port, 10), vec!["v2"]);
}
