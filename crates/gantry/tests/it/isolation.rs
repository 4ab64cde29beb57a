//! Pipeline code cannot reach the server's data: a host step and a
//! container step each try to read the admin token, the secret key, the
//! database and another execution's workspace (the server's, and the local
//! runner's copy of it), the local runner's credential and its podman's
//! state (through which it could enter other jobs' containers), to push into a
//! hosted repository by its path and to write into it; every attempt fails, while
//! the same steps' ordinary work (their workspace, a clone over the
//! authenticated git endpoint) still succeeds.

use crate::git_support::{Clone, repo_url};
use crate::harness::{Backend, Server};
use crate::steps_podman::{BASE, log_text, podman};

/// The attempts, in POSIX sh (busybox's too); each prints `LEAK: …` when it
/// succeeds.
const ATTEMPTS: &str = r#"
D=@D@
leak() { echo "LEAK: $1"; }
cat "$D/admin-token" >/dev/null 2>&1 && leak admin-token
cat "$D/secrets.key" >/dev/null 2>&1 && leak secrets.key
cat "$D/gantry.db" >/dev/null 2>&1 && leak gantry.db
cat "$D/workspaces/@OTHER@/marker" >/dev/null 2>&1 && leak other-workspace
ls "$D/workspaces" >/dev/null 2>&1 && leak list-workspaces
cat "@R@/workspaces/@OTHER@/marker" >/dev/null 2>&1 && leak other-workspace-on-the-runner
cat "@R@/credential.json" >/dev/null 2>&1 && leak runner-credential
ls "@H@/.local/share/containers/storage" >/dev/null 2>&1 && leak runner-engine-storage
podman ps -a >/dev/null 2>&1 && leak runner-engine
touch "$D/repos/app.git/evil" 2>/dev/null && leak write-repository
echo "[data-dir=$GANTRY_DATA_DIR]"
echo built > built-by-$STEP
test -s built-by-$STEP
"#;

const GIT_ATTEMPTS: &str = r#"
export GIT_AUTHOR_NAME=eve GIT_AUTHOR_EMAIL=eve@example.com
export GIT_COMMITTER_NAME=eve GIT_COMMITTER_EMAIL=eve@example.com
git init -q evil && cd evil && git commit -q --allow-empty -m evil
git push -q "$D/repos/app.git" HEAD:refs/heads/evil 2>/dev/null && leak push-by-path
cd ..
git clone -q "$D/repos/app.git" by-path 2>/dev/null && leak clone-by-path
git clone -q @URL@ over-http && test -f over-http/README && echo cloned-over-http
"#;

#[test]
fn steps_cannot_reach_the_data_directory_or_write_hosted_repositories() {
    podman();
    let server = Server::start(Backend::Sqlite);
    server.cli(&["repo", "create", "app", "--public"]).ok();
    let clone = Clone::init(&server, "app-src");
    clone.commit(&[("README", "hello\n")], "first");
    clone
        .git(&[
            "push",
            "-q",
            &repo_url(&server, "app", Some(&server.token)),
            "main",
        ])
        .ok();

    server.apply(
        r#"
pipelines:
  - name: other
    stages:
      - id: write
        type: run
        steps:
          - script: echo private > marker
"#,
    );
    let other = server.run("other", &[]);
    assert_eq!(server.wait_terminal(&other)["status"], "succeeded");
    let marker = server
        .data_dir()
        .join("workspaces")
        .join(&other)
        .join("marker");
    assert!(marker.exists(), "the other execution wrote its marker");
    let runner_dir = server.local_runner_dir();
    for there in [
        runner_dir.join("workspaces").join(&other).join("marker"),
        runner_dir.join("credential.json"),
    ] {
        assert!(there.exists(), "{} is there to read", there.display());
    }

    let attempts = ATTEMPTS
        .replace("@D@", server.data_dir().to_str().unwrap())
        .replace("@R@", server.local_runner_dir().to_str().unwrap())
        .replace(
            "@H@",
            crate::steps_podman::runner_account().2.to_str().unwrap(),
        )
        .replace("@OTHER@", &other);
    let host_script = format!(
        "{attempts}{}",
        GIT_ATTEMPTS.replace("@URL@", &repo_url(&server, "app", None))
    );
    let yaml = format!(
        r#"
pipelines:
  - name: attack
    stages:
      - id: attack
        type: run
        steps:
          - env: {{STEP: host}}
            script: |
{host}
          - image: {BASE}
            env: {{STEP: container}}
            script: |
{container}
"#,
        host = indent(&host_script),
        container = indent(&attempts),
    );
    server.apply(&yaml);
    let id = server.run("attack", &[]);
    let execution = server.wait_terminal(&id);
    let logs = log_text(&server, &id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}\n{logs}");
    let leaks: Vec<&str> = logs.lines().filter(|l| l.contains("LEAK:")).collect();
    assert!(
        leaks.is_empty(),
        "steps reached the data directory: {leaks:#?}"
    );
    assert_eq!(
        logs.matches("[data-dir=]").count(),
        2,
        "GANTRY_DATA_DIR reached a step:\n{logs}"
    );
    assert!(logs.contains("cloned-over-http"), "{logs}");
    let workspace = server.data_dir().join("workspaces").join(&id);
    for step in ["host", "container"] {
        assert!(workspace.join(format!("built-by-{step}")).exists());
    }
    let repository = server.data_dir().join("repos/app.git");
    assert!(!repository.join("evil").exists());
    assert!(!repository.join("refs/heads/evil").exists());
}

