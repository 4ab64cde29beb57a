use std::time::Duration;

use crate::harness::{Server, alive, lines, millis, read_pid, stage, wait_for_file};

/// kill -9 of the server while a step runs: after a restart, completed stages
/// and steps are not run again, the interrupted step runs once more from its
/// start (its orphaned process killed first), and the execution completes.
pub fn kill9_during_a_long_step_resumes_without_rerunning_completed_work(server: &mut Server) {
    server.apply(
        r#"
pipelines:
  - name: resume
    stages:
      - id: first
        type: run
        steps:
          - script: echo ran >> @W@/first.count
      - id: long
        type: run
        dependsOn: [first]
        steps:
          - script: echo ran >> @W@/long0.count
          - script: |
              echo $$ >> @W@/long1.pids
              echo ran >> @W@/long1.count
              sleep 6
              echo done >> @W@/long1.done
      - id: last
        type: run
        dependsOn: [long]
        steps:
          - script: echo ran >> @W@/last.count
"#,
    );
    let work = server.work();
    let id = server.run("resume", &[]);
    let orphan = read_pid(&work.join("long1.pids"));
    server.kill9();
    server.restart();

    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert!(
        !alive(orphan),
        "the interrupted step's orphaned process {orphan} was not killed"
    );
    assert_eq!(
        lines(&work.join("first.count")).len(),
        1,
        "a completed stage ran twice"
    );
    assert_eq!(
        lines(&work.join("long0.count")).len(),
        1,
        "a completed step ran twice"
    );
    assert_eq!(
        lines(&work.join("long1.count")).len(),
        2,
        "the interrupted step should run exactly once more"
    );
    assert_eq!(
        lines(&work.join("long1.done")).len(),
        1,
        "the interrupted run must not finish after the restart"
    );
    assert_eq!(lines(&work.join("last.count")).len(), 1);

    // The re-run is recorded in the stage's log.
    let logs = server.logs(&id);
    let noted = logs.iter().any(|l| {
        l["stageId"] == "long"
            && l["stream"] == "system"
            && l["line"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("interrupt")
    });
    assert!(
        noted,
        "no system log line about the interruption: {logs:#?}"
    );
}

/// A `wait` resumes after a kill -9 with its remaining time (not from
/// scratch), and a running wait can be skipped.
pub fn wait_resumes_with_its_remaining_time_and_can_be_skipped(server: &mut Server) {
    server.apply(
        r#"
pipelines:
  - name: nap
    stages:
      - id: nap
        type: wait
        duration: 8s
  - name: long-nap
    stages:
      - id: nap
        type: wait
        duration: 1h
      - id: after
        type: run
        dependsOn: [nap]
        steps:
          - script: echo ran >> @W@/after-nap
"#,
    );
    let id = server.run("nap", &[]);
    server.wait_stage(&id, "nap", "running");
    std::thread::sleep(Duration::from_secs(1));
    server.kill9();
    server.restart();
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let took = millis(&execution, "endedAt") - millis(&execution, "createdAt");
    // Restarting the 8 s wait from scratch would end after at least 9 s.
    assert!(
        (7_900..8_900).contains(&took),
        "the wait took {took} ms instead of about 8 s"
    );

    let id = server.run("long-nap", &[]);
    server.wait_stage(&id, "nap", "running");
    server.cli(&["skip", &id]).ok();
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(stage(&execution, "nap")["status"], "succeeded");
    wait_for_file(&server.work().join("after-nap"));
}
