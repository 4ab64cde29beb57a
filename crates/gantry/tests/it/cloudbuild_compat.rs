//! Cloud Build files read as Cloud Build and `gcloud` read them, through the
//! real `gantry build`: `--dry-run` for what the file means and every
//! problem a run would refuse, and one real build in podman.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{BIN, Output, wait_output};
use crate::steps_podman::{BASE, podman};

fn build(args: &[&str]) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .env_remove("GANTRY_URL")
        .env_remove("GANTRY_CONTAINER_ENGINE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gantry build");
    wait_output(child, args, Duration::from_secs(180))
}

/// A source directory holding `cloudbuild.yaml` with `text`.
fn source(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cloudbuild.yaml"), text).unwrap();
    dir
}

fn dry_run(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build", dir.to_str().unwrap(), "--dry-run"];
    args.extend_from_slice(extra);
    build(&args)
}

#[test]
fn a_dry_run_reports_every_problem_a_run_would_refuse_at_once_with_lines() {
    let dir = source(
        r#"steps:
- name: localhost/gantry-test-base
  id: build
  args: [echo, ok]
- name: localhost/gantry-test-base
  id: build
  waitFor: [tset]
  dir: /src
  timeout: 900s
- name: localhost/gantry-test-base
  script: echo hi
  args: [no]
  entrypoint: sh
- name: localhost/gantry-test-base
  args: [echo, $_NOPE]
timeout: 600s
"#,
    );
    let out = dry_run(dir.path(), &[]).fails_with(
        "cloudbuild.yaml:7: step 2 (\"build\") waits for \"tset\", which is not the id of any step",
    );
    for needle in [
        "cloudbuild.yaml:6: step 2 (\"build\") has the id \"build\" of step 1 too; ids must be unique",
        "cloudbuild.yaml:8: step 2 (\"build\") dir \"/src\" is absolute",
        "cloudbuild.yaml:9: step 2 (\"build\") timeout 900s is longer than the build's timeout, 600s",
        "cloudbuild.yaml:11: step 3 has both \"script\" and \"args\"; give one",
        "cloudbuild.yaml:11: step 3 has both \"script\" and \"entrypoint\"",
        "step 4 args: substitution $_NOPE is not defined",
    ] {
        assert!(out.stderr.contains(needle), "{needle:?} in {out:#?}");
    }

    let dir = source("steps:\n- name: a\n  wait_for: ['-']\n  argz: [x]\n");
    dry_run(dir.path(), &[])
        .fails_with("cloudbuild.yaml:4: unknown step 1 field \"argz\"; did you mean \"args\"?");

    // The secret's name comes from a substitution, and a dry run checks
    // it can be read as the run would read it.
    let dir = source(
        "steps:\n- name: a\n  secretEnv: [TOKEN]\navailableSecrets:\n  secretManager:\n  - versionName: projects/$PROJECT_ID/secrets/${_SECRET}/versions/1\n    env: TOKEN\nsubstitutions:\n  _SECRET: cb-compat-unset-secret\n",
    );
    dry_run(dir.path(), &["--secrets-from-env"]).fails_with(
        "secret \"cb-compat-unset-secret\" (availableSecrets): --secrets-from-env reads it from the variable cb-compat-unset-secret, which is not set",
    );

    let dir = source("steps:\n- name: a\n---\nsteps:\n- name: b\n");
    dry_run(dir.path(), &[])
        .fails_with("cloudbuild.yaml holds 2 YAML documents; Cloud Build reads one");

    // Objects are kept; the kinds Gantry does not store are refused by name.
    let dir = source(
        "steps:\n- name: a\nartifacts:\n  objects:\n    location: b/\n    paths: ['*.tgz']\n  npmPackages: []\n",
    );
    let out = dry_run(dir.path(), &[]).fails_with(
        "cloudbuild.yaml:3: field \"artifacts\" is not supported by gantry build: Gantry does not store artifacts.npmPackages (npm packages uploaded to Artifact Registry)",
    );
    assert!(
        out.stderr
            .contains("artifacts.objects location \"b/\" must be gs://BUCKET[/DIR]"),
        "{out:#?}"
    );
}

