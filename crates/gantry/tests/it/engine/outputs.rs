use crate::harness::{Server, lines, stage};

/// A step appends `key=value` to `$GANTRY_OUTPUT`; a later stage reads it
/// through `${{ stages.a.outputs.key }}`. Steps share the workspace, which is
/// their working directory.
pub fn step_outputs_flow_to_downstream_stages(server: &mut Server) {
    server.apply(
        r#"
pipelines:
  - name: outputs
    stages:
      - id: a
        type: run
        steps:
          - script: |
              echo "key=hello-world" >> "$GANTRY_OUTPUT"
              echo shared > shared.txt
              pwd > @W@/a.pwd
              echo "$GANTRY_WORKSPACE" > @W@/a.workspace
              echo "$GANTRY_EXECUTION_ID $GANTRY_STAGE_ID" > @W@/a.ids
      - id: b
        type: run
        dependsOn: [a]
        env:
          FROM_A: ${{ stages.a.outputs.key }}
        steps:
          - script: |
              echo "${{ stages.a.outputs.key }}" > @W@/b.txt
              echo "$FROM_A" > @W@/b.env
              cat shared.txt > @W@/b.shared
          - command: [sh, -c, "echo second-step > @W@/b.second"]
"#,
    );
    let id = server.run("outputs", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let read = |name: &str| lines(&server.work().join(name)).join("\n");
    assert_eq!(stage(&execution, "a")["outputs"]["key"], "hello-world");
    assert_eq!(read("b.txt"), "hello-world");
    assert_eq!(read("b.env"), "hello-world");
    assert_eq!(read("b.shared"), "shared", "the stages share one workspace");
    assert_eq!(read("b.second"), "second-step");
    assert_eq!(read("a.ids"), format!("{id} a"));
    let pwd = std::fs::canonicalize(read("a.pwd")).unwrap();
    let workspace = std::fs::canonicalize(read("a.workspace")).unwrap();
    assert_eq!(pwd, workspace, "steps run in the workspace");
}

/// A parameter declared `secret: true` is masked in every stored log line,
/// whether it reaches the output through an expression or the environment.
pub fn secret_parameters_never_reach_the_logs(server: &mut Server) {
    server.apply(
        r#"
pipelines:
  - name: secret
    parameters:
      - name: password
        required: true
        secret: true
    stages:
      - id: use
        type: run
        env:
          PW: ${{ parameters.password }}
        steps:
          - script: |
              echo "inline ${{ parameters.password }}"
              echo "from env $PW"
              echo "to stderr $PW" >&2
              echo "plain line"
"#,
    );
    let secret = "hunter2-s3cr3t";
    let id = server.run("secret", &[&format!("password={secret}")]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");

    let logs = server.logs(&id);
    let text: Vec<String> = logs
        .iter()
        .map(|l| l["line"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        text.iter().any(|l| l == "plain line"),
        "the logs were stored: {text:#?}"
    );
    assert!(text.iter().any(|l| l.starts_with("inline")), "{text:#?}");
    assert!(
        text.iter().any(|l| l.starts_with("to stderr")),
        "stderr is stored too: {text:#?}"
    );
    for line in &text {
        assert!(
            !line.contains(secret),
            "a secret reached the logs: {line:?}"
        );
    }
    let cli = server.cli(&["logs", &id]).ok();
    assert!(
        cli.stdout.contains("plain line") && !cli.stdout.contains(secret),
        "{cli:?}"
    );
    let shown = server.cli(&["execution", "show", &id, "--json"]).ok();
    assert!(
        !shown.stdout.contains(secret),
        "the execution view shows a secret: {}",
        shown.stdout
    );
}

/// `checkPreconditions` passes when its expressions hold and otherwise fails
/// with the precondition's message.
pub fn preconditions_pass_and_fail(server: &mut Server) {
    server.apply(
        r#"
pipelines:
  - name: guard
    parameters:
      - name: env
        default: staging
    stages:
      - id: check
        type: checkPreconditions
        preconditions:
          - expression: ${{ parameters.env != "production" }}
            message: no production deploys from here
      - id: after
        type: run
        dependsOn: [check]
        steps:
          - script: echo ran >> @W@/guard.after
"#,
    );
    let ok = server.run("guard", &[]);
    assert_eq!(server.wait_terminal(&ok)["status"], "succeeded");
    let refused = server.run("guard", &["env=production"]);
    let execution = server.wait_terminal(&refused);
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let error = stage(&execution, "check")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("no production deploys from here"),
        "{execution:#}"
    );
    assert_eq!(
        lines(&server.work().join("guard.after")).len(),
        1,
        "the stage after a failed precondition ran"
    );
}
