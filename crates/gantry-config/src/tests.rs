//! One case per rule. Each input is a whole file; `check` shows its diagnostics, or `ok` and
//! the model as JSON.
//!
//! The cases live by layer: `tests/yaml.rs`, `tests/structure.rs` (fields, names,
//! stages and their graph) and `tests/expressions.rs`; the whole-model ones are here.

mod example_file;
mod expressions;
mod structure;
mod yaml;

use expect_test::{Expect, expect};

use crate::{Diagnostic, Diagnostics, StageKind, parse_document};

/// Parses `input` as `test.yaml` and compares the diagnostics (one per line), or `ok` and the
/// model's JSON when the file is clean.
fn check(input: &str, expected: Expect) {
    let actual = match parse_document("test.yaml", &unindent(input)) {
        Ok(document) => format!("ok {}", serde_json::to_string(&document).unwrap()),
        Err(diagnostics) => diagnostics.to_string(),
    };
    expected.assert_eq(&actual);
}

/// Lets cases be written indented inside raw strings.
fn unindent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    text.lines()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn minimal_pipeline() {
    check(
        r#"
        pipelines:
          - name: p
            stages:
              - {id: a, type: wait, duration: 1m30s}
        "#,
        expect![[
            r#"ok {"pipelines":[{"name":"p","stages":[{"id":"a","retries":0,"failPipeline":true,"continuePipeline":false,"completeOtherBranchesThenFail":false,"type":"wait","duration":"1m 30s"}]}]}"#
        ]],
    );
    check("", expect![[r#"ok {"pipelines":[]}"#]]);
    check("# only a comment\n", expect![[r#"ok {"pipelines":[]}"#]]);
    check("pipelines:\n", expect![[r#"ok {"pipelines":[]}"#]]);
}

#[test]
fn pipeline_names() {
    check(
        r#"
        pipelines:
          - {name: "a/b", stages: [{id: a, type: wait, duration: 1s}]}
          - {name: " ", stages: [{id: a, type: wait, duration: 1s}]}
        "#,
        expect![[r#"
            test.yaml:2:12: pipeline name "a/b" cannot hold / or control characters
            test.yaml:3:12: a pipeline name cannot be empty"#]],
    );
}

#[test]
fn webhook_rules() {
    check(
        r#"
        pipelines:
          - name: p
            stages:
              - {id: a, type: webhook, url: u, method: post}
              - {id: b, type: webhook, url: u, method: FETCH}
              - {id: c, type: webhook, url: u, method: "${{ parameters.m }}"}
              - {id: d, type: webhook, url: u, statusUrlResolution: webhookResponse}
              - {id: e, type: webhook, url: u, waitForCompletion: true}
              - {id: f, type: webhook, url: u, waitForCompletion: true, statusJsonPath: $.s, successStatuses: []}
              - {id: g, type: webhook, url: u, statusUrlResolution: body}
              - {id: h, type: webhook, url: u, maxRetries: 1.5, body: .inf}
        "#,
        expect![[r#"
            test.yaml:4:48: "post" is not an http method; write "POST"
            test.yaml:5:48: "FETCH" is not an http method; use one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS
            test.yaml:6:53: unknown parameter "m" in parameters.m; the pipeline declares no parameters
            test.yaml:7:61: statusUrlResolution: webhookResponse needs "statusUrlJsonPath", where the status url is in the response
            test.yaml:8:40: waitForCompletion: true needs "statusJsonPath", where the status is in the polled response
            test.yaml:8:40: waitForCompletion: true needs at least one of successStatuses, canceledStatuses, terminalStatuses
            test.yaml:9:40: waitForCompletion: true needs at least one of successStatuses, canceledStatuses, terminalStatuses
            test.yaml:10:61: "statusUrlResolution" must be one of getMethod, locationHeader, webhookResponse, not "body"
            test.yaml:11:52: "maxRetries" must be a whole number from 0 to 4294967295, not the number 1.5
            test.yaml:11:63: this number (an infinity or nan) has no json form"#]],
    );
}

#[test]
fn stage_types_match_the_model() {
    let names: Vec<&str> = crate::stages::STAGE_TYPES.iter().map(|t| t.name).collect();
    assert_eq!(names, StageKind::TYPE_NAMES);
}

#[test]
fn diagnostics_serialize_as_json() {
    let diagnostics = Diagnostics(vec![Diagnostic {
        file: "gantry.yaml".to_owned(),
        line: 3,
        column: 7,
        message: "stage \"deploy\" depends on unknown stage \"bild\"".to_owned(),
    }]);
    expect![[r#"[{"file":"gantry.yaml","line":3,"column":7,"message":"stage \"deploy\" depends on unknown stage \"bild\""}]"#]]
        .assert_eq(&serde_json::to_string(&diagnostics).unwrap());
    expect![[r#"gantry.yaml:3:7: stage "deploy" depends on unknown stage "bild""#]]
        .assert_eq(&diagnostics.to_string());
}

#[test]
fn registry_access_of_a_run_stage_needs_a_cloud_build_file() {
    check(
        r#"
        pipelines:
          - name: p
            stages:
              - {id: a, type: run, config: cloudbuild.yaml, credentials: LOGIN, tlsVerify: false}
              - {id: b, type: run, steps: [{script: "true"}], credentials: LOGIN, substitutions: {_X: y}}
        "#,
        expect![[r#"
            test.yaml:5:55: stage "b": "credentials" only applies with "config"
            test.yaml:5:75: stage "b": "substitutions" only applies with "config""#]],
    );
}