#[test]
fn a_dry_run_reads_files_as_gcloud_and_cloud_build_do() {
    podman();
    let dir = source(
        r#"
steps:
- name: localhost/gantry-test-base
  id: loop
  entrypoint: sh
  args: ['-c', 'for dir in a b; do echo "$dir ${version}" $$HOME; done; echo $_IMAGE']
- name: localhost/gantry-test-base
  wait_for: []
  script: |
    #!/bin/ash -eu
    echo "$_USER"
substitutions:
  _REGION: europe-west1
  _IMAGE: ${_REGION}-docker.pkg.dev/$PROJECT_ID/app:$TAG_NAME
  _USER: ann
options:
  substitution_option: MUST_MATCH
  automap_substitutions: true
  machine_type: E2_HIGHCPU_8
"#,
    );
    let out = dry_run(
        dir.path(),
        &["--project", "acme", "--substitutions", "TAG_NAME=v1.2"],
    )
    .ok();
    let steps: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        steps[0]["args"][1],
        "for dir in a b; do echo \"$dir ${version}\" $HOME; done; echo europe-west1-docker.pkg.dev/acme/app:v1.2",
        "{out:#?}"
    );
    assert_eq!(steps[1]["entrypoint"], "/bin/ash", "{out:#?}");
    assert_eq!(steps[1]["args"][0], "-eu", "{out:#?}");
    assert_eq!(steps[1]["env"]["_USER"], "ann", "{out:#?}");
    assert!(steps[1].get("waitFor").is_none(), "{out:#?}");
    assert!(
        out.stderr.contains(
            "cloudbuild.yaml:19: options field \"machineType\" only applies on Google Cloud Build; ignored"
        ),
        "{out:#?}"
    );

    dry_run(
        dir.path(),
        &["--substitutions", "TAG_NAME=v1,PROJECT_ID=other"],
    )
    .fails_with("substitution \"PROJECT_ID\" cannot be given: gantry build sets it from --project");
}

#[test]
fn a_script_keeps_its_shell_variables_runs_under_its_interpreter_and_home_is_shared_in_podman() {
    podman();
    let dir = source(&format!(
        r#"
steps:
- name: {BASE}
  id: script
  script: |
    #!/bin/ash -eu
    for dir in a b; do version="v-$dir"; echo "dir=$dir version=${{version}}"; done
    echo "user=$_USER"
- name: {BASE}
  id: args
  entrypoint: sh
  args: ['-c', 'for f in x; do echo "f=$f home=$$HOME"; done; echo kept > $$HOME/.note']
- name: {BASE}
  id: later
  entrypoint: sh
  args: ['-c', 'echo "note=$(cat $$HOME/.note)"']
substitutions:
  _USER: ann
options:
  automapSubstitutions: true
"#
    ));
    let out = build(&["build", dir.path().to_str().unwrap()]).ok();
    for line in [
        "[script] dir=a version=v-a",
        "[script] dir=b version=v-b",
        "[script] user=ann",
        // HOME is Cloud Build's /builder/home, shared by the build's steps.
        "[args] f=x home=/builder/home",
        "[later] note=kept",
    ] {
        assert!(out.stdout.contains(line), "{line:?} in {out:#?}");
    }
}

