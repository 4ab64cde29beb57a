//! Token roles: every route of the API's own route table against a viewer, an operator and an
//! admin token. Built from `gantry_api::routes()`, so a route added later is checked without
//! anyone remembering to list it here.

use std::time::Duration;

use gantry_api::Role;
use serde_json::{Value, json};

use crate::harness::{Backend, Server};

#[test]
fn every_route_refuses_exactly_the_roles_below_the_one_it_needs() {
    let server = Server::start(Backend::Sqlite);
    let viewer = create_token(&server, "watcher", Some("viewer"));
    let operator = create_token(&server, "ci", Some("operator"));
    let admin = server.token.clone();
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    let mut wrong = Vec::new();
    let mut checked = 0;
    // The admin goes last: what it is allowed to do cannot take rights away from the others.
    for (role, token, name) in [
        (Role::Viewer, &viewer, "watcher"),
        (Role::Operator, &operator, "ci"),
        (Role::Admin, &admin, "admin"),
    ] {
        for route in gantry_api::routes().iter().filter(|r| !r.public) {
            let path = placeholders(route.path);
            let mut request = http
                .request(route.method.clone(), format!("{}{path}", server.url))
                .bearer_auth(token);
            if matches!(route.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
                request = request
                    .header("content-type", "application/json")
                    .body("{}");
            }
            let response = request
                .send()
                .unwrap_or_else(|e| panic!("{} {path}: {e}", route.method));
            let status = response.status().as_u16();
            checked += 1;
            let what = format!("{} {} as {role:?}", route.method, route.path);
            if role < route.role {
                let body: Value = response.json().unwrap_or(Value::Null);
                let expected = format!(
                    "this needs the {} role; token {name:?} is a{} {}",
                    route.role,
                    if role == Role::Operator { "n" } else { "" },
                    role
                );
                if status != 403 || body["error"] != expected || body["code"] != "forbidden" {
                    wrong.push(format!(
                        "{what}: expected 403 {expected:?}, got {status} {body}"
                    ));
                }
            } else if status == 401 || status == 403 {
                wrong.push(format!("{what}: refused with {status}"));
            }
            // An event stream stays open; its response, dropped unread, closes it.
        }
    }
    assert!(
        checked > 100,
        "the route table looks empty: {checked} requests"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_openapi_document_names_the_role_of_every_route() {
    let document: Value = serde_json::from_str(&gantry_api::OPENAPI_DOCUMENT).unwrap();
    let mut wrong = Vec::new();
    for route in gantry_api::routes() {
        let method = route.method.as_str().to_lowercase();
        let documented = &document["paths"][route.path][&method]["x-gantry-role"];
        let expected = if route.public {
            Value::Null
        } else {
            json!(route.role.as_str())
        };
        if *documented != expected {
            wrong.push(format!(
                "{method} {}: the table says {expected}, openapi.json {documented}",
                route.path
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn tokens_get_a_role_at_creation_and_list_shows_it() {
    let server = Server::start(Backend::Sqlite);
    // Without --role a token can only read.
    let reader = server.cli(&["token", "create", "reader"]).ok().stdout;
    let reader = reader.trim().to_owned();
    let deployer = server
        .cli(&["token", "create", "deployer", "--role", "operator"])
        .ok()
        .stdout;
    let deployer = deployer.trim().to_owned();
    server
        .cli(&["token", "create", "boss", "--role", "owner"])
        .fails_with("owner");
    let (status, body) = server.api(
        "POST",
        "/api/v1/tokens",
        Some(json!({"name": "x", "role": "root"})),
    );
    assert_eq!(status, 400, "{body}");

    let listed = server.cli(&["token", "list"]).ok().stdout;
    let role_of = |name: &str| {
        listed
            .lines()
            .find(|line| line.split_whitespace().nth(1) == Some(name))
            .and_then(|line| line.split_whitespace().nth(2))
            .map(str::to_owned)
    };
    assert!(listed.contains("ROLE"), "{listed}");
    assert_eq!(role_of("admin").as_deref(), Some("admin"), "{listed}");
    assert_eq!(role_of("reader").as_deref(), Some("viewer"), "{listed}");
    assert_eq!(role_of("deployer").as_deref(), Some("operator"), "{listed}");

    // A viewer reads, and sees only itself among the tokens.
    let (status, _) = server.api_as(Some(&reader), "GET", "/api/v1/pipelines", None);
    assert_eq!(status, 200);
    let (_, own) = server.api_as(Some(&reader), "GET", "/api/v1/tokens", None);
    let names: Vec<&str> = own["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["reader"]);

    // The faults the issue found: a second token revoking the admin, minting tokens,
    // deleting secrets and rerunning executions.
    for (method, path, body) in [
        ("DELETE", "/api/v1/tokens/admin", None),
        ("POST", "/api/v1/tokens", Some(json!({"name": "mine"}))),
        ("DELETE", "/api/v1/secrets/anything", None),
        (
            "PUT",
            "/api/v1/secrets/anything",
            Some(json!({"value": "x"})),
        ),
    ] {
        let (status, answer) = server.api_as(Some(&deployer), method, path, body);
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert_eq!(
            answer["error"], "this needs the admin role; token \"deployer\" is an operator",
            "{method} {path}"
        );
    }
    server
        .cli_with(&["token", "revoke", "admin"], |c| {
            c.env("GANTRY_TOKEN", &reader);
        })
        .fails_with("this needs the admin role; token \"reader\" is a viewer");
    let (status, answer) = server.api_as(
        Some(&reader),
        "POST",
        "/api/v1/executions/anything/rerun",
        Some(json!({})),
    );
    assert_eq!(status, 403, "{answer}");
    assert_eq!(
        answer["error"],
        "this needs the operator role; token \"reader\" is a viewer"
    );
}

#[test]
fn revoking_the_last_admin_token_brings_a_new_one_at_the_next_start() {
    let mut server = Server::start(Backend::Sqlite);
    let operator = create_token(&server, "ci", Some("operator"));
    let (status, body) = server.api("DELETE", "/api/v1/tokens/admin", None);
    assert_eq!(status, 200, "{body}");
    // The operator cannot mint an admin.
    let (status, _) = server.api_as(
        Some(&operator),
        "POST",
        "/api/v1/tokens",
        Some(json!({"name": "me", "role": "admin"})),
    );
    assert_eq!(status, 403);

    server.stop();
    server.restart();
    let fresh = std::fs::read_to_string(server.data_dir().join("admin-token")).unwrap();
    let fresh = fresh.trim();
    assert_ne!(fresh, server.token, "a new admin token is written");
    let (status, body) = server.api_as(Some(fresh), "GET", "/api/v1/secrets", None);
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.api_as(Some(&operator), "GET", "/api/v1/pipelines", None);
    assert_eq!(status, 200, "the other tokens still work");
}

fn create_token(server: &Server, name: &str, role: Option<&str>) -> String {
    let mut body = json!({ "name": name });
    if let Some(role) = role {
        body["role"] = json!(role);
    }
    let (status, created) = server.api("POST", "/api/v1/tokens", Some(body));
    assert_eq!(status, 201, "{created}");
    created["token"].as_str().unwrap().to_owned()
}

/// A route's path with every parameter filled with a name nothing has.
fn placeholders(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "nothing-here"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
