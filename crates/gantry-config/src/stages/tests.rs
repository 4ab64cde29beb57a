use expect_test::{Expect, expect};

use crate::{SecretName, Signal, StageKind, parse_document};

fn kinds(yaml: &str) -> Vec<StageKind> {
    let document = parse_document("test.yaml", yaml).unwrap_or_else(|d| panic!("{d}"));
    document.pipelines[0]
        .stages
        .iter()
        .map(|stage| stage.kind.clone())
        .collect()
}

fn check_errors(yaml: &str, expected: Expect) {
    let diagnostics = parse_document("test.yaml", yaml).expect_err("the file should be refused");
    expected.assert_eq(&diagnostics.to_string());
}

#[test]
fn every_stage_type_names_the_secrets_its_spec_refers_to() {
    let kinds = kinds(
        r#"
pipelines:
  - name: p
    stages:
      - {id: a, type: run, steps: [{script: "true", secretEnv: [TOKEN, DB_PASSWORD=db-password]}]}
      - {id: b, type: run, config: cloudbuild.yaml, credentials: push-login}
      - {id: c, type: bake, image: r.example/app:1, credentials: bake-login}
      - {id: d, type: findImage, repository: r.example/app, pattern: ".", credentials: find-login}
      - {id: e, type: gitCommit, url: "https://git.example/env.git", credentials: git-login, branch: main, files: {a: b}}
      - {id: f, type: wait, duration: 1s}
"#,
    );
    let names: Vec<Vec<SecretName>> = kinds.iter().map(StageKind::secret_names).collect();
    use SecretName::*;
    assert_eq!(
        names,
        vec![
            vec![Value("TOKEN".into()), Value("db-password".into())],
            vec![
                Credentials("push-login".into()),
                CloudBuildFile("cloudbuild.yaml".into())
            ],
            vec![Credentials("bake-login".into())],
            vec![Credentials("find-login".into())],
            vec![Credentials("git-login".into())],
            vec![],
        ]
    );
}

#[test]
fn judgments_go_to_judgments_and_deploys_and_skips_to_waits_and_deploys() {
    let kinds = kinds(
        r#"
pipelines:
  - name: p
    stages:
      - {id: a, type: manualJudgment}
      - {id: b, type: wait, duration: 1s}
      - {id: c, type: deploy, application: app, command: "true"}
      - {id: d, type: run, steps: [{script: "true"}]}
"#,
    );
    let accepted: Vec<(bool, bool)> = kinds
        .iter()
        .map(|kind| (kind.accepts(Signal::Judgment), kind.accepts(Signal::Skip)))
        .collect();
    assert_eq!(
        accepted,
        [(true, false), (false, true), (true, true), (false, false)]
    );
}

#[test]
fn prune_images_needs_a_repository_without_a_tag_and_keeps_at_least_one() {
    check_errors(
        r#"
pipelines:
  - name: p
    stages:
      - {id: a, type: pruneImages, repository: "r.example/app:1.0", keep: 0}
      - {id: b, type: pruneImages}
"#,
        expect![[r#"
            test.yaml:5:48: stage "a": repository "r.example/app:1.0" must be a repository without a tag, e.g. registry.example.com/app
            test.yaml:5:75: stage "a": "keep" must be at least 1, so the newest image stays
            test.yaml:6:9: stage "b" is missing "repository"
            test.yaml:6:9: stage "b" is missing "keep""#]],
    );
    let kinds = kinds(
        r#"
pipelines:
  - name: p
    stages:
      - {id: a, type: pruneImages, repository: "127.0.0.1:5000/app", keep: 3}
"#,
    );
    let StageKind::PruneImages(spec) = &kinds[0] else {
        panic!("{kinds:?}")
    };
    assert_eq!(
        (spec.repository.as_str(), spec.keep),
        ("127.0.0.1:5000/app", 3)
    );
}

#[test]
fn runs_on_takes_runner_labels_and_runner_wait_a_duration_each_problem_named_where_it_is() {
    let kinds = kinds(
        r#"
pipelines:
  - name: p
    stages:
      - {id: a, type: run, runsOn: [linux, x86_64], runnerWait: 2m, steps: [{script: "true", runsOn: [gpu]}]}
"#,
    );
    let StageKind::Run(run) = &kinds[0] else {
        panic!("a run stage: {kinds:?}");
    };
    assert_eq!(run.runs_on, ["linux", "x86_64"]);
    assert_eq!(run.runner_wait, Some(std::time::Duration::from_secs(120)));
    assert_eq!(run.steps[0].runs_on, ["gpu"]);
    check_errors(
        r#"
pipelines:
  - name: p
    stages:
      - id: a
        type: run
        runsOn: [linux, "has space"]
        runnerWait: soon
        steps:
          - script: "true"
            runsOn: linux
          - script: "true"
            runsOn: [""]
"#,
        expect![[r#"
            test.yaml:7:25: stage "a": runsOn label "has space" must be 1 to 64 letters, digits or - _ .
            test.yaml:8:21: "runnerWait": bad duration "soon" (expected number at 0); write e.g. 30s, 5m, 1h30m
            test.yaml:11:21: "runsOn" must be a list, not the string "linux"
            test.yaml:13:22: step 2 of stage "a": runsOn label "" must be 1 to 64 letters, digits or - _ ."#]],
    );
}