#[test]
fn an_image_an_earlier_step_built_is_the_builder_of_a_later_one_under_its_own_name() {
    podman();
    let dir = source(
        r#"
steps:
- id: tool
  name: gcr.io/cloud-builders/docker
  args: ['build', '-t', 'gcr.io/$PROJECT_ID/gantry-test-tool:$BUILD_ID', '.']
- id: use
  name: gcr.io/$PROJECT_ID/gantry-test-tool:$BUILD_ID
  entrypoint: sh
  args: ['-c', 'cat /marker']
"#,
    );
    std::fs::write(
        dir.path().join("Containerfile"),
        format!("FROM {BASE}\nCOPY marker /marker\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("marker"), "built by step one\n").unwrap();
    let out = build(&["build", dir.path().to_str().unwrap(), "--project", "acme"]).ok();
    assert!(out.stdout.contains("[use] built by step one"), "{out:#?}");
    // Without the building step, the same name is a Google image this machine cannot pull.
    let alone = source(
        r#"
steps:
- name: gcr.io/acme/gantry-test-tool:1
  args: ['true']
"#,
    );
    dry_run(alone.path(), &[]).fails_with("cannot be pulled here");
    let listed = Command::new("podman")
        .args([
            "images",
            "-q",
            "--filter",
            "reference=gcr.io/acme/gantry-test-tool",
        ])
        .output()
        .expect("podman images");
    for id in String::from_utf8_lossy(&listed.stdout).split_whitespace() {
        let _ = Command::new("podman").args(["rmi", "-f", id]).output();
    }
}

#[test]
fn gantry_build_keeps_a_files_objects_under_their_bucket_path() {
    podman();
    let dir = source(&format!(
        r#"
steps:
- name: {BASE}
  entrypoint: sh
  args: ['-c', 'mkdir -p dist && echo "v1" > dist/app.txt']
artifacts:
  objects:
    location: gs://$PROJECT_ID-out/builds/
    paths: ['dist/*.txt']
"#
    ));
    let kept = dir.path().join("kept");
    let out = build(&[
        "build",
        dir.path().to_str().unwrap(),
        "--project",
        "acme",
        "--artifacts-dir",
        kept.to_str().unwrap(),
    ])
    .ok();
    let file = kept.join("acme-out/builds/app.txt");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap_or_default(),
        "v1\n",
        "{out:#?}"
    );
    assert!(out.stderr.contains("kept dist/app.txt as"), "{out:#?}");
}

/// Cloud Build's docker builder as Cloud Build runs it: a container holding the docker
/// CLI (the local builder image `gantry builders build` makes from Debian's packages), with
/// `/workspace` and a working `docker` even under `entrypoint: bash`, whose calls reach the
/// host's engine only through the Docker API gate: a build works (labelled as Gantry's), a
/// `docker run` mounting the host is refused naming the call.
#[test]
fn the_docker_builder_runs_as_a_container_whose_docker_reaches_only_image_work() {
    if std::env::var("GANTRY_TEST_SLOW").ok().as_deref() != Some("1") {
        eprintln!(
            "skipped: builds the docker builder image (about 2 minutes); set GANTRY_TEST_SLOW=1"
        );
        return;
    }
    podman();
    // Under a name of the test's own: other tests run the docker builder on the host, as
    // a machine without `gantry builders build` does.
    let image = &docker_builder_image("localhost/gantry-test-builder-");
    let dir = source(&format!(
        r#"
steps:
- id: look
  name: gcr.io/cloud-builders/docker
  entrypoint: bash
  args: ['-c', 'ls /workspace && docker version --format "engine {{{{.Server.Version}}}}"']
- id: build
  name: gcr.io/cloud-builders/docker
  args: ['build', '-t', 'localhost/gantry-gate-built:$BUILD_ID', '-f', 'Containerfile', '.']
- id: escape
  name: gcr.io/cloud-builders/docker
  args: ['run', '--rm', '-v', '/:/host', '{BASE}', 'cat', '/host/etc/hostname']
  allowFailure: true
"#
    ));
    std::fs::write(
        dir.path().join("Containerfile"),
        format!("FROM {BASE}\nCOPY marker /marker\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("marker"), "gate\n").unwrap();
    let map = format!("gcr.io/cloud-builders/docker={image}");
    let out = build(&["build", dir.path().to_str().unwrap(), "--image-map", &map]).ok();
    for line in [
        "[look] Containerfile",
        "[look] engine ",
        "[build] Successfully tagged localhost/gantry-gate-built:",
    ] {
        assert!(out.stdout.contains(line), "{line:?} in {out:#?}");
    }
    assert!(
        out.stdout.contains("[escape] docker: Error response from daemon: gantry: the docker builder may not call POST")
            && out.stdout.contains("containers/create"),
        "{out:#?}"
    );
    let built = Command::new("podman")
        .args([
            "images",
            "-q",
            "--filter",
            "reference=localhost/gantry-gate-built",
            "--filter",
            "label=io.gantry.built=true",
        ])
        .output()
        .expect("podman images");
    let ids = String::from_utf8_lossy(&built.stdout).into_owned();
    assert!(!ids.trim().is_empty(), "the build is labelled as Gantry's");
    for id in ids.split_whitespace() {
        let _ = Command::new("podman").args(["rmi", "-f", id]).output();
    }
    // The builder's layers would otherwise weigh on every later reader of podman's storage.
    let _ = Command::new("podman").args(["rmi", "-f", image]).output();
}

/// The docker builder image `gantry builders build` makes, under `prefix` (a test's own,
/// as the tests that remove it run in parallel), built unless it is there already; its
/// name.
pub(crate) fn docker_builder_image(prefix: &str) -> String {
    let image = format!("{prefix}docker:latest");
    let present = Command::new("podman")
        .args(["image", "exists", &image])
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        let child = Command::new(BIN)
            .args(["builders", "build", "--only", "docker", "--prefix", prefix])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gantry builders build");
        wait_output(child, &["builders", "build"], Duration::from_secs(900)).ok();
    }
    image
}

/// The plain-shell builders (`bash`, `ubuntu`, `debian`) run without an `--image-map` once
/// `gantry builders build` made the shell image: options go to bash, as in the `bash`
/// image, and a command runs as is, as in `ubuntu`.
#[test]
fn the_shell_builder_stands_in_for_bash_and_ubuntu_without_an_image_map() {
    if std::env::var("GANTRY_TEST_SLOW").ok().as_deref() != Some("1") {
        eprintln!("skipped: builds the shell builder image (about 30 s); set GANTRY_TEST_SLOW=1");
        return;
    }
    podman();
    for name in ["bash", "ubuntu"] {
        let present = Command::new("podman")
            .args(["image", "exists", name])
            .status();
        if present.is_ok_and(|s| s.success()) {
            eprintln!("skipped: this machine has an image {name:?} of its own, which wins");
            return;
        }
    }
    let child = Command::new(BIN)
        .args(["builders", "build", "--only", "shell"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gantry builders build");
    wait_output(child, &["builders", "build"], Duration::from_secs(600)).ok();
    let dir = source(
        r#"
steps:
- id: bash
  name: bash
  args: ['-c', 'echo "options go to bash in $$0"']
- id: ubuntu
  name: ubuntu
  args: ['echo', 'a command runs as is']
"#,
    );
    let out = build(&["build", dir.path().to_str().unwrap()]);
    let _ = Command::new("podman")
        .args(["rmi", "-f", "localhost/gantry-builder-shell:latest"])
        .output();
    let out = out.ok();
    for line in [
        "[bash] options go to bash in bash",
        "[ubuntu] a command runs as is",
    ] {
        assert!(out.stdout.contains(line), "{line:?} in {out:#?}");
    }
}
