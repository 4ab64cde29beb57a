//! The `release` stage over a history of tags and markers: the first release starts at the
//! configured version, markers bump it, a commit without a marker is not released, a tag made
//! by hand counts, and releases racing on different commits never share a version.

use std::collections::BTreeSet;

use crate::git_support::{Clone, git_in, repo_url, wait_executions};
use crate::harness::{Backend, Server};

const PIPELINES: &str = r#"
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
  - name: release-by-hand
    parameters:
      - name: commit
      - name: message
    stages:
      - id: release
        type: release
        repository: lib
        commit: ${{ parameters.commit }}
        message: ${{ parameters.message }}
"#;

fn remote_tags(server: &Server) -> BTreeSet<String> {
    let out = git_in(
        &server.work(),
        &[
            "ls-remote",
            "--tags",
            &repo_url(server, "lib", Some(&server.token)),
        ],
    )
    .ok();
    out.stdout
        .lines()
        .filter_map(|l| l.split('\t').nth(1))
        .map(|r| r.trim_start_matches("refs/tags/").to_owned())
        .collect()
}

#[test]
fn release_tags_follow_markers() {
    let server = Server::start(Backend::Sqlite);
    server.cli(&["repo", "create", "lib"]).ok();
    server.apply(PIPELINES);
    let clone = Clone::init(&server, "lib");
    let url = repo_url(&server, "lib", Some(&server.token));

    // Each push runs `release` once; returns its outputs.
    let mut runs = 0;
    let mut push = |file: &str, message: &str| {
        let commit = clone.commit(&[(file, message)], message);
        clone.git(&["push", "--quiet", &url, "main"]).ok();
        runs += 1;
        let found = wait_executions(&server, "release", runs);
        let execution = server.wait_terminal(found[0]["id"].as_str().unwrap());
        assert_eq!(execution["status"], "succeeded", "{execution:#}");
        let outputs = crate::harness::stage(&execution, "release")["outputs"].clone();
        (commit[..7].to_owned(), outputs)
    };

    let (sha, out) = push("a", "initial import [minor]");
    assert_eq!(out["tag"], format!("v1.0.0-{sha}"), "{out}");
    assert_eq!(out["previous"], "");
    let (sha, out) = push("b", "fix a bug [patch]");
    assert_eq!(out["tag"], format!("v1.0.1-{sha}"));
    assert_eq!(out["previous"], "v1.0.0");
    let (sha, out) = push("c", "add a feature [minor]");
    assert_eq!(out["version"], "1.1.0");
    assert_eq!(out["tag"], format!("v1.1.0-{sha}"));
    let (_, out) = push("d", "tidy up, no marker");
    assert_eq!(out["released"], false, "{out}");
    assert_eq!(out["previous"], "v1.1.0");

    // A tag made by hand is part of the history.
    clone.git(&["tag", "v1.7.3-hotfix"]).ok();
    clone.git(&["push", "--quiet", &url, "v1.7.3-hotfix"]).ok();
    let (sha, out) = push("e", "[patch] after the hotfix");
    assert_eq!(out["tag"], format!("v1.7.4-{sha}"));
    let (sha, out) = push("f", "breaking change [MAJOR]");
    assert_eq!(out["tag"], format!("v2.0.0-{sha}"));
    assert_eq!(out["previous"], "v1.7.4");
    assert_eq!(remote_tags(&server).len(), 6, "{:?}", remote_tags(&server));

    // Four releases of four commits at once: four distinct versions.
    let mut commits = Vec::new();
    for i in 0..4 {
        commits.push(clone.commit(&[(&format!("race{i}"), "x")], &format!("race {i}")));
    }
    clone
        .git(&["push", "--quiet", &url, "HEAD:refs/heads/race"])
        .ok();
    let ids: Vec<String> = commits
        .iter()
        .map(|commit| {
            server.run(
                "release-by-hand",
                &[&format!("commit={commit}"), "message=[patch] race"],
            )
        })
        .collect();
    let mut versions = BTreeSet::new();
    for id in &ids {
        let execution = server.wait_terminal(id);
        assert_eq!(execution["status"], "succeeded", "{execution:#}");
        let outputs = &crate::harness::stage(&execution, "release")["outputs"];
        versions.insert(outputs["version"].as_str().unwrap_or_default().to_owned());
    }
    let expected: BTreeSet<String> = ["2.0.1", "2.0.2", "2.0.3", "2.0.4"]
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(versions, expected);

    // Running a release again on a released commit gives its tag back.
    let again = server.run(
        "release-by-hand",
        &[&format!("commit={}", commits[0]), "message=[major]"],
    );
    let execution = server.wait_terminal(&again);
    let outputs = &crate::harness::stage(&execution, "release")["outputs"];
    assert!(
        outputs["tag"].as_str().unwrap().ends_with(&commits[0][..7]),
        "{outputs}"
    );
    assert_eq!(remote_tags(&server).len(), 10);
}
