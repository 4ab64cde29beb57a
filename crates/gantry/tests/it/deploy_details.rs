//! The load balancer's details (draining, WebSocket, X-Forwarded-*,
//! metrics), bad input, preconditions, and a deploy resumed after the
//! server was killed in the middle of it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::deploy_support::{Load, assert_clean, deploy, free_port, get, shop_yaml, testapp};
use crate::harness::{Backend, Server, stage};

fn shop(server: &Server, extra: &str) -> u16 {
    let port = free_port();
    server.apply(&shop_yaml(port, extra));
    let first = deploy(server, "redblack", &["version=v1"]);
    assert_eq!(first["status"], "succeeded", "{first:#}");
    port
}

#[test]
fn destroyed_group_drains_requests_in_flight() {
    let server = Server::start(Backend::Sqlite);
    let port = shop(&server, "");
    let slow: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || get(port, "/slow?ms=2500")))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let second = deploy(&server, "highlander", &["version=v2"]);
    assert_eq!(second["status"], "succeeded", "{second:#}");
    for request in slow {
        let (status, body) = request.join().expect("slow request");
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with("v1 ") && body.contains("slow"), "{body}");
    }
    assert!(get(port, "/").1.starts_with("v2 "));
}

#[test]
fn an_instance_slower_than_the_response_timeout_gets_a_504() {
    let server = Server::start(Backend::Sqlite);
    let port = free_port();
    let yaml = shop_yaml(port, "").replace(
        "    cluster: shop-web\n",
        "    cluster: shop-web\n    responseTimeout: 1s\n",
    );
    server.apply(&yaml);
    let first = deploy(&server, "redblack", &["version=v1"]);
    assert_eq!(first["status"], "succeeded", "{first:#}");
    let started = std::time::Instant::now();
    let (status, body) = get(port, "/slow?ms=4000");
    let waited = started.elapsed();
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("sent no response header within 1s"), "{body}");
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(3),
        "answered after {waited:?}"
    );
    // The instance is not taken out for being slow once.
    let (status, body) = get(port, "/");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn forwards_headers_websockets_and_counts_per_group() {
    let server = Server::start(Backend::Sqlite);
    let port = shop(&server, "");
    let (status, body) = get(port, "/headers");
    assert_eq!(status, 200);
    for header in [
        "x-forwarded-for: 127.0.0.1",
        "x-forwarded-proto: http",
        "x-forwarded-host: shop.test",
    ] {
        assert!(body.contains(header), "{header} missing in {body:?}");
    }

    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .expect("write");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    assert!(line.starts_with("HTTP/1.1 101"), "{line}");
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header");
        if line.trim().is_empty() {
            break;
        }
    }
    stream
        .write_all(b"hello through the tunnel")
        .expect("write");
    let mut echo = [0u8; 24];
    reader.read_exact(&mut echo).expect("echo");
    assert_eq!(&echo, b"hello through the tunnel");

    let load = Load::start(port, 4, 0);
    std::thread::sleep(Duration::from_millis(1500));
    assert_clean(&load.finish(), "metrics load");
    let (status, metrics) = server.api_raw(Some(&server.token), "GET", "/metrics", None);
    assert_eq!(status, 200);
    let metrics = metrics.as_str().expect("metrics are text").to_owned();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("gantry_lb_requests_total{server_group=\"shop-web-v000\""))
        .unwrap_or_else(|| panic!("no per-group counter in:\n{metrics}"));
    let count: f64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("value");
    assert!(count > 50.0, "{line}");
    assert!(metrics.contains("gantry_lb_latency_ms{server_group=\"shop-web-v000\",cluster=\"shop-web\",quantile=\"0.99\"}"));
    let out = server.cli(&["lb", "list"]).ok();
    assert!(
        out.stdout.contains("shop") && out.stdout.contains("yes"),
        "{}",
        out.stdout
    );
    let out = server.cli(&["app", "list"]).ok();
    assert!(out.stdout.contains("shop-web"), "{}", out.stdout);
    let out = server.cli(&["cluster", "show", "shop-web"]).ok();
    assert!(
        out.stdout.contains("shop-web-v000") && out.stdout.contains("enabled"),
        "{}",
        out.stdout
    );
}

