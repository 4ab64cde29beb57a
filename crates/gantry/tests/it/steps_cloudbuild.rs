//! Cloud Build files run unchanged: by `gantry build` (no server) and by a
//! `run` stage with `config:`, with substitutions from a real git checkout
//! and images pushed to the real loopback registry.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{BIN, Backend, Output, Server, stage, wait_output};
use crate::steps_podman::{
    AUTH_PASSWORD, AUTH_USER, BASE, auth_registry, containers_of, log_text, podman, registry,
    registry_tags, set_secret,
};

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

/// A pipeline `name` that clones `source` and runs its `cloudbuild.yaml`
/// with `_REGISTRY` set; `extra` is one more field of the build stage.
fn clone_and_build(name: &str, source: &Path, registry: &str, extra: &str) -> String {
    format!(
        r#"
  - name: {name}
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
        {extra}
"#,
        source = source.display()
    )
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
        out.stdout.contains("[test] /builder/home"),
        "$$HOME reaches the shell, as Cloud Build sets it: {out:#?}"
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
        .fails_with("bad.yaml:5: artifacts.objects needs a \"location\" (gs://BUCKET/DIR/)");
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

/// A file written for Google's registry pushes to the team's, unchanged:
/// `images:` and a `docker push` step both go where the registry map says,
/// over plain HTTP to a loopback registry.
#[test]
fn a_registry_map_sends_a_files_images_to_the_teams_registry() {
    podman();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("src");
    let commit = checkout(&source);
    let short = &commit[..7];
    std::fs::write(
        source.join("google.yaml"),
        r#"
steps:
- name: gcr.io/cloud-builders/docker
  args: ['build', '-t', 'gcr.io/$PROJECT_ID/mapped-app:$SHORT_SHA', '-f', 'Containerfile', '.']
- name: gcr.io/cloud-builders/docker
  args: ['tag', 'gcr.io/$PROJECT_ID/mapped-app:$SHORT_SHA', 'gcr.io/$PROJECT_ID/mapped-app:pushed-by-step']
- name: gcr.io/cloud-builders/docker
  args: ['push', 'gcr.io/$PROJECT_ID/mapped-app:pushed-by-step']
images: ['gcr.io/$PROJECT_ID/mapped-app:$SHORT_SHA']
"#,
    )
    .unwrap();
    std::fs::write(source.join("message"), "mapped\n").unwrap();
    let registry = registry();
    let map = format!("gcr.io/acme={registry}/acme");
    let out = build(&[
        "build",
        source.to_str().unwrap(),
        "--config",
        "google.yaml",
        "--project",
        "acme",
        "--registry-map",
        &map,
    ])
    .ok();
    assert!(
        out.stderr.contains(&format!(
            "pushed {registry}/acme/mapped-app:{short} (sha256:"
        )),
        "{out:#?}"
    );
    let tags = registry_tags("acme/mapped-app");
    assert!(tags.contains(&short.to_owned()), "{tags:?}");
    assert!(tags.contains(&"pushed-by-step".to_owned()), "{tags:?}");

    build(&[
        "build",
        source.to_str().unwrap(),
        "--config",
        "google.yaml",
        "--registry-map",
        "gcr.io/acme",
    ])
    .fails_with("registry map entry \"gcr.io/acme\" must be FROM=TO");
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
        "pipelines:{}",
        clone_and_build("cloudbuild", &source, &registry, "")
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

/// The `images` of a Cloud Build file go to a registry that wants a login
/// with the credentials the stage names in the secret store.
#[test]
fn a_cloud_build_files_images_are_pushed_with_the_stages_credentials() {
    podman();
    let server = Server::start(Backend::Sqlite);
    let source = server.work().join("repo");
    let commit = checkout(&source);
    let short = &commit[..7];
    let registry = auth_registry();
    set_secret(
        &server,
        "REGISTRY_LOGIN",
        &format!("{AUTH_USER}:{AUTH_PASSWORD}"),
    );
    server.apply(&format!(
        "pipelines:{}{}",
        clone_and_build(
            "cb-login",
            &source,
            &registry,
            "credentials: REGISTRY_LOGIN"
        ),
        clone_and_build("cb-anonymous", &source, &registry, ""),
    ));

    let id = server.run("cb-login", &[]);
    let execution = server.wait_terminal(&id);
    let mut logs = log_text(&server, &id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}\n{logs}");
    let tags = reqwest::blocking::Client::new()
        .get(format!("http://{registry}/v2/cb-app/tags/list"))
        .basic_auth(AUTH_USER, Some(AUTH_PASSWORD))
        .send()
        .and_then(|r| r.json::<serde_json::Value>())
        .unwrap();
    assert!(
        tags["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == short)),
        "{tags}"
    );

    let id = server.run("cb-anonymous", &[]);
    let execution = server.wait_terminal(&id);
    logs.push_str(&log_text(&server, &id));
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let error = stage(&execution, "build")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.starts_with("images: registry ")
            && error
                .ends_with("it needs credentials (credentials: a secret holding user:password)"),
        "{error}"
    );
    assert!(!logs.contains(AUTH_PASSWORD), "the password reached a log");
    assert!(!server.log_tail().contains(AUTH_PASSWORD));
}

/// `availableSecrets` read by `gantry build` from a server's secret store
/// (its data directory: database and key file), as the server would.
#[test]
fn gantry_build_reads_available_secrets_from_a_servers_store() {
    podman();
    let server = Server::start(Backend::Sqlite);
    const VALUE: &str = "build-tok-93b7e1";
    set_secret(&server, "deploy-token", VALUE);
    let source = tempfile::tempdir().unwrap();
    // The step proves it got the value (from a file the build file does
    // not print).
    std::fs::write(source.path().join("expected"), VALUE).unwrap();
    std::fs::write(
        source.path().join("cloudbuild.yaml"),
        r#"
steps:
- id: use
  name: localhost/gantry-test-base
  entrypoint: sh
  secretEnv: [TOKEN]
  args: ['-c', 'echo "token is $$TOKEN"; test "$$TOKEN" = "$(cat expected)"']
availableSecrets:
  secretManager:
  - versionName: projects/p/secrets/deploy-token/versions/latest
    env: TOKEN
"#,
    )
    .unwrap();
    let dir = source.path().to_str().unwrap();
    let data_dir = server.data_dir();
    let data_dir = data_dir.to_str().unwrap();
    let out = build(&["build", dir, "--data-dir", data_dir]).ok();
    assert!(out.stdout.contains("[use] token is ***"), "{out:#?}");
    assert!(!out.stdout.contains(VALUE) && !out.stderr.contains(VALUE));

    // From the environment, when asked for.
    let child = Command::new(BIN)
        .args(["build", dir, "--secrets-from-env"])
        .env("deploy-token", VALUE)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, &["build"], Duration::from_secs(120)).ok();
    assert!(out.stdout.contains("[use] token is ***"), "{out:#?}");

    // Nowhere to read it from, or not there: clear errors, nothing runs.
    let empty = tempfile::tempdir().unwrap();
    build(&["build", dir, "--data-dir", empty.path().to_str().unwrap()]).fails_with(&format!(
        "{} has no gantry.db: is it a server's data directory? (--database for a server on PostgreSQL)",
        empty.path().display()
    ));
    build(&["build", dir, "--secrets-from-env"]).fails_with(
        "secret \"deploy-token\" (availableSecrets): --secrets-from-env reads it from the variable deploy-token, which is not set",
    );
    server.cli(&["secret", "delete", "deploy-token"]).ok();
    build(&["build", dir, "--data-dir", data_dir]).fails_with(&format!(
        "secret \"deploy-token\" (availableSecrets) does not exist in the secret store of {data_dir}"
    ));
}

/// A `config:` stage's Cloud Build file: its top-level `timeout` bounds the
/// stage, and the secrets it names are masked in every stage's log of the
/// execution, including one that was already running when it read them.
#[test]
fn a_config_files_timeout_and_secrets_apply_to_the_whole_execution() {
    podman();
    let server = Server::start(Backend::Sqlite);
    const VALUE: &str = "cb-secret-71f0aa";
    set_secret(&server, "cb-token", VALUE);
    std::fs::create_dir(server.work().join("files")).unwrap();
    server.write_file(
        "files/cloudbuild.yaml",
        r#"
steps:
- name: localhost/gantry-test-base
  entrypoint: sh
  secretEnv: [TOKEN]
  args: ['-c', 'echo "in build $$TOKEN"; echo "$$TOKEN" > .t && mv .t token']
availableSecrets:
  secretManager:
  - versionName: projects/p/secrets/cb-token/versions/1
    env: TOKEN
"#,
    );
    server.write_file(
        "files/slow.yaml",
        "steps:\n- name: localhost/gantry-test-base\n  args: [sleep, '300']\ntimeout: 2s\n",
    );
    server.apply(
        r#"
pipelines:
  - name: masked
    stages:
      # Started before the Cloud Build file is read.
      - id: parallel
        type: run
        steps:
          - script: |
              for _ in $(seq 600); do [ -f token ] && break; sleep 0.1; done
              echo "parallel reads $(cat token)"
      - id: files
        type: run
        steps:
          - command: [cp, @W@/files/cloudbuild.yaml, .]
      - id: build
        type: run
        dependsOn: [files]
        config: cloudbuild.yaml
      - id: later
        type: run
        dependsOn: [build]
        steps:
          - script: echo "later reads $(cat token)"
  - name: slow
    stages:
      - id: files
        type: run
        steps:
          - command: [cp, @W@/files/slow.yaml, .]
      - id: build
        type: run
        dependsOn: [files]
        config: slow.yaml
"#,
    );
    let id = server.run("masked", &[]);
    let execution = server.wait_terminal(&id);
    let logs = log_text(&server, &id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}\n{logs}");
    for line in ["in build ***", "parallel reads ***", "later reads ***"] {
        assert!(logs.contains(line), "{line:?} in {logs}");
    }
    assert!(!logs.contains(VALUE), "a secret value reached the logs");

    let id = server.run("slow", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed");
    assert_eq!(
        stage(&execution, "build")["error"],
        "the build timed out after 2s (timeout in slow.yaml)"
    );
    assert_eq!(containers_of(&id), Vec::<String>::new());
}

/// `gantry serve --registry-map` (here through its variable) sends the images a pipeline's
/// Cloud Build file names under Google's registry to the team's, as `gantry build` does.
#[test]
fn a_servers_registry_map_sends_a_run_stages_images_to_the_teams_registry() {
    podman();
    let registry = registry();
    let map = format!("gcr.io/gantry={registry}/gantry");
    let server = Server::start_with_env(&[("GANTRY_REGISTRY_MAP", &map)]);
    server.apply(&format!(
        r#"
pipelines:
  - name: mapped
    stages:
      - id: prepare
        type: run
        steps:
          - script: |
              printf 'FROM {BASE}\n' > Containerfile
              cat > cloudbuild.yaml <<'CB'
              steps:
              - name: gcr.io/cloud-builders/docker
                args: ['build', '-t', 'gcr.io/$PROJECT_ID/server-mapped:$BUILD_ID', '.']
              images: ['gcr.io/$PROJECT_ID/server-mapped:$BUILD_ID']
              CB
      - {{ id: build, type: run, dependsOn: [prepare], config: cloudbuild.yaml }}
"#
    ));
    let id = server.run("mapped", &[]);
    let execution = server.wait_terminal(&id);
    let logs = log_text(&server, &id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}\n{logs}");
    let pushed = &stage(&execution, "build")["outputs"]["images"][0]["image"];
    assert_eq!(
        pushed,
        &format!("{registry}/gantry/server-mapped:{id}"),
        "{logs}"
    );
    let tags = registry_tags("gantry/server-mapped");
    assert!(tags.contains(&id), "{tags:?}");
}
