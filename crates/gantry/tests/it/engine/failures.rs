use std::time::{Duration, Instant};

use crate::harness::{Server, alive, lines, read_pid, stage};

/// Cancel kills the running step's whole process group within 2 s.
pub fn cancel_kills_the_running_step(server: &mut Server) {
    server.apply(
        r#"
pipelines:
  - name: spin
    stages:
      - id: spin
        type: run
        steps:
          - script: |
              sleep 60 &
              echo $! > @W@/child.pid
              echo $$ > @W@/shell.pid
              wait
      - id: after
        type: run
        dependsOn: [spin]
        steps:
          - script: echo ran >> @W@/after-spin
"#,
    );
    let id = server.run("spin", &[]);
    let work = server.work();
    let shell = read_pid(&work.join("shell.pid"));
    let child = read_pid(&work.join("child.pid"));
    assert!(alive(shell) && alive(child));

    server.cli(&["execution", "cancel", &id]).ok();
    let canceled = Instant::now();
    while alive(shell) || alive(child) {
        assert!(
            canceled.elapsed() < Duration::from_secs(2),
            "the step's processes outlived the cancel by 2 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "canceled", "{execution:#}");
    assert_eq!(execution["canceledBy"], "admin");
    assert_eq!(stage(&execution, "spin")["status"], "canceled");
    assert!(lines(&work.join("after-spin")).is_empty());
}

/// A step timeout and a stage timeout both fail the stage and kill the step.
pub fn step_and_stage_timeouts_fail_the_stage(server: &mut Server) {
    server.apply(
        r#"
pipelines:
  - name: slow-step
    stages:
      - id: slow
        type: run
        steps:
          - timeout: 1s
            script: |
              echo $$ > @W@/slow-step.pid
              sleep 60
  - name: slow-stage
    stages:
      - id: slow
        type: run
        timeout: 1s
        steps:
          - script: |
              echo $$ > @W@/slow-stage.pid
              sleep 60
"#,
    );
    for pipeline in ["slow-step", "slow-stage"] {
        let started = Instant::now();
        let id = server.run(pipeline, &[]);
        let pid = read_pid(&server.work().join(format!("{pipeline}.pid")));
        let execution = server.wait_terminal(&id);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{pipeline}: the timeout did not stop it"
        );
        assert_eq!(execution["status"], "failed", "{pipeline}: {execution:#}");
        let slow = stage(&execution, "slow");
        assert_eq!(slow["status"], "failed", "{pipeline}: {execution:#}");
        let error = slow["error"].as_str().unwrap_or_default().to_lowercase();
        assert!(
            error.contains("timed out") || error.contains("timeout"),
            "{pipeline}: {error:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) {
            assert!(
                Instant::now() < deadline,
                "{pipeline}: the timed-out step is still running"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A failed stage is restarted with everything after it; what succeeded
/// before it does not run again.
pub fn failed_stage_can_be_restarted(server: &mut Server) {
    server.apply(
        r#"
pipelines:
  - name: flaky
    stages:
      - id: setup
        type: run
        steps:
          - script: echo ran >> @W@/setup.count
      - id: flaky
        type: run
        dependsOn: [setup]
        steps:
          - script: |
              echo ran >> @W@/flaky.count
              test -f @W@/fixed
      - id: after
        type: run
        dependsOn: [flaky]
        steps:
          - script: echo ran >> @W@/after.count
"#,
    );
    let work = server.work();
    let id = server.run("flaky", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed", "{execution:#}");
    assert_eq!(stage(&execution, "flaky")["status"], "failed");
    assert!(lines(&work.join("after.count")).is_empty());

    std::fs::write(work.join("fixed"), "").unwrap();
    server
        .cli(&["execution", "restart", &id, "--stage", "flaky"])
        .ok();
    let execution = server.wait_status(&id, "succeeded");
    assert_eq!(stage(&execution, "flaky")["attempt"], 2, "{execution:#}");
    assert_eq!(lines(&work.join("setup.count")).len(), 1);
    assert_eq!(lines(&work.join("flaky.count")).len(), 2);
    assert_eq!(lines(&work.join("after.count")).len(), 1);

    server
        .cli(&["execution", "restart", &id, "--stage", "nope"])
        .fails_with("nope");
}
