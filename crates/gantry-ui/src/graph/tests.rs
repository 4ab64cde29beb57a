use expect_test::{Expect, expect};
use gantry_wire::Status;
use gantry_wire::executions::Stage;
use serde_json::json;

use super::layout;

fn stage(id: &str, depends_on: &[&str]) -> Stage {
    Stage {
        id: id.into(),
        name: None,
        kind: Some("wait".into()),
        status: Status::Pending,
        attempt: 1,
        started_at: None,
        ended_at: None,
        outputs: json!({}),
        error: None,
        depends_on: depends_on.iter().map(|d| d.to_string()).collect(),
        state: json!({}),
        judgment: None,
        attempts: Vec::new(),
        accepts: Vec::new(),
    }
}

/// Each stage as `id@column,row`, in file order.
fn check(stages: &[Stage], expected: Expect) {
    let graph = layout(stages);
    let cells: Vec<String> = graph
        .nodes
        .iter()
        .map(|n| {
            let column = (n.x - 8) / (super::NODE_WIDTH + 56);
            let row = (n.y - 8) / (super::NODE_HEIGHT + 14);
            format!("{}@{column},{row}", n.id)
        })
        .collect();
    expected.assert_eq(&format!(
        "{} ({} edges)",
        cells.join(" "),
        graph.edges.len()
    ));
}

#[test]
fn a_stage_sits_one_column_after_its_deepest_dependency() {
    check(
        &[
            stage("build", &[]),
            stage("test", &["build"]),
            stage("lint", &["build"]),
            stage("deploy", &["test", "lint", "build"]),
        ],
        expect!["build@0,0 test@1,0 lint@1,1 deploy@2,0 (5 edges)"],
    );
}

#[test]
fn stages_without_dependencies_stack_in_the_first_column_in_file_order() {
    check(
        &[stage("a", &[]), stage("b", &[]), stage("c", &["b"])],
        expect!["a@0,0 b@0,1 c@1,0 (1 edges)"],
    );
}

#[test]
fn an_unknown_dependency_and_a_cycle_still_give_a_graph() {
    check(
        &[
            stage("a", &["ghost"]),
            stage("b", &["c"]),
            stage("c", &["b"]),
        ],
        expect!["a@0,0 b@4,0 c@3,0 (2 edges)"],
    );
}
