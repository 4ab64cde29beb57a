//! Smaller faults of issue 12: pipeline names checked like repository names (and any stored
//! name still shown and deleted), the receive-pack advertisement behind an operator's token
//! however its query is spelled, and `apply` of a file larger than the API takes.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Backend, Server};

#[test]
fn a_pipeline_of_any_stored_name_can_be_shown_and_deleted_and_apply_refuses_such_names() {
    let server = Server::start(Backend::Sqlite);
    let long = "p".repeat(100_000);

    // Names like these reached the store before apply checked them; put them there the same
    // way, beside the running server.
    let url = format!("sqlite://{}", server.data_dir().join("gantry.db").display());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = gantry_store::Store::open(&url).await.unwrap();
        for name in ["..", ".", long.as_str()] {
            let spec =
                json!({"name": name, "stages": [{"id": "a", "type": "wait", "duration": "1s"}]});
            store.upsert_pipeline(name, None, &spec, 1).await.unwrap();
        }
    });

    let shown = server.cli(&["pipeline", "show", ".."]).ok().stdout;
    assert!(shown.contains("name:        .."), "{shown}");
    let shown = server.cli(&["pipeline", "show", ".", "--json"]).ok().stdout;
    assert!(shown.contains("\"name\": \".\""), "{shown}");
    let shown = server
        .cli(&["pipeline", "show", &long, "--json"])
        .ok()
        .stdout;
    assert!(shown.contains(&long), "the long pipeline is not shown");
    for name in ["..", ".", long.as_str()] {
        server.cli(&["pipeline", "delete", name]).ok();
    }
    let listed = server.get("/api/v1/pipelines");
    assert_eq!(listed["pipelines"], json!([]), "every pipeline is deleted");
    server
        .cli(&["pipeline", "delete", ".."])
        .fails_with("pipeline \"..\" not found");

    // Apply now refuses them, each with its position.
    let file = server.write_file(
        "names.yaml",
        &format!(
            "pipelines:\n  - {{name: \"..\", stages: [{{id: a, type: wait, duration: 1s}}]}}\n  - {{name: {long}, stages: [{{id: a, type: wait, duration: 1s}}]}}\n"
        ),
    );
    let out = server
        .cli(&["apply", "-f", file.to_str().unwrap()])
        .fails_with("names.yaml:2:12: pipeline name \"..\" must be 1 to 100 letters");
    assert!(
        out.stderr.contains("names.yaml:3:12: pipeline name \"pppp")
            && out.stderr.contains("(100000 characters)"),
        "{out:?}"
    );
    assert!(out.stderr.len() < 2000, "the message repeats the long name");
    assert_eq!(server.get("/api/v1/pipelines")["pipelines"], json!([]));
}

#[test]
fn the_receive_pack_advertisement_needs_an_operator_token_however_the_service_is_spelled() {
    let server = Server::start(Backend::Sqlite);
    // A public repository: reading it needs no token, so only the push side is at stake.
    let (status, body) = server.api(
        "POST",
        "/api/v1/repos",
        Some(json!({"name": "app", "public": true})),
    );
    assert_eq!(status, 201, "{body}");
    let viewer = token(&server, "reader", "viewer");
    let operator = token(&server, "pusher", "operator");

    let refs = "/git/app.git/info/refs?service=";
    let (status, _) = git_get(&server, &format!("{refs}git-upload-pack"), None);
    assert_eq!(status, 200, "a public repository is read without a token");
    for service in [
        "git-receive-pack",
        "git%2Dreceive-pack",
        "git%2dreceive%2Dpack",
        "%67it-receive-pack",
        "git-upload-pack&service=git-receive-pack",
        "git-receive-pack&service=git-upload-pack",
    ] {
        let path = format!("{refs}{service}");
        let (status, www) = git_get(&server, &path, None);
        assert_eq!(status, 401, "{path} without a token");
        assert!(www.is_some_and(|w| w.starts_with("Basic")), "{path}");
        let (status, _) = git_get(&server, &path, Some(&viewer));
        assert_eq!(status, 403, "{path} with a viewer's token");
        let (status, _) = git_get(&server, &path, Some(&operator));
        assert_eq!(status, 200, "{path} with an operator's token");
    }
    let (status, _) = git_get(&server, "/git/app.git/git-receive-pack", None);
    assert_eq!(status, 401);
}

#[test]
fn apply_of_a_file_larger_than_the_api_takes_names_the_file_its_size_and_the_limit() {
    let server = Server::start(Backend::Sqlite);
    let mut text = String::from(
        "pipelines:\n  - name: big\n    stages:\n      - {id: a, type: wait, duration: 1s}\n",
    );
    let line = format!("# {}\n", "padding ".repeat(12));
    while text.len() < 30 << 20 {
        text.push_str(&line);
    }
    let file = server.write_file("big.yaml", &text);
    let file = file.to_str().unwrap();

    let out = server
        .cli(&["apply", "-f", file])
        .fails_with("big.yaml is 30.0 MiB");
    assert!(
        out.stderr.contains("at most 2.0 MiB (2097152 bytes)"),
        "{out:?}"
    );
    assert_eq!(server.get("/api/v1/pipelines")["pipelines"], json!([]));

    let out = server.cli(&["validate", file]).ok();
    assert!(
        out.stderr.contains("warning: ")
            && out.stderr.contains("big.yaml is 30.0 MiB")
            && out.stderr.contains("`gantry apply` cannot send it"),
        "{out:?}"
    );
}

fn token(server: &Server, name: &str, role: &str) -> String {
    let (status, created) = server.api(
        "POST",
        "/api/v1/tokens",
        Some(json!({"name": name, "role": role})),
    );
    assert_eq!(status, 201, "{created}");
    created["token"].as_str().unwrap().to_owned()
}

/// `GET` as git sends it (a token as the basic-auth password); the status and any
/// `WWW-Authenticate` challenge.
fn git_get(server: &Server, path: &str, token: Option<&str>) -> (u16, Option<String>) {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut request = http.get(format!("{}{path}", server.url));
    if let Some(token) = token {
        request = request.basic_auth("git", Some(token));
    }
    let response = request.send().expect("get");
    let www = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (response.status().as_u16(), www)
}
