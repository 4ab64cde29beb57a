use serde_json::json;

use super::step_env;

fn check(trigger: serde_json::Value, expected: &[(&str, &str)]) {
    let env = step_env(&trigger);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(env, expected);
}

#[test]
fn manual_trigger_sets_only_its_type() {
    check(
        json!({"type": "manual", "user": "ann"}),
        &[("GANTRY_TRIGGER_TYPE", "manual")],
    );
}

#[test]
fn branch_push() {
    check(
        json!({"type": "git", "via": "git", "repository": "app", "ref": "refs/heads/main",
               "branch": "main", "commit": "0123456789abcdef", "before": "0000000000000000",
               "author": "Ann", "message": "fix [patch]"}),
        &[
            ("COMMIT_SHA", "0123456789abcdef"),
            ("REVISION_ID", "0123456789abcdef"),
            ("SHORT_SHA", "0123456"),
            ("BRANCH_NAME", "main"),
            ("REF_NAME", "main"),
            ("REPO_NAME", "app"),
            ("CI_COMMIT_SHA", "0123456789abcdef"),
            ("CI_COMMIT_SHORT_SHA", "01234567"),
            ("CI_COMMIT_REF_NAME", "main"),
            ("CI_COMMIT_BRANCH", "main"),
            ("CI_COMMIT_MESSAGE", "fix [patch]"),
            ("CI_COMMIT_AUTHOR", "Ann"),
            ("CI_PROJECT_NAME", "app"),
            ("GANTRY_TRIGGER_TYPE", "git"),
        ],
    );
}

#[test]
fn tag_from_ref_only() {
    // A run by hand on a tag (`gantry run --ref v1.2.0`) whose push names no tag field.
    check(
        json!({"type": "manual", "via": "manual", "repository": "", "ref": "refs/tags/v1.2.0",
               "commit": "", "before": ""}),
        &[
            ("REF_NAME", "v1.2.0"),
            ("CI_COMMIT_REF_NAME", "v1.2.0"),
            ("GANTRY_TRIGGER_TYPE", "manual"),
        ],
    );
}

#[test]
fn a_downstream_execution_gets_the_upstream_commit() {
    let push = json!({"via": "git", "repository": "app", "ref": "refs/heads/main",
                      "branch": "main", "commit": "0123456789abcdef", "before": "0",
                      "author": "Ann", "message": "fix [patch]"});
    let with = |fields: serde_json::Value| {
        let mut trigger = push.clone();
        trigger
            .as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        step_env(&trigger)
    };
    let mut expected = with(json!({"type": "git"}));
    expected.last_mut().unwrap().1 = "pipeline".to_owned();
    let downstream = with(json!({"type": "pipeline",
        "upstream": {"pipeline": "build", "execution": "e1", "status": "SUCCEEDED"}}));
    assert_eq!(downstream, expected);
    assert!(
        downstream
            .iter()
            .any(|(name, value)| name == "COMMIT_SHA" && value == "0123456789abcdef")
    );
}

#[test]
fn a_trigger_of_no_known_shape_gives_no_variables() {
    check(json!({"type": "telepathy"}), &[]);
}

#[test]
fn an_artifact_names_its_apt_repository() {
    check(
        json!({"type": "artifact", "repository": "main", "package": "app", "version": "1.0",
               "architecture": "amd64"}),
        &[
            ("REPO_NAME", "main"),
            ("CI_PROJECT_NAME", "main"),
            ("GANTRY_TRIGGER_TYPE", "artifact"),
        ],
    );
}
