//! A `git` trigger's `config:`: the pipeline lives in the repository and is read at the pushed
//! commit. A `gantry.yaml` there gives the steps (and a change to it the next push's steps); a
//! broken or missing file gives a failed execution naming the file, the commit and each
//! problem's position; a Cloud Build file runs as one `run` stage.

use crate::git_support::{Clone, repo_url, wait_executions};
use crate::harness::{Backend, Server, stage};

const PIPELINES: &str = r#"
pipelines:
  - name: from-file
    triggers:
      - type: git
        repository: app
        branch: ^main$
        config: ci/gantry.yaml
    stages:
      - id: applied
        type: run
        steps:
          - script: echo applied >> @W@/applied.txt
  - name: cloud
    triggers:
      - type: git
        repository: app
        branch: ^cb$
        config: cloudbuild.yaml
    stages:
      - id: applied
        type: run
        steps:
          - script: echo applied >> @W@/applied.txt
"#;

/// The file in the repository: one pipeline among others, found by its name.
const IN_REPO: &str = r#"
pipelines:
  - name: unrelated
    stages:
      - { id: nothing, type: wait, duration: 1s }
  - name: from-file
    parameters:
      - { name: greeting, default: "@GREETING@" }
    stages:
      - id: build
        type: run
        steps:
          - script: echo "${{ parameters.greeting }} $SHORT_SHA $(cat VERSION)" >> @W@/from-file.txt
"#;

const BROKEN: &str = r#"pipelines:
  - name: from-file
    stages:
      - id: build
        type: runn
      - id: later
        type: wait
        duration: 1s
        dependsOn: [biuld]
"#;

/// Cloud Build's docker builder runs with the container engine's CLI on the host; with its
/// entrypoint replaced, this step is a host `sh`.
const CLOUDBUILD: &str = r#"
steps:
- id: hello
  name: gcr.io/cloud-builders/docker
  entrypoint: sh
  args: ['-c', 'echo "cloud build $SHORT_SHA on $BRANCH_NAME" >> @W@/cloud.txt']
"#;

#[test]
fn pipelines_are_read_from_the_pushed_commit() {
    let server = Server::start(Backend::Sqlite);
    server.cli(&["repo", "create", "app"]).ok();
    server.apply(PIPELINES);
    let clone = Clone::init(&server, "app");
    let url = repo_url(&server, "app", Some(&server.token));
    let in_repo = |greeting: &str| server.expand(IN_REPO).replace("@GREETING@", greeting);

    // The file's steps run, not the applied ones.
    let first = clone.commit(
        &[("ci/gantry.yaml", &in_repo("hello")), ("VERSION", "1")],
        "pipeline in the repository",
    );
    clone.git(&["push", "--quiet", &url, "main"]).ok();
    let runs = wait_executions(&server, "from-file", 1);
    let execution = server.wait_terminal(runs[0]["id"].as_str().unwrap());
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(stage(&execution, "build")["status"], "succeeded");
    assert_eq!(execution["trigger"]["config"], "ci/gantry.yaml");

    // A change to the file changes the next push's steps.
    let second = clone.commit(
        &[("ci/gantry.yaml", &in_repo("changed")), ("VERSION", "2")],
        "change the pipeline",
    );
    clone.git(&["push", "--quiet", &url, "main"]).ok();
    let runs = wait_executions(&server, "from-file", 2);
    let execution = server.wait_terminal(runs[0]["id"].as_str().unwrap());
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let written = std::fs::read_to_string(server.work().join("from-file.txt")).unwrap();
    assert_eq!(
        written,
        format!("hello {} 1\nchanged {} 2\n", &first[..7], &second[..7])
    );
    assert!(!server.work().join("applied.txt").exists());

    // By hand on a tag of the first commit: that commit's file, as a push of it would run.
    clone.git(&["tag", "v1", &first]).ok();
    clone.git(&["push", "--quiet", &url, "v1"]).ok();
    let by_hand = server.cli(&["run", "from-file", "--ref", "v1"]).ok();
    let execution = server.wait_terminal(by_hand.stdout.trim());
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(execution["trigger"]["type"], "manual");
    let written = std::fs::read_to_string(server.work().join("from-file.txt")).unwrap();
    assert!(
        written.ends_with(&format!("hello {} 1\n", &first[..7])),
        "{written}"
    );

    // A broken file: a failed execution naming the file, the commit and every problem.
    let broken = clone.commit(&[("ci/gantry.yaml", BROKEN)], "break the pipeline");
    clone.git(&["push", "--quiet", &url, "main"]).ok();
    let runs = wait_executions(&server, "from-file", 4);
    let execution = server.wait_terminal(runs[0]["id"].as_str().unwrap());
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let error = execution["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "pipeline file \"ci/gantry.yaml\" at commit {broken} cannot run:\n"
        )),
        "{error}"
    );
    assert!(
        error.contains("\nci/gantry.yaml:5:15: unknown stage type \"runn\""),
        "{error}"
    );
    assert!(
        error.contains("\nci/gantry.yaml:9:21: stage \"later\" depends on unknown stage \"biuld\""),
        "{error}"
    );
    assert!(!server.work().join("applied.txt").exists());

    // A commit without the file: failed, saying so.
    clone.git(&["rm", "--quiet", "ci/gantry.yaml"]).ok();
    let missing = clone.commit(&[], "no pipeline file");
    clone.git(&["push", "--quiet", &url, "main"]).ok();
    let runs = wait_executions(&server, "from-file", 5);
    let execution = server.wait_terminal(runs[0]["id"].as_str().unwrap());
    assert_eq!(execution["status"], "failed", "{execution:#}");
    assert_eq!(
        execution["error"],
        format!("pipeline file \"ci/gantry.yaml\" at commit {missing}: no such file in the commit")
            .as_str()
    );

    // A Cloud Build file: its steps, with Cloud Build's substitutions.
    clone.git(&["checkout", "--quiet", "-b", "cb"]).ok();
    let cb = clone.commit(
        &[("cloudbuild.yaml", &server.expand(CLOUDBUILD))],
        "cloud build",
    );
    clone.git(&["push", "--quiet", &url, "cb"]).ok();
    let runs = wait_executions(&server, "cloud", 1);
    let execution = server.wait_terminal(runs[0]["id"].as_str().unwrap());
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(
        std::fs::read_to_string(server.work().join("cloud.txt")).unwrap(),
        format!("cloud build {} on cb\n", &cb[..7])
    );
    // …and a broken one names its line.
    let bad = clone.commit(
        &[("cloudbuild.yaml", "steps:\n- name: x\n  bogus: 1\n")],
        "bad cloud build",
    );
    clone.git(&["push", "--quiet", &url, "cb"]).ok();
    let runs = wait_executions(&server, "cloud", 2);
    let execution = server.wait_terminal(runs[0]["id"].as_str().unwrap());
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let error = execution["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "pipeline file \"cloudbuild.yaml\" at commit {bad} cannot run:\ncloudbuild.yaml:3: "
        )) && error.contains("\"bogus\""),
        "{error}"
    );
    assert!(!server.work().join("applied.txt").exists());
}

