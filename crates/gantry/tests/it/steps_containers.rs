//! Container steps with the real podman: the shared workspace and named
//! volumes, the step graph, cancel and timeout, a kill -9 of the server
//! during a container step, live logs, and bad images.

use std::time::{Duration, Instant};

use crate::harness::{Backend, Server, stage, wait_output};
use crate::steps_podman::{BASE, containers_of, log_text, podman, volumes_of};

fn server() -> Server {
    podman();
    Server::start(Backend::Sqlite)
}

/// A stage whose container steps pass files through the workspace and a
/// named volume, and a host step reading what they left; also run through
/// the docker CLI (steps_docker).
pub const SHARE: &str = r#"
  - name: share
    stages:
      - id: build
        type: run
        env:
          GREETING: hello
        steps:
          - name: write
            image: localhost/gantry-test-base:latest
            volumes: [{name: cache, path: /cache}]
            script: |
              test "$(pwd)" = /workspace
              echo "$GREETING from a container" > /workspace/greeting
              echo cached > /cache/entry
          - name: read
            image: localhost/gantry-test-base:latest
            dir: sub
            volumes: [{name: cache, path: /cache}]
            script: |
              test "$(pwd)" = /workspace/sub
              echo "greeting=$(cat /workspace/greeting)" >> $GANTRY_OUTPUT
              echo "cache=$(cat /cache/entry)" >> $GANTRY_OUTPUT
          - name: host
            script: cp greeting @W@/from-host
"#;

