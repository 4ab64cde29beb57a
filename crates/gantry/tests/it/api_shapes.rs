//! The API's answers have the shapes its OpenAPI document says: real
//! requests to a real server, each answer checked against the schema the
//! served document gives for its operation and status. The check is strict
//! (an object may not carry a field its schema does not name), so a field
//! renamed in code without the document, or the other way round, fails.

use serde_json::{Value, json};

use crate::apt::build_hello;
use crate::deploy_support::{deploy, free_port, shop_yaml};
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
        // A flattened field: its parts are inline objects, closed as a whole
        // (a part closed alone would refuse the other parts' fields).
        Value::Object(object) if object.contains_key("allOf") => {
            for (key, part) in object.iter_mut() {
                match (key.as_str(), part) {
                    ("allOf", Value::Array(parts)) => parts
                        .iter_mut()
                        .filter_map(Value::as_object_mut)
                        .for_each(|part| part.values_mut().for_each(close)),
                    (_, other) => close(other),
                }
            }
            object.insert("unevaluatedProperties".into(), Value::Bool(false));
        }
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

/// One request of a run: method, the route's path, the path sent, the body
/// and the status expected.
type Request<'a> = (&'a str, &'a str, String, Option<Value>, u16);

impl Shapes {
    fn check_all(&mut self, server: &Server, requests: Vec<Request>) {
        for (method, template, path, body, status) in requests {
            self.check(server, method, template, &path, body, status);
        }
    }
}

/// A `GET` expected to answer 200.
fn get<'a>(template: &'a str, path: &str) -> Request<'a> {
    ("GET", template, path.to_owned(), None, 200)
}

