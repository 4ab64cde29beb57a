//! The API's answers have the shapes its OpenAPI document says: real
//! requests to a real server, each answer checked against the schema the
//! served document gives for its operation and status. The check is strict
//! (an object may not carry a field its schema does not name), so a field
//! renamed in code without the document, or the other way round, fails.

use serde_json::{Value, json};

use crate::apt::build_hello;
use crate::harness::{Backend, Server};

const PIPELINE: &str = r#"
pipelines:
  - name: shapes
    parameters:
      - name: who
        default: world
      - name: password
        secret: true
        default: hunter2
    stages:
      - id: greet
        type: run
        steps:
          - script: echo hello ${{ parameters.who }}
repositories:
  - name: shapes-repo
"#;

/// Checks answers against one served document.
struct Shapes {
    document: Value,
    checked: usize,
}

impl Shapes {
    fn of(server: &Server) -> Shapes {
        Shapes {
            document: server.get("/api/v1/openapi.json"),
            checked: 0,
        }
    }

    /// Sends the request and checks the answer against the schema of
    /// `template` (the route's path) for the status it came with, which must
    /// be `expected`.
    fn check(
        &mut self,
        server: &Server,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Value>,
        expected: u16,
    ) -> Value {
        let (status, answer) = server.api(method, path, body);
        assert_eq!(status, expected, "{method} {path}: {answer}");
        let operation = &self.document["paths"][template][method.to_lowercase()];
        assert!(
            operation.is_object(),
            "{method} {template} is not documented"
        );
        let mut response = &operation["responses"][status.to_string()];
        if let Some(reference) = response["$ref"].as_str() {
            response = self
                .document
                .pointer(reference.trim_start_matches('#'))
                .expect("a resolvable response");
        }
        let schema = &response["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "{method} {template} documents no JSON answer for {status}: {response}"
        );
        let errors = self.refusals(schema, &answer);
        assert!(
            errors.is_empty(),
            "{method} {path} answered {status} with a body its schema refuses:\n{}\nbody: {answer:#}",
            errors.join("\n")
        );
        self.checked += 1;
        answer
    }
}

impl Shapes {
    /// What `schema` (of this document) finds wrong with `body`.
    fn refusals(&self, schema: &Value, body: &Value) -> Vec<String> {
        let mut root = strict(schema.clone());
        root["components"] = strict(self.document["components"].clone());
        let validator = jsonschema::validator_for(&root)
            .unwrap_or_else(|e| panic!("the schema {schema} is not valid: {e}"));
        validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect()
    }
}

/// The schema with every object that names its properties closed to others.
fn strict(mut schema: Value) -> Value {
    close(&mut schema);
    schema
}

fn close(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if object.contains_key("properties") && !object.contains_key("additionalProperties") {
                object.insert("additionalProperties".into(), Value::Bool(false));
            }
            object.values_mut().for_each(close);
        }
        Value::Array(items) => items.iter_mut().for_each(close),
        _ => {}
    }
}

