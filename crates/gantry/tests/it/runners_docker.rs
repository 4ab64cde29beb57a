//! Cloud Build's docker work on remote runners: the runner opens the Docker API gate beside
//! a docker builder step it leased (forwarding image calls to its own engine, refusing
//! the rest, gone when the step ends), and a build's `images` are pushed from the runner
//! that built them, with the stage's registry credentials.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cloudbuild_compat::docker_builder_image;
use crate::harness::{Server, stage, wait_for_file};
use crate::runners::{Runner, token, wait_registered};
use crate::steps_podman::{
    AUTH_PASSWORD, AUTH_USER, BASE, auth_registry, log_text, podman, registry, set_secret,
};

crate::on_both_backends!(
    a_runner_opens_the_docker_api_gate_beside_its_step_forwarding_image_calls_and_refusing_the_rest,
    a_cloud_builds_images_are_pushed_from_the_runner_that_built_them_with_the_stages_credentials,
    a_server_killed_between_a_build_on_a_runner_and_its_push_pushes_from_that_runner_once_back,
);

/// A runner `builder` with the label `docker`.
fn builder(server: &Server) -> Runner {
    let runner = Runner::start(server, &token(server), "builder", "docker");
    wait_registered(server, &["builder"]);
    runner
}

/// A step's file in the runner's copy of the stage's run directory.
fn on_runner(runner: &Runner, execution: &str, stage: &str, file: &str) -> PathBuf {
    runner
        .dir
        .join("runs")
        .join(execution)
        .join(stage)
        .join(file)
}

/// `curl` through a Unix socket: the status code and the body.
fn curl(socket: &Path, method: &str, path: &str) -> (String, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
        ])
        .arg("--unix-socket")
        .arg(socket)
        .arg(format!("http://gate{path}"))
        .args(if method == "POST" {
            &["-H", "Content-Type: application/json", "-d", "{}"][..]
        } else {
            &[][..]
        })
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.to_owned(), body.to_owned())
}

fn wait_gone(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} is still there",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn a_runner_opens_the_docker_api_gate_beside_its_step_forwarding_image_calls_and_refusing_the_rest(
    server: &mut Server,
) {
    podman();
    let runner = builder(server);
    server.apply(&format!(
        r#"
pipelines:
  - name: gated
    stages:
      - id: build
        type: run
        runsOn: [docker]
        steps:
          - image: {BASE}
            env:
              DOCKER_HOST: unix:///gantry/docker.sock
            timeout: 2m
            script: |
              test -S /gantry/docker.sock && echo "the gate is at /gantry/docker.sock"
              while [ ! -e /workspace/release ]; do sleep 0.1; done
"#
    ));
    let id = server.run("gated", &[]);
    let socket = on_runner(&runner, &id, "build", "docker.sock");
    wait_for_file(&socket);
    {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let meta = std::fs::metadata(&socket).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o700,
            "the gate's socket is its user's alone"
        );
    }
    // The server opened none of its own: the step is not on its disk.
    let on_server = server
        .data_dir()
        .join("runs")
        .join(&id)
        .join("build")
        .join("docker.sock");
    assert!(!on_server.exists(), "the server opened a gate too");
    // Image calls reach the runner's engine; running a container does not.
    let (code, body) = curl(&socket, "GET", "/_ping");
    assert_eq!(
        (code.as_str(), body.as_str()),
        ("200", "OK"),
        "the runner's engine answers through the gate"
    );
    let (code, body) = curl(&socket, "POST", "/v1.41/containers/create");
    assert_eq!(code, "403", "{body}");
    assert!(
        body.contains("gantry: the docker builder may not call POST /v1.41/containers/create: it would run or enter a container on the host's engine"),
        "{body}"
    );
    std::fs::write(runner.dir.join("workspaces").join(&id).join("release"), "").unwrap();
    let execution = server.wait_terminal(&id);
    let logs = log_text(server, &id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}\n{logs}");
    assert!(
        logs.contains("the gate is at /gantry/docker.sock"),
        "{logs}"
    );
    assert!(logs.contains("running on runner builder"), "{logs}");
    // Closed when the step ended.
    wait_gone(&socket);
    assert!(
        runner.log().contains("closed the Docker API gate"),
        "{}",
        runner.log()
    );
}