fn indent(script: &str) -> String {
    script
        .lines()
        .map(|l| format!("              {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn host_steps_turned_off_fail_naming_the_setting_while_container_steps_run() {
    podman();
    let server = Server::start_with_env(&[("GANTRY_HOST_STEPS", "off")]);
    server.apply(&format!(
        r#"
pipelines:
  - name: mixed
    stages:
      - id: in_container
        type: run
        steps:
          - image: {BASE}
            script: echo from a container
      - id: on_host
        type: run
        dependsOn: [in_container]
        steps:
          - script: touch @W@/host-step-ran
"#
    ));
    let id = server.run("mixed", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed", "{execution:#}");
    assert_eq!(
        crate::harness::stage(&execution, "in_container")["status"],
        "succeeded"
    );
    let error = crate::harness::stage(&execution, "on_host")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.contains("--host-steps off"), "{error}");
    assert!(!server.work().join("host-step-ran").exists());
}

/// An instance the local provider starts is kept out of the data directory
/// like a step: its command tries each read and write before it starts
/// serving, and its log (written by the data plane) shows none succeeded,
/// while the instance itself serves.
#[test]
fn an_instance_cannot_read_the_data_directory() {
    use crate::deploy_support::{free_port, get, testapp};
    let server = Server::start(Backend::Sqlite);
    let data = server.data_dir().canonicalize().expect("data dir");
    let port = free_port();
    let probe = ATTEMPTS
        .replace("@D@", &data.display().to_string())
        .replace("@OTHER@", "none")
        .replace("$STEP", "instance");
    let script = server.write_file(
        "instance.sh",
        &format!("{probe}\nexec {}\n", testapp().display()),
    );
    server.apply(&format!(
        r#"applications:
  - name: box
loadBalancers:
  - name: box
    port: {port}
    cluster: box-web
    healthCheck: {{path: /health, interval: 200ms, timeout: 1s, healthyThreshold: 1, unhealthyThreshold: 2}}
pipelines:
  - name: deploy-box
    stages:
      - id: deploy
        type: deploy
        application: box
        stack: web
        command: sh {script}
        size: 1
        strategy: none
        healthTimeout: 20s
"#,
        script = script.display()
    ));
    let id = server.run("deploy-box", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(get(port, "/").0, 200, "the confined instance serves");

    let log =
        std::fs::read_to_string(data.join("deploy/server-groups/box-web-v000/instance-0.log"))
            .expect("instance log");
    assert!(
        !log.contains("LEAK"),
        "the instance reached the data directory:\n{log}"
    );
    assert!(
        log.contains("[data-dir=]"),
        "GANTRY_DATA_DIR reached the instance:\n{log}"
    );
}
