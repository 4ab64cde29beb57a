use crate::harness::{Server, lines, millis, stage};

/// A `pipeline` stage starts a child execution with parameters, waits for
/// it, and fails when the child fails.
pub fn child_pipelines_pass_parameters_and_results(server: &mut Server) {
    server.apply(
        r#"
pipelines:
  - name: child
    parameters:
      - name: who
        required: true
      - name: fail
        default: "no"
    stages:
      - id: work
        type: run
        steps:
          - script: |
              echo "${{ parameters.who }}" >> @W@/child-who.txt
              sleep 1
              test "${{ parameters.fail }}" != yes
  - name: parent
    parameters:
      - name: fail
        default: "no"
    stages:
      - id: call
        type: pipeline
        pipeline: child
        parameters:
          who: from-parent
          fail: ${{ parameters.fail }}
      - id: after
        type: run
        dependsOn: [call]
        steps:
          - script: echo ran >> @W@/parent-after.txt
"#,
    );
    let work = server.work();
    let id = server.run("parent", &[]);
    let parent = server.wait_terminal(&id);
    assert_eq!(parent["status"], "succeeded", "{parent:#}");
    assert_eq!(lines(&work.join("child-who.txt")), ["from-parent"]);
    assert_eq!(lines(&work.join("parent-after.txt")).len(), 1);

    let child = find_child(server, &id);
    assert_eq!(child["status"], "succeeded");
    assert_eq!(child["parameters"]["who"], "from-parent");
    assert_eq!(child["parent"]["stage"], "call");
    let call = stage(&parent, "call");
    assert!(
        millis(call, "endedAt") >= millis(&child, "endedAt"),
        "the parent stage ended before its child"
    );

    let id = server.run("parent", &["fail=yes"]);
    let parent = server.wait_terminal(&id);
    assert_eq!(parent["status"], "failed", "{parent:#}");
    assert_eq!(stage(&parent, "call")["status"], "failed");
    assert_eq!(find_child(server, &id)["status"], "failed");
    assert_eq!(
        lines(&work.join("parent-after.txt")).len(),
        1,
        "the stage after a failed child ran"
    );
}

/// The child execution started by `parent_id`.
fn find_child(server: &Server, parent_id: &str) -> serde_json::Value {
    let list = server.get("/api/v1/executions?pipeline=child");
    let summary = list["executions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["parent"]["execution"] == parent_id)
        .unwrap_or_else(|| panic!("no child execution of {parent_id}: {list:#}"))
        .clone();
    server.execution(summary["id"].as_str().unwrap())
}
