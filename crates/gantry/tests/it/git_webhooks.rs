//! GitHub and GitLab push webhooks, built from their documented payloads: valid deliveries
//! start the pipeline watching that repository (checked out from its clone URL, here a public
//! hosted repository standing in for github.com), bad signatures and tokens are refused and
//! counted, a redelivery is ignored, a malformed payload is answered 400 naming the field.
//! Also the generic webhook with its secret and payload constraints.

use serde_json::{Value, json};

use crate::git_support::{Clone, repo_url, set_secret, still_executions, wait_executions};
use crate::harness::Server;

const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const GITLAB_TOKEN: &str = "gitlab-token-123";

fn pipelines(clone_url: &str) -> String {
    format!(
        r#"
pipelines:
  - name: from-github
    triggers:
      - type: git
        url: {clone_url}
        branch: ^main$
        secret: "{GITHUB_SECRET}"
    stages:
      - id: build
        type: run
        steps:
          - script: echo "$COMMIT_SHA $REPO_NAME $(cat README)" > @W@/github.txt
  - name: from-gitlab
    triggers:
      - type: git
        url: {clone_url}
        tag: ^v
        secret: {GITLAB_TOKEN}
    stages:
      - id: build
        type: run
        steps:
          - script: echo "$TAG_NAME" > @W@/gitlab.txt
  - name: from-generic
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
          - script: echo '${{{{ trigger.payload.version }}}}' > @W@/generic.txt
"#
    )
}

fn github_push(clone_url: &str, before: &str, after: &str, reference: &str) -> Value {
    json!({
        "ref": reference,
        "before": before,
        "after": after,
        "created": false,
        "deleted": false,
        "forced": false,
        "repository": {
            "id": 1296269,
            "name": "app",
            "full_name": "octocat/app",
            "html_url": "https://github.com/octocat/app",
            "clone_url": clone_url,
            "ssh_url": "git@github.com:octocat/app.git",
        },
        "pusher": {"name": "octocat", "email": "octocat@github.com"},
        "head_commit": {
            "id": after,
            "message": "Update README",
            "author": {"name": "Mona", "email": "mona@github.com"},
            "added": [], "removed": [], "modified": ["README"],
        },
        "commits": [{
            "id": after,
            "message": "Update README",
            "author": {"name": "Mona", "email": "mona@github.com"},
            "added": [], "removed": [], "modified": ["README"],
        }],
    })
}

