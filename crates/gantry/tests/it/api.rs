//! The API's answers to bad requests, its description, and shutdown.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Backend, Server};

const PIPELINE: &str = r#"
pipelines:
  - name: hello
    parameters:
      - name: who
        default: world
    stages:
      - id: greet
        type: run
        steps:
          - script: echo hello
"#;

/// Sends `body` to `METHOD PATH` and checks for a 400 JSON error containing `needle`.
fn check_bad_request(server: &Server, method: &str, path: &str, body: &str, needle: &str) {
    let (status, answer) = server.api_raw(Some(&server.token), method, path, Some(body.to_owned()));
    assert_eq!(status, 400, "{method} {path} {body}: {answer}");
    assert_eq!(answer["code"], "invalid", "{answer}");
    let error = answer["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {answer}"));
    assert!(
        error.contains(needle),
        "{method} {path} {body}: {error:?} should contain {needle:?}"
    );
}

#[test]
fn bad_bodies_get_400_naming_the_problem() {
    let server = Server::start(Backend::Sqlite);
    server.apply(PIPELINE);
    check_bad_request(
        &server,
        "POST",
        "/api/v1/apply",
        "{not json",
        "invalid JSON body",
    );
    check_bad_request(
        &server,
        "POST",
        "/api/v1/apply",
        "{}",
        "missing field `content`",
    );
    check_bad_request(
        &server,
        "POST",
        "/api/v1/apply",
        r#"{"content": 7}"#,
        "content",
    );
    check_bad_request(
        &server,
        "POST",
        "/api/v1/validate",
        r#"{"content": "x", "extra": 1}"#,
        "unknown field `extra`",
    );
    check_bad_request(&server, "POST", "/api/v1/tokens", r#"{"name": 5}"#, "name");
    check_bad_request(
        &server,
        "POST",
        "/api/v1/pipelines/hello/executions",
        r#"{"parameters": []}"#,
        "parameters",
    );
    check_bad_request(
        &server,
        "POST",
        "/api/v1/pipelines/hello/executions",
        r#"{"parameters": {"who": {"a": 1}}}"#,
        "parameter \"who\"",
    );
    let (status, run) = server.api("POST", "/api/v1/pipelines/hello/executions", None);
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap();
    check_bad_request(
        &server,
        "POST",
        &format!("/api/v1/executions/{id}/judgment"),
        r#"{"judgment": "maybe"}"#,
        "unknown variant `maybe`",
    );
    check_bad_request(
        &server,
        "POST",
        &format!("/api/v1/executions/{id}/judgment"),
        r#"{}"#,
        "missing field `judgment`",
    );

    for (query, needle) in [
        ("status=bogus", "unknown status"),
        ("limit=x", "limit"),
        ("limit=0", "limit"),
        ("colour=red", "colour"),
    ] {
        let (status, answer) = server.api("GET", &format!("/api/v1/executions?{query}"), None);
        assert_eq!(status, 400, "{query}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(needle),
            "{query}: {answer}"
        );
    }

    // Nothing of that changed anything.
    let (_, pipelines) = server.api("GET", "/api/v1/pipelines", None);
    assert_eq!(pipelines["pipelines"].as_array().unwrap().len(), 1);
    let (_, tokens) = server.api("GET", "/api/v1/tokens", None);
    assert_eq!(tokens["tokens"].as_array().unwrap().len(), 1);
}

#[test]
fn unknown_things_get_404_naming_them() {
    let server = Server::start(Backend::Sqlite);
    server.apply(PIPELINE);
    let cases = [
        ("GET", "/api/v1/pipelines/nope", "pipeline \"nope\""),
        ("DELETE", "/api/v1/pipelines/nope", "pipeline \"nope\""),
        (
            "POST",
            "/api/v1/pipelines/nope/executions",
            "pipeline \"nope\"",
        ),
        (
            "GET",
            "/api/v1/executions/no-such-id",
            "execution \"no-such-id\"",
        ),
        (
            "GET",
            "/api/v1/executions/no-such-id/logs",
            "execution \"no-such-id\"",
        ),
        (
            "GET",
            "/api/v1/executions/no-such-id/events",
            "execution \"no-such-id\"",
        ),
        (
            "POST",
            "/api/v1/executions/no-such-id/cancel",
            "execution \"no-such-id\"",
        ),
        (
            "POST",
            "/api/v1/executions/no-such-id/judgment",
            "execution \"no-such-id\"",
        ),
        ("DELETE", "/api/v1/tokens/nobody", "token \"nobody\""),
        ("GET", "/api/v1/nowhere", "no route for GET /api/v1/nowhere"),
    ];
    for (method, path, needle) in cases {
        let body = path
            .ends_with("/judgment")
            .then(|| json!({"judgment": "continue"}));
        let (status, answer) = server.api(method, path, body);
        assert_eq!(status, 404, "{method} {path}: {answer}");
        assert_eq!(answer["code"], "not_found", "{method} {path}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(needle),
            "{method} {path}: {answer}"
        );
    }

    let (_, run) = server.api("POST", "/api/v1/pipelines/hello/executions", None);
    let id = run["id"].as_str().unwrap();
    let (status, answer) = server.api(
        "GET",
        &format!("/api/v1/executions/{id}/logs?stage=nope"),
        None,
    );
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("stage \"nope\""),
        "{answer}"
    );

    server
        .cli(&["execution", "show", "no-such-id"])
        .fails_with("execution \"no-such-id\" not found");
    server
        .cli(&["run", "nope"])
        .fails_with("pipeline \"nope\" not found");
    server
        .cli(&["pipeline", "show", "nope"])
        .fails_with("pipeline \"nope\" not found");
    server
        .cli(&["logs", "no-such-id"])
        .fails_with("execution \"no-such-id\" not found");
    server
        .cli(&["run", "hello", "-p", "novalue"])
        .fails_with("KEY=VALUE");
    let out = server.cli(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn openapi_document_is_served() {
    let server = Server::start(Backend::Sqlite);
    let document = server.get("/api/v1/openapi.json");
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/api/v1/executions/{id}/events",
        "/api/v1/apply",
        "/healthz",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    assert!(document["components"]["schemas"]["Execution"].is_object());
}

#[test]
fn pipelines_are_listed_shown_and_deleted() {
    let server = Server::start(Backend::Sqlite);
    server.apply(PIPELINE);
    let out = server.cli(&["pipeline", "list"]).ok();
    assert!(
        out.stdout.lines().any(|l| l.starts_with("hello ")),
        "{out:?}"
    );
    let shown: Value = serde_json::from_str(
        &server
            .cli(&["pipeline", "show", "hello", "--json"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(shown["name"], "hello");
    assert_eq!(shown["version"], 1);
    assert_eq!(shown["spec"]["stages"][0]["id"], "greet");
    let out = server.cli(&["pipeline", "show", "hello"]).ok();
    assert!(
        out.stdout.contains("greet") && out.stdout.contains("run"),
        "{out:?}"
    );
    server.cli(&["pipeline", "delete", "hello"]).ok();
    server
        .cli(&["pipeline", "delete", "hello"])
        .fails_with("pipeline \"hello\" not found");
    let (_, pipelines) = server.api("GET", "/api/v1/pipelines", None);
    assert_eq!(pipelines["pipelines"], json!([]));
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut server = Server::start(Backend::Sqlite);
    server.apply(&format!("{PIPELINE}  - name: sleepy\n    stages:\n      - id: nap\n        type: wait\n        duration: 1h\n"));
    // An open event stream must not hold the shutdown up.
    let id = server.run("sleepy", &[]);
    let mut follower = server.cli_spawn(&["logs", &id, "-f"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, metrics) = server.api("GET", "/metrics", None);
        if metrics
            .as_str()
            .unwrap_or_default()
            .contains("route=\"/api/v1/executions/{id}/events\"")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the follower never connected");
        std::thread::sleep(Duration::from_millis(50));
    }
    let stopping = Instant::now();
    let status = server.stop();
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        server.log_tail()
    );
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "an open event stream delayed the shutdown"
    );
    let _ = follower.kill();
    let _ = follower.wait();

    // The waiting execution survives the restart.
    server.restart();
    server.wait_stage(&id, "nap", "running");
}
