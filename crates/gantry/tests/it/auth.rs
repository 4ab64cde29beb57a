//! Tokens: the admin token of the first start, refusals, create and revoke.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Backend, Server};

#[test]
fn first_start_writes_a_private_admin_token() {
    let server = Server::start(Backend::Sqlite);
    let path = server.data_dir().join("admin-token");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "admin-token must be readable by its owner only"
    );
    let token = std::fs::read_to_string(&path).unwrap();
    let token = token.trim();
    let hex = token.strip_prefix("gantry_").expect("gantry_ prefix");
    assert_eq!(hex.len(), 64, "32 random bytes in hex");
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));

    // The CLI on the server's machine finds the token by itself.
    let data_dir = server.data_dir();
    let out = server.cli_with(&["token", "list"], |c| {
        c.env_remove("GANTRY_TOKEN")
            .env("GANTRY_DATA_DIR", &data_dir);
    });
    let out = out.ok();
    assert!(out.stdout.contains("admin"), "{out:?}");

    // Only the hash is stored: the secret is nowhere in the database.
    for file in ["gantry.db", "gantry.db-wal"] {
        let db = std::fs::read(server.data_dir().join(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&db);
        assert!(!text.contains(hex), "the secret token is stored in {file}");
    }
}

#[test]
fn healthz_needs_no_token_and_everything_else_does() {
    let server = Server::start(Backend::Sqlite);
    let (status, body) = server.api_as(None, "GET", "/healthz", None);
    assert_eq!((status, body), (200, json!("ok")));

    for path in [
        "/api/v1/pipelines",
        "/api/v1/executions",
        "/api/v1/tokens",
        "/metrics",
        "/api/v1/openapi.json",
    ] {
        let (status, body) = server.api_as(None, "GET", path, None);
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(body["code"], "unauthorized", "{path}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("missing bearer token"),
            "{path}: {body}"
        );
    }
}

#[test]
fn api_refuses_wrong_malformed_and_revoked_tokens() {
    let server = Server::start(Backend::Sqlite);
    let wrong = format!("gantry_{}", "0".repeat(64));
    for token in [wrong.as_str(), "nonsense"] {
        let (status, body) = server.api_as(Some(token), "GET", "/api/v1/pipelines", None);
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "invalid or revoked token");
    }

    let (status, created) = server.api("POST", "/api/v1/tokens", Some(json!({"name": "ci"})));
    assert_eq!(status, 201, "{created}");
    let secret = created["token"].as_str().unwrap().to_owned();
    let (status, _) = server.api_as(Some(&secret), "GET", "/api/v1/pipelines", None);
    assert_eq!(status, 200, "a new token works at once");

    server.cli(&["token", "revoke", "ci"]).ok();
    let revoked_at = Instant::now();
    loop {
        let (status, body) = server.api_as(Some(&secret), "GET", "/api/v1/pipelines", None);
        if status == 401 {
            assert_eq!(body["error"], "invalid or revoked token");
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(5),
            "a revoked token still works after 5 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Revoking again, or an unknown token, is a 404 naming it.
    let (status, body) = server.api("DELETE", "/api/v1/tokens/ci", None);
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("\"ci\""), "{body}");
}

#[test]
fn cli_refuses_with_a_message_and_exit_status_1() {
    let server = Server::start(Backend::Sqlite);
    let wrong = format!("gantry_{}", "f".repeat(64));
    server
        .cli_with(&["pipeline", "list"], |c| {
            c.env("GANTRY_TOKEN", &wrong);
        })
        .fails_with("invalid or revoked token");

    // No token anywhere.
    server
        .cli_with(&["execution", "list"], |c| {
            c.env_remove("GANTRY_TOKEN");
        })
        .fails_with("no API token");

    // A server that is not there.
    server
        .cli_with(&["pipeline", "list"], |c| {
            c.env("GANTRY_URL", "http://127.0.0.1:9");
        })
        .fails_with("cannot reach gantry at http://127.0.0.1:9");
}

#[test]
fn tokens_are_created_listed_and_revoked_through_the_cli() {
    let server = Server::start(Backend::Sqlite);
    let out = server.cli(&["token", "create", "deployer"]).ok();
    let secret = out.stdout.trim().to_owned();
    assert!(secret.starts_with("gantry_"), "{out:?}");
    server
        .cli_with(&["token", "list"], |c| {
            c.env("GANTRY_TOKEN", &secret);
        })
        .ok();

    let listed = server.cli(&["token", "list", "--json"]).ok().stdout;
    assert!(
        listed.contains("deployer") && listed.contains("admin"),
        "{listed}"
    );
    assert!(!listed.contains(&secret[7..]), "token list shows a secret");
    assert!(!listed.contains("hash"), "token list shows hashes");

    // Names are unique among live tokens.
    server
        .cli(&["token", "create", "deployer"])
        .fails_with("already exists");
    server
        .cli(&["token", "create", "bad name!"])
        .fails_with("token name");

    server.cli(&["token", "revoke", "deployer"]).ok();
    server
        .cli_with(&["pipeline", "list"], |c| {
            c.env("GANTRY_TOKEN", &secret);
        })
        .fails_with("invalid or revoked token");
    server
        .cli(&["token", "revoke", "nobody"])
        .fails_with("\"nobody\" not found");
    let (_, tokens) = server.api("GET", "/api/v1/tokens", None);
    let deployer = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "deployer")
        .unwrap();
    assert!(deployer["revokedAt"].is_string(), "{deployer}");
    assert!(deployer["lastUsedAt"].is_string(), "{deployer}");
}