#[test]
fn every_answer_has_the_shape_the_openapi_document_gives_it() {
    let server = Server::start(Backend::Sqlite);
    let mut shapes = Shapes::of(&server);
    let file = json!({"content": PIPELINE});

    // Pipelines and executions.
    shapes.check_all(
        &server,
        vec![
            (
                "POST",
                "/api/v1/validate",
                "/api/v1/validate".into(),
                Some(file.clone()),
                200,
            ),
            (
                "POST",
                "/api/v1/apply",
                "/api/v1/apply".into(),
                Some(file),
                200,
            ),
            get("/api/v1/pipelines", "/api/v1/pipelines"),
            get("/api/v1/pipelines", "/api/v1/pipelines?name=shapes"),
            get("/api/v1/pipelines/{name}", "/api/v1/pipelines/shapes"),
        ],
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
    // The check itself can fail: a renamed field is refused.
    let mut renamed = execution.clone();
    let created = renamed["createdAt"].take();
    renamed
        .as_object_mut()
        .expect("an object")
        .remove("createdAt");
    renamed["created"] = created;
    let schema = json!({"$ref": "#/components/schemas/Execution"});
    assert_eq!(shapes.refusals(&schema, &renamed).len(), 2, "{renamed}");
    server.wait_terminal(&id);
    let execution_path = format!("/api/v1/executions/{id}");
    shapes.check_all(
        &server,
        vec![
            get("/api/v1/executions", "/api/v1/executions"),
            get("/api/v1/executions/{id}", &execution_path),
            get(
                "/api/v1/executions/{id}/logs",
                &format!("{execution_path}/logs"),
            ),
            (
                "POST",
                "/api/v1/executions/{id}/rerun",
                format!("{execution_path}/rerun"),
                None,
                201,
            ),
            (
                "GET",
                "/api/v1/executions/{id}",
                "/api/v1/executions/nothing".into(),
                None,
                404,
            ),
        ],
    );

    // Tokens and secrets.
    let token = json!({"name": "shapes", "role": "operator"});
    let token = shapes.check(
        &server,
        "POST",
        "/api/v1/tokens",
        "/api/v1/tokens",
        Some(token),
        201,
    );
    let token_id = token["id"].as_str().expect("a token id");
    let secret = Some(json!({"value": "s3cret"}));
    shapes.check_all(
        &server,
        vec![
            get("/api/v1/tokens", "/api/v1/tokens"),
            (
                "DELETE",
                "/api/v1/tokens/{token}",
                format!("/api/v1/tokens/{token_id}"),
                None,
                200,
            ),
            (
                "PUT",
                "/api/v1/secrets/{name}",
                "/api/v1/secrets/shapes".into(),
                secret,
                200,
            ),
            get("/api/v1/secrets", "/api/v1/secrets"),
            (
                "DELETE",
                "/api/v1/secrets/{name}",
                "/api/v1/secrets/shapes".into(),
                None,
                200,
            ),
        ],
    );

    // Hosted git and triggers.
    let repo = Some(json!({"name": "shapes-two"}));
    shapes.check_all(
        &server,
        vec![
            ("POST", "/api/v1/repos", "/api/v1/repos".into(), repo, 201),
            get("/api/v1/repos", "/api/v1/repos"),
            get("/api/v1/repos/{name}", "/api/v1/repos/shapes-two"),
            (
                "DELETE",
                "/api/v1/repos/{name}",
                "/api/v1/repos/shapes-two".into(),
                None,
                200,
            ),
            get("/api/v1/triggers", "/api/v1/triggers"),
        ],
    );

    // APT: a package goes in through the CLI (a raw upload), the rest here.
    let main = Some(json!({"name": "main", "distribution": "stable"}));
    shapes.check(
        &server,
        "POST",
        "/api/v1/apt/repos",
        "/api/v1/apt/repos",
        main,
        201,
    );
    let deb = build_hello(&server, "1.0");
    server.cli(&["apt", "repo", "add", "main", &deb]).ok();
    let copy = Some(json!({"to": "other", "query": "hello"}));
    let publish = Some(json!({
        "distribution": "stable",
        "sourceKind": "snapshot",
        "sources": [{"component": "main", "name": "one"}],
        "architectures": ["amd64"],
        "skipSigning": true,
    }));
    let switch = Some(json!({"snapshots": ["none"]}));
    let publication = "/api/v1/apt/publish/{prefix}/{distribution}";
    shapes.check_all(
        &server,
        vec![
            get("/api/v1/apt/repos", "/api/v1/apt/repos"),
            get("/api/v1/apt/repos/{name}", "/api/v1/apt/repos/main"),
            get(
                "/api/v1/apt/repos/{name}/packages",
                "/api/v1/apt/repos/main/packages",
            ),
            (
                "POST",
                "/api/v1/apt/repos",
                "/api/v1/apt/repos".into(),
                Some(json!({"name": "other"})),
                201,
            ),
            (
                "POST",
                "/api/v1/apt/repos/{name}/copy",
                "/api/v1/apt/repos/main/copy".into(),
                copy,
                200,
            ),
            (
                "POST",
                "/api/v1/apt/snapshots",
                "/api/v1/apt/snapshots".into(),
                Some(json!({"name": "one", "repo": "main"})),
                201,
            ),
            (
                "POST",
                "/api/v1/apt/snapshots",
                "/api/v1/apt/snapshots".into(),
                Some(json!({"name": "none", "repo": "other"})),
                201,
            ),
            get("/api/v1/apt/snapshots", "/api/v1/apt/snapshots"),
            get("/api/v1/apt/snapshots/{name}", "/api/v1/apt/snapshots/one"),
            get(
                "/api/v1/apt/snapshots/{name}/diff/{other}",
                "/api/v1/apt/snapshots/one/diff/none",
            ),
            (
                "POST",
                "/api/v1/apt/publish",
                "/api/v1/apt/publish".into(),
                publish,
                201,
            ),
            get("/api/v1/apt/publish", "/api/v1/apt/publish"),
            (
                "PUT",
                publication,
                "/api/v1/apt/publish/:./stable".into(),
                switch,
                200,
            ),
            (
                "DELETE",
                publication,
                "/api/v1/apt/publish/:./stable".into(),
                None,
                200,
            ),
            (
                "DELETE",
                "/api/v1/apt/repos/{name}/packages",
                "/api/v1/apt/repos/other/packages?q=hello".into(),
                None,
                200,
            ),
            (
                "DELETE",
                "/api/v1/apt/snapshots/{name}",
                "/api/v1/apt/snapshots/none".into(),
                None,
                200,
            ),
            (
                "DELETE",
                "/api/v1/apt/repos/{name}",
                "/api/v1/apt/repos/other".into(),
                None,
                200,
            ),
            get("/api/v1/apt/keys", "/api/v1/apt/keys"),
            (
                "POST",
                "/api/v1/apt/db/cleanup",
                "/api/v1/apt/db/cleanup".into(),
                Some(json!({"dryRun": true})),
                200,
            ),
            (
                "GET",
                "/api/v1/apt/repos/{name}",
                "/api/v1/apt/repos/nothing".into(),
                None,
                404,
            ),
        ],
    );

    check_deploy_answers(&server, &mut shapes);

    // Pipelines last: deleting one is the end of its story.
    let name = Some(json!({"name": "shapes"}));
    shapes.check(
        &server,
        "DELETE",
        "/api/v1/pipelines",
        "/api/v1/pipelines",
        name,
        200,
    );
    assert!(
        shapes.checked >= 60,
        "only {} answers were checked",
        shapes.checked
    );
}

/// Applications, clusters, server groups and load balancers: two red/black
/// deploys of the shop, so that a cluster has a live group, a disabled one
/// to roll back to and, once one is destroyed, a history.
fn check_deploy_answers(server: &Server, shapes: &mut Shapes) {
    server.apply(&shop_yaml(free_port(), ""));
    for version in ["version=v1", "version=v2"] {
        let execution = deploy(server, "redblack", &[version]);
        assert_eq!(execution["status"], "succeeded", "{execution:#}");
    }
    let cluster = server.get("/api/v1/clusters/shop-web");
    let names: Vec<&str> = cluster["serverGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["name"].as_str())
        .collect();
    let [old, new] = names[..] else {
        panic!("two red/black deploys left two live groups: {cluster:#}")
    };
    let group = |name: &str, action: &str| format!("/api/v1/server-groups/{name}{action}");
    let groups = "/api/v1/server-groups/{name}";
    let post = |template: &'static str, path: &str, body: Option<Value>| -> Request<'static> {
        ("POST", template, path.to_owned(), body, 200)
    };
    shapes.check_all(
        server,
        vec![
            get("/api/v1/applications", "/api/v1/applications"),
            get("/api/v1/clusters", "/api/v1/clusters"),
            get("/api/v1/clusters", "/api/v1/clusters?q=shop&limit=1"),
            get("/api/v1/clusters/{name}", "/api/v1/clusters/shop-web"),
            get("/api/v1/server-groups", "/api/v1/server-groups"),
            get(groups, &group(old, "")),
            get("/api/v1/load-balancers", "/api/v1/load-balancers"),
            get(
                "/api/v1/load-balancers/{name}",
                "/api/v1/load-balancers/shop",
            ),
            post(
                "/api/v1/server-groups/{name}/resize",
                &group(new, "/resize"),
                Some(json!({"size": 1})),
            ),
            post(
                "/api/v1/server-groups/{name}/enable",
                &group(old, "/enable"),
                None,
            ),
            post(
                "/api/v1/server-groups/{name}/disable",
                &group(old, "/disable"),
                Some(json!({"force": false})),
            ),
            post(
                "/api/v1/clusters/{name}/rollback",
                "/api/v1/clusters/shop-web/rollback",
                None,
            ),
            ("DELETE", groups, group(new, ""), None, 200),
            get("/api/v1/clusters/{name}", "/api/v1/clusters/shop-web"),
            (
                "GET",
                "/api/v1/clusters",
                "/api/v1/clusters?limit=0".into(),
                None,
                400,
            ),
            (
                "GET",
                groups,
                "/api/v1/server-groups/nothing".into(),
                None,
                404,
            ),
            (
                "POST",
                "/webhooks/generic/{source}",
                "/webhooks/generic/nothing".into(),
                Some(json!({})),
                404,
            ),
        ],
    );
    // The refused delivery above is in the delivery log.
    shapes.check_all(
        server,
        vec![get(
            "/api/v1/webhook-deliveries",
            "/api/v1/webhook-deliveries?limit=5",
        )],
    );
    let log = server.get("/api/v1/webhook-deliveries");
    assert_eq!(log["deliveries"][0]["outcome"], "unknown", "{log:#}");
    let page = server.get("/api/v1/clusters?q=SHOP&limit=1");
    assert_eq!(page["total"], 1, "{page:#}");
    assert_eq!(page["clusters"][0]["name"], "shop-web", "{page:#}");
}
