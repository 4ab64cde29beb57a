//! What an execution's page and the triggers page keep of the past: every attempt of a
//! stage (a failed one, its failed retry, then a restart by a person) with its status, times and error, and the
//! recent webhook deliveries, the refused ones with why (a wrong secret, a source no
//! trigger listens to) beside those that started or were filtered out; in the browser,
//! each trigger's latest deliveries beside it (a push of a branch its `git` trigger does
//! not watch, ignored with why; the webhook delivery that started its pipeline). Checked through the
//! API on SQLite and PostgreSQL, and in Debian's chromium (`tests/browser/history.mjs`) on
//! SQLite, with screenshots in `target/browser-screenshots/`.

use serde_json::{Value, json};

use crate::git_support::{Clone, repo_url};
use crate::git_webhooks::post;
use crate::harness::{Backend, Server, stage};
use crate::trigger_deliveries::wait_deliveries;
use crate::ui_browser::run_browser_checks;

const PIPELINES: &str = r#"
pipelines:
  - name: flaky
    stages:
      - id: fetch
        type: run
        retries: 1
        steps:
          - script: |
              echo try >> @W@/fetch-tries
              if [ "$(wc -l < @W@/fetch-tries)" -le 2 ]; then echo mirror unreachable; exit 3; fi
              echo fetched
  - name: from-bot
    triggers:
      - type: webhook
        source: deploy-bot
        secret: s3cret
        payloadConstraints:
          action: ^deploy$
    stages:
      - id: go
        type: run
        steps:
          - script: echo go
"#;

crate::on_both_backends!(a_stage_keeps_each_attempt_and_the_log_keeps_refused_deliveries);

fn a_stage_keeps_each_attempt_and_the_log_keeps_refused_deliveries(server: &mut Server) {
    let execution = attempts_of_a_retried_and_restarted_stage(server);
    let fetch = stage(&execution, "fetch");
    let attempts = fetch["attempts"].as_array().expect("attempts");
    let summary: Vec<(i64, &str)> = attempts
        .iter()
        .map(|a| {
            (
                a["attempt"].as_i64().unwrap(),
                a["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [(1, "failed"), (2, "failed"), (3, "succeeded")],
        "{fetch:#}"
    );
    let first_error = attempts[0]["error"].as_str().unwrap_or_default();
    assert!(
        first_error.contains('3'),
        "the first attempt's error: {fetch:#}"
    );
    for attempt in attempts {
        assert!(
            attempt["startedAt"].is_string() && attempt["endedAt"].is_string(),
            "{attempt:#}"
        );
    }

    let deliveries = refused_and_accepted_deliveries(server);
    let outcomes: Vec<&str> = deliveries
        .iter()
        .map(|d| d["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["started", "ignored", "unknown", "unauthorized"],
        "newest first: {deliveries:#?}"
    );
    for refused in &deliveries[2..] {
        assert!(
            refused["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "a refused delivery says why: {refused:#}"
        );
        assert_eq!(refused["started"], json!([]));
    }
    assert_eq!(deliveries[0]["source"], "deploy-bot");
    assert_eq!(deliveries[0]["started"][0]["pipeline"], "from-bot");
    let (status, answer) = server.api("GET", "/api/v1/webhook-deliveries?limit=0", None);
    assert_eq!(status, 400, "{answer}");
}

/// Runs `flaky` (its first attempt and its retry fail), restarts its stage by hand and
/// returns the execution once the third attempt has succeeded.
fn attempts_of_a_retried_and_restarted_stage(server: &Server) -> Value {
    server.apply(PIPELINES);
    let id = server.run("flaky", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let (status, answer) = server.api(
        "POST",
        &format!("/api/v1/executions/{id}/stages/fetch/restart"),
        None,
    );
    assert_eq!(status, 200, "{answer}");
    server.wait_for(&id, "the restarted stage to end", |e| {
        stage(e, "fetch")["attempt"] == 3 && e["status"] == "succeeded"
    })
}

/// Four deliveries, oldest first: a wrong secret, a source no trigger listens to, a payload
/// the trigger filters out, one that starts `from-bot`. Returns the log, newest first.
fn refused_and_accepted_deliveries(server: &Server) -> Vec<Value> {
    let bot = "/webhooks/generic/deploy-bot";
    let secret = [("x-gantry-secret", "s3cret".to_owned())];
    let deploy = json!({"action": "deploy"}).to_string();
    let wrong = [("x-gantry-secret", "guessed".to_owned())];
    assert_eq!(post(server, bot, &wrong, &deploy).0, 401);
    assert_eq!(
        post(server, "/webhooks/generic/nobody", &secret, &deploy).0,
        404
    );
    let build = json!({"action": "build"}).to_string();
    assert_eq!(post(server, bot, &secret, &build).0, 200);
    assert_eq!(post(server, bot, &secret, &deploy).0, 202);
    let log = server.get("/api/v1/webhook-deliveries?limit=4");
    log["deliveries"].as_array().expect("deliveries").clone()
}

/// A pipeline whose `git` trigger watches `main` of the hosted repository `site`, and a
/// push of another branch there, which it lets pass (logged as ignored, with why).
fn an_ignored_push(server: &Server) {
    server.cli(&["repo", "create", "site"]).ok();
    server.apply(
        r#"
pipelines:
  - name: site-main
    triggers:
      - type: git
        repository: site
        branch: ^main$
    stages:
      - id: build
        type: run
        steps:
          - script: "true"
"#,
    );
    let clone = Clone::init(server, "site");
    clone.commit(&[("README", "draft\n")], "draft");
    clone.git(&["checkout", "-q", "-b", "feature"]).ok();
    let url = repo_url(server, "site", Some(&server.token));
    clone.git(&["push", "--quiet", &url, "feature"]).ok();
    wait_deliveries(server, "/api/v1/trigger-deliveries?pipeline=site-main", 1);
}

#[test]
fn the_execution_and_triggers_pages_show_attempts_and_refused_deliveries() {
    let server = Server::start(Backend::Sqlite);
    let execution = attempts_of_a_retried_and_restarted_stage(&server);
    an_ignored_push(&server);
    refused_and_accepted_deliveries(&server);
    run_browser_checks(
        &server,
        "history.mjs",
        &[("GANTRY_EXECUTION", execution["id"].as_str().unwrap())],
        "every history check passed",
    );
}
