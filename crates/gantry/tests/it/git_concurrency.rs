//! Per-pipeline `concurrency`: with `queue`, executions beyond the limit stay `pending` and run
//! one after the other; with `cancelOlder`, a new execution cancels the running one.

use serde_json::Value;

use crate::harness::{Backend, Server};

const PIPELINES: &str = r#"
pipelines:
  - name: one-at-a-time
    concurrency: { limit: 1 }
    stages:
      - { id: hold, type: wait, duration: 700ms }
  - name: latest-wins
    concurrency: { limit: 1, onConflict: cancelOlder }
    stages:
      - { id: hold, type: wait, duration: 60s }
"#;

fn millis(execution: &Value, field: &str) -> String {
    execution[field].as_str().unwrap_or_default().to_owned()
}

#[test]
fn queued_executions_run_one_at_a_time() {
    let server = Server::start(Backend::Sqlite);
    server.apply(PIPELINES);
    let ids: Vec<String> = (0..3).map(|_| server.run("one-at-a-time", &[])).collect();
    let statuses: Vec<String> = ids
        .iter()
        .map(|id| server.execution(id)["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses[1..], ["pending", "pending"], "{statuses:?}");
    let done: Vec<Value> = ids.iter().map(|id| server.wait_terminal(id)).collect();
    for pair in done.windows(2) {
        assert_eq!(pair[1]["status"], "succeeded", "{:#}", pair[1]);
        // RFC 3339 in UTC compares as text.
        assert!(
            millis(&pair[1], "startedAt") >= millis(&pair[0], "endedAt"),
            "{pair:#?}"
        );
    }

    let older = server.run("latest-wins", &[]);
    server.wait_status(&older, "running");
    let newer = server.run("latest-wins", &[]);
    let canceled = server.wait_terminal(&older);
    assert_eq!(canceled["status"], "canceled", "{canceled:#}");
    server.wait_status(&newer, "running");
    server.cli(&["execution", "cancel", &newer]).ok();
}

/// Two servers on one PostgreSQL database: `queue` holds across them, because a place is a
/// row both claim in the store. Executions started on either run one at a time.
#[test]
fn queue_holds_across_servers_on_one_database() {
    let Some(first) = Server::try_start(Backend::Postgres) else {
        return;
    };
    first.apply(PIPELINES);
    let second = SecondServer::start(first.database_url().expect("postgres"), &first.data_dir());
    let start = |url: &str| {
        let response = reqwest::blocking::Client::new()
            .post(format!("{url}/api/v1/pipelines/one-at-a-time/executions"))
            .bearer_auth(&first.token)
            .json(&serde_json::json!({}))
            .send()
            .expect("run");
        assert_eq!(response.status().as_u16(), 201);
        let body: Value = response.json().expect("json");
        body["id"].as_str().expect("id").to_owned()
    };
    let ids: Vec<String> = (0..4)
        .map(|i| start(if i % 2 == 0 { &first.url } else { &second.url }))
        .collect();
    let mut done: Vec<Value> = ids.iter().map(|id| first.wait_terminal(id)).collect();
    let at = crate::harness::millis;
    done.sort_by_key(|e| at(e, "startedAt"));
    for pair in done.windows(2) {
        assert_eq!(pair[1]["status"], "succeeded", "{:#}", pair[1]);
        assert!(
            at(&pair[1], "startedAt") >= at(&pair[0], "endedAt"),
            "two ran at once: {pair:#?}"
        );
    }
}

/// A second `gantry serve` on another server's database, with its own data directory and the
/// first one's secret key (replicas share it: the secrets in the database are sealed with it).
struct SecondServer {
    child: std::process::Child,
    url: String,
    _root: tempfile::TempDir,
}

impl SecondServer {
    fn start(database: &str, first_data_dir: &std::path::Path) -> SecondServer {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().expect("temp dir");
        let data = root.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let key = data.join("secrets.key");
        std::fs::copy(first_data_dir.join("secrets.key"), &key).expect("secret key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("key mode");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = std::fs::File::create(root.path().join("server.log")).expect("log");
        let child = std::process::Command::new(crate::harness::BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(&data)
            .args(["--database", database])
            .env_remove("GANTRY_TOKEN")
            .env_remove("GANTRY_URL")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start the second server");
        let mut server = SecondServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _root: root,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while reqwest::blocking::get(format!("{}/healthz", server.url))
            .map_or(true, |r| r.status() != 200)
        {
            let log = || std::fs::read_to_string(server._root.path().join("server.log"));
            let exited = server.child.try_wait().expect("try_wait");
            assert!(
                exited.is_none() && std::time::Instant::now() < deadline,
                "the second server did not start ({exited:?}):\n{:?}",
                log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        server
    }
}

impl Drop for SecondServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
