//! Hosted repositories over smart HTTP with a stock `git` client, and pushes that start
//! pipelines: the matching branch or tag pipelines run, on a checkout of the pushed commit,
//! with the trigger's environment; the others do not.

use crate::git_support::{Clone, git_in, repo_url, still_executions, wait_executions};
use crate::harness::{Backend, Server};

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
          - script: |
              echo "$COMMIT_SHA $SHORT_SHA $BRANCH_NAME $REPO_NAME $CI_COMMIT_AUTHOR" > @W@/on-main.txt
              cat README >> @W@/on-main.txt
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
  - name: on-tag
    triggers:
      - type: git
        repository: app
        tag: ^v[0-9]+\.
    stages:
      - id: release
        type: run
        steps:
          - script: echo "$TAG_NAME $COMMIT_SHA" > @W@/on-tag.txt
"#;

crate::on_both_backends!(push_starts_the_matching_pipelines_on_a_checkout);

fn push_starts_the_matching_pipelines_on_a_checkout(server: &mut Server) {
    let server = &*server;
    server.cli(&["repo", "create", "app"]).ok();
    server.apply(PIPELINES);

    let clone = Clone::init(server, "app");
    let commit = clone.commit(&[("README", "hello from main\n")], "first");
    let url = repo_url(server, "app", Some(&server.token));
    clone.git(&["push", "--quiet", &url, "main"]).ok();

    let runs = wait_executions(server, "on-main", 1);
    let execution = server.wait_terminal(runs[0]["id"].as_str().unwrap());
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(execution["trigger"]["type"], "git");
    assert_eq!(execution["trigger"]["commit"], commit.as_str());
    assert_eq!(execution["trigger"]["branch"], "main");
    assert_eq!(execution["trigger"]["pusher"], "admin");
    let written = std::fs::read_to_string(server.work().join("on-main.txt")).unwrap();
    assert_eq!(
        written,
        format!(
            "{commit} {} main app Ann Author <ann@example.com>\nhello from main\n",
            &commit[..7]
        )
    );
    still_executions(server, "on-dev", 0);
    still_executions(server, "on-tag", 0);

    // A tag starts the tag pipeline only; the commit already ran on-main.
    clone.git(&["tag", "v1.0.0"]).ok();
    clone.git(&["push", "--quiet", &url, "v1.0.0"]).ok();
    let runs = wait_executions(server, "on-tag", 1);
    let execution = server.wait_terminal(runs[0]["id"].as_str().unwrap());
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let written = std::fs::read_to_string(server.work().join("on-tag.txt")).unwrap();
    assert_eq!(written, format!("v1.0.0 {commit}\n"));
    still_executions(server, "on-main", 1);

    // The same commit pushed to dev starts on-dev; a new commit on dev does so again.
    clone.git(&["push", "--quiet", &url, "main:dev"]).ok();
    wait_executions(server, "on-dev", 1);
    clone.git(&["checkout", "--quiet", "-b", "dev"]).ok();
    clone.commit(&[("src/lib.rs", "// dev\n")], "dev work");
    clone.git(&["push", "--quiet", &url, "dev"]).ok();
    wait_executions(server, "on-dev", 2);
    still_executions(server, "on-main", 1);

    let listed = server.cli(&["trigger", "list"]).ok().stdout;
    assert!(
        listed.contains("on-tag") && listed.contains("tag ^v[0-9]+\\."),
        "{listed}"
    );
}

#[test]
fn access_needs_a_token_unless_public() {
    let server = Server::start(Backend::Sqlite);
    server.cli(&["repo", "create", "private"]).ok();
    server.cli(&["repo", "create", "open", "--public"]).ok();
    let listed = server.cli(&["repo", "list"]).ok().stdout;
    assert!(
        listed.contains("private") && listed.contains("open"),
        "{listed}"
    );

    let clone = Clone::init(&server, "work");
    clone.commit(&[("a.txt", "a\n")], "a");
    let work = &clone.dir;

    // Pushing without a token: 401 with a basic-auth challenge, so git asks (and, with no
    // terminal, fails saying why).
    let refused = git_in(work, &["push", &repo_url(&server, "open", None), "main"]);
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("could not read Username")
            || refused.stderr.contains("Authentication failed"),
        "{}",
        refused.stderr
    );
    let refused = git_in(
        work,
        &[
            "push",
            &repo_url(&server, "open", Some("gantry_wrong")),
            "main",
        ],
    );
    assert!(!refused.status.success(), "{}", refused.stderr);

    // A repository that does not exist: 404.
    let missing = git_in(
        work,
        &[
            "push",
            &repo_url(&server, "nope", Some(&server.token)),
            "main",
        ],
    );
    assert!(!missing.status.success());
    assert!(
        missing.stderr.contains("404") || missing.stderr.contains("not found"),
        "{}",
        missing.stderr
    );

    for name in ["open", "private"] {
        git_in(
            work,
            &[
                "push",
                "--quiet",
                &repo_url(&server, name, Some(&server.token)),
                "main",
            ],
        )
        .ok();
    }
    // Reading: a public repository needs no token, a private one does.
    let anonymous = git_in(work, &["ls-remote", &repo_url(&server, "open", None)]).ok();
    assert!(
        anonymous.stdout.contains("refs/heads/main"),
        "{}",
        anonymous.stdout
    );
    let refused = git_in(work, &["ls-remote", &repo_url(&server, "private", None)]);
    assert!(!refused.status.success(), "{}", refused.stdout);
    let dest = server.work().join("cloned");
    let cloned = git_in(
        &server.work(),
        &[
            "-c",
            "protocol.version=2",
            "clone",
            "--quiet",
            &repo_url(&server, "private", Some(&server.token)),
            dest.to_str().unwrap(),
        ],
    );
    cloned.ok();
    assert_eq!(std::fs::read_to_string(dest.join("a.txt")).unwrap(), "a\n");

    // Protocol v2 is spoken when asked for.
    let traced = std::process::Command::new("git")
        .args([
            "-c",
            "protocol.version=2",
            "ls-remote",
            &repo_url(&server, "open", None),
        ])
        .env("GIT_TRACE_PACKET", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&traced.stderr).contains("version 2"));

    server.cli(&["repo", "delete", "open"]).ok();
    let listed = server.cli(&["repo", "list"]).ok().stdout;
    assert!(!listed.contains("open"), "{listed}");
    let (status, _) = server.api(
        "POST",
        "/api/v1/repos",
        Some(serde_json::json!({"name": "../x"})),
    );
    assert_eq!(status, 400);
    let (status, _) = server.api(
        "POST",
        "/api/v1/repos",
        Some(serde_json::json!({"name": "private"})),
    );
    assert_eq!(status, 409);
}

