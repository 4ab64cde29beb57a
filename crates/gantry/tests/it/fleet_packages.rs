//! Server groups installed on fleet hosts from Gantry's own APT repository
//! (the Jenkins → aptly → Spinnaker chain): each host's real `apt-get`, in
//! the host's own root filesystem and dpkg database, installs the exact
//! version the deploy names, through the host's SSH connection.

use std::path::Path;

use serde_json::Value;

use crate::deploy_support::{assert_clean, free_port, get, shop_cluster_yaml, testapp};
use crate::fleet_support::{TestHost, TestHosts, under_load};
use crate::harness::{Backend, Server};

const PACKAGES: [&str; 2] = ["shop", "gantry-test-dep"];

/// Builds package `name` at `version` holding the test app and its
/// version file, and returns the .deb's path.
fn build_shop(server: &Server, version: &str, depends: Option<&str>) -> String {
    let tree = server.work().join(format!("shop-tree-{version}"));
    let lib = tree.join("usr/lib/shop");
    std::fs::create_dir_all(&lib).expect("mkdir the package tree");
    std::fs::copy(testapp(), lib.join("gantry-testapp")).expect("copy the test app");
    std::fs::write(lib.join("version"), version).expect("write the version file");
    build_deb(server, &tree, "shop", version, depends)
}

fn build_deb(
    server: &Server,
    tree: &Path,
    name: &str,
    version: &str,
    depends: Option<&str>,
) -> String {
    let out = server.work().join(format!("{name}_{version}_amd64.deb"));
    let (tree, out_text) = (tree.display().to_string(), out.display().to_string());
    let mut args = vec![
        "deb",
        "build",
        &tree,
        "--name",
        name,
        "--version",
        version,
        "--arch",
        "amd64",
        "-o",
        &out_text,
    ];
    if let Some(depends) = depends {
        args.extend(["--depends", depends]);
    }
    server.cli(&args).ok();
    out_text
}

/// Publishes `deb` in repository `main-repo` (distribution `stable`).
fn publish(server: &Server, deb: &str) {
    server.cli(&["apt", "repo", "add", "main-repo", deb]).ok();
    server.cli(&["apt", "publish", "update", "stable"]).ok();
}

/// A server with a signed, published `main-repo`, shop 1.0 in it, the
/// test hosts bootstrapped (the packages purged first), and pipeline
/// `deploy` installing `shop (= VERSION)` on three hosts, one instance
/// each, behind load balancer `shop` on the returned port.
fn shop_from_packages(hosts: &TestHosts) -> (Server, u16) {
    shop_from_packages_with(hosts, "")
}

/// [`shop_from_packages`] with more pipelines (YAML list items).
fn shop_from_packages_with(hosts: &TestHosts, more_pipelines: &str) -> (Server, u16) {
    for host in &hosts.hosts {
        host.purge(&PACKAGES);
    }
    let server = Server::start(Backend::Sqlite);
    hosts.store_key(&server, "fleet-key");
    crate::apt::publish_empty_stable(&server, "Fleet <ci@example.com>");
    publish(&server, &build_shop(&server, "1.0", None));
    let port = free_port();
    let pipeline = r#"  - name: deploy
    parameters:
      - {name: version}
    stages:
      - id: deploy
        type: deploy
        application: shop
        stack: web
        provider: ssh
        placement: {labels: [web], maxPerHost: 1}
        package: shop (= ${{ parameters.version }})
        repository: main-repo
        command: env VERSION=$(cat /usr/lib/shop/version) /usr/lib/shop/gantry-testapp
        size: 3
        strategy: redblack
        healthTimeout: 30s
        gracePeriod: 1s
"#;
    server.apply(&format!(
        "{}{}{pipeline}{more_pipelines}",
        hosts.yaml("fleet-key"),
        shop_cluster_yaml(port)
    ));
    hosts.bootstrap_all(&server);
    (server, port)
}

fn deploy(server: &Server, version: &str) -> Value {
    deploy_with(server, "deploy", version)
}

fn deploy_with(server: &Server, pipeline: &str, version: &str) -> Value {
    let id = server.run(pipeline, &[&format!("version={version}")]);
    server.wait_terminal(&id)
}

