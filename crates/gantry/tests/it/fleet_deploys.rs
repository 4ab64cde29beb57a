//! Deploys to fleet hosts (`provider: ssh`) under continuous load through
//! Gantry's load balancer: instances spread over three real sshd hosts,
//! each under its host's agent, every response checked.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::deploy_support::{Load, assert_clean, free_port, get, shop_cluster_yaml, testapp};
use crate::fleet_support::{TestHosts, under_load};
use crate::harness::{Backend, Server};

/// A server with the test hosts bootstrapped, load balancer `shop` on the
/// returned port in front of cluster `shop-web`, and pipelines
/// `deploy-redblack`, `deploy-rolling`, `deploy-batches` (rolling one
/// host at a time) and `deploy-stubborn` (highlander, instances that take
/// their 2 s grace to stop) to `provider: ssh` whose
/// artifact is a directory holding `gantry-testapp`.
pub(crate) fn fleet_shop(hosts: &TestHosts, max_per_host: u32) -> (Server, u16) {
    let server = Server::start(Backend::Sqlite);
    hosts.store_key(&server, "fleet-key");
    let release = server.work().join("release");
    std::fs::create_dir_all(&release).expect("mkdir release");
    std::fs::copy(testapp(), release.join("gantry-testapp")).expect("copy the test app");
    let port = free_port();
    let mut pipelines = String::new();
    let app = "./gantry-testapp";
    // Its instances ignore SIGTERM: each takes its grace to stop.
    let stubborn = "\"trap '' TERM; exec ./gantry-testapp\"";
    for (name, strategy, options, command) in [
        ("redblack", "redblack", "", app),
        (
            "rolling",
            "rolling",
            "        targetPercentages: [34, 67, 100]\n",
            app,
        ),
        ("batches", "rolling", "        maxUnavailable: 1\n", app),
        ("stubborn", "highlander", "", stubborn),
    ] {
        pipelines.push_str(&format!(
            r#"  - name: deploy-{name}
    parameters:
      - {{name: version, default: v1}}
    stages:
      - id: deploy
        type: deploy
        application: shop
        stack: web
        provider: ssh
        placement: {{labels: [web], maxPerHost: {max_per_host}}}
        artifact: {release}
        command: {command}
        size: 3
        strategy: {strategy}
        healthTimeout: 20s
        gracePeriod: 2s
        env:
          VERSION: "${{{{ parameters.version }}}}"
{options}"#,
            release = release.display()
        ));
    }
    let yaml = format!(
        "{}{}{pipelines}",
        hosts.yaml("fleet-key"),
        shop_cluster_yaml(port)
    );
    server.apply(&yaml);
    hosts.bootstrap_all(&server);
    (server, port)
}

/// [`fleet_shop`] with v1 deployed and healthy on the three hosts.
pub(crate) fn serving_v1(hosts: &TestHosts, max_per_host: u32) -> (Server, u16) {
    let (server, port) = fleet_shop(hosts, max_per_host);
    deploy(&server, "redblack", "v1");
    wait_serving(&server, "v1 on three hosts", |h| h.len() == 3);
    (server, port)
}

pub(crate) fn deploy(server: &Server, strategy: &str, version: &str) -> Value {
    let done = deploy_result(server, strategy, version);
    assert_eq!(
        done["status"],
        "succeeded",
        "{done:#}\n{}",
        server.log_tail()
    );
    done
}

/// The execution of pipeline `deploy-STRATEGY` with `version`, ended.
fn deploy_result(server: &Server, strategy: &str, version: &str) -> Value {
    let id = server.run(
        &format!("deploy-{strategy}"),
        &[&format!("version={version}")],
    );
    server.wait_terminal(&id)
}

