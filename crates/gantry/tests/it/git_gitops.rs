//! The GitOps loop of Cloud Build's GKE tutorial, end to end with real pushes: an app-repo push
//! runs CI, which commits a rendered manifest to the env repo's `candidate` branch; that push
//! runs CD, which deploys the manifest and promotes it to `production`; a pipeline trigger
//! chains a notification after CD; `includedFiles` keeps a docs pipeline to docs changes.
//! Rolling back is re-running the earlier CD execution, which records a new `production`
//! commit.

use crate::git_support::{Clone, git_in, repo_url, still_executions, wait_executions};
use crate::harness::Server;

const PIPELINES: &str = r#"
repositories:
  - name: env
pipelines:
  - name: ci
    triggers:
      - type: git
        repository: app
        branch: ^main$
    stages:
      - id: build
        type: run
        steps:
          - script: test -f main.c
      - id: manifest
        type: gitCommit
        dependsOn: [build]
        repository: env
        branch: candidate
        files:
          k8s.yaml: |
            image: registry.local/app:${{ trigger.commit }}
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
        from: ${{ trigger.commit }}
        to: production
  - name: notify
    triggers:
      - type: pipeline
        pipeline: cd
        status: [succeeded]
    stages:
      - id: tell
        type: run
        steps:
          - script: echo "${{ trigger.upstream.execution }}" >> @W@/notified.txt
  - name: docs
    triggers:
      - type: git
        repository: app
        includedFiles: ["docs/**"]
        ignoredFiles: ["**/*.tmp"]
    stages:
      - id: publish
        type: run
        steps:
          - script: "true"
"#;

fn production_manifest(server: &Server) -> String {
    let dir = server.work().join("env-check");
    let _ = std::fs::remove_dir_all(&dir);
    git_in(
        &server.work(),
        &[
            "clone",
            "--quiet",
            "--branch",
            "production",
            &repo_url(server, "env", Some(&server.token)),
            dir.to_str().unwrap(),
        ],
    )
    .ok();
    std::fs::read_to_string(dir.join("k8s.yaml")).unwrap()
}

fn production_commits(server: &Server) -> usize {
    let dir = server.work().join("env-check");
    git_in(&dir, &["fetch", "--quiet", "origin", "production"]).ok();
    git_in(&dir, &["rev-list", "--count", "FETCH_HEAD"])
        .ok()
        .stdout
        .trim()
        .parse()
        .unwrap()
}

crate::on_both_backends!(app_push_to_production_and_rollback);

fn app_push_to_production_and_rollback(server: &mut Server) {
    let server = &*server;
    server.cli(&["repo", "create", "app"]).ok();
    server.apply(PIPELINES);
    let clone = Clone::init(server, "app");
    let url = repo_url(server, "app", Some(&server.token));

    // Version A.
    let a = clone.commit(&[("main.c", "int main() { return 0; }\n")], "version A");
    clone.git(&["push", "--quiet", &url, "main"]).ok();
    let ci = wait_executions(server, "ci", 1);
    let ci = server.wait_terminal(ci[0]["id"].as_str().unwrap());
    assert_eq!(ci["status"], "succeeded", "{ci:#}");
    let cd = wait_executions(server, "cd", 1);
    let first_cd = cd[0]["id"].as_str().unwrap().to_owned();
    let cd = server.wait_terminal(&first_cd);
    assert_eq!(cd["status"], "succeeded", "{cd:#}");
    let manifest_a = format!("image: registry.local/app:{a}\n");
    assert_eq!(
        std::fs::read_to_string(server.work().join("deployed.yaml")).unwrap(),
        manifest_a
    );
    assert_eq!(production_manifest(server), manifest_a);
    let notified = wait_executions(server, "notify", 1);
    assert_eq!(
        server.wait_terminal(notified[0]["id"].as_str().unwrap())["status"],
        "succeeded"
    );
    // A change outside docs/ does not run the docs pipeline.
    still_executions(server, "docs", 0);

    // Version B, with a docs change.
    let b = clone.commit(
        &[
            ("main.c", "int main() { return 1; }\n"),
            ("docs/guide.md", "# guide\n"),
        ],
        "version B",
    );
    clone.git(&["push", "--quiet", &url, "main"]).ok();
    let cd = wait_executions(server, "cd", 2);
    let cd = server.wait_terminal(cd[0]["id"].as_str().unwrap());
    assert_eq!(cd["status"], "succeeded", "{cd:#}");
    let manifest_b = format!("image: registry.local/app:{b}\n");
    assert_eq!(production_manifest(server), manifest_b);
    wait_executions(server, "docs", 1);
    // Only a scratch file under docs/: ignored.
    clone.commit(&[("docs/notes.tmp", "x")], "scratch");
    clone.git(&["push", "--quiet", &url, "main"]).ok();
    let cd = wait_executions(server, "cd", 3);
    assert_eq!(
        server.wait_terminal(cd[0]["id"].as_str().unwrap())["status"],
        "succeeded"
    );
    still_executions(server, "docs", 1);

    // Roll back: re-run the first CD execution.
    let commits_before = production_commits(server);
    let rerun = server
        .cli(&["execution", "rerun", &first_cd])
        .ok()
        .stdout
        .trim()
        .to_owned();
    let execution = server.wait_terminal(&rerun);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(execution["trigger"]["rerunOf"], first_cd.as_str());
    assert_eq!(
        std::fs::read_to_string(server.work().join("deployed.yaml")).unwrap(),
        manifest_a
    );
    assert_eq!(production_manifest(server), manifest_a);
    assert_eq!(production_commits(server), commits_before + 1);
}