/// The enabled group's instances of `shop-web`: (host, version) of each.
fn instance_versions(server: &Server) -> Vec<(String, String)> {
    let cluster = server.get("/api/v1/clusters/shop-web");
    let groups = cluster["serverGroups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(group) = groups.iter().rev().find(|g| g["enabled"] == true) else {
        return Vec::new();
    };
    let shown = server.get(&format!(
        "/api/v1/server-groups/{}",
        group["name"].as_str().unwrap_or_default()
    ));
    let mut versions: Vec<(String, String)> = shown["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let text = |field: &str| i[field].as_str().unwrap_or_default().to_owned();
            (text("host"), text("version"))
        })
        .collect();
    versions.sort();
    versions
}

fn every_host_runs(version: &str) -> Vec<(String, String)> {
    ["host-1", "host-2", "host-3"]
        .map(|h| (h.to_owned(), version.to_owned()))
        .to_vec()
}

fn installed(hosts: &[TestHost]) -> Vec<String> {
    hosts.iter().map(|h| h.installed("shop")).collect()
}

#[test]
fn a_published_package_is_installed_by_apt_get_at_its_exact_version_on_each_host() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let (server, port) = shop_from_packages(&hosts);
    publish(&server, &build_shop(&server, "2.0", None));

    // 1.0, although 2.0 is newer in the repository: the exact version.
    // Meanwhile the forwards the installs open are tried as a host's user
    // could: only the APT trees answer through them.
    let probe = ForwardProbe::start();
    let done = deploy(&server, "1.0");
    let answers = probe.finish();
    assert!(
        !answers.is_empty(),
        "no forward was seen during the installs"
    );
    for (api, apt) in &answers {
        assert!(
            api.starts_with("HTTP/1.1 403") && api.contains("APT gate"),
            "{api}"
        );
        assert!(apt.starts_with("HTTP/1.1 200"), "{apt}");
    }
    assert_eq!(
        done["status"],
        "succeeded",
        "{done:#}\n{}",
        server.log_tail()
    );
    assert_eq!(installed(&hosts.hosts), ["1.0", "1.0", "1.0"]);
    assert_eq!(instance_versions(&server), every_host_runs("1.0"));
    assert_eq!(get(port, "/").1.split_whitespace().next(), Some("1.0"));
    // The repository's source is on a host only while it installs.
    assert!(
        !hosts.hosts[0]
            .root
            .join("etc/apt/sources.list.d/gantry-server.list")
            .exists()
    );

    let (done, tally) = under_load(port, || deploy(&server, "2.0"));
    assert_eq!(
        done["status"],
        "succeeded",
        "{done:#}\n{}",
        server.log_tail()
    );
    assert_clean(&tally, "fleet package 1.0 → 2.0");
    assert_eq!(installed(&hosts.hosts), ["2.0", "2.0", "2.0"]);
    assert_eq!(instance_versions(&server), every_host_runs("2.0"));
    assert_eq!(get(port, "/").1.split_whitespace().next(), Some("2.0"));
}

/// 1.0 deployed everywhere; 3.0 published, needing a package hosts 1 and
/// 2 have and host 3 lacks (nor does any repository host 3 knows have it).
fn host_3_lacks_what_3_0_needs(hosts: &TestHosts, more_pipelines: &str) -> (Server, u16) {
    let (server, port) = shop_from_packages_with(hosts, more_pipelines);
    let done = deploy(&server, "1.0");
    assert_eq!(
        done["status"],
        "succeeded",
        "{done:#}\n{}",
        server.log_tail()
    );
    publish(
        &server,
        &build_shop(&server, "3.0", Some("gantry-test-dep")),
    );
    let dep_tree = server.work().join("dep-tree");
    std::fs::create_dir_all(dep_tree.join("usr/share/gantry-test-dep")).expect("mkdir");
    std::fs::write(dep_tree.join("usr/share/gantry-test-dep/here"), "").expect("write");
    let dep = build_deb(&server, &dep_tree, "gantry-test-dep", "1.0", None);
    for host in &hosts.hosts[..2] {
        std::fs::copy(&dep, host.root.join("tmp/gantry-test-dep.deb"))
            .expect("copy the dependency");
        host.in_root(&["dpkg", "-i", "/tmp/gantry-test-dep.deb"]);
        assert_eq!(host.installed("gantry-test-dep"), "1.0");
    }
    (server, port)
}

#[test]
fn a_host_lacking_a_dependency_fails_the_deploy_naming_it_while_the_old_version_serves() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let (server, port) = host_3_lacks_what_3_0_needs(&hosts, "");

    let (done, tally) = under_load(port, || deploy(&server, "3.0"));
    assert_eq!(done["status"], "failed", "{done:#}");
    let error = done.to_string();
    assert!(
        error.contains("host-3") && error.contains("gantry-test-dep") && error.contains("apt-get"),
        "the failure names the host, apt-get and the missing dependency: {done:#}"
    );
    assert_clean(&tally, "a deploy failing on one host");
    // Host 3 kept what it had, fully installed; 1.0 serves everywhere.
    assert_eq!(hosts.hosts[2].installed("shop"), "1.0");
    assert_eq!(instance_versions(&server), every_host_runs("1.0"));
    assert_eq!(get(port, "/").1.split_whitespace().next(), Some("1.0"));
}

