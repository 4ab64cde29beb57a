//! Fleet faults of the control plane and of people: a server killed with
//! `kill -9` in the middle of a fleet deploy, while it starts the new
//! group's instances or while it stops the old group's, comes back with
//! every instance of every host accounted for (the agents' lists and the
//! server's view agree) and the deploy succeeded.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::fleet_deploys::{deploy, fleet_shop, serving, serving_v1, wait_serving};
use crate::fleet_support::{TestHost, TestHosts};
use crate::harness::Server;

/// The groups the host's agent has recorded instances of (its state file).
fn recorded_groups(host: &TestHost) -> BTreeSet<String> {
    let Ok(text) = std::fs::read_to_string(host.home.join(".gantry/agent-state.json")) else {
        return BTreeSet::new();
    };
    let state: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    state["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["spec"]["group"].as_str().map(str::to_owned))
        .collect()
}

/// `(host, instance)` of every instance the hosts' agents run.
fn on_hosts(server: &Server, hosts: &TestHosts) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for host in &hosts.hosts {
        let shown = server.get(&format!("/api/v1/hosts/{}", host.name));
        assert_eq!(shown["reachable"], true, "{shown:#}");
        for instance in shown["agent"]["instances"].as_array().into_iter().flatten() {
            let id = instance["id"].as_str().unwrap_or_default().to_owned();
            found.insert((host.name.clone(), id));
        }
    }
    found
}

/// `(host, instance)` of every instance of cluster `shop-web`'s groups as
/// the server shows them.
fn in_server_view(server: &Server) -> BTreeSet<(String, String)> {
    let cluster = server.get("/api/v1/clusters/shop-web");
    let mut found = BTreeSet::new();
    for group in cluster["serverGroups"].as_array().into_iter().flatten() {
        let name = group["name"].as_str().unwrap_or_default();
        let shown = server.get(&format!("/api/v1/server-groups/{name}"));
        for instance in shown["instances"].as_array().into_iter().flatten() {
            let host = instance["host"].as_str().unwrap_or_default().to_owned();
            let id = instance["id"].as_str().unwrap_or_default().to_owned();
            found.insert((host, id));
        }
    }
    found
}

#[test]
fn a_server_killed_mid_deploy_restarts_with_every_host_instance_accounted_for() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let (mut server, _port) = serving_v1(&hosts, 1);
    let (old, _) = serving(&server);

    let id = server.run("deploy-redblack", &["version=v2"]);
    // Killed as soon as one host's agent has an instance of the new group:
    // the server has asked one agent and not yet recorded the answer in
    // the data plane, or is still asking the others.
    kill_and_restart_when(&mut server, "a new instance started", || {
        hosts
            .hosts
            .iter()
            .any(|h| recorded_groups(h).iter().any(|g| *g != old))
    });
    ends_accounted_for(&server, &hosts, &id);
}

#[test]
fn a_server_killed_while_it_stops_the_old_group_restarts_with_every_host_instance_accounted_for() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let (mut server, _port) = fleet_shop(&hosts, 1);
    deploy(&server, "stubborn", "v1");
    wait_serving(&server, "v1 on three hosts", |h| h.len() == 3);
    let (old, _) = serving(&server);

    // Highlander destroys the old group once the new one serves; each
    // old instance takes its 2 s grace to stop, one host after another.
    // Killed while the first host stops its instance: two more to stop.
    let id = server.run("deploy-stubborn", &["version=v2"]);
    kill_and_restart_when(&mut server, "the old group stopping", || {
        let still = hosts
            .hosts
            .iter()
            .filter(|h| recorded_groups(h).contains(&old))
            .count();
        assert!(still > 0, "every old instance stopped before the kill");
        still < 3
    });
    ends_accounted_for(&server, &hosts, &id);
}

/// `kill -9` of the server the moment `ready` holds (polled every 5 ms),
/// then the server started again.
fn kill_and_restart_when(server: &mut Server, what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "never saw {what}\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill9();
    server.restart();
}

/// Execution `id` succeeds, every instance a host runs is one the server
/// shows and the other way round, with the journal settled, and v2 serves
/// on the three hosts.
fn ends_accounted_for(server: &Server, hosts: &TestHosts, id: &str) {
    let done = server.wait_terminal(id);
    assert_eq!(
        done["status"],
        "succeeded",
        "{done:#}\n{}",
        server.log_tail()
    );
    // Every instance a host runs is one the server shows, and the other
    // way round, once the journal is settled.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (hosts_run, server_shows) = (on_hosts(server, hosts), in_server_view(server));
        let journal = std::fs::read_to_string(server.data_dir().join("fleet/journal.json"))
            .unwrap_or_default();
        let settled = !journal.contains("\"id\"");
        if hosts_run == server_shows && settled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hosts run {hosts_run:?}, the server shows {server_shows:?}, journal {journal}\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let served = wait_serving(server, "v2 on three hosts", |h| h.len() == 3);
    assert_eq!(served.len(), 3);
}
