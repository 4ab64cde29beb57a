use serde_json::{Value, json};

use crate::executions::{Execution, Status};
use crate::pipelines::Upsert;

#[test]
fn words_printed_for_people_are_the_words_on_the_wire() {
    let statuses = [
        Status::Pending,
        Status::Running,
        Status::Waiting,
        Status::Succeeded,
        Status::Failed,
        Status::Canceled,
        Status::Skipped,
    ];
    for status in statuses {
        assert_eq!(json!(status), json!(status.as_str()));
    }
    for upsert in [Upsert::Created, Upsert::Updated, Upsert::Unchanged] {
        assert_eq!(json!(upsert), json!(upsert.as_str()));
    }
}

#[test]
fn an_execution_keeps_its_nulls_and_leaves_out_stages_of_a_list() {
    let listed = json!({
        "id": "e1",
        "pipeline": "p",
        "status": "running",
        "trigger": {"type": "manual"},
        "parameters": {},
        "createdAt": "2026-01-01T00:00:00.000Z",
        "startedAt": null,
        "endedAt": null,
        "error": null,
        "canceledBy": null,
        "parent": null,
    });
    let execution: Execution = serde_json::from_value(listed.clone()).unwrap();
    let again: Value = serde_json::to_value(&execution).unwrap();
    assert_eq!(again, listed);
}
