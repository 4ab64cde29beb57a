//! The delivery log beyond webhooks: a push to a hosted repository is logged for each
//! pipeline with a trigger on that repository, started (with its execution) or ignored with
//! why, and the log is narrowed by kind and by pipeline. (A cron firing's entry is checked
//! by `git_cron`, which waits for the minute.)

use serde_json::Value;

use crate::git_support::{Clone, repo_url, wait_executions};
use crate::harness::Server;

const PIPELINES: &str = r#"
pipelines:
  - name: on-main
    triggers:
      - type: git
        repository: app
        branch: ^main$
    stages:
      - id: build
        type: run
        steps:
          - script: "true"
  - name: on-dev
    triggers:
      - type: git
        repository: app
        branch: ^dev$
    stages:
      - id: build
        type: run
        steps:
          - script: "true"
"#;

crate::on_both_backends!(a_push_to_a_hosted_repository_is_logged_for_each_pipeline_watching_it);

fn a_push_to_a_hosted_repository_is_logged_for_each_pipeline_watching_it(server: &mut Server) {
    let server = &*server;
    server.cli(&["repo", "create", "app"]).ok();
    server.apply(PIPELINES);
    let clone = Clone::init(server, "app");
    let commit = clone.commit(&[("README", "hello\n")], "first");
    let url = repo_url(server, "app", Some(&server.token));
    clone.git(&["push", "--quiet", &url, "main"]).ok();
    let runs = wait_executions(server, "on-main", 1);

    let log = wait_deliveries(server, "/api/v1/trigger-deliveries?kind=git", 2);
    let of = |pipeline: &str| {
        log.iter()
            .find(|d| d["pipeline"] == pipeline)
            .unwrap_or_else(|| panic!("no delivery for {pipeline}: {log:#?}"))
    };
    let started = of("on-main");
    assert_eq!(started["outcome"], "started", "{started:#}");
    assert_eq!(started["kind"], "git");
    assert_eq!(started["provider"], "git");
    assert_eq!(
        started["started"][0]["execution"], runs[0]["id"],
        "{started:#}"
    );
    let source = started["source"].as_str().unwrap();
    assert!(
        source.contains("app")
            && source.contains("refs/heads/main")
            && source.contains(&commit[..7]),
        "{started:#}"
    );
    let ignored = of("on-dev");
    assert_eq!(ignored["outcome"], "ignored", "{ignored:#}");
    let why = ignored["reason"].as_str().unwrap_or_default();
    assert!(
        why.contains("refs/heads/main") && why.contains("^dev$"),
        "the ignored push says why: {ignored:#}"
    );
    assert_eq!(ignored["started"], serde_json::json!([]));

    // Narrowed by pipeline; the webhook log holds no push to a hosted repository.
    let on_dev = server.get("/api/v1/trigger-deliveries?pipeline=on-dev");
    let on_dev = on_dev["deliveries"].as_array().unwrap();
    assert_eq!(on_dev.len(), 1, "{on_dev:#?}");
    assert_eq!(on_dev[0]["outcome"], "ignored");
    let webhooks = server.get("/api/v1/webhook-deliveries");
    assert_eq!(
        webhooks["deliveries"],
        serde_json::json!([]),
        "{webhooks:#}"
    );
    let (status, answer) = server.api("GET", "/api/v1/trigger-deliveries?limit=501", None);
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = server.api("GET", "/api/v1/trigger-deliveries?kind=gti", None);
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer
            .to_string()
            .contains("kind must be one of git, webhook, cron"),
        "a misspelt kind is named, with the kinds there are: {answer}"
    );
}

/// The log at `path` once it holds `count` deliveries (they are written once the
/// executions have started).
pub(crate) fn wait_deliveries(server: &Server, path: &str, count: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let log = server.get(path);
        let deliveries = log["deliveries"].as_array().cloned().unwrap_or_default();
        if deliveries.len() >= count {
            return deliveries;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {count} deliveries at {path}: {log:#}",
            deliveries.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
