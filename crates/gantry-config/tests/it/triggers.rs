//! `triggers:`, `repositories:` and the git stages: what is accepted and how mistakes are
//! reported, each with its position.

use expect_test::{Expect, expect};
use gantry_config::{Trigger, parse_document};

fn check(text: &str, expected: Expect) {
    let actual = match parse_document("t.yaml", text) {
        Ok(_) => "ok".to_owned(),
        Err(diagnostics) => diagnostics.to_string(),
    };
    expected.assert_eq(actual.trim_end());
}

#[test]
fn triggers_are_typed() {
    let text = r#"
repositories:
  - name: app
    public: true
pipelines:
  - name: p
    triggers:
      - type: git
        repository: app
        branch: ^main$
        includedFiles: ["src/**"]
      - type: git
        url: https://github.com/org/app.git
        tag: ^v
        secret: s
        poll: 1m
      - type: webhook
        source: bot
        public: true
        payloadConstraints: {action: ^deploy$}
      - type: pipeline
        pipeline: ci
      - type: cron
        schedule: "0 9 * * 1-5"
        timeZone: Europe/Paris
    stages:
      - {id: r, type: release, defaultBump: patch}
      - {id: c, type: gitCommit, repository: env, branch: candidate, files: {a.yaml: "x"}}
      - {id: m, type: gitPromote, repository: env, from: candidate, to: production}
"#;
    let document = parse_document("t.yaml", text).expect("valid");
    let types: Vec<&str> = document.pipelines[0]
        .triggers
        .iter()
        .map(Trigger::type_name)
        .collect();
    assert_eq!(types, ["git", "git", "webhook", "pipeline", "cron"]);
    assert_eq!(document.repositories[0].name, "app");
    match &document.pipelines[0].triggers[3] {
        Trigger::Pipeline(p) => assert_eq!(p.status, ["succeeded"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn trigger_mistakes() {
    check(
        r#"
repositories:
  - name: bad/name
pipelines:
  - name: p
    triggers:
      - type: gti
      - type: git
        branch: "(unclosed"
      - type: git
        repository: a
        url: https://x/y
        branch: a
        tag: b
      - type: git
        repository: a
        poll: 1m
      - type: webhook
        source: "a b"
        payloadConstraints: {x: "[z"}
      - type: pipeline
        pipeline: ci
        status: [success]
      - type: cron
        schedule: "61 * * * *"
        timeZone: Mars/Olympus
      - type: cron
        schedule: "* * *"
    stages:
      - {id: r, type: release, defaultBump: huge, initialVersion: "1.0"}
      - {id: c, type: gitCommit, repository: env}
"#,
        expect![[r#"
            t.yaml:3:11: repository name "bad/name" must be letters, digits, '.', '_' and '-', not starting with '.' or '-' nor ending with .git
            t.yaml:7:15: unknown trigger type "gti", did you mean "git"?
            t.yaml:8:9: trigger 2 needs "repository" (a hosted repository) or "url" (an external one)
            t.yaml:9:17: regex "(unclosed" does not parse: unclosed group
            t.yaml:12:14: trigger 3 takes "repository" or "url", not both
            t.yaml:14:14: trigger 3 takes "branch" or "tag", not both (use two triggers)
            t.yaml:17:9: "poll" checks an external "url"; a hosted repository reports its pushes itself
            t.yaml:18:9: trigger 5 has no "secret" or "secretFrom", so anyone could start it: give it one, or say "public: true" if that is what you want
            t.yaml:19:17: webhook source "a b" must be letters, digits, '-', '_' or '.' (it is a url segment)
            t.yaml:20:33: regex "[z" does not parse: unclosed character class
            t.yaml:23:18: status "success" is not an end status: use succeeded, failed, canceled
            t.yaml:25:19: schedule "61 * * * *" does not parse: Component error: Number out of bounds.
            t.yaml:26:19: unknown time zone "Mars/Olympus"; use an IANA name such as Europe/Paris or UTC
            t.yaml:28:19: schedule "* * *" has 3 fields; a cron schedule has 5: minute hour day-of-month month day-of-week
            t.yaml:30:45: "defaultBump" must be one of patch, minor, major, not "huge"
            t.yaml:30:67: "initialVersion" must be MAJOR.MINOR.PATCH (e.g. 0.1.0), not "1.0"
            t.yaml:31:9: stage "c" is missing "branch"
            t.yaml:31:9: stage "c" is missing "files""#]],
    );
}

#[test]
fn pipeline_files_credentials_and_stored_secrets() {
    check(
        r#"
pipelines:
  - name: p
    triggers:
      - type: git
        url: https://git.example/app.git
        secretFrom: github-hook
        credentials: git-token
        config: ci/gantry.yaml
      - type: webhook
        source: bot
        secretFrom: bot-hook
    stages:
      - {id: c, type: gitCommit, url: https://git.example/env.git, credentials: env-token, branch: candidate, files: {a.yaml: "x"}}
      - {id: m, type: gitPromote, url: https://git.example/env.git, from: candidate, to: production}
"#,
        expect!["ok"],
    );
    check(
        r#"
pipelines:
  - name: p
    triggers:
      - type: git
        repository: app
        secret: s
        secretFrom: hook
        credentials: git-token
        config: ../gantry.yaml
      - type: webhook
        source: bot
        secret: s
        secretFrom: hook
    stages:
      - {id: c, type: gitCommit, branch: candidate, files: {a.yaml: "x"}}
      - {id: d, type: gitCommit, repository: env, url: https://x/env.git, branch: b, files: {a.yaml: "x"}}
      - {id: m, type: gitPromote, repository: env, credentials: t, from: candidate, to: production}
"#,
        expect![[r#"
            t.yaml:8:21: trigger 1 takes "secret" (the value) or "secretFrom" (a secret's name), not both
            t.yaml:9:22: trigger 1: "credentials" are for an external "url"; a hosted repository needs none
            t.yaml:10:17: config "../gantry.yaml" must be a relative path inside the repository
            t.yaml:14:21: trigger 2 takes "secret" (the value) or "secretFrom" (a secret's name), not both
            t.yaml:16:9: stage "c" needs "repository" (a hosted repository) or "url" (an external one)
            t.yaml:17:56: stage "d" takes "repository" or "url", not both
            t.yaml:18:65: stage "m": "credentials" are for an external "url"; a hosted repository needs none"#]],
    );
}

#[test]
fn a_webhook_trigger_needs_a_secret_unless_it_says_it_is_public() {
    check(
        r#"
pipelines:
  - name: p
    triggers:
      - type: webhook
        source: open-door
      - type: webhook
        source: shown
        public: false
      - type: webhook
        source: both
        secret: s
        public: true
      - {type: webhook, source: fine, secretFrom: hook}
      - {type: webhook, source: anyone, public: true}
    stages:
      - {id: w, type: wait, duration: 1s}
"#,
        expect![[r#"
            t.yaml:5:9: trigger 1 has no "secret" or "secretFrom", so anyone could start it: give it one, or say "public: true" if that is what you want
            t.yaml:7:9: trigger 2 has no "secret" or "secretFrom", so anyone could start it: give it one, or say "public: true" if that is what you want
            t.yaml:13:9: trigger 3 has a secret, so it cannot be "public""#]],
    );
}

#[test]
fn pipeline_names_follow_the_repository_name_rule() {
    let long = "p".repeat(100_000);
    check(
        &format!(
            r#"
pipelines:
  - {{name: "..", stages: [{{id: a, type: wait, duration: 1s}}]}}
  - {{name: "-rf", stages: [{{id: a, type: wait, duration: 1s}}]}}
  - {{name: "a b", stages: [{{id: a, type: wait, duration: 1s}}]}}
  - {{name: {long}, stages: [{{id: a, type: wait, duration: 1s}}]}}
  - {{name: build.main_2-x, stages: [{{id: a, type: wait, duration: 1s}}]}}
"#
        ),
        expect![[r#"
            t.yaml:3:12: pipeline name ".." must be 1 to 100 letters, digits, '.', '_' and '-', not starting with '.' or '-'
            t.yaml:4:12: pipeline name "-rf" must be 1 to 100 letters, digits, '.', '_' and '-', not starting with '.' or '-'
            t.yaml:5:12: pipeline name "a b" must be 1 to 100 letters, digits, '.', '_' and '-', not starting with '.' or '-'
            t.yaml:6:12: pipeline name "pppppppppppppppppppppppppppppppppppppppp"… (100000 characters) must be 1 to 100 letters, digits, '.', '_' and '-', not starting with '.' or '-'"#]],
    );
}