/// A docker builder step leased by a runner without a container engine fails before it
/// runs, naming the step, the runner and what is missing.
#[test]
fn a_docker_builder_step_on_a_runner_without_an_engine_fails_naming_the_step_and_the_runner() {
    let server = Server::start(crate::harness::Backend::Sqlite);
    let _bare = Runner::start_with(
        &server,
        &token(&server),
        "bare",
        "docker",
        &["--container-engine", "none"],
    );
    wait_registered(&server, &["bare"]);
    server.apply(&format!(
        r#"
pipelines:
  - name: gated
    stages:
      - id: build
        type: run
        steps:
          - name: image
            image: {BASE}
            runsOn: [docker]
            env:
              DOCKER_HOST: unix:///gantry/docker.sock
            script: docker build .
"#
    ));
    let id = server.run("gated", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let error = stage(&execution, "build")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.starts_with("step 1 (image)"), "{error}");
    assert!(
        error.contains("container engine") && error.contains("(on runner bare)"),
        "{error}"
    );
}

/// A `prepare` stage on the server's side writes `files` (name, text) into the workspace;
/// `build` runs its `cloudbuild.yaml` on a runner labelled `docker`, with `extra` fields.
fn cloud_build_on_the_runner(name: &str, files: &[(&str, String)], extra: &str) -> String {
    cloud_build(name, files, &format!("runsOn: [docker]\n        {extra}"))
}

/// [`cloud_build_on_the_runner`] without `runsOn`: `build` runs where `extra` says.
fn cloud_build(name: &str, files: &[(&str, String)], extra: &str) -> String {
    let mut script = String::new();
    for (file, text) in files {
        script.push_str(&format!("              cat > {file} <<'EOF'\n"));
        for line in text.lines() {
            script.push_str(&format!("              {line}\n"));
        }
        script.push_str("              EOF\n");
    }
    format!(
        r#"
  - name: {name}
    stages:
      - id: prepare
        type: run
        steps:
          - script: |
{script}
      - id: build
        type: run
        dependsOn: [prepare]
        config: cloudbuild.yaml
        {extra}
"#
    )
}