/// Runs [`SHARE`] (applied already) and checks what its steps passed on.
pub fn check_share(server: &Server) -> String {
    let id = server.run("share", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let outputs = &stage(&execution, "build")["outputs"];
    assert_eq!(outputs["greeting"], "hello from a container");
    assert_eq!(outputs["cache"], "cached");
    assert_eq!(
        std::fs::read_to_string(server.work().join("from-host")).unwrap(),
        "hello from a container\n"
    );
    id
}

#[test]
fn containers_share_the_workspace_and_named_volumes() {
    let server = server();
    assert!(SHARE.contains(BASE));
    server.apply(&format!("pipelines:{SHARE}"));
    let id = check_share(&server);
    assert_eq!(containers_of(&id), Vec::<String>::new());
    assert_eq!(
        volumes_of(&id),
        Vec::<String>::new(),
        "the stage's volumes outlived it"
    );
}

#[test]
fn steps_follow_cloud_build_wait_for_rules() {
    let server = server();
    // `a` and `b` start at once and each waits to see the other started:
    // they can only both finish if they overlap. `c` waits for both; `d`
    // (no waitFor) waits for every earlier step.
    server.apply(&format!(
        r#"
pipelines:
  - name: graph
    stages:
      - id: build
        type: run
        steps:
          - id: a
            image: {BASE}
            waitFor: ['-']
            script: |
              touch /workspace/a.started
              for i in $(seq 200); do [ -e /workspace/b.started ] && break; sleep 0.1; done
              test -e /workspace/b.started
              touch /workspace/a.done
          - id: b
            image: {BASE}
            waitFor: ['-']
            script: |
              touch /workspace/b.started
              for i in $(seq 200); do [ -e /workspace/a.started ] && break; sleep 0.1; done
              test -e /workspace/a.started
              touch /workspace/b.done
          - id: c
            image: {BASE}
            waitFor: [a, b]
            script: test -e /workspace/a.done && test -e /workspace/b.done && touch /workspace/c.done
          - id: d
            script: test -e c.done && echo order=ok >> $GANTRY_OUTPUT
"#
    ));
    let id = server.run("graph", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(
        execution["status"],
        "succeeded",
        "{execution:#}\n{}",
        log_text(&server, &id)
    );
    assert_eq!(stage(&execution, "build")["outputs"]["order"], "ok");

    // A reference to a later (or unknown) step is refused up front.
    let file = server.write_file(
        "bad.yaml",
        &format!(
            "pipelines:\n  - name: bad\n    stages:\n      - id: s\n        type: run\n        steps:\n          - image: {BASE}\n            waitFor: [later]\n            script: 'true'\n          - id: later\n            script: 'true'\n"
        ),
    );
    let out = server
        .cli(&["validate", file.to_str().unwrap()])
        .fails_with("waits for \"later\", which is not the id of an earlier step");
    assert!(out.stderr.contains("bad.yaml:8:23"), "{}", out.stderr);
}

#[test]
fn a_failed_step_stops_the_others_unless_allowed_to_fail() {
    let server = server();
    server.apply(&format!(
        r#"
pipelines:
  - name: failing
    stages:
      - id: build
        type: run
        steps:
          - id: slow
            image: {BASE}
            waitFor: ['-']
            script: sleep 300
          - id: tolerated
            image: {BASE}
            waitFor: ['-']
            allowFailure: true
            script: exit 3
          - id: allowed-code
            image: {BASE}
            waitFor: ['-']
            allowExitCodes: [7]
            script: exit 7
          - id: broken
            image: {BASE}
            waitFor: [tolerated, allowed-code]
            script: echo breaking; exit 4
"#
    ));
    let started = Instant::now();
    let id = server.run("failing", &[]);
    let execution = server.wait_terminal(&id);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the slow step was not stopped"
    );
    assert_eq!(execution["status"], "failed", "{execution:#}");
    assert_eq!(
        stage(&execution, "build")["error"],
        "step 4 (broken) exited with code 4"
    );
    let logs = log_text(&server, &id);
    assert!(
        logs.contains("step 2 (tolerated) exited with code 3 (allowed to fail: the stage goes on)"),
        "{logs}"
    );
    assert_eq!(containers_of(&id), Vec::<String>::new());
}

#[test]
fn cancel_and_timeout_remove_the_containers() {
    let server = server();
    server.apply(&format!(
        r#"
pipelines:
  - name: long
    stages:
      - id: build
        type: run
        steps:
          - image: {BASE}
            script: echo started; sleep 300
  - name: slow
    stages:
      - id: build
        type: run
        steps:
          - image: {BASE}
            timeout: 2s
            script: sleep 300
"#
    ));
    let id = server.run("long", &[]);
    wait_until("the step's container runs", || {
        containers_of(&id).len() == 1
    });
    server.cli(&["execution", "cancel", &id]).ok();
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "canceled", "{execution:#}");
    assert_eq!(containers_of(&id), Vec::<String>::new());

    let id = server.run("slow", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed");
    assert_eq!(
        stage(&execution, "build")["error"],
        "step 1 timed out after 2s"
    );
    assert_eq!(containers_of(&id), Vec::<String>::new());
}

crate::on_both_backends! {
    kill9_during_a_container_step_removes_the_orphan_and_reruns_it,
}

fn kill9_during_a_container_step_removes_the_orphan_and_reruns_it(server: &mut Server) {
    podman();
    server.apply(&format!(
        r#"
pipelines:
  - name: crash
    stages:
      - id: build
        type: run
        steps:
          - image: {BASE}
            script: |
              echo "run $(cat /workspace/go 2>/dev/null || echo first)"
              if [ ! -e /workspace/go ]; then sleep 300; fi
              echo "rerun=yes" >> $GANTRY_OUTPUT
"#
    ));
    let id = server.run("crash", &[]);
    wait_until("the step's container runs", || {
        containers_of(&id).len() == 1
    });
    let orphan = containers_of(&id);
    server.kill9();
    assert_eq!(
        containers_of(&id),
        orphan,
        "the container runs on without the server"
    );
    // The step runs again from the server's workspace (what the killed run
    // changed never came back): let that run end.
    std::fs::write(
        server.data_dir().join("workspaces").join(&id).join("go"),
        "again",
    )
    .unwrap();
    server.restart();
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(stage(&execution, "build")["outputs"]["rerun"], "yes");
    let logs = log_text(server, &id);
    assert!(logs.contains("run again"), "{logs}");
    // The local runner, started again with the server, stopped the killed
    // run's processes and removed its container before the step ran again.
    let tail = server.log_tail();
    assert!(
        tail.contains("stopped a step the previous agent process left")
            && tail.contains("containers=1"),
        "{tail}"
    );
    assert_eq!(containers_of(&id), Vec::<String>::new());
}

#[test]
fn a_follower_joining_mid_run_gets_the_backlog_then_live_lines() {
    let server = server();
    server.apply(&format!(
        r#"
pipelines:
  - name: chatty
    stages:
      - id: build
        type: run
        steps:
          - image: {BASE}
            script: |
              echo first line
              echo to stderr >&2
              while [ ! -e /workspace/go ]; do sleep 0.1; done
              echo last line
"#
    ));
    let id = server.run("chatty", &[]);
    wait_until("the first line is stored", || {
        log_text(&server, &id).contains("first line")
    });
    let follower = server.cli_spawn(&["logs", &id, "-f"]);
    // The follower is attached (it prints the backlog) before the rest comes.
    std::thread::sleep(Duration::from_millis(500));
    // The step runs on the local runner, in its copy of the workspace.
    std::fs::write(
        server
            .local_runner_dir()
            .join("workspaces")
            .join(&id)
            .join("go"),
        "",
    )
    .unwrap();
    let out = wait_output(follower, &["logs", "-f"], Duration::from_secs(60)).ok();
    let first = out.stdout.find("first line").expect("backlog");
    let stderr = out.stdout.find("to stderr").expect("stderr line");
    let last = out.stdout.find("last line").expect("live line");
    // stdout and stderr are two pipes: only the order within each, and
    // that both came before the live line, is certain.
    assert!(first < last && stderr < last, "{}", out.stdout);
    let streams: Vec<String> = server
        .logs(&id)
        .iter()
        .filter(|l| l["line"] == "to stderr")
        .map(|l| l["stream"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(streams, ["stderr"]);
}

#[test]
fn a_missing_image_fails_the_step_with_its_name() {
    let server = server();
    server.apply(
        r#"
pipelines:
  - name: missing
    stages:
      - id: build
        type: run
        steps:
          - name: compile
            image: localhost/no-such-image:1
            script: 'true'
"#,
    );
    let id = server.run("missing", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed");
    let error = stage(&execution, "build")["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.starts_with(
            "step 1 (compile): podman image localhost/no-such-image:1: not found locally and cannot be pulled"
        ),
        "{error}"
    );
}

pub fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
