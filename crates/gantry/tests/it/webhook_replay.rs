//! Generic webhooks are accepted once (by delivery id, or by the digest of the body within the
//! replay window), and a trigger without a secret must say it is public.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Backend, Server};

const SIGNED: &str = r#"
pipelines:
  - name: on-deploy
    triggers:
      - type: webhook
        source: deploy-bot
        secret: s3cret
    stages:
      - {id: go, type: run, steps: [{script: "true"}]}
"#;

#[test]
fn the_same_signed_delivery_sent_three_times_starts_one_execution() {
    let server = Server::start(Backend::Sqlite);
    server.apply(SIGNED);
    let path = "/webhooks/generic/deploy-bot";
    let secret = ("x-gantry-secret", "s3cret");
    let payload = json!({"action": "deploy", "version": "1.2.3"}).to_string();

    let (status, first) = post(&server, path, &[secret], &payload);
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["started"].as_array().unwrap().len(), 1, "{first}");
    for _ in 0..2 {
        let (status, again) = post(&server, path, &[secret], &payload);
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["duplicate"], true, "{again}");
        assert!(again["started"].as_array().unwrap().is_empty(), "{again}");
        assert!(
            again["ignored"].as_str().unwrap().contains("same body"),
            "{again}"
        );
    }
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(executions(&server, "on-deploy", 1).len(), 1);

    // A refused delivery is not remembered: it neither starts anything nor blocks the
    // same body sent with the secret later.
    let other = json!({"action": "deploy", "version": "1.2.4"}).to_string();
    let (status, _) = post(&server, path, &[("x-gantry-secret", "wrong")], &other);
    assert_eq!(status, 401);
    let (status, answer) = post(&server, path, &[secret], &other);
    assert_eq!(status, 202, "{answer}");
    assert_eq!(executions(&server, "on-deploy", 2).len(), 2);

    // A delivery id, when the sender gives one, decides instead of the body.
    let (status, answer) = post(
        &server,
        path,
        &[secret, ("x-gantry-delivery", "d-1")],
        &payload,
    );
    assert_eq!(status, 202, "a new delivery id is a new delivery: {answer}");
    let changed = json!({"action": "deploy", "version": "9"}).to_string();
    let (status, answer) = post(
        &server,
        path,
        &[secret, ("x-gantry-delivery", "d-1")],
        &changed,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["duplicate"], true, "{answer}");
    assert!(
        answer["ignored"].as_str().unwrap().contains("d-1"),
        "{answer}"
    );
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(executions(&server, "on-deploy", 3).len(), 3);
}

#[test]
fn a_webhook_trigger_without_a_secret_is_refused_unless_it_says_public() {
    let server = Server::start(Backend::Sqlite);
    let open = r#"pipelines:
  - name: on-anything
    triggers:
      - type: webhook
        source: open-door
    stages:
      - {id: go, type: run, steps: [{script: "true"}]}
"#;
    let file = server.write_file("open.yaml", open);
    let file = file.to_str().unwrap();
    let expected =
        "open.yaml:4:9: trigger 1 has no \"secret\" or \"secretFrom\", so anyone could start it";
    server.cli(&["validate", file]).fails_with(expected);
    server.cli(&["apply", "-f", file]).fails_with(expected);
    let (status, _) = post(&server, "/webhooks/generic/open-door", &[], "{}");
    assert_eq!(status, 404, "nothing was applied");

    let public = open.replace(
        "source: open-door\n",
        "source: open-door\n        public: true\n",
    );
    let file = server.write_file("open.yaml", &public);
    server.cli(&["validate", file.to_str().unwrap()]).ok();
    server.cli(&["apply", "-f", file.to_str().unwrap()]).ok();
    let (status, answer) = post(&server, "/webhooks/generic/open-door", &[], "{}");
    assert_eq!(status, 202, "{answer}");
    executions(&server, "on-anything", 1);
}

fn post(server: &Server, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut request = http
        .post(format!("{}{path}", server.url))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().expect("post");
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The executions of `pipeline`, once there are at least `count` (at most 30 s).
fn executions(server: &Server, pipeline: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = server.get("/api/v1/executions");
        let found: Vec<Value> = listed["executions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["pipeline"] == pipeline)
            .cloned()
            .collect();
        if found.len() >= count || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