#[test]
fn a_cloud_build_file_runs_as_one_stage_among_others_with_the_triggers_substitutions_and_parameters()
 {
    let server = Server::start(Backend::Sqlite);
    server.cli(&["repo", "create", "app"]).ok();
    server.apply(&server.expand(
        r#"
pipelines:
  - name: ship
    parameters:
      - { name: who, default: nobody }
    triggers:
      - type: git
        repository: app
        branch: ^main$
        config: cloudbuild.yaml
        substitutions: { _TARGET: production }
        parameters: { who: the-trigger }
    stages:
      - { id: build, type: run, config: cloudbuild.yaml, substitutions: { _KEPT: own } }
      - id: after
        type: run
        dependsOn: [build]
        steps:
          - script: echo "after the build, by ${{ parameters.who }}" >> @W@/ship.txt
"#,
    ));
    let clone = Clone::init(&server, "app");
    clone.commit(
        &[(
            "cloudbuild.yaml",
            &server.expand(
                r#"
steps:
- id: hello
  name: gcr.io/cloud-builders/docker
  entrypoint: sh
  args: ['-c', 'echo "build for $_TARGET ($_KEPT)" >> @W@/ship.txt']
"#,
            ),
        )],
        "cloud build",
    );
    let url = repo_url(&server, "app", Some(&server.token));
    clone.git(&["push", "--quiet", &url, "main"]).ok();
    let runs = wait_executions(&server, "ship", 1);
    let execution = server.wait_terminal(runs[0]["id"].as_str().unwrap());
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    // The file ran as the pipeline's `build` stage, then the applied stage after it.
    assert_eq!(
        std::fs::read_to_string(server.work().join("ship.txt")).unwrap(),
        "build for production (own)\nafter the build, by the-trigger\n"
    );
}

#[test]
fn a_triggers_parameters_and_substitutions_are_checked_with_their_positions() {
    let server = Server::start(Backend::Sqlite);
    let file = server.write_file(
        "bad.yaml",
        r#"pipelines:
  - name: ship
    parameters:
      - { name: who }
    triggers:
      - { type: git, repository: app, parameters: { whom: x }, substitutions: { TARGET: y } }
    stages:
      - { id: s, type: wait, duration: 1s }
"#,
    );
    server
        .cli(&["validate", file.to_str().unwrap()])
        .fails_with("bad.yaml:6:53: trigger 1: the pipeline has no parameter \"whom\", did you mean \"who\"?")
        .fails_with("bad.yaml:6:81: trigger 1: substitution \"TARGET\" must be a user substitution");
}
