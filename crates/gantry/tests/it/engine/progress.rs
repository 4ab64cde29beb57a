use std::time::Duration;

use serde_json::Value;

use crate::harness::{Server, millis, wait_output};

const SIMPLE: &str = r#"
pipelines:
  - name: ok
    stages:
      - id: hello
        type: run
        steps:
          - script: echo hello
      - id: world
        type: run
        dependsOn: [hello]
        steps:
          - script: echo world
  - name: broken
    stages:
      - id: boom
        type: run
        steps:
          - script: |
              echo about to fail
              exit 3
"#;

/// `run --follow` prints the id, then stage progress, and exits 0 only when
/// the execution succeeded.
pub fn run_follow_exit_codes(server: &mut Server) {
    server.apply(SIMPLE);
    let out = server.cli(&["run", "ok", "--follow"]).ok();
    let id = out.stdout.lines().next().unwrap().trim().to_owned();
    assert_eq!(server.execution(&id)["status"], "succeeded");
    assert!(
        out.stdout.contains("hello") && out.stdout.contains("world"),
        "{out:?}"
    );
    assert!(
        out.stdout.lines().last().unwrap().contains("succeeded"),
        "{out:?}"
    );

    let out = server.cli(&["run", "broken", "--follow"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let id = out.stdout.lines().next().unwrap().trim().to_owned();
    assert_eq!(server.execution(&id)["status"], "failed");
    assert!(
        out.stdout.contains("boom") && out.stdout.contains("failed"),
        "{out:?}"
    );
}

/// The JSON of `execution show --json` and the lists.
pub fn execution_show_json_shape(server: &mut Server) {
    server.apply(SIMPLE);
    let id = server.run("ok", &[]);
    server.wait_terminal(&id);
    let out = server.cli(&["execution", "show", &id, "--json"]).ok();
    let shown: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["pipeline"], "ok");
    assert_eq!(shown["status"], "succeeded");
    assert_eq!(shown["trigger"]["type"], "manual");
    assert_eq!(shown["trigger"]["user"], "admin");
    let stages = shown["stages"].as_array().unwrap();
    assert_eq!(
        stages
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["hello", "world"]
    );
    for stage in stages {
        assert_eq!(stage["status"], "succeeded", "{stage:#}");
        assert_eq!(stage["type"], "run");
        assert!(stage["outputs"].is_object(), "{stage:#}");
        assert!(
            millis(stage, "startedAt") <= millis(stage, "endedAt"),
            "{stage:#}"
        );
        assert!(stage["startedAt"].as_str().unwrap().ends_with('Z'));
    }
    assert!(millis(&shown, "createdAt") <= millis(&shown, "endedAt"));

    let human = server.cli(&["execution", "show", &id]).ok();
    assert!(
        human.stdout.contains("hello") && human.stdout.contains("succeeded"),
        "{human:?}"
    );
    let list = server.cli(&["execution", "list", "--pipeline", "ok"]).ok();
    assert!(list.stdout.contains(&id), "{list:?}");
    let list: Value = serde_json::from_str(
        &server
            .cli(&["execution", "list", "--status", "succeeded", "--json"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert!(
        list["executions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == id.as_str())
    );
    let list: Value = serde_json::from_str(
        &server
            .cli(&["execution", "list", "--status", "failed", "--json"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert!(
        !list["executions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == id.as_str())
    );
    let list = server.get("/api/v1/executions?trigger=manual&limit=1");
    assert_eq!(list["executions"].as_array().unwrap().len(), 1);
}

/// `logs -f` prints every line once, in order, whether it joins at the start
/// or in the middle of the run, and exits when the execution ends.
pub fn logs_follow_without_gaps_or_duplicates(server: &mut Server) {
    server.apply(
        r#"
pipelines:
  - name: chatty
    stages:
      - id: talk
        type: run
        steps:
          - script: |
              for i in 1 2 3 4 5 6 7 8; do echo "line-$i"; sleep 0.3; done
"#,
    );
    let id = server.run("chatty", &[]);
    let early = server.cli_spawn(&["logs", &id, "-f"]);
    // Join the second follower once some lines are stored.
    let deadline = std::time::Instant::now() + crate::harness::DEADLINE;
    while server.logs(&id).len() < 3 {
        assert!(std::time::Instant::now() < deadline, "no logs appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    let late = server.cli_spawn(&["logs", &id, "--stage", "talk", "-f"]);
    let early = wait_output(early, &["logs", "-f"], Duration::from_secs(120));
    let late = wait_output(late, &["logs", "--stage", "-f"], Duration::from_secs(120));
    assert!(early.status.success(), "{early:?}");
    assert!(late.status.success(), "{late:?}");

    let expected: Vec<String> = (1..=8).map(|i| format!("line-{i}")).collect();
    let early_lines: Vec<&str> = early
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("[talk] "))
        .collect();
    assert_eq!(early_lines, expected, "{early:?}");
    assert_eq!(
        late.stdout.lines().collect::<Vec<_>>(),
        expected,
        "{late:?}"
    );

    // The stored lines, read after the end, are the same.
    let stored = server.cli(&["logs", &id, "--stage", "talk"]).ok();
    assert_eq!(stored.stdout.lines().collect::<Vec<_>>(), expected);

    // The event stream resumes after Last-Event-ID, and ends with `end`.
    let seq_of_4 = server
        .logs(&id)
        .iter()
        .find(|l| l["line"] == "line-4")
        .and_then(|l| l["seq"].as_i64())
        .expect("line-4 is stored");
    let stream = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1/executions/{id}/events", server.url))
        .bearer_auth(&server.token)
        .header("Last-Event-ID", seq_of_4.to_string())
        .timeout(Duration::from_secs(60))
        .send()
        .and_then(|r| r.text())
        .expect("event stream");
    let events: Vec<&str> = stream
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.first(), Some(&"execution"), "{stream}");
    assert_eq!(events.last(), Some(&"end"), "{stream}");
    let resumed: Vec<String> = stream
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["line"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(resumed, expected[4..], "{stream}");
}

/// `/metrics` has the engine's stage counters and the execution gauges.
pub fn metrics_count_stages_and_executions(server: &mut Server) {
    server.apply(SIMPLE);
    let id = server.run("ok", &[]);
    server.wait_terminal(&id);
    let (status, text) = server.api("GET", "/metrics", None);
    assert_eq!(status, 200);
    let text = text.as_str().expect("text");
    let stage_counter = text.lines().any(|l| {
        l.starts_with("gantry_stages_total{")
            && l.contains("status=\"succeeded\"")
            && l.contains("type=\"run\"")
    });
    assert!(stage_counter, "no stage counter:\n{text}");
    assert!(
        text.contains("gantry_stage_duration_seconds_bucket"),
        "no stage duration histogram:\n{text}"
    );
    let succeeded = text
        .lines()
        .find(|l| l.starts_with("gantry_executions{status=\"succeeded\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(succeeded, Some(1.0), "{text}");
    assert!(text.contains("gantry_http_requests_total{"), "{text}");
}

/// `gantry logs -f` and `gantry run --follow` ride through a kill -9 and a
/// restart of the server: they reconnect, resume after the last line they
/// printed, and end with the execution.
pub fn followers_survive_a_server_restart(server: &mut Server) {
    server.apply(
        r#"
pipelines:
  - name: restarting
    stages:
      - id: before
        type: run
        steps:
          - script: for i in 1 2 3; do echo "before-$i"; done
      - id: pause
        type: wait
        dependsOn: [before]
        duration: 4s
      - id: after
        type: run
        dependsOn: [pause]
        steps:
          - script: for i in 1 2 3; do echo "after-$i"; done
"#,
    );
    let id = server.run("restarting", &[]);
    let logs = server.cli_spawn(&["logs", &id, "-f"]);
    server.wait_stage(&id, "pause", "running");
    let follow = server.cli_spawn(&["run", "restarting", "--follow"]);
    std::thread::sleep(Duration::from_millis(500));
    server.kill9();
    std::thread::sleep(Duration::from_millis(700));
    server.restart();

    let logs = wait_output(logs, &["logs", "-f"], Duration::from_secs(120));
    assert!(logs.status.success(), "{logs:?}");
    let printed: Vec<&str> = logs.stdout.lines().collect();
    let stored = server.cli(&["logs", &id]).ok();
    assert_eq!(
        printed,
        stored.stdout.lines().collect::<Vec<_>>(),
        "{logs:?}"
    );
    for line in [
        "[before] before-1",
        "[before] before-3",
        "[after] after-1",
        "[after] after-3",
    ] {
        assert!(printed.contains(&line), "{line} missing from {printed:?}");
    }

    let follow = wait_output(follow, &["run", "--follow"], Duration::from_secs(120));
    assert!(follow.status.success(), "{follow:?}");
    assert!(follow.stdout.contains("succeeded"), "{follow:?}");
}
