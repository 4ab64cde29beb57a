use crate::harness::{Server, lines, millis, stage};

/// Branches of a DAG run at the same time: each records when it started and
/// ended (in nanoseconds), and the two intervals must overlap.
pub fn dag_branches_run_in_parallel(server: &mut Server) {
    server.apply(
        r#"
pipelines:
  - name: dag
    stages:
      - id: start
        type: run
        steps:
          - script: date +%s%N > @W@/start.end
      - id: left
        type: run
        dependsOn: [start]
        steps:
          - script: |
              date +%s%N > @W@/left.start
              sleep 1.5
              date +%s%N > @W@/left.end
      - id: right
        type: run
        dependsOn: [start]
        steps:
          - script: |
              date +%s%N > @W@/right.start
              sleep 1.5
              date +%s%N > @W@/right.end
      - id: join
        type: run
        dependsOn: [left, right]
        steps:
          - script: date +%s%N > @W@/join.start
"#,
    );
    let id = server.run("dag", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");

    let at = |name: &str| -> u128 {
        let text = lines(&server.work().join(name)).join("");
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} holds no timestamp: {text:?}"))
    };
    let (left, right) = (
        (at("left.start"), at("left.end")),
        (at("right.start"), at("right.end")),
    );
    assert!(
        left.0 < right.1 && right.0 < left.1,
        "the branches did not overlap: left {left:?}, right {right:?}"
    );
    assert!(
        at("start.end") <= left.0.min(right.0),
        "a branch started before its dependency ended"
    );
    assert!(
        at("join.start") >= left.1.max(right.1),
        "join started before both branches ended"
    );

    // The API's stage times tell the same story.
    let (l, r) = (stage(&execution, "left"), stage(&execution, "right"));
    assert!(
        millis(l, "startedAt") < millis(r, "endedAt")
            && millis(r, "startedAt") < millis(l, "endedAt")
    );
    assert_eq!(
        stage(&execution, "join")["dependsOn"],
        serde_json::json!(["left", "right"])
    );
}