/// A rolling deploy one host at a time: past a host that cannot install
/// the package only while that stays within `maxFailPercentage`.
#[test]
fn a_rolling_deploy_goes_past_a_failing_host_only_within_max_fail_percentage() {
    let Some(hosts) = TestHosts::take() else {
        return;
    };
    let rolling = |name: &str, max_fail: u32| {
        format!(
            r#"  - name: {name}
    parameters:
      - {{name: version}}
    stages:
      - id: deploy
        type: deploy
        application: shop
        stack: web
        provider: ssh
        placement: {{labels: [web], maxPerHost: 1}}
        package: shop (= ${{{{ parameters.version }}}})
        repository: main-repo
        command: env VERSION=$(cat /usr/lib/shop/version) /usr/lib/shop/gantry-testapp
        size: 3
        strategy: rolling
        maxUnavailable: 1
        maxFailPercentage: {max_fail}
        healthTimeout: 30s
        gracePeriod: 1s
"#
        )
    };
    let more = format!("{}{}", rolling("strict", 30), rolling("tolerant", 34));
    let (server, port) = host_3_lacks_what_3_0_needs(&hosts, &more);

    let ((), tally) = under_load(port, || {
        // One host of three is more than 30%: stopped and rolled back.
        let strict = deploy_with(&server, "strict", "3.0");
        assert_eq!(strict["status"], "failed", "{strict:#}");
        assert!(strict.to_string().contains("host-3"), "{strict:#}");
        assert_eq!(instance_versions(&server), every_host_runs("1.0"));
        // Within 34%: 3.0 serves from the two hosts that could install it.
        let tolerant = deploy_with(&server, "tolerant", "3.0");
        assert_eq!(
            tolerant["status"],
            "succeeded",
            "{tolerant:#}\n{}",
            server.log_tail()
        );
    });
    assert_clean(&tally, "rolling past a failing host");
    let healthy: Vec<(String, String)> = instance_versions(&server);
    assert!(
        healthy.contains(&("host-1".into(), "3.0".into()))
            && healthy.contains(&("host-2".into(), "3.0".into())),
        "{healthy:?}"
    );
    assert_eq!(hosts.hosts[2].installed("shop"), "1.0");
    assert_eq!(get(port, "/").1.split_whitespace().next(), Some("3.0"));
}

/// Watches for the remote forwards hosts' sshd opens on loopback for an
/// install, and sends through each an API request and an APT one, as a
/// host's user who finds the port could.
struct ForwardProbe {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(String, String)>>,
}

impl ForwardProbe {
    fn start() -> ForwardProbe {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut answers = Vec::new();
            let mut tried = std::collections::BTreeSet::new();
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                for port in sshd_loopback_ports() {
                    if !tried.insert(port) {
                        continue;
                    }
                    let api = through(port, "/api/v1/pipelines");
                    let apt = through(port, "/apt/dists/stable/Release");
                    // A forward closed in between answers nothing.
                    if let (Some(api), Some(apt)) = (api, apt) {
                        answers.push((api, apt));
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            answers
        });
        ForwardProbe { stop, thread }
    }

    /// The (API, APT) answers' status lines and bodies, one pair per forward.
    fn finish(self) -> Vec<(String, String)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("the probe thread")
    }
}

/// The ports sshd listens on at 127.0.0.1 above 20000 (remote forwards).
fn sshd_loopback_ports() -> Vec<u16> {
    let output = std::process::Command::new("ss")
        .args(["-Hltnp"])
        .output()
        .expect("run ss");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains("\"sshd"))
        .filter_map(|line| {
            let local = line.split_whitespace().nth(3)?;
            let port: u16 = local.strip_prefix("127.0.0.1:")?.parse().ok()?;
            (port >= 20_000).then_some(port)
        })
        .collect()
}

/// `GET http://gantry-server{path}` through the proxy at `port`, as apt
/// sends it; the answer's text, or `None` when nothing answered.
fn through(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    let request = format!(
        "GET http://gantry-server{path} HTTP/1.1\r\nHost: gantry-server\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    (!text.is_empty()).then_some(text)
}
