//! Fleet groups of images (`provider: ssh` with `image:`): each host's own
//! podman pulls the image from the loopback registry that asks for
//! credentials, with the account of the server's secret store, and runs
//! the instances as containers on the host's network behind Gantry's load
//! balancer. The server never pulls the image on its own machine, and the
//! password never reaches a host's disk or a command line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use crate::deploy_containers::build_testapp_image;
use crate::deploy_support::{assert_clean, free_port, get, shop_cluster_yaml};
use crate::fleet_deploys::{serving, wait_serving};
use crate::fleet_support::{TestHosts, under_load};
use crate::harness::{Backend, Server, stage};
use crate::steps_podman::{AUTH_PASSWORD, AUTH_USER, auth_registry, podman, set_secret};

/// A server with the test hosts bootstrapped, load balancer `shop` on the
/// returned port, the registry account in secret `REGISTRY_LOGIN`, and
/// pipeline `deploy-image` (red/black of the parameter `image` to the three
/// hosts, one instance each).
fn image_shop(hosts: &TestHosts) -> (Server, u16) {
    let server = Server::start(Backend::Sqlite);
    hosts.store_key(&server, "fleet-key");
    set_secret(
        &server,
        "REGISTRY_LOGIN",
        &format!("{AUTH_USER}:{AUTH_PASSWORD}"),
    );
    let port = free_port();
    let pipeline = r#"  - name: deploy-image
    parameters:
      - {name: image}
    stages:
      - id: deploy
        type: deploy
        application: shop
        stack: web
        provider: ssh
        placement: {labels: [web], maxPerHost: 1}
        image: "${{ parameters.image }}"
        credentials: REGISTRY_LOGIN
        size: 3
        strategy: redblack
        healthTimeout: 60s
        gracePeriod: 2s
"#;
    server.apply(&format!(
        "{}{}{pipeline}",
        hosts.yaml("fleet-key"),
        shop_cluster_yaml(port)
    ));
    hosts.bootstrap_all(&server);
    (server, port)
}

/// Builds the test app's image answering `version`, pushes it to the
/// registry that asks for credentials and removes it from this machine:
/// only the hosts may pull it.
fn pushed_image(server: &Server, version: &str) -> String {
    let image = format!(
        "{}/gantry-fleet-shop-{}:{version}",
        auth_registry(),
        std::process::id()
    );
    build_testapp_image(&server.work().join(version), &image, version);
    let out = Command::new("podman")
        .args(["push", "--quiet", "--tls-verify=false", "--creds"])
        .arg(format!("{AUTH_USER}:{AUTH_PASSWORD}"))
        .arg(&image)
        .output()
        .expect("podman push");
    assert!(out.status.success(), "podman push {image}: {out:?}");
    let out = Command::new("podman")
        .args(["rmi", "--force", &image])
        .output()
        .expect("podman rmi");
    assert!(out.status.success(), "podman rmi {image}: {out:?}");
    image
}

fn image_on_this_machine(image: &str) -> bool {
    Command::new("podman")
        .args(["image", "exists", image])
        .status()
        .expect("podman image exists")
        .success()
}

fn deploy_image(server: &Server, image: &str) -> Value {
    let id = server.run("deploy-image", &[&format!("image={image}")]);
    server.wait_terminal(&id)
}

/// Deploys `image` and waits until an instance of it serves on each of the
/// three hosts.
fn deploy_serving_on_three_hosts(server: &Server, image: &str) {
    let done = deploy_image(server, image);
    assert_eq!(
        done["status"],
        "succeeded",
        "{done:#}\n{}",
        server.log_tail()
    );
    wait_serving(server, &format!("{image} on three hosts"), |h| h.len() == 3);
}

