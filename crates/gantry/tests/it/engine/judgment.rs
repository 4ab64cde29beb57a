use std::time::Duration;

use crate::harness::{Server, lines, stage};

const GATE: &str = r#"
pipelines:
  - name: gate
    stages:
      - id: build
        type: run
        steps:
          - script: echo ran >> @W@/build.count
      - id: approval
        type: manualJudgment
        dependsOn: [build]
        instructions: Ship it?
        options: [staging, production]
      - id: deploy
        type: run
        dependsOn: [approval]
        steps:
          - script: echo "${{ stages.approval.outputs.judgment }}" >> @W@/deploy.target
"#;

/// Starts `gate` and waits until its judgment waits.
fn start_waiting(server: &Server) -> String {
    server.apply(GATE);
    let id = server.run("gate", &[]);
    server.wait_stage(&id, "approval", "waiting");
    id
}

/// After a restart the execution is still waiting, and stays so.
fn assert_still_waiting(server: &Server, id: &str) {
    for _ in 0..10 {
        let execution = server.execution(id);
        assert_eq!(
            stage(&execution, "approval")["status"],
            "waiting",
            "{execution:#}"
        );
        assert!(
            matches!(execution["status"].as_str(), Some("waiting" | "running")),
            "{execution:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn judgment_continues_across_kill9(server: &mut Server) {
    let id = start_waiting(server);
    server.kill9();
    server.restart();
    assert_still_waiting(server, &id);

    server.cli(&["approve", &id, "--option", "production"]).ok();
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let approval = stage(&execution, "approval");
    assert_eq!(
        approval["outputs"]["judgment"], "production",
        "{approval:#}"
    );
    let recorded = format!("{}{}", approval["state"], approval["outputs"]);
    assert!(
        recorded.contains("admin"),
        "who judged is recorded: {approval:#}"
    );
    assert_eq!(lines(&server.work().join("deploy.target")), ["production"]);
    assert_eq!(
        lines(&server.work().join("build.count")).len(),
        1,
        "build ran again after the restart"
    );
}

pub fn judgment_stops_across_restart(server: &mut Server) {
    let id = start_waiting(server);
    assert!(server.stop().success(), "{}", server.log_tail());
    server.restart();
    assert_still_waiting(server, &id);

    // A judgment is refused for an unknown option, and changes nothing.
    server
        .cli(&["approve", &id, "--option", "moon"])
        .fails_with("moon");
    assert_still_waiting(server, &id);

    server.cli(&["reject", &id]).ok();
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed", "{execution:#}");
    assert_eq!(stage(&execution, "approval")["status"], "failed");
    assert_ne!(stage(&execution, "deploy")["status"], "succeeded");
    assert!(
        lines(&server.work().join("deploy.target")).is_empty(),
        "deploy ran after a rejection"
    );

    // Judging a finished execution is refused with a message.
    let out = server.cli(&["approve", &id]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}
