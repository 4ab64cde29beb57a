use serde_json::json;

use super::parse_outputs;

fn check(input: &str, expected: serde_json::Value) {
    let outputs = parse_outputs(input)
        .map(serde_json::Value::Object)
        .unwrap_or_else(|e| json!({ "error": e.to_string() }));
    assert_eq!(outputs, expected);
}

#[test]
fn key_value_lines() {
    check(
        "version=1.2.3\nimage=reg/app:1=2\n",
        json!({"version": "1.2.3", "image": "reg/app:1=2"}),
    );
}

#[test]
fn later_value_wins_and_blank_lines_pass() {
    check("a=1\n\na=2\n", json!({"a": "2"}));
}

#[test]
fn heredoc_values() {
    check(
        "notes<<EOF\nline one\nline two\nEOF\nx=y\n",
        json!({"notes": "line one\nline two", "x": "y"}),
    );
}

#[test]
fn unterminated_heredoc_is_an_error() {
    check(
        "notes<<EOF\nline",
        json!({"error": "line 1: no closing \"EOF\" for \"notes\""}),
    );
}

#[test]
fn a_line_without_equals_is_an_error() {
    check(
        "oops\n",
        json!({"error": "line 1: expected key=value, got \"oops\""}),
    );
}
