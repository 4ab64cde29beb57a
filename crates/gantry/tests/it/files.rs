//! `gantry validate` and `gantry apply`: every problem reported at once with
//! its position, and a bad file changes nothing.

use std::ops::RangeInclusive;

use serde_json::json;

use crate::harness::{Backend, Server};

/// Each problem sits in its own stage, so its diagnostic must point into
/// that stage's lines (the exact column is the parser's business).
const BAD: &str = r#"pipelines:
  - name: broken
    colour: blue
    stages:
      - id: build
        type: run
        steps:
          - script: make
      - id: build
        type: run
        steps:
          - script: make again
      - id: ship
        type: teleport
      - id: deploy
        type: run
        dependsOn: [bild]
        steps:
          - script: make deploy
      - id: announce
        type: run
        steps:
          - script: "echo ${{ parameters.nope }}"
      - id: pause
        type: wait
        duration: forever
  - name: loop
    stages:
      - id: a
        type: wait
        duration: 1s
        dependsOn: [b]
      - id: b
        type: wait
        duration: 1s
        dependsOn: [a]
"#;

/// (lines, words one of which the message must contain)
const EXPECTED: &[(RangeInclusive<u64>, &[&str])] = &[
    (2..=3, &["colour"]),
    (9..=12, &["duplicate", "build"]),
    (13..=14, &["teleport"]),
    (15..=19, &["bild"]),
    (20..=23, &["nope"]),
    (24..=26, &["forever", "duration"]),
    (27..=36, &["cycle"]),
];

/// Parses `FILE:LINE:COL: message` lines.
fn diagnostics(stderr: &str, file: &str) -> Vec<(u64, u64, String)> {
    stderr
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(file)?.strip_prefix(':')?;
            let mut parts = rest.splitn(3, ':');
            let line_no = parts.next()?.parse().ok()?;
            let column = parts.next()?.parse().ok()?;
            let message = parts.next()?.strip_prefix(' ')?.to_owned();
            Some((line_no, column, message))
        })
        .collect()
}

fn check_all_reported(found: &[(u64, u64, String)], context: &str) {
    for (lines, words) in EXPECTED {
        let hit = found.iter().any(|(line, _, message)| {
            lines.contains(line)
                && words
                    .iter()
                    .any(|w| message.to_lowercase().contains(&w.to_lowercase()))
        });
        assert!(
            hit,
            "no diagnostic on lines {lines:?} mentioning {words:?}; got {found:#?}\n{context}"
        );
    }
    assert!(
        found
            .iter()
            .all(|(line, column, _)| *line >= 1 && *column >= 1),
        "{found:#?}"
    );
}

#[test]
fn validate_reports_every_problem_with_its_position() {
    let server = Server::start(Backend::Sqlite);
    let path = server.write_file("bad.yaml", BAD);
    let path = path.to_str().unwrap();
    let out = server.cli(&["validate", path]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let found = diagnostics(&out.stderr, path);
    assert!(
        found.len() >= EXPECTED.len(),
        "expected at least {} diagnostics: {out:#?}",
        EXPECTED.len()
    );
    check_all_reported(&found, &out.stderr);

    // The API reports the same problems, as data.
    let (status, answer) = server.api(
        "POST",
        "/api/v1/validate",
        Some(json!({"file": "bad.yaml", "content": BAD})),
    );
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["code"], "invalid");
    let found: Vec<(u64, u64, String)> = answer["diagnostics"]
        .as_array()
        .unwrap_or_else(|| panic!("no diagnostics: {answer}"))
        .iter()
        .map(|d| {
            assert_eq!(d["file"], "bad.yaml", "{d}");
            (
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
                d["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    check_all_reported(&found, &answer.to_string());
}

#[test]
fn validate_accepts_a_good_file_offline() {
    let server = Server::start(Backend::Sqlite);
    let path = server.write_file(
        "good.yaml",
        r#"pipelines:
  - name: one
    stages:
      - id: a
        type: wait
        duration: 1s
  - name: two
    parameters:
      - name: env
        options: [staging, production]
        default: staging
    stages:
      - id: check
        type: checkPreconditions
        preconditions:
          - expression: ${{ parameters.env != "production" }}
            message: not on production
"#,
    );
    let path = path.to_str().unwrap();
    // Offline: no server URL, no token.
    let out = server.cli_with(&["validate", path], |c| {
        c.env("GANTRY_URL", "http://127.0.0.1:9")
            .env_remove("GANTRY_TOKEN");
    });
    let out = out.ok();
    assert_eq!(out.stdout.trim(), format!("{path}: ok (2 pipelines)"));

    server
        .cli(&["validate", "/no/such/file.yaml"])
        .fails_with("/no/such/file.yaml");
    let empty = server.write_file("syntax.yaml", "pipelines: [\n");
    let out = server.cli(&["validate", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        diagnostics(&out.stderr, empty.to_str().unwrap()).len(),
        out.stderr.lines().count(),
        "{out:?}"
    );
}

#[test]
fn apply_of_a_bad_file_changes_nothing() {
    let server = Server::start(Backend::Sqlite);
    let good = r#"pipelines:
  - name: broken
    stages:
      - id: build
        type: run
        steps:
          - script: make
"#;
    server.apply(good);
    let before = server.get("/api/v1/pipelines/broken");

    let path = server.write_file("bad.yaml", BAD);
    let path = path.to_str().unwrap();
    let out = server.cli(&["apply", "-f", path]).fails_with("bad.yaml");
    assert!(
        out.stderr.contains("teleport"),
        "the diagnostics are shown: {out:?}"
    );

    let after = server.get("/api/v1/pipelines/broken");
    assert_eq!(before, after, "a bad file changed a pipeline");
    let (status, _) = server.api("GET", "/api/v1/pipelines/loop", None);
    assert_eq!(status, 404, "a bad file created a pipeline");
}

#[test]
fn apply_reports_created_updated_and_unchanged() {
    let server = Server::start(Backend::Sqlite);
    let v1 = "pipelines:\n  - name: p\n    stages:\n      - id: a\n        type: wait\n        duration: 1s\n";
    let v2 = v1.replace("1s", "2s");
    let path = server.write_file("p.yaml", v1);
    let path = path.to_str().unwrap();
    assert_eq!(
        server.cli(&["apply", "-f", path]).ok().stdout.trim(),
        "pipeline p: created"
    );
    assert_eq!(
        server.cli(&["apply", "-f", path]).ok().stdout.trim(),
        "pipeline p: unchanged"
    );
    server.write_file("p.yaml", &v2);
    assert_eq!(
        server.cli(&["apply", "-f", path]).ok().stdout.trim(),
        "pipeline p: updated"
    );
    let pipeline = server.get("/api/v1/pipelines/p");
    assert_eq!(pipeline["version"], 2);
    assert_eq!(pipeline["spec"]["stages"][0]["duration"], "2s");

    let (status, answer) = server.api("POST", "/api/v1/apply", Some(json!({"content": v2})));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"pipelines": [{"name": "p", "result": "unchanged"}]})
    );
}