/// Removes `image` here, pulls it back from its registry and reads `/marker` in it.
fn pulled_back_marker(image: &str, creds: Option<&str>) -> String {
    let _ = Command::new("podman").args(["rmi", "-f", image]).output();
    let mut pull = Command::new("podman");
    pull.args(["pull", "-q", "--tls-verify=false"]);
    if let Some(creds) = creds {
        pull.args(["--creds", creds]);
    }
    let out = pull.arg(image).output().expect("podman pull");
    assert!(out.status.success(), "podman pull {image}: {out:?}");
    let out = Command::new("podman")
        .args(["run", "--rm", image, "cat", "/marker"])
        .output()
        .expect("podman run");
    let _ = Command::new("podman").args(["rmi", "-f", image]).output();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn a_cloud_builds_images_are_pushed_from_the_runner_that_built_them_with_the_stages_credentials(
    server: &mut Server,
) {
    podman();
    let registry = auth_registry();
    set_secret(
        server,
        "REGISTRY_LOGIN",
        &format!("{AUTH_USER}:{AUTH_PASSWORD}"),
    );
    let runner = builder(server);
    // Another runner with the label: the build's two parallel docker steps still go to
    // one runner, whose engine then holds both images.
    let spare = Runner::start(server, &token(server), "spare", "docker");
    wait_registered(server, &["builder", "spare"]);
    let image = format!("{registry}/runner-pushed-{}:v1", std::process::id());
    let second = format!("{registry}/runner-pushed-{}:v2", std::process::id());
    // No builder image: the docker builder runs as the runner's engine CLI (its allow-list).
    let cloudbuild = format!(
        "steps:\n- name: gcr.io/cloud-builders/docker\n  args: ['build', '-t', '{image}', '-f', 'Containerfile', '.']\n- name: gcr.io/cloud-builders/docker\n  waitFor: ['-']\n  args: ['build', '-t', '{second}', '-f', 'Containerfile', '.']\nimages: ['{image}', '{second}']\n"
    );
    let files = [
        ("cloudbuild.yaml", cloudbuild),
        (
            "Containerfile",
            format!("FROM {BASE}\nCOPY marker /marker\n"),
        ),
        ("marker", "built on the runner".to_owned()),
    ];
    server.apply(&format!(
        "pipelines:{}{}",
        cloud_build_on_the_runner("pushed", &files, "credentials: REGISTRY_LOGIN"),
        cloud_build_on_the_runner("anonymous", &files, ""),
    ));
    let id = server.run("pushed", &[]);
    let execution = server.wait_terminal(&id);
    let logs = log_text(server, &id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}\n{logs}");
    let pushed = &stage(&execution, "build")["outputs"]["images"][0];
    assert_eq!(pushed["image"], image, "{execution:#}");
    assert!(
        pushed["digest"]
            .as_str()
            .unwrap_or_default()
            .starts_with("sha256:"),
        "{pushed:#}"
    );
    assert!(logs.contains(&format!("pushed {image} (sha256:")), "{logs}");
    assert!(
        logs.contains(&format!("pushed {second} (sha256:")),
        "{logs}"
    );
    let placed: Vec<&str> = logs
        .lines()
        .filter_map(|line| line.split(": running on runner ").nth(1))
        .collect();
    assert_eq!(placed.len(), 2, "{logs}");
    assert!(
        placed[0] == placed[1],
        "both docker steps ran on one runner: {logs}"
    );
    let pusher = if placed[0] == "builder" {
        &runner
    } else {
        &spare
    };
    let agent = pusher.log();
    assert!(
        agent.contains("pushed an image of the build"),
        "the runner pushed it: {agent}"
    );
    assert!(
        !agent.contains(AUTH_PASSWORD) && !logs.contains(AUTH_PASSWORD),
        "the password was written"
    );
    assert_eq!(
        pulled_back_marker(&image, Some(&format!("{AUTH_USER}:{AUTH_PASSWORD}"))).trim(),
        "built on the runner"
    );

    // Without the credentials the registry refuses, and the stage says where.
    let id = server.run("anonymous", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let error = stage(&execution, "build")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.starts_with("images: ") && error.contains("(on runner "),
        "{error}"
    );
    assert!(error.contains(&image), "{error}");
}

/// Which runner built a stage's images is kept with the execution: a server killed after
/// the build step ended and before the push (a second step waits on a file meanwhile)
/// pushes them, once restarted, from the runner that built them, though the step after
/// the restart ran on another (the builder was disabled meanwhile, then enabled again).
fn a_server_killed_between_a_build_on_a_runner_and_its_push_pushes_from_that_runner_once_back(
    server: &mut Server,
) {
    podman();
    let registry = registry();
    let mut runner = builder(server);
    let image = format!(
        "{registry}/runner-restart-pushed-{}:v1",
        uuid::Uuid::now_v7().simple()
    );
    let cloudbuild = format!(
        "steps:\n- name: gcr.io/cloud-builders/docker\n  args: ['build', '-t', '{image}', '-f', 'Containerfile', '.']\n- name: {BASE}\n  entrypoint: sh\n  args: ['-c', 'touch built; while [ ! -e go ]; do sleep 0.1; done']\nimages: ['{image}']\n"
    );
    let files = [
        ("cloudbuild.yaml", cloudbuild),
        (
            "Containerfile",
            format!("FROM {BASE}\nCOPY marker /marker\n"),
        ),
        ("marker", "built before the restart".to_owned()),
    ];
    server.apply(&format!(
        "pipelines:{}",
        cloud_build_on_the_runner("restarted", &files, "")
    ));
    let id = server.run("restarted", &[]);
    // The build step ended and the waiting step runs: its push is still to come.
    wait_for_file(&runner.dir.join("workspaces").join(&id).join("built"));
    let spare = Runner::start(server, &token(server), "spare", "docker");
    wait_registered(server, &["builder", "spare"]);
    server.kill9();
    // The waiting step may end now: its run after the restart starts from the server's
    // workspace.
    std::fs::write(
        server.data_dir().join("workspaces").join(&id).join("go"),
        "",
    )
    .unwrap();
    server.restart();
    // The step runs again only after a lease's lifetime: the builder is disabled before,
    // so the step's new run is the spare's.
    server.cli(&["runner", "disable", "builder"]).ok();
    assert!(!runner.wait_exit(Duration::from_secs(10)).success());
    server.wait_for(&id, "the step's run on the spare runner", |_| {
        log_text(server, &id).contains("on runner spare")
    });
    server.cli(&["runner", "enable", "builder"]).ok();
    runner.spawn();
    let execution = server.wait_terminal(&id);
    let logs = log_text(server, &id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}\n{logs}");
    assert_eq!(
        stage(&execution, "build")["outputs"]["images"][0]["image"],
        image,
        "{execution:#}"
    );
    assert!(logs.contains(&format!("pushed {image} (sha256:")), "{logs}");
    assert!(
        runner.log().contains("pushed an image of the build"),
        "the builder pushed it: {}",
        runner.log()
    );
    assert!(
        !spare.log().contains("pushed an image of the build"),
        "the spare pushed it: {}",
        spare.log()
    );
    assert_eq!(
        pulled_back_marker(&image, None).trim(),
        "built before the restart"
    );
}

/// The docker builder image on a runner (`gantry builders build`, slow): a Cloud Build
/// file's docker step builds through the gate the runner opened, its `docker run` is
/// refused naming the call, and its `images` reach the test registry from that runner,
/// pulled back here.
#[test]
fn a_docker_builder_step_on_a_runner_builds_through_its_gate_and_its_images_are_pushed_from_there()
{
    if std::env::var("GANTRY_TEST_SLOW").ok().as_deref() != Some("1") {
        eprintln!(
            "skipped: builds the docker builder image (about 2 minutes); set GANTRY_TEST_SLOW=1"
        );
        return;
    }
    podman();
    // A name of the test's own: other tests run the docker builder as the engine's CLI.
    let builder_image = &docker_builder_image("localhost/gantry-test-runner-builder-");
    let map = format!("gcr.io/cloud-builders/docker={builder_image}");
    let server = Server::start_with_env(&[("GANTRY_IMAGE_MAP", &map)]);
    let runner = builder(&server);
    let build_file = |image: &str| {
        format!(
            r#"steps:
- id: build
  name: gcr.io/cloud-builders/docker
  args: ['build', '-t', '{image}', '-f', 'Containerfile', '.']
- id: escape
  name: gcr.io/cloud-builders/docker
  args: ['run', '--rm', '-v', '/:/host', '{BASE}', 'cat', '/host/etc/hostname']
  allowFailure: true
images: ['{image}']
"#
        )
    };
    let files = |image: &str| {
        [
            ("cloudbuild.yaml", build_file(image)),
            (
                "Containerfile",
                format!("FROM {BASE}\nCOPY marker /marker\n"),
            ),
            ("marker", "built through the gate".to_owned()),
        ]
    };
    let image = format!("{}/runner-gate-built-{}:v1", registry(), std::process::id());
    let here = format!("{}/local-gate-built-{}:v1", registry(), std::process::id());
    server.apply(&format!(
        "pipelines:{}{}",
        cloud_build_on_the_runner("gate-built", &files(&image), ""),
        cloud_build("gate-built-here", &files(&here), ""),
    ));
    let id = server.run("gate-built", &[]);
    let execution = server.wait_terminal(&id);
    let logs = log_text(&server, &id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}\n{logs}");
    assert!(
        logs.contains(&format!("Successfully tagged {image}")),
        "{logs}"
    );
    assert!(
        logs.contains(
            "docker: Error response from daemon: gantry: the docker builder may not call POST"
        ) && logs.contains("containers/create"),
        "{logs}"
    );
    assert!(logs.contains(&format!("pushed {image} (sha256:")), "{logs}");
    let agent = runner.log();
    assert!(agent.contains("opened the Docker API gate"), "{agent}");
    assert!(agent.contains("pushed an image of the build"), "{agent}");
    assert!(
        !on_runner(&runner, &id, "build", "docker.sock").exists(),
        "the gate was left open"
    );
    assert_eq!(
        pulled_back_marker(&image, None).trim(),
        "built through the gate"
    );

    // Without runsOn the step runs on the local runner, under its own user: in its
    // rootless podman (given the builder image, as an administrator would), through the
    // gate it opened beside its copy of the run directory, and it pushes the image.
    crate::steps_podman::give_to_local_runner(builder_image);
    let id = server.run("gate-built-here", &[]);
    let execution = server.wait_terminal(&id);
    let logs = log_text(&server, &id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}\n{logs}");
    assert!(
        logs.contains(&format!("Successfully tagged {here}")),
        "{logs}"
    );
    assert!(logs.contains(&format!("pushed {here} (sha256:")), "{logs}");
    assert_eq!(
        pulled_back_marker(&here, None).trim(),
        "built through the gate"
    );
    // The builder's layers would otherwise weigh on every later reader of podman's storage.
    let _ = Command::new("podman")
        .args(["rmi", "-f", builder_image])
        .output();
    let _ = crate::steps_podman::runner_podman(&["rmi", "-f", builder_image, &here]);
}
