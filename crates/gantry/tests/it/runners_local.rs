//! `gantry serve --local-runner on`: the server starts its own runner as a
//! child process and hands it every step.

use crate::harness::{Backend, Server, read_pid, stage};
use crate::runners::wait_registered;

/// `gantry serve --local-runner on`: the server runs no step itself; its
/// child runner does, in the server's workspace, and comes back when killed.
#[test]
fn the_local_runner_runs_every_step_and_is_started_again_when_it_dies() {
    let server = Server::start_with_env(&[("GANTRY_LOCAL_RUNNER", "on")]);
    wait_registered(&server, &["local"]);
    server.apply(
        r#"
pipelines:
  - name: plain
    stages:
      - id: build
        type: run
        steps:
          - script: |
              echo built > artifact
              echo "where=$PWD" >> "$GANTRY_OUTPUT"
              echo $PPID > @W@/parent.pid
"#,
    );
    let id = server.run("plain", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    // It shares the server's disk: the step ran in place, in the server's
    // workspace, where later stages read what it wrote.
    let workspace = server.data_dir().join("workspaces").join(&id);
    let where_ = stage(&execution, "build")["outputs"]["where"].to_string();
    assert_eq!(
        where_,
        format!("\"{}\"", workspace.display()),
        "the step ran in {where_}"
    );
    assert_eq!(
        std::fs::read_to_string(workspace.join("artifact")).unwrap(),
        "built\n"
    );
    // The step's parent is the runner, a child of the server; kill it and
    // the server starts another that runs the next execution.
    let parent = read_pid(&server.work().join("parent.pid"));
    let runner = if command_of(parent).contains(" runner ") {
        parent
    } else {
        // The step's shell may sit below a sandbox helper.
        parent_of(parent).expect("the runner process")
    };
    assert!(
        command_of(runner).contains(" runner "),
        "{}",
        command_of(runner)
    );
    crate::runners_steps::nix_kill(runner).unwrap();
    std::fs::remove_file(server.work().join("parent.pid")).unwrap();
    let id = server.run("plain", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let again = read_pid(&server.work().join("parent.pid"));
    assert_ne!(again, parent, "the step ran under the killed runner");
}

/// On the embedded default (no setting) the server starts its local
/// runner, and a step without `runsOn` runs under it, never under the
/// server: as the step user, confined, it cannot read the server's
/// `secrets.key` nor list the data directory.
#[test]
fn by_default_a_step_runs_under_the_local_runner_and_cannot_read_the_servers_data() {
    let server = Server::start(Backend::Sqlite);
    wait_registered(&server, &["local"]);
    let data_dir = server.data_dir();
    assert!(data_dir.join("secrets.key").exists());
    server.apply(&format!(
        r#"
pipelines:
  - name: nosy
    stages:
      - id: build
        type: run
        steps:
          - script: |
              D={data_dir}
              if cat "$D/secrets.key" >/dev/null 2>&1; then echo "read=secrets.key" >> "$GANTRY_OUTPUT"; fi
              if ls "$D" >/dev/null 2>&1; then echo "listed=data-dir" >> "$GANTRY_OUTPUT"; fi
              if cat "$D/local-runner/credential.json" >/dev/null 2>&1; then echo "read=credential" >> "$GANTRY_OUTPUT"; fi
              echo "uid=$(id -u)" >> "$GANTRY_OUTPUT"
              echo $$ > @W@/step.pid
              sleep 1
"#,
        data_dir = data_dir.display()
    ));
    let id = server.run("nosy", &[]);
    let pid_file = server.work().join("step.pid");
    crate::steps_containers::wait_until("the step wrote its pid", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|t| t.trim().parse::<i32>().is_ok())
    });
    let mut ancestors = Vec::new();
    let mut pid = read_pid(&pid_file);
    while let Some(parent) = parent_of(pid).filter(|p| *p > 1) {
        ancestors.push(command_of(parent));
        pid = parent;
    }
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let outputs = &stage(&execution, "build")["outputs"];
    assert_eq!(outputs["read"], serde_json::Value::Null, "{outputs:#}");
    assert_eq!(outputs["listed"], serde_json::Value::Null, "{outputs:#}");
    let as_root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    if as_root {
        assert_ne!(outputs["uid"], "0", "the step ran as root");
    }
    // The step's ancestors: the runner, then the server that started it.
    let runner = ancestors
        .iter()
        .position(|c| c.contains(" runner "))
        .unwrap_or_else(|| panic!("no runner among the step's ancestors: {ancestors:#?}"));
    assert!(
        ancestors[..runner].iter().all(|c| !c.contains(" serve")),
        "the server runs the step itself: {ancestors:#?}"
    );
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(1)?.parse().ok()
}

fn command_of(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .unwrap_or_default()
}
