//! The GitOps and release chains without workarounds, with real pushes to the real server:
//! `gitCommit` commits what a step rendered in the workspace; `gitPromote` promotes the commit
//! its execution is about, so re-running an earlier delivery puts its version back in
//! `production`; `release` bumps by the strongest marker of every commit since the last tag,
//! or by a pull request's title from a webhook delivery.

use serde_json::{Value, json};

use crate::git_support::{Clone, git_in, repo_url, wait_executions};
use crate::harness::{Backend, Server, stage};

/// The content of `path` on `branch` of the hosted repository `repo`, read with a real clone.
fn file_on_branch(server: &Server, repo: &str, branch: &str, path: &str) -> Option<String> {
    let dir = server.work().join(format!("check-{repo}-{branch}"));
    let _ = std::fs::remove_dir_all(&dir);
    let cloned = git_in(
        &server.work(),
        &[
            "clone",
            "--quiet",
            "--branch",
            branch,
            &repo_url(server, repo, Some(&server.token)),
            dir.to_str().unwrap(),
        ],
    );
    // A branch that does not exist has no files.
    if !cloned.status.success() {
        return None;
    }
    std::fs::read_to_string(dir.join(path)).ok()
}

const RENDER: &str = r#"
repositories:
  - name: env
pipelines:
  - name: render
    parameters:
      - name: version
      - name: extra
        default: "yes"
    stages:
      - id: render
        type: run
        steps:
          - script: |
              mkdir -p rendered/all
              printf 'image: app:%s\n' '${{ parameters.version }}' > rendered/deploy.yaml
              printf 'kind: Service\n' > rendered/all/service.yaml
              if [ '${{ parameters.extra }}' = yes ]; then printf 'kind: Job\n' > rendered/all/job.yaml; fi
      - id: manifest
        type: gitCommit
        dependsOn: [render]
        repository: env
        branch: candidate
        fromWorkspace:
          k8s/deploy.yaml: rendered/deploy.yaml
          k8s/all: rendered/all
        files:
          k8s/all/notes.txt: rendered by ${{ parameters.version }}
  - name: broken
    parameters:
      - name: mode
    stages:
      - id: render
        type: run
        steps:
          - script: |
              mkdir -p rendered
              if [ '${{ parameters.mode }}' = link ]; then ln -s /etc/passwd rendered/deploy.yaml; fi
      - id: manifest
        type: gitCommit
        dependsOn: [render]
        repository: env
        branch: candidate
        fromWorkspace:
          k8s/deploy.yaml: rendered/deploy.yaml
"#;