/// A `poll` trigger on an external URL (here another hosted repository, public) finds new
/// commits with `ls-remote`; `gantry run --ref` runs a pipeline on a chosen branch or tag.
#[test]
fn polling_and_running_on_a_ref() {
    let server = Server::start(Backend::Sqlite);
    server.cli(&["repo", "create", "upstream", "--public"]).ok();
    let upstream = repo_url(&server, "upstream", None);
    server.apply(&format!(
        r#"
pipelines:
  - name: polled
    triggers:
      - type: git
        url: {upstream}
        branch: ^main$
        poll: 1s
    stages:
      - id: build
        type: run
        steps:
          - script: echo "$COMMIT_SHA $(cat VERSION)" >> @W@/polled.txt
"#
    ));
    let clone = Clone::init(&server, "upstream");
    let push_url = repo_url(&server, "upstream", Some(&server.token));
    let first = clone.commit(&[("VERSION", "1")], "one");
    clone.git(&["push", "--quiet", &push_url, "main"]).ok();
    let runs = wait_executions(&server, "polled", 1);
    let execution = server.wait_terminal(runs[0]["id"].as_str().unwrap());
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(execution["trigger"]["via"], "poll");
    clone.git(&["tag", "v1"]).ok();
    let second = clone.commit(&[("VERSION", "2")], "two");
    clone
        .git(&["push", "--quiet", &push_url, "main", "v1"])
        .ok();
    let runs = wait_executions(&server, "polled", 2);
    server.wait_terminal(runs[0]["id"].as_str().unwrap());
    still_executions(&server, "polled", 2);

    // By hand on the tag: the first commit again, with its trigger context.
    let out = server.cli(&["run", "polled", "--ref", "v1"]).ok();
    let execution = server.wait_terminal(out.stdout.trim());
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(execution["trigger"]["tag"], "v1");
    let written = std::fs::read_to_string(server.work().join("polled.txt")).unwrap();
    assert_eq!(written, format!("{first} 1\n{second} 2\n{first} 1\n"));
    server
        .cli(&["run", "polled", "--ref", "nope"])
        .fails_with("has no branch or tag \"nope\"");
}

#[test]
fn a_disabled_trigger_does_not_fire_until_enabled_and_stays_off_across_applies() {
    let server = Server::start(Backend::Sqlite);
    server.cli(&["repo", "create", "app"]).ok();
    let pipelines = r#"
pipelines:
  - name: ci
    triggers:
      - {type: webhook, source: unused, public: true}
      - {type: git, repository: app, branch: ^main$, includedFiles: ["src/**"], config: ci/gantry.yaml}
    stages:
      - {id: build, type: run, steps: [{script: "true"}]}
"#;
    server.apply(pipelines);
    let listed = server.cli(&["trigger", "list"]).ok().stdout;
    // The listing names each trigger and says what it watches, file filters and config included.
    assert!(listed.contains("ci#2"), "{listed}");
    assert!(listed.contains("files src/**"), "{listed}");
    assert!(listed.contains("pipeline from ci/gantry.yaml"), "{listed}");

    let out = server.cli(&["trigger", "disable", "ci#2"]).ok().stdout;
    assert!(out.contains("ci#2") && out.contains("disabled"), "{out}");
    // Applying the same file again keeps it off.
    server.apply(pipelines);
    let listed = server.cli(&["trigger", "list", "--json"]).ok().stdout;
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("JSON");
    assert_eq!(listed["triggers"][1]["enabled"], false, "{listed:#}");
    assert_eq!(listed["triggers"][0]["enabled"], true, "{listed:#}");

    let clone = Clone::init(&server, "app");
    clone.commit(&[("src/main.rs", "fn main() {}\n")], "first");
    let url = repo_url(&server, "app", Some(&server.token));
    clone.git(&["push", "--quiet", &url, "main"]).ok();
    still_executions(&server, "ci", 0);

    server.cli(&["trigger", "enable", "ci#2"]).ok();
    clone.commit(&[("src/main.rs", "fn main() { }\n")], "second");
    clone.git(&["push", "--quiet", &url, "main"]).ok();
    wait_executions(&server, "ci", 1);

    // Bad ids say what is wrong.
    server
        .cli(&["trigger", "disable", "ci#3"])
        .fails_with("pipeline \"ci\" has 2 trigger(s); there is no trigger #3");
    server
        .cli(&["trigger", "disable", "nope#1"])
        .fails_with("no pipeline \"nope\"");
    server
        .cli(&["trigger", "disable", "ci"])
        .fails_with("write PIPELINE#N");
}
