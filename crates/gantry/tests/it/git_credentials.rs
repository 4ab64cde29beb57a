//! External repositories with credentials from the secret store: another Gantry server stands
//! in for the remote (real smart HTTP, real basic auth: its private repositories need a token
//! to read and to push). `gitCommit` and `gitPromote` push to it, a `poll` trigger watches it
//! and reads its pipeline file from it; a wrong credential fails the stage with the remote's
//! answer; the secret reaches no log, no error and no command line.

use crate::git_support::{Clone, git_in, repo_url, set_secret, wait_executions};
use crate::harness::{Backend, Server, stage};

fn pipelines(env_url: &str, upstream_url: &str) -> String {
    format!(
        r#"
pipelines:
  - name: publish
    stages:
      - id: commit
        type: gitCommit
        url: {env_url}
        credentials: remote-token
        branch: candidate
        files:
          manifest.yaml: "image: app:${{{{ execution.id }}}}\n"
      - id: promote
        type: gitPromote
        dependsOn: [commit]
        url: {env_url}
        credentials: remote-token
        from: candidate
        to: production
  - name: publish-wrong
    stages:
      - id: commit
        type: gitCommit
        url: {env_url}
        credentials: wrong-token
        branch: candidate
        files:
          manifest.yaml: "nothing\n"
  - name: watch
    triggers:
      - type: git
        url: {upstream_url}
        branch: ^main$
        poll: 1s
        credentials: remote-token
        config: gantry.yaml
    stages:
      - id: applied
        type: run
        steps:
          - script: echo applied >> @W@/applied.txt
"#
    )
}

#[test]
fn external_repositories_with_credentials_from_the_secret_store() {
    let remote = Server::start(Backend::Sqlite);
    remote.cli(&["repo", "create", "env"]).ok();
    remote.cli(&["repo", "create", "upstream"]).ok();
    let server = Server::start(Backend::Sqlite);
    set_secret(&server, "remote-token", &format!("{}\n", remote.token));
    set_secret(&server, "wrong-token", "git:gantry_wrong_token_value");
    server.apply(&pipelines(
        &repo_url(&remote, "env", None),
        &repo_url(&remote, "upstream", None),
    ));

    // gitCommit then gitPromote push to the remote's private repository.
    let id = server.run("publish", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let check = remote.work().join("env-check");
    git_in(
        &remote.work(),
        &[
            "clone",
            "--quiet",
            "--branch",
            "production",
            &repo_url(&remote, "env", Some(&remote.token)),
            check.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(
        std::fs::read_to_string(check.join("manifest.yaml")).unwrap(),
        format!("image: app:{id}\n")
    );
    let commit = stage(&execution, "commit")["outputs"]["commit"].clone();
    let candidate = git_in(&check, &["rev-parse", "origin/candidate"])
        .ok()
        .stdout;
    assert_eq!(commit, candidate.trim(), "{execution:#}");

    // A wrong credential: the stage fails with the remote's answer.
    let id = server.run("publish-wrong", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let error = stage(&execution, "commit")["error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.contains("Authentication failed for")
            && error.contains(&repo_url(&remote, "env", None)),
        "{execution:#}"
    );

    // A poll trigger lists the private repository, reads its pipeline file at the new commit
    // and checks it out, all with the credentials.
    let clone = Clone::init(&server, "upstream");
    let pushed = clone.commit(
        &[(
            "gantry.yaml",
            &server.expand(
                "pipelines:\n  - name: watch\n    stages:\n      - id: build\n        type: run\n        steps:\n          - script: echo \"$COMMIT_SHA $(cat VERSION)\" >> @W@/watched.txt\n",
            ),
        ), ("VERSION", "7")],
        "pipeline in the remote",
    );
    clone
        .git(&[
            "push",
            "--quiet",
            &repo_url(&remote, "upstream", Some(&remote.token)),
            "main",
        ])
        .ok();
    let runs = wait_executions(&server, "watch", 1);
    let execution = server.wait_terminal(runs[0]["id"].as_str().unwrap());
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(execution["trigger"]["via"], "poll");
    assert_eq!(
        std::fs::read_to_string(server.work().join("watched.txt")).unwrap(),
        format!("{pushed} 7\n")
    );
    assert!(!server.work().join("applied.txt").exists());

    // Neither value reached a log line, an execution or the server's own log.
    let mut seen = String::new();
    for page in server.get("/api/v1/executions")["executions"]
        .as_array()
        .unwrap()
    {
        let id = page["id"].as_str().unwrap();
        seen.push_str(&server.execution(id).to_string());
        for line in server.logs(id) {
            seen.push_str(&line.to_string());
        }
    }
    let root = server.data_dir().parent().unwrap().to_owned();
    seen.push_str(&std::fs::read_to_string(root.join("server.log")).unwrap());
    for secret in [remote.token.as_str(), "gantry_wrong_token_value"] {
        assert!(!seen.contains(secret), "a credential leaked:\n{seen}");
    }
}
