//! `gantry serve --local-runner on`: the server starts its own runner as a
//! child process and hands it every step.

use crate::harness::{Server, read_pid, stage};
use crate::runners::wait_registered;

/// `gantry serve --local-runner on`: the server runs no step itself; its
/// child runner does, in its own work directory, and comes back when killed.
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
    let runner_dir = server.data_dir().join("local-runner");
    let where_ = stage(&execution, "build")["outputs"]["where"].to_string();
    assert!(
        where_.contains(runner_dir.to_str().unwrap()),
        "the step ran in {where_}"
    );
    // What it wrote is in the server's workspace for later stages.
    let workspace = server.data_dir().join("workspaces").join(&id);
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
