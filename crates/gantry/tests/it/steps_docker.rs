//! `--container-engine docker`: the docker CLI (Debian's `docker.io`, or the
//! one the machine has) driving podman's Docker-compatible API on a socket
//! of the test's own (`podman system service` of the local runner's user,
//! as a rootless docker daemon would be), since no docker daemon runs
//! here. The same step engine as with podman: workspace, named volumes,
//! labels, cancel removing the container, and a bake built and pushed with
//! credentials from the secret store.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::harness::{Server, stage};
use crate::steps_bake::bake_pipeline;
use crate::steps_containers::{SHARE, check_share, wait_until};
use crate::steps_podman::{
    AUTH_PASSWORD, AUTH_USER, BASE, auth_registry, podman, runner_account, runner_podman_command,
    set_secret,
};

/// `podman system service` on a socket in a temporary directory; stopped
/// (by its pid) when dropped.
struct DockerApi {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl DockerApi {
    /// The service of the local runner's user (its rootless podman), which
    /// the runner's steps reach through `DOCKER_HOST` as the server gives it.
    fn start() -> DockerApi {
        podman();
        let dir = tempfile::tempdir().unwrap();
        let (uid, gid, _) = runner_account();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        let child = runner_podman_command()
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", dir.path().join("api.sock").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("podman system service");
        let api = DockerApi {
            child: Some(child),
            dir,
        };
        wait_until("podman's API answers the docker CLI", || {
            api.docker(&["version"]).status.success()
        });
        api
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("api.sock")
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", self.host())
            .output()
            .expect("the docker CLI (scripts/install-test-deps)")
    }

    /// What `docker ps -a` / `docker volume ls` list with every one of
    /// `labels` (`label=KEY=VALUE`).
    fn listed(&self, what: &[&str], labels: &[&str]) -> Vec<String> {
        let mut args = what.to_vec();
        for label in labels {
            args.extend(["--filter", label]);
        }
        let format = if what[0] == "volume" {
            "{{.Name}}"
        } else {
            "{{.Names}}"
        };
        args.extend(["--format", format]);
        let out = self.docker(&args);
        assert!(out.status.success(), "docker {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.socket());
    }
}

impl Drop for DockerApi {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn the_docker_cli_runs_container_steps() {
    let mut api = DockerApi::start();
    let server = Server::start_with_env(&[
        ("DOCKER_HOST", &api.host()),
        ("GANTRY_CONTAINER_ENGINE", "docker"),
    ]);
    let registry = auth_registry();
    let image = format!("{registry}/docker-app-{}:v1", std::process::id());
    set_secret(
        &server,
        "REGISTRY_LOGIN",
        &format!("{AUTH_USER}:{AUTH_PASSWORD}"),
    );
    set_secret(
        &server,
        "WRONG_LOGIN",
        &format!("{AUTH_USER}:wrong-pw-0b5d"),
    );
    server.apply(&format!(
        r#"
pipelines:{SHARE}
  - name: long
    stages:
      - id: build
        type: run
        steps:
          - image: {BASE}
            script: echo started; sleep 300
{bake}{bake_wrong}"#,
        // `docker build` and `docker push`, with credentials from the
        // secret store (through DOCKER_CONFIG).
        bake = bake_pipeline("bake", &image, Some("REGISTRY_LOGIN")),
        bake_wrong = bake_pipeline("bake-wrong", &image, Some("WRONG_LOGIN")),
    ));
    let id = check_share(&server);
    let label = format!("label=io.gantry.execution={id}");
    assert_eq!(api.listed(&["ps", "-a"], &[&label]), Vec::<String>::new());
    assert_eq!(
        api.listed(&["volume", "ls"], &[&label]),
        Vec::<String>::new()
    );

    // The running container carries Gantry's labels; cancel removes it.
    let id = server.run("long", &[]);
    let label = format!("label=io.gantry.execution={id}");
    wait_until("the step's container runs", || {
        api.listed(&["ps"], &[&label]).len() == 1
    });
    let labelled = api.listed(
        &["ps"],
        &[
            &label,
            "label=io.gantry.stage=build",
            "label=io.gantry.step=0",
        ],
    );
    assert_eq!(labelled.len(), 1, "{labelled:?}");
    server.cli(&["execution", "cancel", &id]).ok();
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "canceled", "{execution:#}");
    assert_eq!(api.listed(&["ps", "-a"], &[&label]), Vec::<String>::new());

    let id = server.run("bake", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let digest = stage(&execution, "bake")["outputs"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(digest.starts_with("sha256:"), "{digest}");
    let id = server.run("bake-wrong", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed");
    assert_eq!(
        stage(&execution, "bake")["error"],
        format!(
            "bake {image}: registry {registry} answered 401 unauthorized to the push of {image}: the credentials in secret \"WRONG_LOGIN\" were refused"
        )
    );

    // Without the API, the step fails naming what docker said: the server
    // really drives the docker CLI.
    api.stop();
    assert!(!Path::new(&api.socket()).exists());
    let id = server.run("long", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed");
    let error = stage(&execution, "build")["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("step 1: docker image {BASE}: "))
            && error.contains("Cannot connect to the Docker daemon"),
        "{error}"
    );
}

/// The Docker API gate in front of podman's API: the real docker CLI builds (labelled as
/// Gantry's), tags and lists images through it, and is refused, with the gate's reason,
/// anything that would run a container or mount the host.
#[test]
fn the_api_gate_lets_the_docker_cli_build_and_refuses_running_containers() {
    let api = DockerApi::start();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let dir = tempfile::tempdir().unwrap();
    let gate_socket = dir.path().join("gate.sock");
    let _gate = runtime
        .block_on(async { gantry_container::api_gate::ApiGate::start(&gate_socket, &api.socket()) })
        .expect("the gate");
    let context = dir.path().join("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM {BASE}\nCOPY note /note\n"),
    )
    .unwrap();
    std::fs::write(context.join("note"), "through the gate\n").unwrap();
    let docker = |args: &[&str]| {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", gate_socket.display()))
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .expect("the docker CLI")
    };
    let built = docker(&[
        "build",
        "-t",
        "localhost/gantry-gate-test:1",
        context.to_str().unwrap(),
    ]);
    assert!(built.status.success(), "{built:?}");
    let tagged = docker(&[
        "tag",
        "localhost/gantry-gate-test:1",
        "localhost/gantry-gate-test:2",
    ]);
    assert!(tagged.status.success(), "{tagged:?}");
    let listed = docker(&[
        "images",
        "--filter",
        "label=io.gantry.built",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("localhost/gantry-gate-test:1"), "{listed}");

    let run = docker(&[
        "run",
        "--rm",
        "-v",
        "/:/host",
        BASE,
        "cat",
        "/host/etc/hostname",
    ]);
    assert!(!run.status.success(), "{run:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("gantry: the docker builder may not call POST")
            && stderr.contains("containers/create"),
        "{stderr}"
    );
    let volumes = docker(&["volume", "create", "gate-test"]);
    assert!(
        String::from_utf8_lossy(&volumes.stderr).contains("volumes live on the host"),
        "{volumes:?}"
    );
    for tag in ["1", "2"] {
        api.docker(&["rmi", "-f", &format!("localhost/gantry-gate-test:{tag}")]);
    }
}