#[test]
fn git_commit_commits_the_files_a_step_rendered_in_the_workspace() {
    let server = Server::start(Backend::Sqlite);
    server.apply(RENDER);

    let id = server.run("render", &["version=1.4.2"]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let outputs = &stage(&execution, "manifest")["outputs"];
    assert_eq!(outputs["changed"], true, "{outputs}");
    let read = |path: &str| file_on_branch(&server, "env", "candidate", path);
    assert_eq!(
        read("k8s/deploy.yaml").as_deref(),
        Some("image: app:1.4.2\n")
    );
    assert_eq!(
        read("k8s/all/service.yaml").as_deref(),
        Some("kind: Service\n")
    );
    assert_eq!(read("k8s/all/job.yaml").as_deref(), Some("kind: Job\n"));
    assert_eq!(
        read("k8s/all/notes.txt").as_deref(),
        Some("rendered by 1.4.2")
    );

    // A directory replaces the repository's whole: a file no longer rendered goes.
    let id = server.run("render", &["version=1.4.3", "extra=no"]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(
        read("k8s/deploy.yaml").as_deref(),
        Some("image: app:1.4.3\n")
    );
    assert_eq!(
        read("k8s/all/service.yaml").as_deref(),
        Some("kind: Service\n")
    );
    assert_eq!(read("k8s/all/job.yaml"), None);
}

#[test]
fn a_workspace_file_that_is_missing_or_leads_outside_fails_the_stage_naming_it() {
    let server = Server::start(Backend::Sqlite);
    server.apply(RENDER);

    let id = server.run("broken", &["mode=missing"]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let error = stage(&execution, "manifest")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("rendered/deploy.yaml is not in the workspace")
            && error.contains("k8s/deploy.yaml"),
        "{error}"
    );

    // A link to a file of the machine is not followed out of the workspace.
    let id = server.run("broken", &["mode=link"]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let error = stage(&execution, "manifest")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.contains("leads outside the workspace"), "{error}");
    assert_eq!(
        file_on_branch(&server, "env", "candidate", "k8s/deploy.yaml"),
        None
    );

    // Paths that leave their tree are refused when the file is applied, with positions.
    let bad = r#"
pipelines:
  - name: escape
    stages:
      - id: manifest
        type: gitCommit
        repository: env
        branch: candidate
        fromWorkspace:
          ../outside.yaml: rendered/deploy.yaml
          k8s/a.yaml: /etc/passwd
        files:
          k8s/a.yaml: twice
  - name: nothing
    stages:
      - id: manifest
        type: gitCommit
        repository: env
        branch: candidate
"#;
    let path = server.write_file("bad.yaml", bad);
    let out = server
        .cli(&["apply", "-f", path.to_str().unwrap()])
        .fails_with("bad.yaml:10:11: \"fromWorkspace\": \"../outside.yaml\" must be a relative path inside the repository");
    for needle in [
        "bad.yaml:11:23: \"fromWorkspace\": \"/etc/passwd\" must be a relative path inside the workspace",
        "bad.yaml:13:11: \"files\": \"k8s/a.yaml\" is written twice",
        "stage \"manifest\" is missing \"files\"",
    ] {
        assert!(out.stderr.contains(needle), "{needle}\n{}", out.stderr);
    }
}

const DELIVERY: &str = r#"
repositories:
  - name: env
pipelines:
  - name: ci
    triggers:
      - type: git
        repository: app
        branch: ^main$
    stages:
      - id: manifest
        type: gitCommit
        repository: env
        branch: candidate
        files:
          k8s.yaml: "image: app:${{ trigger.commit }}\n"
  - name: cd
    triggers:
      - type: git
        repository: env
        branch: ^candidate$
    stages:
      - id: deploy
        type: run
        steps:
          - script: cp k8s.yaml @W@/deployed.yaml
      - id: promote
        type: gitPromote
        dependsOn: [deploy]
        repository: env
        from: candidate
        to: production
"#;

#[test]
fn rerunning_an_earlier_delivery_leaves_production_at_what_it_deployed() {
    let server = Server::start(Backend::Sqlite);
    server.cli(&["repo", "create", "app"]).ok();
    server.apply(DELIVERY);
    let clone = Clone::init(&server, "app");
    let url = repo_url(&server, "app", Some(&server.token));

    let deliver = |version: &str, runs: usize| {
        let commit = clone.commit(&[("main.c", version)], version);
        clone.git(&["push", "--quiet", &url, "main"]).ok();
        let cd = wait_executions(&server, "cd", runs);
        let id = cd[0]["id"].as_str().unwrap().to_owned();
        let execution = server.wait_terminal(&id);
        assert_eq!(execution["status"], "succeeded", "{execution:#}");
        (id, format!("image: app:{commit}\n"))
    };
    let (first, v1) = deliver("v1", 1);
    assert_eq!(
        file_on_branch(&server, "env", "production", "k8s.yaml").as_deref(),
        Some(v1.as_str())
    );
    let (_, v2) = deliver("v2", 2);
    assert_eq!(
        file_on_branch(&server, "env", "production", "k8s.yaml").as_deref(),
        Some(v2.as_str())
    );

    // Roll back: `candidate` still holds v2, and the re-run deploys and promotes v1.
    let rerun = server
        .cli(&["execution", "rerun", &first])
        .ok()
        .stdout
        .trim()
        .to_owned();
    let execution = server.wait_terminal(&rerun);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(
        std::fs::read_to_string(server.work().join("deployed.yaml")).unwrap(),
        v1
    );
    assert_eq!(
        file_on_branch(&server, "env", "production", "k8s.yaml").as_deref(),
        Some(v1.as_str()),
        "production must name what the re-run deployed"
    );
    assert_eq!(
        file_on_branch(&server, "env", "candidate", "k8s.yaml").as_deref(),
        Some(v2.as_str())
    );
    let promoted = &stage(&execution, "promote")["outputs"];
    assert_eq!(
        promoted["source"], execution["trigger"]["commit"],
        "{promoted}"
    );
}

const RELEASES: &str = r#"
pipelines:
  - name: release
    triggers:
      - type: git
        repository: lib
        branch: ^main$
    stages:
      - id: release
        type: release
        initialVersion: 1.0.0
  - name: release-merged-pr
    triggers:
      - type: webhook
        source: github-prs
        secret: pr-s3cret
        payloadConstraints:
          action: ^closed$
          pull_request.merged: ^true$
    stages:
      - id: release
        type: release
        repository: lib
        commit: ${{ trigger.payload.pull_request.merge_commit_sha }}
"#;

/// Pushes `main` and waits for the `release` execution number `runs`; its outputs.
fn push_and_release(server: &Server, clone: &Clone, runs: usize) -> Value {
    let url = repo_url(server, "lib", Some(&server.token));
    clone.git(&["push", "--quiet", &url, "main"]).ok();
    let found = wait_executions(server, "release", runs);
    let execution = server.wait_terminal(found[0]["id"].as_str().unwrap());
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    stage(&execution, "release")["outputs"].clone()
}

#[test]
fn three_commits_pushed_at_once_release_by_their_strongest_marker() {
    let server = Server::start(Backend::Sqlite);
    server.cli(&["repo", "create", "lib"]).ok();
    server.apply(RELEASES);
    let clone = Clone::init(&server, "lib");

    let first = clone.commit(&[("a", "a")], "initial import [patch]");
    let out = push_and_release(&server, &clone, 1);
    assert_eq!(out["tag"], format!("v1.0.0-{}", &first[..7]), "{out}");

    clone.commit(&[("b", "b")], "add a flag [minor]");
    clone.commit(&[("c", "c")], "drop the old API [major]");
    let tip = clone.commit(&[("d", "d")], "fix a typo [patch]");
    let out = push_and_release(&server, &clone, 2);
    assert_eq!(out["tag"], format!("v2.0.0-{}", &tip[..7]), "{out}");
    assert_eq!(out["bump"], "major");
    assert_eq!(out["previous"], "v1.0.0");

    // Only the commits since that release count now.
    clone.commit(&[("e", "e")], "fix [patch]");
    let tip = clone.commit(&[("f", "f")], "no marker here");
    let out = push_and_release(&server, &clone, 3);
    assert_eq!(out["tag"], format!("v2.0.1-{}", &tip[..7]), "{out}");
}

#[test]
fn a_merged_pull_requests_title_decides_the_bump() {
    let server = Server::start(Backend::Sqlite);
    server.cli(&["repo", "create", "lib"]).ok();
    server.apply(RELEASES);
    let clone = Clone::init(&server, "lib");
    clone.commit(&[("a", "a")], "initial import [patch]");
    push_and_release(&server, &clone, 1);

    // The pull request's commits say [patch]; its title says [minor].
    clone.commit(&[("b", "b")], "wip [patch]");
    let merged = clone.commit(&[("c", "c")], "review fixes [patch]");
    clone
        .git(&[
            "push",
            "--quiet",
            &repo_url(&server, "lib", Some(&server.token)),
            "HEAD:refs/heads/accounts",
        ])
        .ok();
    // GitHub's `pull_request` event, as its documentation shows it (trimmed).
    let delivery = json!({
        "action": "closed",
        "number": 7,
        "pull_request": {
            "number": 7,
            "title": "Accounts [minor]",
            "merged": true,
            "merge_commit_sha": merged,
            "head": {"ref": "accounts"},
            "base": {"ref": "main"},
        },
        "repository": {"name": "lib"},
    });
    let http = reqwest::blocking::Client::new();
    let answer = http
        .post(format!("{}/webhooks/generic/github-prs", server.url))
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request")
        .header("x-gantry-secret", "pr-s3cret")
        .body(delivery.to_string())
        .send()
        .expect("post");
    assert_eq!(answer.status().as_u16(), 202, "{:?}", answer.text());
    let found = wait_executions(&server, "release-merged-pr", 1);
    let execution = server.wait_terminal(found[0]["id"].as_str().unwrap());
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let out = &stage(&execution, "release")["outputs"];
    assert_eq!(out["tag"], format!("v1.1.0-{}", &merged[..7]), "{out}");
    assert_eq!(out["bump"], "minor");
}

const JUDGED: &str = r#"
repositories:
  - name: env
pipelines:
  - name: deliver
    parameters:
      - name: version
    stages:
      - id: manifest
        type: gitCommit
        repository: env
        branch: candidate
        files:
          k8s.yaml: "image: app:${{ parameters.version }}\n"
      - id: approval
        type: manualJudgment
        dependsOn: [manifest]
      - id: promote
        type: gitPromote
        dependsOn: [approval]
        repository: env
        from: candidate
        to: production
"#;

#[test]
fn a_delivery_approved_after_a_newer_one_promotes_its_own_commit() {
    let server = Server::start(Backend::Sqlite);
    server.apply(JUDGED);
    let older = server.run("deliver", &["version=1"]);
    server.wait_stage(&older, "approval", "waiting");
    let newer = server.run("deliver", &["version=2"]);
    server.wait_stage(&newer, "approval", "waiting");
    let production = || file_on_branch(&server, "env", "production", "k8s.yaml");

    server.cli(&["approve", &newer]).ok();
    let execution = server.wait_terminal(&newer);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(production().as_deref(), Some("image: app:2\n"));

    // `candidate` holds version 2 now; the older delivery still promotes its version 1.
    server.cli(&["approve", &older]).ok();
    let execution = server.wait_terminal(&older);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(production().as_deref(), Some("image: app:1\n"));
    let committed = &stage(&execution, "manifest")["outputs"]["commit"];
    assert_eq!(
        stage(&execution, "promote")["outputs"]["source"],
        *committed
    );
}
