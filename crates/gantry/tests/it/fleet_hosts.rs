//! Fleet hosts through `gantry.yaml`, the CLI and the API, against real
//! sshd test hosts: applied, listed, bootstrapped (twice, and after an
//! interrupted copy), refused when they present another host key, drained.

use std::path::Path;
use std::process::Command;

use crate::fleet_support::TestHosts;
use crate::harness::{BIN, Backend, Server};

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// `ssh-keygen -lf` of a public key line: "SHA256:…".
fn fingerprint(public_key: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("key.pub");
    std::fs::write(&file, public_key).expect("write key");
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(&file)
        .output()
        .expect("ssh-keygen");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("a fingerprint")
        .to_owned()
}

fn server_with_hosts(hosts: &TestHosts, yaml: &str) -> Server {
    let server = Server::start(Backend::Sqlite);
    hosts.store_key(&server, "fleet-key");
    let file = server.write_file("hosts.yaml", yaml);
    server
        .cli(&["apply", "-f", file.to_str().expect("utf-8 path")])
        .ok();
    server
}

#[test]
fn hosts_are_applied_listed_and_bootstrapped_once_even_when_run_twice() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let server = Server::start(Backend::Sqlite);
    hosts.store_key(&server, "fleet-key");
    let file = server.write_file("hosts.yaml", &hosts.yaml("fleet-key"));
    let applied = server
        .cli(&["apply", "-f", file.to_str().expect("utf-8")])
        .ok();
    for host in &hosts.hosts {
        assert!(
            applied
                .stdout
                .contains(&format!("host {}: created", host.name)),
            "{applied:?}"
        );
    }
    // Reachable over SSH, but no agent yet: shown unreachable, with why.
    let (status, before) = server.api("GET", "/api/v1/hosts/host-1", None);
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["reachable"], false, "{before}");
    assert!(
        before["error"]
            .as_str()
            .unwrap_or_default()
            .contains("host-1"),
        "{before}"
    );

    // An interrupted earlier copy left a partial file: it never counts.
    let host = &hosts.hosts[0];
    let bin_dir = host.home.join(".gantry/bin");
    std::fs::create_dir_all(&bin_dir).expect("mkdir");
    std::fs::write(bin_dir.join("gantry.partial"), b"half a binary").expect("write");
    Command::new("chown")
        .args(["-R", &format!("{0}:{0}", host.user)])
        .arg(host.home.join(".gantry"))
        .status()
        .expect("chown");

    let first = server.cli(&["host", "bootstrap", "host-1"]).ok();
    assert!(first.stdout.contains("installed (sha256"), "{first:?}");
    assert!(!first.stdout.contains("already"), "{first:?}");
    assert_eq!(sha256(&bin_dir.join("gantry")), sha256(Path::new(BIN)));
    assert!(!bin_dir.join("gantry.partial").exists());
    let second = server.cli(&["host", "bootstrap", "host-1"]).ok();
    assert!(second.stdout.contains("already installed"), "{second:?}");

    let (_, shown) = server.api("GET", "/api/v1/hosts/host-1", None);
    assert_eq!(shown["reachable"], true, "{shown}");
    assert_eq!(
        shown["agent"]["version"],
        env!("CARGO_PKG_VERSION"),
        "{shown}"
    );
    let rss = shown["agent"]["rssKib"].as_u64().unwrap_or_default();
    let private = shown["agent"]["privateKib"].as_u64().unwrap_or_default();
    assert!(rss > 0 && private > 0, "{shown}");
    // The agent's own memory stays within the goal of 10 MB.
    assert!(private < 10 * 1024, "agent memory: {shown}");
    // The agent runs as the host's user, in a session of its own.
    let pid = shown["agent"]["pid"].as_u64().expect("agent pid");
    let owner = Command::new("ps")
        .args(["-o", "user=", "-p", &pid.to_string()])
        .output()
        .expect("ps");
    assert_eq!(String::from_utf8_lossy(&owner.stdout).trim(), host.user);

    let list = server.cli(&["host", "list"]).ok();
    let line = |name: &str| {
        list.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(line("host-1").contains("ready"), "{list:?}");
    assert!(line("host-2").contains("unreachable"), "{list:?}");
}