/// The enabled group of `shop-web` and the host of each healthy instance.
pub(crate) fn serving(server: &Server) -> (String, Vec<String>) {
    let cluster = server.get("/api/v1/clusters/shop-web");
    let groups = cluster["serverGroups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(group) = groups.iter().rev().find(|g| g["enabled"] == true) else {
        return (String::new(), Vec::new());
    };
    let name = group["name"].as_str().unwrap_or_default().to_owned();
    let shown = server.get(&format!("/api/v1/server-groups/{name}"));
    let hosts = shown["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["healthy"] == true)
        .filter_map(|i| i["host"].as_str().map(str::to_owned))
        .collect();
    (name, hosts)
}

pub(crate) fn wait_serving(
    server: &Server,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, hosts) = serving(server);
        if done(&hosts) {
            return hosts;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: instances on {hosts:?}\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn sorted(mut hosts: Vec<String>) -> Vec<String> {
    hosts.sort();
    hosts
}

#[test]
fn redblack_and_rolling_deploys_across_three_hosts_drop_no_request() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let (server, port) = fleet_shop(&hosts, 1);
    deploy(&server, "redblack", "v1");
    let spread = wait_serving(&server, "v1 on three hosts", |h| h.len() == 3);
    assert_eq!(sorted(spread), ["host-1", "host-2", "host-3"]);
    assert!(get(port, "/").1.starts_with("v1 "));
    // The instances are the host users' processes.
    for host in &hosts.hosts {
        let ps = std::process::Command::new("pgrep")
            .args(["-u", &host.user, "-f", "gantry-testapp"])
            .output()
            .expect("pgrep");
        assert!(ps.status.success(), "no instance runs as {}", host.user);
    }

    let (_, tally) = under_load(port, || deploy(&server, "redblack", "v2"));
    assert_clean(&tally, "fleet red/black v1 → v2");
    assert_eq!(get(port, "/").1.split_whitespace().next(), Some("v2"));

    let (_, tally) = under_load(port, || deploy(&server, "rolling", "v3"));
    assert_clean(&tally, "fleet rolling v2 → v3");
    assert!(tally.versions.contains_key("v3"), "{:?}", tally.versions);
    assert_eq!(get(port, "/").1.split_whitespace().next(), Some("v3"));
    let (_, spread) = serving(&server);
    assert_eq!(sorted(spread), ["host-1", "host-2", "host-3"]);
}

#[test]
fn killing_every_process_of_a_host_brings_the_group_back_to_size() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let (server, port) = serving_v1(&hosts, 2);

    let load = Load::start(port, 4, 2);
    std::thread::sleep(Duration::from_millis(500));
    hosts.hosts[1].kill_everything();
    // Out of rotation, then back to three healthy instances.
    let back = wait_serving(&server, "back to size", |h| h.len() == 3);
    std::thread::sleep(Duration::from_millis(500));
    let tally = load.finish();
    eprintln!("after kill -9 of host-2: {back:?}, {tally:?}");
    // Only requests in flight on the killed host may fail: at most one per
    // load worker.
    assert!(
        tally.failed <= 6,
        "{} failed requests: {:#?}",
        tally.failed,
        tally.failures
    );
    assert!(tally.sent > 50);
}

#[test]
fn a_host_that_stops_answering_is_replaced_then_used_again_when_back() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let (server, port) = serving_v1(&hosts, 2);

    let load = Load::start(port, 4, 2);
    std::thread::sleep(Duration::from_millis(300));
    // The whole host goes: its sshd, then every process of its user.
    let lost = &hosts.hosts[1];
    lost.stop_sshd();
    lost.kill_everything();
    let moved = wait_serving(&server, "replaced on the other hosts", |h| {
        h.len() == 3 && !h.iter().any(|h| h == &lost.name)
    });
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();
    eprintln!("host-2 gone: {moved:?}, {tally:?}");
    assert!(
        tally.failed <= 6,
        "only requests in flight on the lost host may fail: {:#?}",
        tally.failures
    );
    let (_, shown) = server.api("GET", "/api/v1/hosts/host-2", None);
    assert_eq!(shown["reachable"], false, "{shown}");
    assert!(
        shown["error"]
            .as_str()
            .unwrap_or_default()
            .contains("host-2"),
        "{shown}"
    );

    hosts.restart_sshd();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, shown) = server.api("GET", "/api/v1/hosts/host-2", None);
        if shown["reachable"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "host-2 never came back: {shown}");
        std::thread::sleep(Duration::from_millis(300));
    }
    // Used again: a new version spreads over all three.
    deploy(&server, "redblack", "v2");
    let spread = wait_serving(&server, "v2 on three hosts", |h| h.len() == 3);
    assert!(spread.iter().any(|h| h == "host-2"), "{spread:?}");
}