pub(crate) fn post(
    server: &Server,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (u16, Value) {
    let http = reqwest::blocking::Client::new();
    let mut request = http
        .post(format!("{}{path}", server.url))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().expect("post");
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn github(server: &Server, body: &str, signature: String, delivery: &str) -> (u16, Value) {
    post(
        server,
        "/webhooks/github",
        &[
            ("x-github-event", "push".to_owned()),
            ("x-github-delivery", delivery.to_owned()),
            ("x-hub-signature-256", signature),
        ],
        body,
    )
}

crate::on_both_backends!(github_and_gitlab_pushes_start_pipelines);

fn github_and_gitlab_pushes_start_pipelines(server: &mut Server) {
    let server = &*server;
    server.cli(&["repo", "create", "mirror", "--public"]).ok();
    let clone_url = repo_url(server, "mirror", None);
    let clone = Clone::init(server, "app");
    let commit = clone.commit(&[("README", "from github")], "Update README");
    clone.git(&["tag", "v2.0.0"]).ok();
    clone
        .git(&[
            "push",
            "--quiet",
            &repo_url(server, "mirror", Some(&server.token)),
            "main",
            "v2.0.0",
        ])
        .ok();
    server.apply(&pipelines(&clone_url));

    let zero = "0".repeat(40);
    let body = github_push(&clone_url, &zero, &commit, "refs/heads/main").to_string();
    let sign = |body: &str| gantry_triggers::github_signature(GITHUB_SECRET, body.as_bytes());

    // Refused: no signature, a wrong one, a signature of another body. Nothing starts.
    let (status, _) = post(
        server,
        "/webhooks/github",
        &[("x-github-event", "push".into())],
        &body,
    );
    assert_eq!(status, 401);
    let (status, _) = github(
        server,
        &body,
        gantry_triggers::github_signature("wrong", body.as_bytes()),
        "d-0",
    );
    assert_eq!(status, 401);
    let (status, answer) = github(server, &body, sign("{}"), "d-0");
    assert_eq!(status, 401, "{answer}");
    still_executions(server, "from-github", 0);
    let metrics = server.api("GET", "/metrics", None).1;
    let metrics = metrics.as_str().unwrap_or_default();
    assert!(
        metrics.contains(
            "gantry_webhook_refusals_total{provider=\"github\",reason=\"unauthorized\"} 3"
        ),
        "{metrics}"
    );

    // A malformed payload with a good signature: 400 naming the field.
    let bad = json!({"before": zero, "after": commit}).to_string();
    let (status, answer) = github(server, &bad, sign(&bad), "d-bad");
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("\"ref\""),
        "{answer}"
    );

    // A good delivery starts the pipeline on a checkout of the commit.
    let (status, answer) = github(server, &body, sign(&body), "d-1");
    assert_eq!(status, 202, "{answer}");
    let runs = wait_executions(server, "from-github", 1);
    let execution = server.wait_terminal(runs[0]["id"].as_str().unwrap());
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(execution["trigger"]["deliveryId"], "d-1");
    assert_eq!(execution["trigger"]["pusher"], "octocat");
    assert_eq!(execution["trigger"]["author"], "Mona <mona@github.com>");
    let written = std::fs::read_to_string(server.work().join("github.txt")).unwrap();
    assert_eq!(written, format!("{commit} app from github\n"));

    // A redelivery is ignored; so is the same commit under another delivery id.
    let (status, answer) = github(server, &body, sign(&body), "d-1");
    assert_eq!(status, 200);
    assert!(
        answer["ignored"]
            .as_str()
            .unwrap()
            .contains("already received"),
        "{answer}"
    );
    let (status, answer) = github(server, &body, sign(&body), "d-2");
    assert_eq!(status, 200, "{answer}");
    still_executions(server, "from-github", 1);

    // GitLab: Tag Push Hook with the token.
    let gitlab = json!({
        "object_kind": "tag_push",
        "event_name": "tag_push",
        "ref": "refs/tags/v2.0.0",
        "before": zero,
        "after": commit,
        "checkout_sha": commit,
        "user_username": "jsmith",
        "project": {"name": "app", "web_url": "http://gitlab.example/app", "git_http_url": clone_url},
        "commits": [],
    })
    .to_string();
    let headers = |token: &str| {
        vec![
            ("x-gitlab-event", "Tag Push Hook".to_owned()),
            ("x-gitlab-token", token.to_owned()),
            ("x-gitlab-event-uuid", "u-1".to_owned()),
        ]
    };
    let (status, _) = post(server, "/webhooks/gitlab", &headers("nope"), &gitlab);
    assert_eq!(status, 401);
    still_executions(server, "from-gitlab", 0);
    let (status, answer) = post(server, "/webhooks/gitlab", &headers(GITLAB_TOKEN), &gitlab);
    assert_eq!(status, 202, "{answer}");
    let runs = wait_executions(server, "from-gitlab", 1);
    let execution = server.wait_terminal(runs[0]["id"].as_str().unwrap());
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(
        std::fs::read_to_string(server.work().join("gitlab.txt")).unwrap(),
        "v2.0.0\n"
    );
    let (status, _) = post(server, "/webhooks/gitlab", &headers(GITLAB_TOKEN), &gitlab);
    assert_eq!(status, 200);
    still_executions(server, "from-gitlab", 1);

    // Generic: the secret, then the payload constraints.
    let payload = json!({"action": "deploy", "version": "1.2.3"}).to_string();
    let path = "/webhooks/generic/deploy-bot";
    let (status, _) = post(server, path, &[], &payload);
    assert_eq!(status, 401);
    let (status, _) = post(server, "/webhooks/generic/nobody", &[], &payload);
    assert_eq!(status, 404);
    let other = json!({"action": "build"}).to_string();
    let (status, answer) = post(
        server,
        path,
        &[("x-gantry-secret", "s3cret".into())],
        &other,
    );
    assert_eq!(status, 200, "{answer}");
    still_executions(server, "from-generic", 0);
    let (status, answer) = post(
        server,
        path,
        &[("x-gantry-secret", "s3cret".into())],
        &payload,
    );
    assert_eq!(status, 202, "{answer}");
    let runs = wait_executions(server, "from-generic", 1);
    let execution = server.wait_terminal(runs[0]["id"].as_str().unwrap());
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(
        std::fs::read_to_string(server.work().join("generic.txt")).unwrap(),
        "1.2.3\n"
    );
}

/// Webhook secrets kept in the secret store (`secretFrom`) instead of the file: deliveries
/// signed with the stored value start the pipeline, others are refused; the file holds no
/// secret, and a trigger whose secret is missing from the store lets nothing through.
#[test]
fn webhook_secrets_from_the_secret_store() {
    let server = Server::start(crate::harness::Backend::Sqlite);
    server.cli(&["repo", "create", "mirror", "--public"]).ok();
    let clone_url = repo_url(&server, "mirror", None);
    let clone = Clone::init(&server, "app");
    let commit = clone.commit(&[("README", "stored secrets")], "Update README");
    clone
        .git(&[
            "push",
            "--quiet",
            &repo_url(&server, "mirror", Some(&server.token)),
            "main",
        ])
        .ok();
    set_secret(&server, "github-hook", "stored-github-secret");
    set_secret(&server, "gitlab-hook", "stored-gitlab-token");
    set_secret(&server, "bot-hook", "stored-bot-secret");
    server.apply(&format!(
        r#"
pipelines:
  - name: github-stored
    triggers:
      - type: git
        url: {clone_url}
        branch: ^main$
        secretFrom: github-hook
    stages:
      - {{ id: build, type: run, steps: [{{ script: "true" }}] }}
  - name: gitlab-stored
    triggers:
      - type: git
        url: {clone_url}
        branch: ^main$
        secretFrom: gitlab-hook
    stages:
      - {{ id: build, type: run, steps: [{{ script: "true" }}] }}
  - name: bot-stored
    triggers:
      - type: webhook
        source: stored-bot
        secretFrom: bot-hook
    stages:
      - {{ id: go, type: run, steps: [{{ script: "true" }}] }}
  - name: bot-missing
    triggers:
      - type: webhook
        source: missing-bot
        secretFrom: not-stored
    stages:
      - {{ id: go, type: run, steps: [{{ script: "true" }}] }}
"#
    ));
    let listed = server.cli(&["trigger", "list"]).ok().stdout;
    assert!(!listed.contains("stored-github-secret"), "{listed}");

    let zero = "0".repeat(40);
    let body = github_push(&clone_url, &zero, &commit, "refs/heads/main").to_string();
    let signed = |secret: &str| gantry_triggers::github_signature(secret, body.as_bytes());
    let (status, _) = github(&server, &body, signed("github-hook"), "s-0");
    assert_eq!(status, 401, "the secret's name is not its value");
    let (status, answer) = github(&server, &body, signed("stored-github-secret"), "s-1");
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["started"][0]["pipeline"], "github-stored",
        "{answer}"
    );
    let runs = wait_executions(&server, "github-stored", 1);
    let execution = server.wait_terminal(runs[0]["id"].as_str().unwrap());
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    still_executions(&server, "gitlab-stored", 0);

    let gitlab = json!({
        "object_kind": "push",
        "ref": "refs/heads/main",
        "before": zero,
        "after": commit,
        "user_username": "jsmith",
        "project": {"name": "app", "git_http_url": clone_url},
        "commits": [],
    })
    .to_string();
    let gitlab_headers = |token: &str, id: &str| {
        vec![
            ("x-gitlab-event", "Push Hook".to_owned()),
            ("x-gitlab-token", token.to_owned()),
            ("x-gitlab-event-uuid", id.to_owned()),
        ]
    };
    let (status, _) = post(
        &server,
        "/webhooks/gitlab",
        &gitlab_headers("gitlab-hook", "g-0"),
        &gitlab,
    );
    assert_eq!(status, 401);
    let (status, answer) = post(
        &server,
        "/webhooks/gitlab",
        &gitlab_headers("stored-gitlab-token", "g-1"),
        &gitlab,
    );
    assert_eq!(status, 202, "{answer}");
    wait_executions(&server, "gitlab-stored", 1);

    let payload = json!({"action": "deploy"}).to_string();
    let bot = "/webhooks/generic/stored-bot";
    let (status, _) = post(
        &server,
        bot,
        &[("x-gantry-secret", "bot-hook".into())],
        &payload,
    );
    assert_eq!(status, 401);
    let (status, answer) = post(
        &server,
        bot,
        &[("x-gantry-secret", "stored-bot-secret".into())],
        &payload,
    );
    assert_eq!(status, 202, "{answer}");
    wait_executions(&server, "bot-stored", 1);
    let (status, _) = post(
        &server,
        "/webhooks/generic/missing-bot",
        &[("x-gantry-secret", "anything".into())],
        &payload,
    );
    assert_eq!(status, 401);
    still_executions(&server, "bot-missing", 0);
}
