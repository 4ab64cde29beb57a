//! Packages in pipelines: published by one, starting another through the
//! artifact trigger, deployed by a server group.

use std::path::Path;
use std::process::Command;

use super::AptClient;
use crate::harness::{Backend, Server};

/// A pipeline builds a package in its workspace and publishes it; the
/// package landing in the repository starts another pipeline through its
/// `artifact` trigger, which sees the package and version, and the landing
/// is in the delivery log.
#[test]
fn a_pipeline_packages_and_publishes_and_the_artifact_trigger_starts_another() {
    let server = Server::start(Backend::Sqlite);
    crate::apt::publish_empty_stable(&server, "Pipeline <ci@example.com>");
    server.apply(
        r#"
pipelines:
  - name: build-hello
    parameters:
      - name: version
    stages:
      - id: tree
        type: run
        steps:
          - script: |
              mkdir -p pkg/usr/bin
              printf '#!/bin/sh\necho hello %s\n' '${{ parameters.version }}' > pkg/usr/bin/hello
              chmod +x pkg/usr/bin/hello
      - id: package
        type: packageDeb
        dependsOn: [tree]
        directory: pkg
        package: hello
        version: ${{ parameters.version }}
        architecture: amd64
      - id: publish
        type: publishDeb
        dependsOn: [package]
        repository: main-repo
        file: ${{ stages.package.outputs.file }}
  - name: on-artifact
    triggers:
      - type: artifact
        repository: main-repo
        package: hello
    stages:
      - id: record
        type: run
        steps:
          - script: echo '${{ trigger.type }} ${{ trigger.package }} ${{ trigger.version }}' > @W@/landed.txt
"#,
    );
    let id = server.run("build-hello", &["version=1.2.3"]);
    let execution = server.wait_terminal(&id);
    assert_eq!(
        execution["status"],
        "succeeded",
        "{execution:#}\n{:#?}",
        server.logs(&id)
    );
    let publish = crate::harness::stage(&execution, "publish");
    assert_eq!(publish["outputs"]["name"], "hello");
    assert_eq!(publish["outputs"]["version"], "1.2.3");
    let url = publish["outputs"]["url"]
        .as_str()
        .expect("a url output")
        .to_owned();
    assert_eq!(url, "/apt/pool/main/h/hello/hello_1.2.3_amd64.deb");

    // The published file is served and installable.
    let bytes = reqwest::blocking::get(format!("{}{url}", server.url))
        .unwrap()
        .bytes()
        .unwrap();
    let deb = server.work().join("fetched.deb");
    std::fs::write(&deb, &bytes).unwrap();
    let info = Command::new("dpkg-deb")
        .arg("-f")
        .arg(&deb)
        .arg("Version")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&info.stdout).trim(), "1.2.3");
    let client = AptClient::of_signed_stable(&server, &server.work().join("c"));
    client.update();
    assert_eq!(client.install("hello"), "#!/bin/sh\necho hello 1.2.3\n");

    let landed = server.work().join("landed.txt");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !landed.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        std::fs::read_to_string(&landed).unwrap(),
        "artifact hello 1.2.3\n"
    );
    // The landing is in the delivery log, with the execution it started.
    let log = crate::trigger_deliveries::wait_deliveries(
        &server,
        "/api/v1/trigger-deliveries?kind=artifact&pipeline=on-artifact",
        1,
    );
    assert_eq!(log[0]["outcome"], "started", "{log:#?}");
    assert!(log[0]["started"][0]["execution"].is_string(), "{log:#?}");
    let source = log[0]["source"].as_str().unwrap_or_default();
    assert!(
        source.contains("hello") && source.contains("1.2.3"),
        "{log:#?}"
    );
}

/// The Jenkins → deb → aptly → deploy chain: a pipeline packages and
/// publishes version 1.2.3; the artifact trigger starts a deploy pipeline
/// whose server group takes that package from the repository; the load
/// balancer then serves the new version.
#[test]
fn a_published_package_is_deployed_by_its_artifact_trigger() {
    let server = Server::start(Backend::Sqlite);
    server.cli(&["apt", "repo", "create", "main-repo"]).ok();
    let app = crate::deploy_support::testapp();
    let port = crate::deploy_support::free_port();
    server.apply(&format!(
        r#"applications:
  - name: shop
loadBalancers:
  - name: shop
    port: {port}
    cluster: shop-web
    healthCheck: {{path: /health, interval: 200ms, timeout: 1s, healthyThreshold: 2, unhealthyThreshold: 2}}
pipelines:
  - name: build
    parameters:
      - name: version
    stages:
      - id: tree
        type: run
        steps:
          - script: mkdir -p pkg/app && echo '${{{{ parameters.version }}}}' > pkg/app/version
      - id: package
        type: packageDeb
        dependsOn: [tree]
        directory: pkg
        package: shop
        version: ${{{{ parameters.version }}}}
      - id: publish
        type: publishDeb
        dependsOn: [package]
        repository: main-repo
        file: ${{{{ stages.package.outputs.file }}}}
  - name: deploy
    triggers:
      - type: artifact
        repository: main-repo
        package: shop
    stages:
      - id: deploy
        type: deploy
        application: shop
        stack: web
        package: shop (= ${{{{ trigger.version }}}})
        repository: main-repo
        command: env VERSION=$(cat app/version) {app}
        size: 1
        strategy: highlander
        healthTimeout: 20s
        gracePeriod: 1s
"#,
        app = app.display()
    ));
    for version in ["1.2.3", "1.2.4"] {
        let id = server.run("build", &[&format!("version={version}")]);
        let execution = server.wait_terminal(&id);
        assert_eq!(execution["status"], "succeeded", "{execution:#}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let answer = reqwest::blocking::get(format!("http://127.0.0.1:{port}/"))
                .ok()
                .and_then(|r| r.text().ok())
                .unwrap_or_default();
            if answer.starts_with(&format!("{version} ")) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the load balancer never served {version} (last answer {answer:?})\n{}\n{}",
                server.log_tail(),
                instance_logs(&server.data_dir())
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

/// The deployed instances' output, for failure messages.
fn instance_logs(dir: &Path) -> String {
    let mut out = String::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("instance-"))
            {
                out.push_str(&format!(
                    "{}:\n{}\n",
                    path.display(),
                    std::fs::read_to_string(&path).unwrap_or_default()
                ));
            }
        }
    }
    out
}
