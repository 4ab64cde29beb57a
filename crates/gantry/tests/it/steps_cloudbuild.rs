//! Cloud Build files run unchanged: by `gantry build` (no server) and by a
//! `run` stage with `config:`, with substitutions from a real git checkout
//! and images pushed to the real loopback registry.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{BIN, Backend, Output, Server, stage, wait_output};
use crate::steps_podman::{BASE, log_text, podman, registry, registry_tags};

const CLOUDBUILD: &str = r#"
steps:
- id: test
  name: localhost/gantry-test-base
  entrypoint: sh
  args: ['-c', 'echo "testing $SHORT_SHA on $BRANCH_NAME in $PROJECT_ID" && echo "$_GREETING" > message && echo $$HOME']
- id: image
  name: gcr.io/cloud-builders/docker
  args: ['build', '-t', '$_REGISTRY/cb-app:$SHORT_SHA', '-f', 'Containerfile', '.']
images: ['$_REGISTRY/cb-app:$SHORT_SHA']
substitutions:
  _GREETING: hello
options:
  machineType: E2_HIGHCPU_8
"#;

/// A git checkout holding the build, on branch `main`; returns its commit.
fn checkout(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("cloudbuild.yaml"), CLOUDBUILD).unwrap();
    std::fs::write(
        dir.join("Containerfile"),
        format!("FROM {BASE}\nCOPY message /message\n"),
    )
    .unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&[
        "commit",
        "-q",
        "-m",
        &format!("build {}", std::process::id()),
    ]);
    git(&["rev-parse", "HEAD"])
}

fn build(args: &[&str]) -> Output {
    build_with_path(args, &std::env::var("PATH").unwrap_or_default())
}

fn build_with_path(args: &[&str], path: &str) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .env_remove("GANTRY_URL")
        .env_remove("GANTRY_CONTAINER_ENGINE")
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gantry build");
    wait_output(child, args, Duration::from_secs(180))
}

#[test]
fn gantry_build_runs_a_cloud_build_file_unchanged() {
    podman();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("src");
    let commit = checkout(&source);
    let short = &commit[..7];
    let registry = registry();
    let substitutions = format!("_REGISTRY={registry}");
    let out = build(&[
        "build",
        source.to_str().unwrap(),
        "--substitutions",
        &substitutions,
        "--project",
        "acme",
    ])
    .ok();
    assert!(
        out.stdout
            .contains(&format!("[test] testing {short} on main in acme")),
        "{out:#?}"
    );
    assert!(
        out.stdout.contains("[test] /root"),
        "$$HOME reaches the shell: {out:#?}"
    );
    assert!(
        out.stderr.contains(
            "warning: cloudbuild.yaml:14: options field \"machineType\" only applies on Google Cloud Build; ignored"
        ),
        "{out:#?}"
    );
    assert!(
        out.stderr
            .contains(&format!("pushed {registry}/cb-app:{short} (sha256:")),
        "{out:#?}"
    );
    assert!(registry_tags("cb-app").contains(&short.to_owned()));

    // Bad files and substitutions fail before anything runs, naming the problem.
    std::fs::write(
        source.join("bad.yaml"),
        "steps:\n- name: localhost/gantry-test-base\n  args: [echo, $_NOPE]\nartifacts:\n  objects: {}\n",
    )
    .unwrap();
    build(&["build", source.to_str().unwrap(), "--config", "bad.yaml"])
        .fails_with("bad.yaml:4: field \"artifacts\" is not supported by gantry build");
    build(&["build", source.to_str().unwrap()]).fails_with(
        "step 2 args: substitution $_REGISTRY is not defined; define it in \"substitutions\" or with --substitutions",
    );
    build(&[
        "build",
        source.to_str().unwrap(),
        "--substitutions",
        &format!("{substitutions},_EXTRA=1"),
    ])
    .fails_with("substitution \"_EXTRA\" is not used anywhere in the build");

    // Without a container engine, host steps (the source copy) still run and
    // a container step fails naming the problem.
    build(&[
        "build",
        source.to_str().unwrap(),
        "--container-engine",
        "/nonexistent/podman",
    ])
    .fails_with("container engine \"/nonexistent/podman\" is not installed");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for program in ["/bin/cp", "/bin/sh", "/usr/bin/git"] {
        std::os::unix::fs::symlink(program, bin.join(Path::new(program).file_name().unwrap()))
            .unwrap();
    }
    std::fs::write(
        source.join("plain.yaml"),
        "steps:\n- id: test\n  name: localhost/gantry-test-base\n  args: [echo, hi]\n",
    )
    .unwrap();
    let out = build_with_path(
        &["build", source.to_str().unwrap(), "--config", "plain.yaml"],
        bin.to_str().unwrap(),
    )
    .fails_with(
        "step 2 (test) runs in image \"localhost/gantry-test-base\" but no container engine is installed (podman or docker)",
    );
    assert!(
        !out.stderr.contains("step 1 (source)"),
        "the source copy failed: {out:#?}"
    );
}

#[test]
fn a_run_stage_takes_its_steps_from_a_cloud_build_file() {
    podman();
    let server = Server::start(Backend::Sqlite);
    let source = server.work().join("repo");
    let commit = checkout(&source);
    let short = &commit[..7];
    let registry = registry();
    server.apply(&format!(
        r#"
pipelines:
  - name: cloudbuild
    stages:
      - id: checkout
        type: run
        steps:
          - command: [git, clone, -q, {source}, .]
      - id: build
        type: run
        dependsOn: [checkout]
        config: cloudbuild.yaml
        substitutions:
          _REGISTRY: {registry}
"#,
        source = source.display()
    ));
    let id = server.run("cloudbuild", &[]);
    let execution = server.wait_terminal(&id);
    let logs = log_text(&server, &id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}\n{logs}");
    assert!(
        logs.contains(&format!("testing {short} on main in gantry")),
        "{logs}"
    );
    assert!(logs.contains("warning: cloudbuild.yaml:14: options field \"machineType\""));
    let images = &stage(&execution, "build")["outputs"]["images"];
    assert_eq!(images[0]["image"], format!("{registry}/cb-app:{short}"));
    assert!(images[0]["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(registry_tags("cb-app").contains(&short.to_owned()));
}
