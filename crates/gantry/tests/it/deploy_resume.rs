//! Rollouts resumed after `kill -9` of the server go on from the step they
//! reached, and a canary's pause keeps its deadline; the guard rails of
//! the deploy model: the last enabled server group of a cluster is
//! disabled only with force, and a server group's size has a ceiling.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::deploy_support::{Load, assert_clean, deploy, free_port, shop_yaml, testapp};
use crate::harness::{Backend, Server, stage};

/// The shop's gantry file plus `deploy-NAME` with the deploy stage's
/// `strategy_fields` (indented as stage fields).
fn with_pipeline(port: u16, name: &str, size: u32, strategy_fields: &str) -> String {
    format!(
        r#"{}  - name: deploy-{name}
    parameters:
      - {{name: version, default: v1}}
    stages:
      - id: deploy
        type: deploy
        application: shop
        stack: web
        command: {app}
        size: {size}
        healthTimeout: 10s
        gracePeriod: 2s
        env:
          VERSION: "${{{{ parameters.version }}}}"
{strategy_fields}"#,
        shop_yaml(port, ""),
        app = testapp().display()
    )
}

fn group(server: &Server, name: &str) -> Value {
    server.get(&format!("/api/v1/server-groups/{name}"))
}

/// Polls server group `name` until `done` holds for it.
fn wait_group(server: &Server, name: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, group) = server.api("GET", &format!("/api/v1/server-groups/{name}"), None);
        if status == 200 && done(&group) {
            return group;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {name} to be {what}; last seen: {group:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn healthy(group: &Value) -> usize {
    group["instances"]
        .as_array()
        .map(|i| i.iter().filter(|i| i["healthy"] == true).count())
        .unwrap_or(0)
}

fn pids(group: &Value) -> Vec<i64> {
    let mut pids: Vec<i64> = group["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter_map(|i| i["pid"].as_i64())
        .collect();
    pids.sort();
    pids
}

/// The stage log lines of an execution that contain `needle`.
fn log_lines(server: &Server, id: &str, needle: &str) -> Vec<String> {
    server
        .logs(id)
        .iter()
        .filter_map(|l| l["line"].as_str())
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_rolling_deploy_resumed_after_kill_9_does_not_redo_its_finished_steps() {
    let mut server = Server::start(Backend::Sqlite);
    let port = free_port();
    server.apply(&with_pipeline(
        port,
        "steps",
        4,
        "        strategy: rolling\n        targetPercentages: [25, 50, 75, 100]\n        pauseBetween: 4s\n",
    ));
    let first = deploy(&server, "redblack", &["version=v1"]);
    assert_eq!(first["status"], "succeeded", "{first:#}");

    let load = Load::start(port, 2, 1);
    let id = server.run("deploy-steps", &["version=v2"]);
    // The second step (50%, two instances) is done: the rollout pauses.
    let at_half = wait_group(
        &server,
        "shop-web-v001",
        "at 50% with 2 healthy instances",
        |g| g["enabled"] == true && g["weight"] == 50 && healthy(g) == 2,
    );
    let before = pids(&at_half);
    assert_eq!(before.len(), 2, "{at_half:#}");
    server.kill9();
    server.restart();
    let done = server.wait_terminal(&id);
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();
    assert_eq!(done["status"], "succeeded", "{done:#}");
    assert_clean(&tally, "rolling deploy resumed after kill -9");

    // The instances of the finished steps were never stopped: a rollout
    // started again from its first step would have scaled the group back
    // to one instance and started a new second one.
    let after = group(&server, "shop-web-v001");
    assert_eq!(after["size"], 4, "{after:#}");
    let now = pids(&after);
    assert!(
        before.iter().all(|pid| now.contains(pid)),
        "instances {before:?} of the finished steps were replaced: now {now:?}"
    );
    assert_eq!(
        log_lines(&server, &id, "shop-web-v001 at 25%").len(),
        1,
        "the first step ran once: {:#?}",
        log_lines(&server, &id, "shop-web-v001 at")
    );
    assert_eq!(
        log_lines(&server, &id, "resumed at step 2").len(),
        1,
        "{:#?}",
        server.logs(&id)
    );
    let record = &stage(&done, "deploy");
    assert_eq!(
        record["outputs"]["serverGroup"], "shop-web-v001",
        "{done:#}"
    );
}

#[test]
fn a_canary_pause_keeps_its_deadline_across_a_restart() {
    let mut server = Server::start(Backend::Sqlite);
    let port = free_port();
    server.apply(&with_pipeline(
        port,
        "paused",
        2,
        "        strategy: canary\n        steps:\n          - setWeight: 20\n          - pause: 6s\n          - setWeight: 50\n",
    ));
    let first = deploy(&server, "redblack", &["version=v1"]);
    assert_eq!(first["status"], "succeeded", "{first:#}");

    let id = server.run("deploy-paused", &["version=v2"]);
    wait_group(&server, "shop-web-v001", "at weight 20", |g| {
        g["enabled"] == true && g["weight"] == 20
    });
    // The pause began when the weight was set (give or take a poll).
    let began = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    server.kill9();
    server.restart();
    let restarted = began.elapsed();
    wait_group(&server, "shop-web-v001", "past weight 20", |g| {
        g["weight"].as_u64().is_some_and(|w| w > 20)
    });
    let paused = began.elapsed();
    eprintln!(
        "the 6 s pause, interrupted by kill -9 at 3 s (server back at {restarted:?}), ended {paused:?} after it began"
    );
    let done = server.wait_terminal(&id);
    assert_eq!(done["status"], "succeeded", "{done:#}");
    // The pause ends at its recorded deadline, or as soon as the resumed
    // rollout gets there if the restart took longer than the pause. A
    // pause whose clock restarted would end 6 s after the restart.
    let due = Duration::from_secs(6).max(restarted);
    assert!(
        paused >= Duration::from_millis(5_000) && paused <= due + Duration::from_secs(2),
        "the 6 s pause ended {paused:?} after it began (server back at {restarted:?})"
    );
    assert_eq!(
        log_lines(&server, &id, "canary shop-web-v001 at weight 20%").len(),
        1,
        "{:#?}",
        server.logs(&id)
    );
}

#[test]
fn disabling_the_last_enabled_server_group_needs_force() {
    let server = Server::start(Backend::Sqlite);
    let port = free_port();
    server.apply(&shop_yaml(port, ""));
    let first = deploy(&server, "redblack", &["version=v1"]);
    assert_eq!(first["status"], "succeeded", "{first:#}");

    let out = server
        .cli(&["servergroup", "disable", "shop-web-v000"])
        .fails_with("last enabled server group of cluster \"shop-web\"");
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    let (status, answer) = server.api(
        "POST",
        "/api/v1/server-groups/shop-web-v000/disable",
        Some(json!({})),
    );
    assert_eq!(status, 400, "{answer:#}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("\"force\": true"),
        "{answer:#}"
    );
    assert_eq!(group(&server, "shop-web-v000")["enabled"], true);

    server
        .cli(&["servergroup", "disable", "shop-web-v000", "--force"])
        .ok();
    assert_eq!(group(&server, "shop-web-v000")["enabled"], false);
    // Disabling a disabled group changes nothing and needs no force.
    server
        .cli(&["servergroup", "disable", "shop-web-v000"])
        .ok();

    server.cli(&["servergroup", "enable", "shop-web-v000"]).ok();
    let (status, answer) = server.api(
        "POST",
        "/api/v1/server-groups/shop-web-v000/disable",
        Some(json!({"force": true})),
    );
    assert_eq!(status, 200, "{answer:#}");
    assert_eq!(group(&server, "shop-web-v000")["enabled"], false);

    // A stage needs `force: true` too.
    server.cli(&["servergroup", "enable", "shop-web-v000"]).ok();
    server.apply(
        "pipelines:\n  - name: off\n    stages:\n      - {id: off, type: disableServerGroup, cluster: shop-web, target: newest}\n  - name: off-forced\n    stages:\n      - {id: off, type: disableServerGroup, cluster: shop-web, target: newest, force: true}\n",
    );
    let refused = server.wait_terminal(&server.run("off", &[]));
    assert_eq!(refused["status"], "failed", "{refused:#}");
    let error = stage(&refused, "off")["error"].to_string();
    assert!(error.contains("last enabled server group"), "{error}");
    assert_eq!(group(&server, "shop-web-v000")["enabled"], true);
    let forced = server.wait_terminal(&server.run("off-forced", &[]));
    assert_eq!(forced["status"], "succeeded", "{forced:#}");
    assert_eq!(group(&server, "shop-web-v000")["enabled"], false);
}

#[test]
fn a_size_above_the_ceiling_is_refused_in_apply_run_and_resize() {
    // The default ceiling: 100.
    let server = Server::start(Backend::Sqlite);
    let path = server.write_file(
        "big.yaml",
        &shop_yaml(free_port(), "").replace("size: 2", "size: 101"),
    );
    let out = server
        .cli(&["apply", "-f", path.to_str().expect("utf-8 path")])
        .fails_with("size 101 is above this server's ceiling of 100");
    assert!(out.stderr.contains("--max-deploy-size"), "{}", out.stderr);
    assert!(
        server.get("/api/v1/pipelines")["pipelines"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "nothing of the refused file was applied"
    );
    drop(server);

    // A ceiling set by the server's flag (here through its environment).
    let server = Server::start_with_env(&[("GANTRY_MAX_DEPLOY_SIZE", "3")]);
    let port = free_port();
    server.apply(&shop_yaml(port, ""));
    let first = deploy(&server, "redblack", &["version=v1"]);
    assert_eq!(first["status"], "succeeded", "{first:#}");
    let path = server.write_file(
        "big.yaml",
        &shop_yaml(port, "").replace("size: 2", "size: 4"),
    );
    server
        .cli(&["apply", "-f", path.to_str().expect("utf-8 path")])
        .fails_with("ceiling of 3 instances per server group");

    server
        .cli(&["servergroup", "resize", "shop-web-v000", "--size", "4"])
        .fails_with("size 4 is above this server's ceiling of 3");
    let (status, answer) = server.api(
        "POST",
        "/api/v1/server-groups/shop-web-v000/resize",
        Some(json!({"size": 1000})),
    );
    assert_eq!(status, 400, "{answer:#}");
    assert_eq!(group(&server, "shop-web-v000")["size"], 2);
    server
        .cli(&["servergroup", "resize", "shop-web-v000", "--size", "3"])
        .ok();
    assert_eq!(group(&server, "shop-web-v000")["size"], 3);

    // A size computed when the stage runs is checked then.
    server.apply(
        "pipelines:\n  - name: grow\n    stages:\n      - {id: grow, type: resizeServerGroup, cluster: shop-web, target: newest, scaleUp: 5}\n",
    );
    let grown = server.wait_terminal(&server.run("grow", &[]));
    assert_eq!(grown["status"], "failed", "{grown:#}");
    let error = stage(&grown, "grow")["error"].to_string();
    assert!(
        error.contains("size 8 is above this server's ceiling of 3"),
        "{error}"
    );
    assert_eq!(group(&server, "shop-web-v000")["size"], 3);
}
