//! `gantry host drain` under load: the drained host's instances move to
//! the other hosts without the group ever going below its size, and the
//! command waits until the host holds none (or says, at its timeout, what
//! is left and why).

use std::time::{Duration, Instant};

use crate::deploy_support::{Load, assert_clean};
use crate::fleet_deploys::{serving, serving_v1};
use crate::fleet_support::TestHosts;
use crate::harness::wait_output;

#[test]
fn a_drained_host_serves_until_its_replacements_elsewhere_are_healthy() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let (server, port) = serving_v1(&hosts, 2);

    let load = Load::start(port, 4, 2);
    // `host drain` waits until the host holds no instance, while the
    // instance moves is watched: never fewer than the group's size
    // healthy, so host-3's instance left only after its replacement.
    let drain_args = ["host", "drain", "host-3"];
    let drain = server.cli_spawn(&drain_args);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut fewest = usize::MAX;
    let moved = loop {
        let (_, healthy) = serving(&server);
        fewest = fewest.min(healthy.len());
        if healthy.len() == 3 && !healthy.iter().any(|h| h == "host-3") {
            break healthy;
        }
        assert!(
            Instant::now() < deadline,
            "host-3 drained: on {healthy:?}\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(500));
    let tally = load.finish();
    assert_clean(&tally, "draining host-3");
    assert!(
        fewest >= 3,
        "only {fewest} healthy instances while host-3 drained"
    );
    // The drain returned once host-3 held nothing, and said what was left
    // on the way.
    let drained = wait_output(drain, &drain_args, Duration::from_secs(60)).ok();
    assert!(
        drained
            .stdout
            .contains("host host-3: 1 instance(s) left: shop-web-v000-i")
            && drained.stdout.contains("host host-3 holds no instance"),
        "{drained:?}"
    );
    let on_host_3 = server.get("/api/v1/hosts/host-3");
    assert_eq!(
        on_host_3["agent"]["instances"].as_array().map(Vec::len),
        Some(0),
        "{on_host_3:#}"
    );
    // A drain that cannot finish (host-1 and host-2 are all there is, and
    // maxPerHost 2 leaves no room for host-1's instances) ends at its
    // timeout with a message that says why.
    let stuck = server.cli(&["host", "drain", "host-1", "--timeout", "2s"]);
    assert!(!stuck.status.success(), "{stuck:?}");
    assert!(
        stuck.stderr.contains("host host-1: drained, but after 2s")
            && stuck
                .stderr
                .contains("no healthy replacement elsewhere yet"),
        "{stuck:?}"
    );
    server.cli(&["host", "undrain", "host-1"]).ok();
    for host in ["host-1", "host-2"] {
        let on = moved.iter().filter(|h| *h == host).count();
        assert!((1..=2).contains(&on), "maxPerHost 2: {moved:?}");
    }
    let shown = server.cli(&["host", "show", "host-3"]).ok();
    assert!(shown.stdout.contains("drained"), "{shown:?}");
}
