//! A Cloud Build `gcr.io/cloud-builders/docker` step runs the host's
//! podman with the engine's own rights (here the local runner's), so it may only build, tag, push and
//! pull: a `docker run` that mounts the host's root to read the server's
//! secret key is refused before any step of the stage runs, naming the
//! step, the argument and why, while a plain `docker build` of the
//! workspace still builds, labelled as Gantry's.

use crate::harness::{Backend, Server, stage};
use crate::steps_podman::{BASE, log_text, podman, runner_podman};

/// A pipeline whose first stage writes `files` (name, text) into the
/// workspace, and whose second runs them as a Cloud Build file.
fn pipeline(name: &str, files: &[(&str, &str)]) -> String {
    let mut script = String::new();
    for (file, text) in files {
        script.push_str(&format!(
            "              cat > {file} <<'EOF'\n{}\n              EOF\n",
            text.lines()
                .map(|l| format!("              {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    format!(
        r#"
pipelines:
  - name: {name}
    stages:
      - id: write
        type: run
        steps:
          - script: |
{script}
      - id: build
        type: run
        dependsOn: [write]
        config: cloudbuild.yaml
"#
    )
}

#[test]
fn a_docker_builder_step_that_mounts_the_host_is_refused_before_anything_runs() {
    podman();
    let server = Server::start(Backend::Sqlite);
    let key = server.data_dir().join("secrets.key");
    let cloudbuild = format!(
        "steps:\n- id: first\n  name: {BASE}\n  args: ['touch', 'first-step-ran']\n- id: escape\n  name: gcr.io/cloud-builders/docker\n  args: ['run', '--rm', '-v', '/:/h', '{BASE}', 'cat', '/h{}']\n",
        key.display()
    );
    server.apply(&pipeline("escape", &[("cloudbuild.yaml", &cloudbuild)]));
    let id = server.run("escape", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let error = stage(&execution, "build")["error"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        error,
        "step 2 (escape) runs the host's container engine CLI for gcr.io/cloud-builders/docker: `run` is refused: it runs or reaches a container with the engine's own rights (the server's or its runner's), unconfined (a step that needs an image runs in it: give the step that image)",
    );
    assert!(key.exists(), "there was a key to read");
    // The stage failed before its first step: that step left no trace.
    let workspace = server.data_dir().join("workspaces").join(&id);
    assert!(workspace.join("cloudbuild.yaml").exists());
    assert!(
        !workspace.join("first-step-ran").exists(),
        "a step ran before the refusal"
    );
}

#[test]
fn a_plain_docker_build_of_the_workspace_still_builds_and_is_labelled() {
    podman();
    let server = Server::start(Backend::Sqlite);
    let image = format!("localhost/gantry-engine-cli-{}:1", std::process::id());
    let cloudbuild = format!(
        "steps:\n- id: image\n  name: gcr.io/cloud-builders/docker\n  args: ['build', '-t', '{image}', '-f', 'Containerfile', '.']\n"
    );
    let containerfile = format!("FROM {BASE}\nCOPY message /message\n");
    server.apply(&pipeline(
        "plain-build",
        &[
            ("cloudbuild.yaml", &cloudbuild),
            ("Containerfile", &containerfile),
            ("message", "built by the docker builder"),
        ],
    ));
    let id = server.run("plain-build", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(
        execution["status"],
        "succeeded",
        "{execution:#}\n{}",
        log_text(&server, &id)
    );
    // It ran on the local runner: the image is in that runner's own storage.
    let label = runner_podman(&[
        "image",
        "inspect",
        "--format",
        "{{index .Labels \"io.gantry.built\"}}",
        &image,
    ]);
    let _ = runner_podman(&["rmi", "-f", &image]);
    assert!(label.status.success(), "{label:?}");
    assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), "1");
}