#[test]
fn a_resize_adds_and_removes_instances_across_hosts_without_dropping() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let (server, port) = serving_v1(&hosts, 2);
    let (group, _) = serving(&server);
    let load = Load::start(port, 4, 2);
    server
        .cli(&["servergroup", "resize", &group, "--size", "6"])
        .ok();
    let grown = wait_serving(&server, "grown to 6", |h| h.len() == 6);
    for host in ["host-1", "host-2", "host-3"] {
        let on = grown.iter().filter(|h| *h == host).count();
        assert_eq!(on, 2, "evenly, at most 2 per host: {grown:?}");
    }
    server
        .cli(&["servergroup", "resize", &group, "--size", "2"])
        .ok();
    let shrunk = wait_serving(&server, "shrunk to 2", |h| h.len() == 2);
    assert_ne!(shrunk[0], shrunk[1], "two hosts keep one each: {shrunk:?}");
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();
    assert_clean(&tally, "resizing a fleet group");
    // The stopped instances are gone from the hosts, not only from rotation.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let running: usize = hosts
            .hosts
            .iter()
            .map(|h| {
                let out = std::process::Command::new("pgrep")
                    .args(["-u", &h.user, "-x", "gantry-testapp"])
                    .output()
                    .expect("pgrep");
                String::from_utf8_lossy(&out.stdout).lines().count()
            })
            .sum();
        if running == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{running} instances still run");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_rolling_deploy_one_host_at_a_time_drops_no_request() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let (server, port) = serving_v1(&hosts, 1);

    let (done, tally) = under_load(port, || deploy(&server, "batches", "v2"));
    assert_clean(&tally, "fleet rolling one host at a time v1 → v2");
    // Three batches of one instance (one host) each.
    let id = done["id"].as_str().expect("the execution's id");
    let logs = serde_json::to_string(&server.logs(id)).expect("logs as text");
    // Each batch, once healthy, takes as much old capacity down.
    let mut at = 0;
    for step in [
        "down to 2 instances",
        "at 34% (1 instances)",
        "down to 1 instances",
        "at 67% (2 instances)",
        "down to 0 instances",
        "at 100% (3 instances)",
    ] {
        let found = logs[at..].find(step);
        assert!(
            found.is_some(),
            "no {step:?} after the previous step in {logs}"
        );
        at += found.unwrap_or_default();
    }
    assert_eq!(get(port, "/").1.split_whitespace().next(), Some("v2"));
    let (_, spread) = serving(&server);
    assert_eq!(sorted(spread), ["host-1", "host-2", "host-3"]);
}

/// One instance per host: a host that cannot take the new version fails
/// the deploy, which names it and why, while the old version serves.
fn assert_failed_naming(done: &Value, host: &str, cause: &str, port: u16) {
    assert_eq!(done["status"], "failed", "{done:#}");
    let text = done.to_string();
    assert!(
        text.contains(host) && text.contains(cause),
        "the failure names {host} and {cause:?}: {done:#}"
    );
    assert_eq!(get(port, "/").1.split_whitespace().next(), Some("v1"));
}

#[test]
fn a_host_unreachable_during_a_deploy_fails_it_naming_the_host_while_the_old_version_serves() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let (server, port) = serving_v1(&hosts, 1);
    // Its sshd gone and the server's connection cut: it answers no SSH,
    // while its agent and instance (not the server's to reach any more)
    // keep running.
    let host = &hosts.hosts[2];
    host.stop_sshd();
    let _ = std::process::Command::new("pkill")
        .args(["-9", "-u", &host.user, "-x", "sshd"])
        .status();

    let (done, tally) = under_load(port, || deploy_result(&server, "redblack", "v2"));
    assert_failed_naming(&done, "host-3", "unreachable", port);
    assert_clean(&tally, "a deploy failing on an unreachable host");
    hosts.restart_sshd();
}

