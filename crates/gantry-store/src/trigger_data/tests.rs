//! Every shape of `trigger` executions have stored, read back and written out unchanged.

use serde_json::{Value, json};

use super::{Cause, GitPush, TriggerData};

/// `stored` reads as a trigger of type `kind` and is written back exactly.
fn check(stored: Value, kind: &str) -> TriggerData {
    let data = TriggerData::from_stored(&stored).expect("today's shape reads");
    assert_eq!(data.type_name(), kind);
    assert_eq!(data.to_stored(), stored);
    data
}

#[test]
fn a_manual_run_reads_with_and_without_a_user() {
    check(json!({"type": "manual"}), "manual");
    let data = check(json!({"type": "manual", "user": "ann"}), "manual");
    assert_eq!(data.user(), Some("ann"));
    assert_eq!(
        TriggerData::default().to_stored(),
        json!({"type": "manual"})
    );
}

#[test]
fn a_manual_run_on_a_ref_keeps_the_push_it_would_have_been() {
    let data = check(
        json!({"type": "manual", "via": "manual", "repository": "app", "ref": "refs/heads/main",
               "branch": "main", "commit": "c1", "before": "0000", "author": "Ann <a@x>",
               "message": "fix", "config": "gantry.yaml", "user": "ann"}),
        "manual",
    );
    assert_eq!(data.git().map(|g| g.commit), Some("c1".to_owned()));
}

#[test]
fn a_push_reads_with_every_field() {
    let data = check(
        json!({"type": "git", "via": "github", "repository": "app",
               "url": "https://example.com/org/app.git", "ref": "refs/tags/v1.0.0",
               "tag": "v1.0.0", "commit": "c2", "before": "c1", "author": "Ann <a@x>",
               "message": "release", "pusher": "ann", "deliveryId": "d-1",
               "credentials": "github-token", "config": "cloudbuild.yaml",
               "configError": "pipeline file \"cloudbuild.yaml\" at commit c2: no such file"}),
        "git",
    );
    let Cause::Git(push) = &data.cause else {
        panic!("not a push: {data:?}")
    };
    assert_eq!(push.tag.as_deref(), Some("v1.0.0"));
    assert!(push.config_error.is_some());
}

#[test]
fn webhook_cron_and_artifact_triggers_read() {
    check(
        json!({"type": "webhook", "source": "deploys", "payload": {"n": 1, "tags": ["a"]}}),
        "webhook",
    );
    check(
        json!({"type": "cron", "schedule": "0 9 * * *", "timeZone": "Europe/Paris",
               "scheduledAt": "2026-01-15T08:00:00+00:00"}),
        "cron",
    );
    check(
        json!({"type": "artifact", "repository": "main", "package": "app", "version": "1.0",
               "architecture": "amd64"}),
        "artifact",
    );
}

#[test]
fn a_pipeline_stages_child_keeps_a_null_user() {
    let data = check(
        json!({"type": "pipeline", "parentExecution": "e1", "parentPipeline": "build",
               "parentStage": "child", "user": null}),
        "pipeline",
    );
    assert_eq!(data.user(), None);
    check(
        json!({"type": "pipeline", "parentExecution": "e1", "parentPipeline": "build",
               "parentStage": "child", "user": "ann"}),
        "pipeline",
    );
}

#[test]
fn a_downstream_execution_keeps_what_started_the_upstream_one() {
    let data = check(
        json!({"type": "pipeline", "via": "git", "repository": "app", "ref": "refs/heads/main",
               "branch": "main", "commit": "c3", "before": "c2", "pusher": "ann",
               "upstream": {"pipeline": "build", "execution": "e2", "status": "SUCCEEDED"}}),
        "pipeline",
    );
    assert_eq!(data.git().map(|g| g.commit), Some("c3".to_owned()));
    // An upstream that was itself a pipeline stage's child.
    check(
        json!({"type": "pipeline", "parentExecution": "e1", "parentPipeline": "build",
               "parentStage": "child", "user": null,
               "upstream": {"pipeline": "child", "execution": "e2", "status": "SUCCEEDED"}}),
        "pipeline",
    );
    // An upstream started by a schedule: nothing of a push to inherit.
    check(
        json!({"type": "pipeline", "schedule": "0 9 * * *", "timeZone": "UTC",
               "scheduledAt": "2026-01-15T09:00:00+00:00",
               "upstream": {"pipeline": "nightly", "execution": "e3", "status": "FAILED"}}),
        "pipeline",
    );
}

#[test]
fn a_rerun_keeps_its_cause_and_says_whose_it_was() {
    let data = check(
        json!({"type": "git", "via": "git", "repository": "app", "ref": "refs/heads/main",
               "branch": "main", "commit": "c4", "before": "c3", "rerunOf": "e4",
               "rerunBy": "bob"}),
        "git",
    );
    assert_eq!(data.rerun_of.as_deref(), Some("e4"));
    check(
        json!({"type": "manual", "user": "ann", "rerunOf": "e5", "rerunBy": "bob"}),
        "manual",
    );
}

#[test]
fn a_push_built_in_code_writes_todays_json() {
    let push = GitPush {
        via: "git".into(),
        repository: "app".into(),
        reference: "refs/heads/main".into(),
        branch: Some("main".into()),
        commit: "c5".into(),
        before: "c4".into(),
        ..GitPush::default()
    };
    assert_eq!(
        TriggerData::new(Cause::Git(push)).to_stored(),
        json!({"type": "git", "via": "git", "repository": "app", "ref": "refs/heads/main",
               "branch": "main", "commit": "c5", "before": "c4"})
    );
}