#[test]
fn bad_input_is_reported_and_disturbs_nothing() {
    let server = Server::start(Backend::Sqlite);
    let port = shop(&server, "");

    // A port another program holds.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("addr").port();
    let path = server.write_file(
        "busy.yaml",
        &format!("loadBalancers:\n  - {{name: busy, port: {taken_port}, cluster: other-web}}\n"),
    );
    server
        .cli(&["apply", "-f", path.to_str().expect("path")])
        .fails_with(&format!(
            "load balancer \"busy\": port {taken_port} is already in use"
        ));

    // Invalid files: every problem at once, with positions.
    let path = server.write_file(
        "invalid.yaml",
        "pipelines:\n  - name: p\n    stages:\n      - id: d\n        type: deploy\n        application: shop\n        command: x\n        strategy: bluegreen\n        size: -1\n      - id: r\n        type: resizeServerGroup\n        cluster: shop-web\n        size: -2\n",
    );
    let out = server
        .cli(&["validate", path.to_str().expect("path")])
        .fails_with("\"strategy\" must be one of");
    assert!(out.stderr.contains("invalid.yaml:9:"), "{}", out.stderr);
    assert!(out.stderr.contains("invalid.yaml:13:"), "{}", out.stderr);

    let app = testapp();
    let pipelines = format!(
        r#"pipelines:
  - name: missing-artifact
    stages:
      - {{id: deploy, type: deploy, application: shop, stack: web, command: {app}, artifact: /nonexistent/app.tar}}
  - name: exits-at-once
    stages:
      - {{id: deploy, type: deploy, application: shop, stack: web, command: {app}, healthTimeout: 3s, env: {{EXIT_AT_ONCE: "1"}}}}
"#,
        app = app.display()
    );
    server.apply(&pipelines);
    let load = Load::start(port, 2, 1);
    let id = server.run("missing-artifact", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed");
    let error = stage(&execution, "deploy")["error"].to_string();
    assert!(
        error.contains("artifact /nonexistent/app.tar does not exist"),
        "{error}"
    );
    let id = server.run("exits-at-once", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed");
    let error = stage(&execution, "deploy")["error"].to_string();
    assert!(
        error.contains("did not become healthy") && error.contains("exited"),
        "{error}"
    );
    let tally = load.finish();
    assert_clean(&tally, "failed deploys beside a serving group");
    let groups = server.get("/api/v1/clusters/shop-web")["serverGroups"].clone();
    assert_eq!(groups.as_array().map(Vec::len), Some(1), "{groups:#}");
    server
        .cli(&["servergroup", "resize", "nope-v000", "--size", "1"])
        .fails_with("server group \"nope-v000\" does not exist");
}

#[test]
fn cluster_size_precondition_counts_server_groups() {
    let server = Server::start(Backend::Sqlite);
    shop(&server, "");
    server.apply(
        "pipelines:\n  - name: check\n    parameters: [{name: n, default: \"1\"}]\n    stages:\n      - id: c\n        type: checkPreconditions\n        preconditions:\n          - clusterSize: {cluster: shop-web, comparison: \"==\", expected: 1}\n",
    );
    let id = server.run("check", &[]);
    assert_eq!(server.wait_terminal(&id)["status"], "succeeded");
    deploy(&server, "none", &["version=v2"]);
    let id = server.run("check", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed");
    let error = stage(&execution, "c")["error"].to_string();
    assert!(
        error.contains("has 2 server groups, expected == 1"),
        "{error}"
    );
}

#[test]
fn deploy_resumes_after_the_server_is_killed_mid_rollout() {
    let mut server = Server::start(Backend::Sqlite);
    let port = shop(&server, "        delayBeforeDisable: 3s\n");
    let load = Load::start(port, 3, 1);
    let id = server.run("deploy-redblack", &["version=v2"]);
    // Wait until the new group takes traffic, then kill the server while
    // the old one waits to be disabled.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !get(port, "/").1.starts_with("v2 ") {
        assert!(std::time::Instant::now() < deadline, "v2 never served");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.kill9();
    std::thread::sleep(Duration::from_millis(500));
    server.restart();
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(
        stage(&execution, "deploy")["outputs"]["serverGroup"],
        "shop-web-v001"
    );
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();
    assert_clean(&tally, "deploy resumed after kill -9");
    let groups = server.get("/api/v1/clusters/shop-web")["serverGroups"].clone();
    let names: Vec<&str> = groups
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["shop-web-v000", "shop-web-v001"],
        "no second group was created"
    );
    assert_eq!(groups[0]["enabled"], false);
}

#[test]
fn deploy_files_are_validated_with_positions() {
    let server = Server::start(Backend::Sqlite);
    let path = server.write_file(
        "deploys.yaml",
        r#"applications:
  - name: my-shop
loadBalancers:
  - {name: a, port: 70000, cluster: x}
  - {name: b, port: 8080, path: api}
  - {name: c, port: 8081, cluster: x, responseTimeout: 5}
  - {name: d, port: 8082, cluster: x, responseTimeout: 0s}
pipelines:
  - name: p
    stages:
      - {id: a, type: deploy, application: shop, command: x, size: 0, rollbackOnFailure: false}
      - {id: b, type: deploy, application: shop, command: x, strategy: rolling, targetPercentages: [50, 20]}
      - {id: c, type: deploy, application: shop, image: x, strategy: canary, steps: [{setWeight: 150}, {pause: 1s, setWeight: 5}]}
      - {id: d, type: destroyServerGroup, cluster: shop, target: newer}
      - {id: e, type: checkPreconditions, preconditions: [{clusterSize: {cluster: shop, comparison: "=~", expected: 1}}]}
      - {id: f, type: deploy, application: shop, command: x, judgmentBetweenSteps: {instructions: look, options: [go, go], by: me}}
"#,
    );
    let out = server
        .cli(&["validate", path.to_str().expect("path")])
        .fails_with("deploys.yaml:2:11:");
    for expected in [
        "deploys.yaml:2:11: application name \"my-shop\" must be 1 to 50 letters or digits",
        "deploys.yaml:4:21: load balancer \"a\": port must be from 1 to 65535, not 70000",
        "deploys.yaml:5:5: load balancer \"b\" needs a \"cluster\" or \"rules\" to route to",
        "\"path\" must start with /, not \"api\"",
        "deploys.yaml:6:56: \"responseTimeout\" must be a duration like 30s, 5m or 1h30m, not the number 5; add a unit",
        "deploys.yaml:7:56: load balancer \"d\": \"responseTimeout\" must be longer than 0s",
        "\"size\" of a deploy must be at least 1",
        "\"rollbackOnFailure: false\" is not supported",
        "target percentages must increase, each from 1 to 100, not \"20\"",
        "the last target percentage must be 100",
        "\"setWeight\" must be from 0 to 100, not 150",
        "must have exactly one of setWeight, pause, analysis",
        "\"target\" must be one of newest, previous, oldest, not \"newer\"",
        "\"comparison\" must be one of ==, !=, <, <=, >, >=, not \"=~\"",
        "stage \"f\": \"judgmentBetweenSteps\" is for the rolling strategy",
        "duplicate option \"go\"",
        "unknown field \"by\" in judgment of stage \"f\"",
    ] {
        assert!(
            out.stderr.contains(expected),
            "missing {expected:?} in:\n{}",
            out.stderr
        );
    }

    // A provider name is the server's to check: its registry lists the names, with positions.
    let path = server.write_file(
        "providers.yaml",
        "pipelines:\n  - name: p\n    stages:\n      - {id: a, type: deploy, application: shop, command: x, provider: kubernetes}\n",
    );
    server.cli(&["validate", path.to_str().expect("path")]).ok();
    server
        .cli(&["apply", "-f", path.to_str().expect("path")])
        .fails_with(
            "providers.yaml:4:72: \"provider\" must be one of local, ssh, not \"kubernetes\"",
        );
}

#[test]
fn canary_paused_until_a_person_promotes_it() {
    let server = Server::start(Backend::Sqlite);
    let port = shop(&server, "");
    let app = testapp();
    server.apply(&format!(
        r#"pipelines:
  - name: canary-manual
    stages:
      - id: deploy
        type: deploy
        application: shop
        stack: web
        command: {app}
        size: 2
        env: {{VERSION: v2}}
        strategy: canary
        steps:
          - setWeight: 50
          - pause: untilPromoted
"#,
        app = app.display()
    ));
    let load = Load::start(port, 3, 1);
    let id = server.run("canary-manual", &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !server.logs(&id).iter().any(|l| {
        l["line"]
            .as_str()
            .unwrap_or_default()
            .contains("waits for a person")
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "the canary never paused"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen: Vec<String> = (0..20).map(|_| get(port, "/").1).collect();
    assert!(
        seen.iter().any(|b| b.starts_with("v1 ")) && seen.iter().any(|b| b.starts_with("v2 ")),
        "{seen:?}"
    );
    server.cli(&["skip", &id, "--stage", "deploy"]).ok();
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();
    assert_clean(&tally, "canary promoted by a person");
    assert!(get(port, "/").1.starts_with("v2 "));
}

#[test]
fn server_group_stages_change_the_cluster_without_dropping() {
    let server = Server::start(Backend::Sqlite);
    let port = shop(&server, "");
    let second = deploy(&server, "redblack", &["version=v2"]);
    assert_eq!(second["status"], "succeeded", "{second:#}");
    server.apply(
        r#"pipelines:
  - name: ops
    stages:
      - {id: scale, type: scaleDownCluster, cluster: shop-web, remainingFullSizeServerGroups: 1}
      - {id: grow, type: resizeServerGroup, cluster: shop-web, target: newest, scaleUp: 1, dependsOn: [scale]}
      - {id: on, type: enableServerGroup, cluster: shop-web, target: previous, dependsOn: [grow]}
      - {id: off, type: disableServerGroup, cluster: shop-web, serverGroup: shop-web-v000, dependsOn: [on]}
      - {id: gone, type: destroyServerGroup, cluster: shop-web, target: oldest, dependsOn: [off]}
"#,
    );
    let load = Load::start(port, 3, 1);
    let id = server.run("ops", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(stage(&execution, "grow")["outputs"]["size"], 3);
    assert_eq!(
        stage(&execution, "gone")["outputs"]["serverGroup"],
        "shop-web-v000"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_clean(&load.finish(), "server group stages");
    let groups = server.get("/api/v1/clusters/shop-web")["serverGroups"].clone();
    assert_eq!(groups.as_array().map(Vec::len), Some(1), "{groups:#}");
    assert_eq!(groups[0]["name"], "shop-web-v001");
    assert_eq!(groups[0]["size"], 3);
    let out = server.cli(&["servergroup", "show", "shop-web-v001"]).ok();
    assert!(out.stdout.matches("healthy").count() >= 3, "{}", out.stdout);
    let out = server.cli(&["servergroup", "list", "--all"]).ok();
    assert!(out.stdout.contains("destroyed"), "{}", out.stdout);
    // The JSON form lists what the table lists: destroyed groups only when asked.
    let names = |args: &[&str]| -> Vec<String> {
        let out = server.cli(args).ok();
        let listed: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
        listed["serverGroups"]
            .as_array()
            .expect("serverGroups")
            .iter()
            .map(|g| g["name"].as_str().expect("name").to_owned())
            .collect()
    };
    assert_eq!(names(&["servergroup", "list", "--json"]), ["shop-web-v001"]);
    let all = names(&["servergroup", "list", "--all", "--json"]);
    assert!(all.contains(&"shop-web-v000".to_owned()), "{all:?}");
}

#[test]
fn dataplane_stop_drains_then_stops_instances() {
    let server = Server::start(Backend::Sqlite);
    let port = shop(&server, "");
    let group = server.get("/api/v1/server-groups/shop-web-v000");
    let pids: Vec<i32> = group["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|i| i["pid"].as_i64().expect("pid") as i32)
        .collect();
    assert_eq!(pids.len(), 2, "{group:#}");
    let data_dir = server.data_dir();
    let data_dir = data_dir.to_str().expect("data dir");
    // A request in flight when the stop begins is answered.
    let slow = std::thread::spawn(move || get(port, "/slow?ms=1500"));
    std::thread::sleep(Duration::from_millis(300));
    let out = server
        .cli(&["--data-dir", data_dir, "dataplane", "stop"])
        .ok();
    assert!(out.stdout.contains("stopped"), "{}", out.stdout);
    let (status, body) = slow.join().expect("slow request");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("slow"), "{body}");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the load balancer still listens"
    );
    for pid in &pids {
        assert!(!crate::harness::alive(*pid), "instance {pid} still runs");
    }
    let again = server
        .cli(&["--data-dir", data_dir, "dataplane", "stop"])
        .ok();
    assert!(
        again.stdout.contains("no data plane is running"),
        "{}",
        again.stdout
    );

    // The server starts it again, with the same server groups, on next use.
    let group = server.get("/api/v1/server-groups/shop-web-v000");
    assert_eq!(group["enabled"], true, "{group:#}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while get_or_refused(port) != Some(200) {
        assert!(std::time::Instant::now() < deadline, "never served again");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET /` on the load balancer; `None` while nothing listens.
fn get_or_refused(port: u16) -> Option<u16> {
    TcpStream::connect(("127.0.0.1", port)).ok()?;
    Some(get(port, "/").0)
}

#[test]
fn dataplane_stop_without_a_data_dir_stops_the_data_plane_of_the_server_at_gantry_url() {
    let server = Server::start(Backend::Sqlite);
    let port = shop(&server, "");
    // No data directory named: the command asks the server at GANTRY_URL.
    let remote = |server: &Server| {
        server
            .cli_with(&["dataplane", "stop"], |command| {
                command.env_remove("GANTRY_DATA_DIR");
            })
            .ok()
    };
    let out = remote(&server);
    assert!(
        out.stdout.contains("data plane of the server at") && out.stdout.contains("stopped"),
        "{}",
        out.stdout
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the load balancer still listens"
    );
    let again = remote(&server);
    assert!(
        again
            .stdout
            .contains("no data plane is running for the server at"),
        "{}",
        again.stdout
    );
}
