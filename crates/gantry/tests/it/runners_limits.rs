//! A step on a runner whose output is over a limit: its stage fails saying
//! which limit, and the step does not look like (or run again as) a lost
//! runner's.

use crate::harness::{Server, stage};
use crate::runners::{Runner, token, wait_registered};
use crate::steps_podman::log_text;

crate::on_both_backends!(
    env = &[("GANTRY_LOCAL_RUNNER", "off")];
    a_step_on_a_runner_whose_outputs_are_over_what_a_runner_sends_back_fails_saying_so,
);

fn a_step_on_a_runner_whose_outputs_are_over_what_a_runner_sends_back_fails_saying_so(
    server: &mut Server,
) {
    let server = &*server;
    let token = token(server);
    let _runner = Runner::start(server, &token, "solo", "solo");
    wait_registered(server, &["solo"]);
    // 3 MB of outputs: under the 64 MiB a `$GANTRY_OUTPUT` file may hold,
    // over what one result can carry back to the server.
    server.apply(
        r#"
pipelines:
  - name: big
    stages:
      - id: build
        type: run
        runsOn: [solo]
        steps:
          - name: chatty
            script: |
              { printf 'big='; head -c 3000000 /dev/zero | tr '\0' a; echo; } >> "$GANTRY_OUTPUT"
              echo "wrote them"
"#,
    );
    let id = server.run("big", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let error = stage(&execution, "build")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("$GANTRY_OUTPUT")
            && error.contains("over the 1024 KiB a runner sends back with a step's result"),
        "{error}"
    );
    let logs = log_text(server, &id);
    assert!(logs.contains("wrote them"), "{logs}");
    assert!(
        !logs.contains("lost"),
        "the step looked like a lost runner's: {logs}"
    );
}