/// The instances of the enabled group, as the API shows them.
fn instances(server: &Server) -> Vec<Value> {
    let (name, _) = serving(server);
    server.get(&format!("/api/v1/server-groups/{name}"))["instances"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The web UI's live part of cluster `shop-web`, as a signed-in person
/// sees it.
fn cluster_page(server: &Server) -> String {
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let signed_in = client
        .post(format!("{}/login", server.url))
        .header("origin", &server.url)
        .form(&[("token", server.token.as_str()), ("next", "/")])
        .send()
        .expect("POST /login");
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("a cookie")
        .to_owned();
    client
        .get(format!("{}/clusters/shop-web/live", server.url))
        .header("cookie", cookie)
        .send()
        .expect("GET the cluster's live part")
        .text()
        .expect("the page")
}

/// Watches every process's command line until told to stop; true if one
/// held `needle`.
fn watch_command_lines(
    needles: Vec<String>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<bool> {
    std::thread::spawn(move || {
        let mut seen = false;
        while !stop.load(Ordering::Relaxed) {
            let ps = Command::new("ps")
                .args(["-eo", "args"])
                .output()
                .expect("ps");
            let text = String::from_utf8_lossy(&ps.stdout);
            if let Some(line) = text
                .lines()
                .find(|l| needles.iter().any(|n| l.contains(n.as_str())))
            {
                eprintln!("a command line holds the registry password: {line}");
                seen = true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        seen
    })
}

/// Every file under `dir` (not following links) holding one of `needles`,
/// as `grep` finds them.
fn files_holding(dir: &Path, needles: &[&str], found: &mut Vec<PathBuf>) {
    if !dir.exists() {
        return;
    }
    let mut grep = Command::new("grep");
    grep.args(["-r", "-l", "-F"]);
    for needle in needles {
        grep.arg("-e").arg(needle);
    }
    let out = grep.arg(dir).output().expect("grep");
    found.extend(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(PathBuf::from),
    );
}

/// A file of a host's root moved aside until dropped (also when the test
/// fails), so the other tests find the host as it was.
struct Hidden {
    path: PathBuf,
}

impl Hidden {
    fn hide(path: PathBuf) -> Hidden {
        std::fs::rename(&path, path.with_extension("hidden")).expect("hide a file of the host");
        Hidden { path }
    }
}

impl Drop for Hidden {
    fn drop(&mut self) {
        let _ = std::fs::rename(self.path.with_extension("hidden"), &self.path);
    }
}

#[test]
fn an_image_deploy_pulls_on_each_host_with_credentials_and_redblacks_without_a_failed_request() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    podman();
    let (server, port) = image_shop(&hosts);
    let v1 = pushed_image(&server, "v1");
    let v2 = pushed_image(&server, "v2");

    deploy_serving_on_three_hosts(&server, &v1);
    assert!(get(port, "/").1.starts_with("v1 "));

    // The password (and the base64 of the account, as auth files hold it)
    // on no command line while v2 is pulled and started.
    let account = format!("{AUTH_USER}:{AUTH_PASSWORD}");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&account);
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_command_lines(
        vec![AUTH_PASSWORD.to_owned(), encoded.clone()],
        stop.clone(),
    );
    let (done, tally) = under_load(port, || deploy_image(&server, &v2));
    stop.store(true, Ordering::Relaxed);
    assert_eq!(
        done["status"],
        "succeeded",
        "{done:#}\n{}",
        server.log_tail()
    );
    assert_clean(&tally, "fleet image red/black v1 → v2");
    assert!(
        !watcher.join().expect("the ps watcher"),
        "a command line held the password"
    );
    let spread = wait_serving(&server, "v2 on three hosts", |h| h.len() == 3);
    assert_eq!(spread.len(), 3);
    assert_eq!(get(port, "/").1.split_whitespace().next(), Some("v2"));

    // Each instance's view names the image it runs and the digest its
    // host pulled.
    let shown = instances(&server);
    assert_eq!(shown.len(), 3, "{shown:#?}");
    for instance in &shown {
        assert_eq!(instance["image"], v2.as_str(), "{instance:#}");
        assert!(
            instance["digest"]
                .as_str()
                .is_some_and(|d| d.starts_with("sha256:")),
            "{instance:#}"
        );
    }
    let (name, _) = serving(&server);
    let shown = server.cli(&["servergroup", "show", &name]).ok();
    assert_eq!(
        shown.stdout.matches(&format!("{v2}@sha256:")).count(),
        3,
        "{}",
        shown.stdout
    );
    let page = cluster_page(&server);
    assert_eq!(page.matches(&format!("{v2}@sha256:")).count(), 3, "{page}");
    // The hosts pulled it; the server's machine did not.
    assert!(!image_on_this_machine(&v2), "the server pulled {v2} itself");

    // Nowhere on a host's disk (what each host wrote: its own layer and
    // its container storage) nor in its shared memory or this machine's.
    let needles = [AUTH_PASSWORD, encoded.as_str()];
    let mut found = Vec::new();
    for host in &hosts.hosts {
        let own = host.root.parent().expect("the host's directory");
        files_holding(&own.join("upper"), &needles, &mut found);
        files_holding(&own.join("containers"), &needles, &mut found);
    }
    for host in &hosts.hosts {
        files_holding(&host.root.join("dev/shm"), &needles, &mut found);
    }
    files_holding(Path::new("/dev/shm"), &needles, &mut found);
    assert!(found.is_empty(), "the registry password is in {found:#?}");
}

#[test]
fn a_wrong_registry_password_fails_the_deploy_naming_the_host_while_v1_keeps_serving() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    podman();
    let (server, port) = image_shop(&hosts);
    let v1 = pushed_image(&server, "v1");
    let v2 = pushed_image(&server, "v2");
    deploy_serving_on_three_hosts(&server, &v1);

    set_secret(
        &server,
        "REGISTRY_LOGIN",
        &format!("{AUTH_USER}:not-the-password"),
    );
    let (failed, tally) = under_load(port, || deploy_image(&server, &v2));
    assert_eq!(failed["status"], "failed", "{failed:#}");
    let error = stage(&failed, "deploy")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let registry = auth_registry();
    assert!(
        error.contains(&format!(
            ": the registry {registry} refused the pull of {v2}: unauthorized"
        )),
        "{error}"
    );
    assert!(
        hosts
            .hosts
            .iter()
            .any(|h| error.contains(&format!("{}: ", h.name))),
        "{error}"
    );
    assert_clean(&tally, "a refused pull");
    assert_eq!(get(port, "/").1.split_whitespace().next(), Some("v1"));
    let shown = instances(&server);
    assert!(
        shown.iter().all(|i| i["image"] == v1.as_str()),
        "{shown:#?}"
    );
    // The group that could not be placed is gone: no host keeps retrying
    // the pull with the refused account.
    let cluster = server.get("/api/v1/clusters/shop-web");
    let live: Vec<&Value> = cluster["serverGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["destroyedAt"].is_null())
        .collect();
    assert_eq!(live.len(), 1, "{cluster:#}");
}

#[test]
fn a_host_without_a_container_engine_fails_the_deploy_naming_it() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    podman();
    let (server, _port) = image_shop(&hosts);
    let v1 = pushed_image(&server, "v1");
    let host = &hosts.hosts[2];
    let hidden = Hidden::hide(host.root.join("usr/bin/podman"));
    let failed = deploy_image(&server, &v1);
    drop(hidden);
    assert_eq!(failed["status"], "failed", "{failed:#}");
    let error = stage(&failed, "deploy")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains(&format!("{}: no container engine on the host", host.name)),
        "{error}"
    );
}

/// The containers of the host's instances, by name (root's, so the host
/// user's `kill -9` leaves them running).
fn containers_on(host: &crate::fleet_support::TestHost) -> Vec<String> {
    let mut names: Vec<String> = host
        .in_root(&[
            "podman",
            "ps",
            "--filter",
            "label=io.gantry.instance",
            "--format",
            "{{.Names}} {{.ID}}",
        ])
        .lines()
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

#[test]
fn a_container_instance_is_found_again_by_the_agent_started_after_a_kill() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    podman();
    let (server, port) = image_shop(&hosts);
    let v1 = pushed_image(&server, "v1");
    deploy_serving_on_three_hosts(&server, &v1);
    let host = &hosts.hosts[1];
    let before = containers_on(host);
    assert_eq!(before.len(), 1, "{before:?}");

    // Every process of the host user goes (its agent, the engine's client);
    // the container, root's, outlives them and serves on. The next agent
    // (started by the watch's next call) adopts it: the same container,
    // never a second one, and not one request lost.
    let (_, tally) = under_load(port, || {
        host.kill_everything();
        std::thread::sleep(Duration::from_secs(3));
        wait_serving(&server, "back to size", |h| h.len() == 3);
    });
    eprintln!("after kill -9 of {}'s processes: {tally:?}", host.name);
    assert_clean(&tally, "the agent of a host of containers killed");
    // A new agent answers for the host and supervises the instance again.
    let path = format!("/api/v1/hosts/{}", host.name);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let shown = server.get(&path);
        let instances = shown["agent"]["instances"].as_array().cloned();
        if instances.is_some_and(|i| i.len() == 1 && i[0]["state"] == "running") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{shown:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(containers_on(host), before);
    assert_eq!(get(port, "/").1.split_whitespace().next(), Some("v1"));
}