#[test]
fn every_answer_has_the_shape_the_openapi_document_gives_it() {
    let server = Server::start(Backend::Sqlite);
    let mut shapes = Shapes::of(&server);
    let file = json!({"content": PIPELINE});

    // Pipelines and executions.
    shapes.check(
        &server,
        "POST",
        "/api/v1/validate",
        "/api/v1/validate",
        Some(file.clone()),
        200,
    );
    shapes.check(
        &server,
        "POST",
        "/api/v1/apply",
        "/api/v1/apply",
        Some(file.clone()),
        200,
    );
    shapes.check(
        &server,
        "GET",
        "/api/v1/pipelines",
        "/api/v1/pipelines",
        None,
        200,
    );
    shapes.check(
        &server,
        "GET",
        "/api/v1/pipelines",
        "/api/v1/pipelines?name=shapes",
        None,
        200,
    );
    shapes.check(
        &server,
        "GET",
        "/api/v1/pipelines/{name}",
        "/api/v1/pipelines/shapes",
        None,
        200,
    );
    let execution = shapes.check(
        &server,
        "POST",
        "/api/v1/pipelines/{name}/executions",
        "/api/v1/pipelines/shapes/executions",
        Some(json!({"parameters": {"who": "shapes"}})),
        201,
    );
    let id = execution["id"]
        .as_str()
        .expect("an execution id")
        .to_owned();
    server.wait_terminal(&id);
    shapes.check(
        &server,
        "GET",
        "/api/v1/executions",
        "/api/v1/executions",
        None,
        200,
    );
    shapes.check(
        &server,
        "GET",
        "/api/v1/executions/{id}",
        &format!("/api/v1/executions/{id}"),
        None,
        200,
    );
    shapes.check(
        &server,
        "GET",
        "/api/v1/executions/{id}/logs",
        &format!("/api/v1/executions/{id}/logs"),
        None,
        200,
    );
    shapes.check(
        &server,
        "POST",
        "/api/v1/executions/{id}/rerun",
        &format!("/api/v1/executions/{id}/rerun"),
        None,
        201,
    );
    shapes.check(
        &server,
        "GET",
        "/api/v1/executions/{id}",
        "/api/v1/executions/no-such-execution",
        None,
        404,
    );

    // Tokens and secrets.
    let token = shapes.check(
        &server,
        "POST",
        "/api/v1/tokens",
        "/api/v1/tokens",
        Some(json!({"name": "shapes", "role": "operator"})),
        201,
    );
    shapes.check(
        &server,
        "GET",
        "/api/v1/tokens",
        "/api/v1/tokens",
        None,
        200,
    );
    let token_id = token["id"].as_str().expect("a token id");
    shapes.check(
        &server,
        "DELETE",
        "/api/v1/tokens/{token}",
        &format!("/api/v1/tokens/{token_id}"),
        None,
        200,
    );
    shapes.check(
        &server,
        "PUT",
        "/api/v1/secrets/{name}",
        "/api/v1/secrets/shapes",
        Some(json!({"value": "s3cret"})),
        200,
    );
    shapes.check(
        &server,
        "GET",
        "/api/v1/secrets",
        "/api/v1/secrets",
        None,
        200,
    );
    shapes.check(
        &server,
        "DELETE",
        "/api/v1/secrets/{name}",
        "/api/v1/secrets/shapes",
        None,
        200,
    );

    // Hosted git and triggers.
    shapes.check(
        &server,
        "POST",
        "/api/v1/repos",
        "/api/v1/repos",
        Some(json!({"name": "shapes-two"})),
        201,
    );
    shapes.check(&server, "GET", "/api/v1/repos", "/api/v1/repos", None, 200);
    shapes.check(
        &server,
        "GET",
        "/api/v1/repos/{name}",
        "/api/v1/repos/shapes-two",
        None,
        200,
    );
    shapes.check(
        &server,
        "DELETE",
        "/api/v1/repos/{name}",
        "/api/v1/repos/shapes-two",
        None,
        200,
    );
    shapes.check(
        &server,
        "GET",
        "/api/v1/triggers",
        "/api/v1/triggers",
        None,
        200,
    );

    // APT: a package goes in through the CLI (a raw upload), the rest here.
    shapes.check(
        &server,
        "POST",
        "/api/v1/apt/repos",
        "/api/v1/apt/repos",
        Some(json!({"name": "main", "distribution": "stable"})),
        201,
    );
    server
        .cli(&["apt", "repo", "add", "main", &build_hello(&server, "1.0")])
        .ok();
    shapes.check(
        &server,
        "GET",
        "/api/v1/apt/repos",
        "/api/v1/apt/repos",
        None,
        200,
    );
    shapes.check(
        &server,
        "GET",
        "/api/v1/apt/repos/{name}",
        "/api/v1/apt/repos/main",
        None,
        200,
    );
    shapes.check(
        &server,
        "GET",
        "/api/v1/apt/repos/{name}/packages",
        "/api/v1/apt/repos/main/packages",
        None,
        200,
    );
    shapes.check(
        &server,
        "POST",
        "/api/v1/apt/repos",
        "/api/v1/apt/repos",
        Some(json!({"name": "other"})),
        201,
    );
    shapes.check(
        &server,
        "POST",
        "/api/v1/apt/repos/{name}/copy",
        "/api/v1/apt/repos/main/copy",
        Some(json!({"to": "other", "query": "hello"})),
        200,
    );
    shapes.check(
        &server,
        "POST",
        "/api/v1/apt/snapshots",
        "/api/v1/apt/snapshots",
        Some(json!({"name": "one", "repo": "main"})),
        201,
    );
    shapes.check(
        &server,
        "POST",
        "/api/v1/apt/snapshots",
        "/api/v1/apt/snapshots",
        Some(json!({"name": "none", "repo": "other"})),
        201,
    );
    shapes.check(
        &server,
        "GET",
        "/api/v1/apt/snapshots",
        "/api/v1/apt/snapshots",
        None,
        200,
    );
    shapes.check(
        &server,
        "GET",
        "/api/v1/apt/snapshots/{name}",
        "/api/v1/apt/snapshots/one",
        None,
        200,
    );
    shapes.check(
        &server,
        "GET",
        "/api/v1/apt/snapshots/{name}/diff/{other}",
        "/api/v1/apt/snapshots/one/diff/none",
        None,
        200,
    );
    let publish = json!({"distribution": "stable", "sourceKind": "snapshot", "sources": [{"component": "main", "name": "one"}], "architectures": ["amd64"], "skipSigning": true});
    shapes.check(
        &server,
        "POST",
        "/api/v1/apt/publish",
        "/api/v1/apt/publish",
        Some(publish),
        201,
    );
    shapes.check(
        &server,
        "GET",
        "/api/v1/apt/publish",
        "/api/v1/apt/publish",
        None,
        200,
    );
    shapes.check(
        &server,
        "PUT",
        "/api/v1/apt/publish/{prefix}/{distribution}",
        "/api/v1/apt/publish/:./stable",
        Some(json!({"snapshots": ["none"]})),
        200,
    );
    shapes.check(
        &server,
        "DELETE",
        "/api/v1/apt/publish/{prefix}/{distribution}",
        "/api/v1/apt/publish/:./stable",
        None,
        200,
    );
    shapes.check(
        &server,
        "DELETE",
        "/api/v1/apt/repos/{name}/packages",
        "/api/v1/apt/repos/other/packages?q=hello",
        None,
        200,
    );
    shapes.check(
        &server,
        "DELETE",
        "/api/v1/apt/snapshots/{name}",
        "/api/v1/apt/snapshots/none",
        None,
        200,
    );
    shapes.check(
        &server,
        "DELETE",
        "/api/v1/apt/repos/{name}",
        "/api/v1/apt/repos/other",
        None,
        200,
    );
    shapes.check(
        &server,
        "GET",
        "/api/v1/apt/keys",
        "/api/v1/apt/keys",
        None,
        200,
    );
    shapes.check(
        &server,
        "POST",
        "/api/v1/apt/db/cleanup",
        "/api/v1/apt/db/cleanup",
        Some(json!({"dryRun": true})),
        200,
    );
    shapes.check(
        &server,
        "GET",
        "/api/v1/apt/repos/{name}",
        "/api/v1/apt/repos/no-such-repo",
        None,
        404,
    );

    // Pipelines last: deleting one is the end of its story.
    shapes.check(
        &server,
        "DELETE",
        "/api/v1/pipelines",
        "/api/v1/pipelines",
        Some(json!({"name": "shapes"})),
        200,
    );
    assert!(
        shapes.checked >= 44,
        "only {} answers were checked",
        shapes.checked
    );
}
