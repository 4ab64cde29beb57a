//! Per-pipeline `concurrency`: with `queue`, executions beyond the limit stay `pending` and run
//! one after the other; with `cancelOlder`, a new execution cancels the running one.

use serde_json::Value;

use crate::harness::{Backend, Server};

const PIPELINES: &str = r#"
pipelines:
  - name: one-at-a-time
    concurrency: { limit: 1 }
    stages:
      - { id: hold, type: wait, duration: 700ms }
  - name: latest-wins
    concurrency: { limit: 1, onConflict: cancelOlder }
    stages:
      - { id: hold, type: wait, duration: 60s }
"#;

fn millis(execution: &Value, field: &str) -> String {
    execution[field].as_str().unwrap_or_default().to_owned()
}

#[test]
fn queued_executions_run_one_at_a_time() {
    let server = Server::start(Backend::Sqlite);
    server.apply(PIPELINES);
    let ids: Vec<String> = (0..3).map(|_| server.run("one-at-a-time", &[])).collect();
    let statuses: Vec<String> = ids
        .iter()
        .map(|id| server.execution(id)["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses[1..], ["pending", "pending"], "{statuses:?}");
    let done: Vec<Value> = ids.iter().map(|id| server.wait_terminal(id)).collect();
    for pair in done.windows(2) {
        assert_eq!(pair[1]["status"], "succeeded", "{:#}", pair[1]);
        // RFC 3339 in UTC compares as text.
        assert!(
            millis(&pair[1], "startedAt") >= millis(&pair[0], "endedAt"),
            "{pair:#?}"
        );
    }

    let older = server.run("latest-wins", &[]);
    server.wait_status(&older, "running");
    let newer = server.run("latest-wins", &[]);
    let canceled = server.wait_terminal(&older);
    assert_eq!(canceled["status"], "canceled", "{canceled:#}");
    server.wait_status(&newer, "running");
    server.cli(&["execution", "cancel", &newer]).ok();
}