#[test]
fn a_host_presenting_another_key_is_refused_naming_both_fingerprints() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let (victim, impostor_key) = (&hosts.hosts[1], &hosts.hosts[2].host_key);
    let yaml = format!("hosts:\n{}", victim.yaml_entry("fleet-key", impostor_key));
    let server = server_with_hosts(&hosts, &yaml);
    let refused = server
        .cli(&["host", "bootstrap", &victim.name])
        .fails_with(&format!("host {:?} presented host key", victim.name));
    assert!(
        refused.stderr.contains(&fingerprint(impostor_key)),
        "the pinned key's fingerprint: {refused:?}"
    );
    assert!(
        refused.stderr.contains(&fingerprint(&victim.host_key)),
        "the presented key's fingerprint: {refused:?}"
    );
    assert!(
        !victim.home.join(".gantry").exists(),
        "nothing is sent to a host that is not the pinned one"
    );
}

#[test]
fn a_missing_key_secret_and_an_unknown_host_are_named() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let yaml = format!(
        "hosts:\n{}",
        hosts.hosts[0].yaml_entry("no-such-secret", &hosts.hosts[0].host_key)
    );
    let server = server_with_hosts(&hosts, &yaml);
    server
        .cli(&["host", "bootstrap", "host-1"])
        .fails_with("host \"host-1\": the private key secret \"no-such-secret\"");
    server
        .cli(&["host", "show", "host-9"])
        .fails_with("unknown host \"host-9\"");
}

#[test]
fn a_drained_host_stays_drained_across_applies_until_undrained() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let yaml = hosts.yaml("fleet-key");
    let server = server_with_hosts(&hosts, &yaml);
    server.cli(&["host", "drain", "host-2"]).ok();
    let file = server.write_file("again.yaml", &yaml.replace("[web]", "[web, eu]"));
    server
        .cli(&["apply", "-f", file.to_str().expect("utf-8")])
        .ok();
    let (_, shown) = server.api("GET", "/api/v1/hosts/host-2", None);
    assert_eq!(shown["drained"], true, "{shown}");
    assert_eq!(shown["labels"], serde_json::json!(["web", "eu"]), "{shown}");
    server.cli(&["host", "undrain", "host-2"]).ok();
    let (_, shown) = server.api("GET", "/api/v1/hosts/host-2", None);
    assert_eq!(shown["drained"], false, "{shown}");
}

#[test]
fn a_wrong_private_key_is_refused_naming_the_host_and_nothing_is_installed() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let host = &hosts.hosts[0];
    let server = Server::start(Backend::Sqlite);
    // A key of the right shape that no host authorises.
    let stranger = server.work().join("stranger_ed25519");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .expect("run ssh-keygen");
    assert!(made.success());
    server
        .cli_with(&["secret", "set", "fleet-key"], |command| {
            command.stdin(std::fs::File::open(&stranger).expect("open the key"));
        })
        .ok();
    let file = server.write_file(
        "hosts.yaml",
        &format!("hosts:\n{}", host.yaml_entry("fleet-key", &host.host_key)),
    );
    server
        .cli(&["apply", "-f", file.to_str().expect("utf-8")])
        .ok();
    server
        .cli(&["host", "bootstrap", &host.name])
        .fails_with(&format!(
            "host {:?}: authentication refused for user {:?}",
            host.name, host.user
        ));
    assert!(
        !host.home.join(".gantry").exists(),
        "nothing reached the host"
    );
}

#[test]
fn a_bootstrap_cut_half_way_leaves_no_partial_agent_and_completes_when_run_again() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let host = &hosts.hosts[0];
    let server = server_with_hosts(&hosts, &hosts.yaml("fleet-key"));
    let partial = host.home.join(".gantry/bin/gantry.partial");
    let installed = host.home.join(".gantry/bin/gantry");
    let bootstrap = server.cli_spawn(&["host", "bootstrap", &host.name]);
    // Cut the copy once part of it has arrived: the host's end of the
    // session is killed, as a dropped connection or a reboot would.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::metadata(&partial).map_or(true, |m| m.len() == 0) {
        assert!(std::time::Instant::now() < deadline, "the copy never began");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = Command::new("pkill")
        .args(["-9", "-u", &host.user, "-x", "cat"])
        .status();
    let cut = bootstrap
        .wait_with_output()
        .expect("wait for the bootstrap");
    let stderr = String::from_utf8_lossy(&cut.stderr);
    assert!(!cut.status.success(), "the cut bootstrap failed: {stderr}");
    assert!(
        stderr.contains(&format!("{:?}", host.name)),
        "the error names the host: {stderr}"
    );
    assert!(!partial.exists(), "no partial copy is left on the host");
    assert!(
        !installed.exists(),
        "no agent is installed from a partial copy"
    );

    let again = server.cli(&["host", "bootstrap", &host.name]).ok();
    assert!(again.stdout.contains(&host.name), "{again:?}");
    assert_eq!(sha256(&installed), sha256(Path::new(BIN)));
    assert!(!partial.exists());
}
