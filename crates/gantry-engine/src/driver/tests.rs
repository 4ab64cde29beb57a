use gantry_config::Pipeline;
use gantry_store::{ExecutionRecord, StageRecord, Status};
use serde_json::json;

use super::failure_options::{final_status, halt, ready_stages};
use super::restart::downstream;
use crate::state::ExecState;

/// A state for a pipeline given as YAML-ish JSON stages, with statuses.
fn state(stages: serde_json::Value, statuses: &[Status]) -> ExecState {
    let pipeline: Pipeline =
        serde_json::from_value(json!({ "name": "p", "stages": stages })).unwrap();
    let records = pipeline
        .stages
        .iter()
        .zip(statuses)
        .map(|(s, &status)| StageRecord {
            execution_id: "e".into(),
            stage_id: s.id.clone(),
            status,
            attempt: 1,
            started_at: None,
            ended_at: None,
            outputs: json!({}),
            error: Some("boom".into()),
            state: json!({}),
        })
        .collect();
    let exec = ExecutionRecord {
        id: "e".into(),
        pipeline: "p".into(),
        spec: json!({}),
        status: Status::Running,
        parameters: json!({}),
        trigger: json!({}),
        parent: None,
        created_at: 0,
        started_at: None,
        ended_at: None,
        error: None,
        canceled_by: None,
    };
    ExecState {
        exec,
        pipeline,
        stages: records,
    }
}

fn wait(id: &str, deps: &[&str]) -> serde_json::Value {
    json!({ "id": id, "type": "wait", "duration": "1s", "dependsOn": deps })
}

use Status::*;

#[test]
fn parallel_roots_are_ready_together() {
    let s = state(
        json!([wait("a", &[]), wait("b", &[]), wait("c", &["a", "b"])]),
        &[Pending, Pending, Pending],
    );
    assert_eq!(ready_stages(&s), vec![0, 1]);
}

#[test]
fn a_stage_waits_for_all_its_dependencies() {
    let s = state(
        json!([wait("a", &[]), wait("b", &[]), wait("c", &["a", "b"])]),
        &[Succeeded, Running, Pending],
    );
    assert!(ready_stages(&s).is_empty());
    let s = state(
        json!([wait("a", &[]), wait("b", &[]), wait("c", &["a", "b"])]),
        &[Succeeded, Skipped, Pending],
    );
    assert_eq!(ready_stages(&s), vec![2]);
}

#[test]
fn a_failure_fails_the_pipeline_by_default() {
    let s = state(
        json!([wait("a", &[]), wait("b", &["a"])]),
        &[Failed, Pending],
    );
    assert!(ready_stages(&s).is_empty());
    assert_eq!(halt(&s), Some((Failed, "stage a failed: boom".into())));
}

#[test]
fn continue_pipeline_ignores_the_failure() {
    let mut a = wait("a", &[]);
    a["continuePipeline"] = json!(true);
    let s = state(json!([a, wait("b", &["a"])]), &[Failed, Pending]);
    assert_eq!(ready_stages(&s), vec![1]);
    assert_eq!(halt(&s), None);
}

#[test]
fn fail_pipeline_false_halts_only_the_branch() {
    let mut a = wait("a", &[]);
    a["failPipeline"] = json!(false);
    let s = state(
        json!([a, wait("b", &["a"]), wait("c", &[])]),
        &[Failed, Pending, Succeeded],
    );
    assert!(ready_stages(&s).is_empty());
    assert_eq!(halt(&s), None);
    assert_eq!(final_status(&s), (Succeeded, None));
}

#[test]
fn complete_other_branches_then_fail() {
    let mut a = wait("a", &[]);
    a["failPipeline"] = json!(false);
    a["completeOtherBranchesThenFail"] = json!(true);
    let s = state(json!([a, wait("c", &[])]), &[Failed, Succeeded]);
    assert_eq!(halt(&s), None);
    assert_eq!(
        final_status(&s),
        (Failed, Some("stage a failed: boom".into()))
    );
}

#[test]
fn downstream_is_transitive() {
    let s = state(
        json!([
            wait("a", &[]),
            wait("b", &["a"]),
            wait("c", &["b"]),
            wait("d", &[])
        ]),
        &[Failed, Pending, Pending, Succeeded],
    );
    assert_eq!(downstream(&s, 0), vec![0, 1, 2]);
}

/// A panic inside a stage task is caught by the driver's JoinSet and becomes
/// the stage's failure message; the runtime (the server) keeps running.
#[tokio::test]
async fn a_panicking_stage_becomes_a_failure_message() {
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(async {
        let values: Vec<u32> = Vec::new();
        values[3]
    });
    let error = tasks.join_next().await.unwrap().unwrap_err();
    let message = super::panic_message(error);
    assert!(
        message.starts_with("stage panicked: index out of bounds"),
        "{message}"
    );
    // The runtime is still usable after the panic.
    assert_eq!(tokio::spawn(async { 7 }).await.unwrap(), 7);
}
