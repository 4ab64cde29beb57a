//! Rollouts under continuous load through the real data plane: every
//! response is checked, and none may fail.

use std::time::Duration;

use crate::deploy_support::{Load, assert_clean, deploy, free_port, get, shop_yaml};
use crate::harness::{Backend, Server, stage};

fn shop(server: &Server) -> u16 {
    let port = free_port();
    server.apply(&shop_yaml(port, ""));
    let first = deploy(server, "redblack", &["version=v1"]);
    assert_eq!(first["status"], "succeeded", "{first:#}");
    assert!(get(port, "/").1.starts_with("v1 "));
    port
}

fn live_groups(server: &Server) -> Vec<serde_json::Value> {
    server.get("/api/v1/clusters/shop-web")["serverGroups"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn redblack_then_rollback_drop_nothing() {
    let server = Server::start(Backend::Sqlite);
    let port = shop(&server);

    let load = Load::start(port, 4, 2);
    std::thread::sleep(Duration::from_millis(500));
    let second = deploy(&server, "redblack", &["version=v2"]);
    assert_eq!(second["status"], "succeeded", "{second:#}");
    assert_eq!(
        stage(&second, "deploy")["outputs"]["serverGroup"],
        "shop-web-v001"
    );
    std::thread::sleep(Duration::from_millis(500));
    let tally = load.finish();
    assert_clean(&tally, "redblack v1 → v2");
    assert!(tally.versions.contains_key("v2"), "{:?}", tally.versions);
    assert_eq!(get(port, "/").1.split_whitespace().next(), Some("v2"));
    let groups = live_groups(&server);
    assert_eq!(groups.len(), 2, "red/black keeps the old group (disabled)");
    assert_eq!(groups[0]["enabled"], false);
    assert_eq!(groups[1]["enabled"], true);

    let load = Load::start(port, 4, 2);
    std::thread::sleep(Duration::from_millis(300));
    server.cli(&["rollback", "shop-web"]).ok();
    std::thread::sleep(Duration::from_millis(500));
    let tally = load.finish();
    assert_clean(&tally, "rollback v2 → v1");
    assert_eq!(get(port, "/").1.split_whitespace().next(), Some("v1"));
    let out = server.cli(&["lb", "show", "shop"]).ok();
    assert!(out.stdout.contains("shop-web-v000"), "{}", out.stdout);
}

#[test]
fn highlander_destroys_older_groups_without_dropping() {
    let server = Server::start(Backend::Sqlite);
    let port = shop(&server);
    let load = Load::start(port, 4, 2);
    std::thread::sleep(Duration::from_millis(300));
    let second = deploy(&server, "highlander", &["version=v2"]);
    assert_eq!(second["status"], "succeeded", "{second:#}");
    std::thread::sleep(Duration::from_millis(500));
    let tally = load.finish();
    assert_clean(&tally, "highlander v1 → v2");
    let groups = live_groups(&server);
    assert_eq!(groups.len(), 1, "{groups:#?}");
    assert_eq!(groups[0]["name"], "shop-web-v001");
    // History keeps the destroyed group.
    let cluster = server.get("/api/v1/clusters/shop-web");
    assert_eq!(cluster["history"][0]["name"], "shop-web-v000");
}

#[test]
fn never_healthy_version_gets_no_traffic_and_is_removed() {
    let server = Server::start(Backend::Sqlite);
    let port = shop(&server);
    let load = Load::start(port, 3, 1);
    let bad = deploy(&server, "redblack", &["version=v2", "failHealth=1"]);
    let tally = load.finish();
    assert_eq!(bad["status"], "failed", "{bad:#}");
    let message = stage(&bad, "deploy")["error"].to_string();
    assert!(message.contains("did not become healthy"), "{message}");
    assert_clean(&tally, "never-healthy deploy");
    assert!(!tally.versions.contains_key("v2"), "{:?}", tally.versions);
    let groups = live_groups(&server);
    assert_eq!(groups.len(), 1, "the failed group is removed: {groups:#?}");
    assert_eq!(groups[0]["enabled"], true);
}

#[test]
fn killing_the_server_drops_no_request() {
    let mut server = Server::start(Backend::Sqlite);
    let port = shop(&server);
    let load = Load::start(port, 4, 2);
    std::thread::sleep(Duration::from_millis(300));
    server.kill9();
    std::thread::sleep(Duration::from_millis(1000));
    server.restart();
    // The restarted server finds the data plane again.
    let second = deploy(&server, "redblack", &["version=v2"]);
    assert_eq!(second["status"], "succeeded", "{second:#}");
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();
    assert_clean(&tally, "kill -9 of gantry serve, restart, deploy");
    assert!(tally.versions.contains_key("v2"));
}

#[test]
fn crashed_instance_is_restarted_while_traffic_goes_around_it() {
    let server = Server::start(Backend::Sqlite);
    let port = free_port();
    server.apply(&shop_yaml(port, ""));
    // Every request spends 20ms inside an instance, so the crash always
    // catches some of them there: those must be sent again elsewhere.
    let first = deploy(&server, "redblack", &["version=v1", "delayMs=20"]);
    assert_eq!(first["status"], "succeeded", "{first:#}");
    let load = Load::start(port, 4, 2);
    std::thread::sleep(Duration::from_millis(300));
    let (status, _) = get(port, "/control/crash");
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(2500));
    let tally = load.finish();
    assert_clean(&tally, "an instance crashing under load");
    let group = server.get("/api/v1/server-groups/shop-web-v000");
    let restarts: u64 = group["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|i| i["restarts"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(restarts, 1, "{group:#}");
    let healthy = group["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter(|i| i["healthy"] == true)
        .count();
    assert_eq!(healthy, 2, "restarted and healthy again: {group:#}");
}

#[test]
fn scale_to_zero_answers_503_and_back() {
    let server = Server::start(Backend::Sqlite);
    let port = shop(&server);
    server
        .cli(&["servergroup", "resize", "shop-web-v000", "--size", "0"])
        .ok();
    let (status, body) = get(port, "/");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("is scaled to 0 instances"), "{body}");
    assert!(!body.contains("internal"), "{body}");
    server
        .cli(&["servergroup", "resize", "shop-web-v000", "--size", "-1"])
        .fails_with("size must be from 0");
    server
        .cli(&["servergroup", "resize", "shop-web-v000", "--size", "2"])
        .ok();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while get(port, "/").0 != 200 {
        assert!(std::time::Instant::now() < deadline, "never served again");
        std::thread::sleep(Duration::from_millis(100));
    }
    let load = Load::start(port, 2, 1);
    std::thread::sleep(Duration::from_millis(1000));
    assert_clean(&load.finish(), "after scaling back");
}

#[test]
fn rolling_shifts_traffic_in_steps_without_dropping() {
    let server = Server::start(Backend::Sqlite);
    let port = shop(&server);
    let load = Load::start(port, 4, 2);
    std::thread::sleep(Duration::from_millis(300));
    let second = deploy(&server, "rolling", &["version=v2"]);
    assert_eq!(second["status"], "succeeded", "{second:#}");
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();
    assert_clean(&tally, "rolling [50, 100]");
    let logs: Vec<String> = server
        .logs(second["id"].as_str().expect("id"))
        .iter()
        .map(|l| l["line"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        logs.iter().any(|l| l.contains("at 50% (1 instances)")),
        "{logs:#?}"
    );
    let groups = live_groups(&server);
    assert_eq!(groups[1]["size"], 2);
    assert_eq!(groups[0]["enabled"], false);
}

#[test]
fn canary_promotion_drops_nothing() {
    let server = Server::start(Backend::Sqlite);
    let port = shop(&server);
    let load = Load::start(port, 4, 2);
    let second = deploy(&server, "canary", &["version=v2"]);
    assert_eq!(second["status"], "succeeded", "{second:#}");
    // Its analysis is in the stage's outputs, interval by interval.
    let analysis = &stage(&second, "deploy")["outputs"]["analysis"][0];
    assert_eq!(analysis["verdict"], "pass", "{analysis:#}");
    let intervals = analysis["intervals"].as_array().expect("intervals");
    assert!(
        intervals
            .iter()
            .any(|i| i["canary"]["requests"].as_u64() > Some(0)
                && i["baseline"]["p99Ms"].is_number()),
        "{analysis:#}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();
    assert_clean(&tally, "canary promotion");
    assert_eq!(get(port, "/").1.split_whitespace().next(), Some("v2"));
}

#[test]
fn canary_with_five_percent_errors_is_aborted() {
    let server = Server::start(Backend::Sqlite);
    let port = shop(&server);
    let load = Load::start(port, 4, 2);
    let bad = deploy(&server, "canary", &["version=v2", "errorPercent=5"]);
    let during = load.finish();
    assert_eq!(bad["status"], "failed", "{bad:#}");
    let analysis = &stage(&bad, "deploy")["state"]["rollout"]["analyses"][0];
    assert_ne!(
        analysis["verdict"], "pass",
        "the failed analysis is kept: {analysis:#}"
    );
    let error = stage(&bad, "deploy")["error"].to_string();
    assert!(
        error.contains("failed its analysis") && error.contains("errorRate High"),
        "{error}"
    );
    // The only failures are the canary's own 500s, while it had traffic.
    assert!(
        during.failures.iter().all(|f| f.contains("injected error")),
        "{:#?}",
        during.failures
    );
    let groups = live_groups(&server);
    assert_eq!(groups.len(), 1, "canary destroyed: {groups:#?}");
    let load = Load::start(port, 2, 1);
    std::thread::sleep(Duration::from_millis(1000));
    let after = load.finish();
    assert_clean(&after, "baseline after the canary was aborted");
    assert_eq!(after.versions.keys().collect::<Vec<_>>(), vec!["v1"]);
}

#[test]
fn crash_looping_instance_is_marked_and_kept_out_of_rotation() {
    let server = Server::start(Backend::Sqlite);
    let port = shop(&server);
    let group = server.get("/api/v1/server-groups/shop-web-v000");
    let instance = |group: &serde_json::Value, index: usize| group["instances"][index].clone();
    let bad_port = instance(&group, 1)["port"].as_u64().expect("port");
    // From now on instance 1 exits 700ms after every start: long enough to
    // pass its health checks each time, too short to be trusted.
    std::fs::write(
        server
            .data_dir()
            .join("deploy/server-groups/shop-web-v000/crash-loop-1"),
        "700",
    )
    .expect("write the crash-loop file");
    let load = Load::start(port, 3, 1);
    let (status, _) = get(bad_port as u16, "/control/crash");
    assert_eq!(status, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let marked = loop {
        let group = server.get("/api/v1/server-groups/shop-web-v000");
        if instance(&group, 1)["crashLooping"] == true {
            break group;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never marked crash-looping: {group:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        instance(&marked, 1)["restarts"].as_u64().unwrap_or(0) >= 5,
        "{marked:#}"
    );
    assert_eq!(instance(&marked, 0)["crashLooping"], false, "{marked:#}");
    let shown = server
        .cli(&["servergroup", "show", "shop-web-v000"])
        .ok()
        .stdout;
    assert!(shown.contains("crash-looping"), "{shown}");
    // Its next runs pass health checks, yet it gets no traffic.
    let before = load.finish();
    let load = Load::start(port, 3, 1);
    std::thread::sleep(Duration::from_millis(7000));
    let after = load.finish();
    assert_clean(&before, "an instance starting to crash-loop");
    assert_clean(&after, "an instance crash-looping");
    let restarts_then = instance(&marked, 1)["restarts"].as_u64().unwrap_or(0);
    let group = server.get("/api/v1/server-groups/shop-web-v000");
    assert!(
        instance(&group, 1)["restarts"].as_u64().unwrap_or(0) > restarts_then,
        "it was restarted meanwhile: {group:#}"
    );
    assert_eq!(
        after.ports.get(&(bad_port as u16)),
        None,
        "a crash-looping instance got traffic: {:?}",
        after.ports
    );

    // Fixed (the file gone), it comes back into rotation once it has stayed
    // up 10 s after its next start (the restart backoff is at most 8 s).
    std::fs::remove_file(
        server
            .data_dir()
            .join("deploy/server-groups/shop-web-v000/crash-loop-1"),
    )
    .expect("remove the crash-loop file");
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let group = server.get("/api/v1/server-groups/shop-web-v000");
        if instance(&group, 1)["crashLooping"] == false {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still marked crash-looping 40 s after it was fixed: {group:#}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let load = Load::start(port, 3, 1);
    std::thread::sleep(Duration::from_millis(1500));
    let back = load.finish();
    assert_clean(&back, "an instance coming back into rotation");
    assert!(
        back.ports.get(&(bad_port as u16)).is_some_and(|&n| n > 0),
        "the fixed instance gets traffic again: {:?}",
        back.ports
    );
}