/// Unmounts the small filesystem standing in for a full disk.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_on_a_host_fails_the_deploy_naming_it_and_leaves_no_partial_release() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let (server, port) = serving_v1(&hosts, 1);
    // Host 3's releases move onto a filesystem with room for what is there
    // and 256 KiB more: the next release (the test app, megabytes) cannot
    // be unpacked.
    let host = &hosts.hosts[2];
    let releases = host.home.join(".gantry/releases");
    let used_kib: u64 = {
        let out = std::process::Command::new("du")
            .args(["-sk"])
            .arg(&releases)
            .output()
            .expect("du");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .expect("du's figure")
    };
    let small = host.home.join(".gantry/small");
    std::fs::create_dir_all(&small).expect("mkdir");
    let run = |args: &[&str]| {
        let status = std::process::Command::new(args[0])
            .args(&args[1..])
            .status()
            .expect("run");
        assert!(status.success(), "{args:?}");
    };
    let size = format!("size={}k,mode=0755", used_kib + 256);
    run(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        &size,
        "tmpfs",
        small.to_str().expect("utf-8"),
    ]);
    let _unmount = Mounted(releases.clone());
    run(&[
        "cp",
        "-a",
        &format!("{}/.", releases.display()),
        small.to_str().expect("utf-8"),
    ]);
    run(&[
        "chown",
        &format!("{0}:{0}", host.user),
        small.to_str().expect("utf-8"),
    ]);
    run(&[
        "mount",
        "--move",
        small.to_str().expect("utf-8"),
        releases.to_str().expect("utf-8"),
    ]);

    let (done, tally) = under_load(port, || deploy_result(&server, "redblack", "v2"));
    assert_failed_naming(&done, "host-3", "KiB free on the host's disk", port);
    assert_clean(&tally, "a deploy failing on a full disk");
    let left: Vec<String> = std::fs::read_dir(&releases)
        .expect("read the releases")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert!(
        !left.iter().any(|name| name.ends_with(".partial")),
        "a partial release is left: {left:?}"
    );
}

/// Two clusters deploying at the same moment onto the same three hosts:
/// each host's agent hands out ports one start at a time, so both deploys
/// succeed and no two instances of a host share a port.
#[test]
fn two_deploys_racing_for_the_same_hosts_get_distinct_ports() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let server = Server::start(Backend::Sqlite);
    hosts.store_key(&server, "fleet-key");
    let release = server.work().join("release");
    std::fs::create_dir_all(&release).expect("mkdir release");
    std::fs::copy(testapp(), release.join("gantry-testapp")).expect("copy the test app");
    let health =
        "{path: /health, interval: 200ms, timeout: 1s, healthyThreshold: 2, unhealthyThreshold: 2}";
    let stacks = ["web", "api"];
    let ports = [free_port(), free_port()];
    let mut yaml = format!(
        "{}applications:\n  - name: shop\nloadBalancers:\n",
        hosts.yaml("fleet-key")
    );
    for (stack, port) in stacks.iter().zip(ports) {
        yaml.push_str(&format!(
            "  - name: shop-{stack}\n    port: {port}\n    cluster: shop-{stack}\n    healthCheck: {health}\n"
        ));
    }
    yaml.push_str("pipelines:\n");
    for stack in stacks {
        yaml.push_str(&format!(
            r#"  - name: deploy-{stack}
    stages:
      - id: deploy
        type: deploy
        application: shop
        stack: {stack}
        provider: ssh
        placement: {{labels: [web], maxPerHost: 2}}
        artifact: {release}
        command: ./gantry-testapp
        size: 6
        strategy: redblack
        healthTimeout: 30s
        gracePeriod: 1s
        env: {{VERSION: {stack}}}
"#,
            release = release.display()
        ));
    }
    server.apply(&yaml);
    hosts.bootstrap_all(&server);
    let ids: Vec<String> = stacks
        .iter()
        .map(|stack| server.run(&format!("deploy-{stack}"), &[]))
        .collect();
    for id in &ids {
        let done = server.wait_terminal(id);
        assert_eq!(
            done["status"],
            "succeeded",
            "{done:#}\n{}",
            server.log_tail()
        );
    }
    let mut addresses = Vec::new();
    for stack in stacks {
        let cluster = server.get(&format!("/api/v1/clusters/shop-{stack}"));
        let group = cluster["serverGroups"][0]["name"]
            .as_str()
            .expect("a group")
            .to_owned();
        let shown = server.get(&format!("/api/v1/server-groups/{group}"));
        for instance in shown["instances"].as_array().expect("instances") {
            addresses.push(instance["address"].as_str().expect("an address").to_owned());
        }
    }
    let mut distinct = addresses.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(addresses.len(), 12, "{addresses:?}");
    assert_eq!(
        distinct.len(),
        12,
        "two instances share a host's port: {addresses:?}"
    );
    for (stack, port) in stacks.iter().zip(ports) {
        assert_eq!(get(port, "/").1.split_whitespace().next(), Some(*stack));
    }
}
