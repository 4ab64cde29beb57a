use serde_json::{Value, json};

use crate::harness::{Server, stage};
use crate::webhook_target::Target;

/// Webhook stages against a real local HTTP server: 2xx succeeds (its answer
/// becomes outputs), 4xx fails, 5xx is retried, and a status URL is polled
/// until it reports success.
pub fn webhook_stages_against_a_local_server(server: &mut Server) {
    let target = Target::start();
    let yaml = r#"
pipelines:
  - name: hooks
    parameters:
      - name: env
        default: prod
    stages:
      - id: ok
        type: webhook
        method: POST
        url: @T@/ok
        headers:
          X-Gantry-Test: from-gantry
        body:
          environment: ${{ parameters.env }}
      - id: flaky
        type: webhook
        url: @T@/flaky
        retryDelay: 100ms
      - id: poll
        type: webhook
        method: POST
        url: @T@/job
        waitForCompletion: true
        statusUrlResolution: webhookResponse
        statusUrlJsonPath: $.statusUrl
        statusJsonPath: $.state
        successStatuses: [SUCCEEDED]
        terminalStatuses: [FAILED]
        pollInterval: 200ms
  - name: hook-bad
    stages:
      - id: bad
        type: webhook
        url: @T@/bad
"#;
    server.apply(&yaml.replace("@T@", &target.url));

    let id = server.run("hooks", &["env=staging"]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");

    let calls = target.requests("/ok");
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0].method, "POST");
    assert_eq!(
        calls[0].headers.get("x-gantry-test").map(String::as_str),
        Some("from-gantry")
    );
    let body: Value =
        serde_json::from_str(&calls[0].body).unwrap_or_else(|e| panic!("{e}: {:?}", calls[0].body));
    assert_eq!(body, json!({"environment": "staging"}));
    let outputs = stage(&execution, "ok")["outputs"].to_string();
    assert!(
        outputs.contains("abc-123"),
        "the response is not in the outputs: {outputs}"
    );

    assert_eq!(
        target.requests("/flaky").len(),
        2,
        "a 503 is retried once, then 200 ends it"
    );
    assert_eq!(target.requests("/job").len(), 1);
    assert!(
        target.requests("/job/status").len() >= 3,
        "the status URL was polled until SUCCEEDED"
    );

    let id = server.run("hook-bad", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed", "{execution:#}");
    assert_eq!(target.requests("/bad").len(), 1, "a 4xx is not retried");
    let error = stage(&execution, "bad")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("400"),
        "the error names the status: {error:?}"
    );
}
