//! The environment variables a step gets from what triggered its execution,
//! under the names users already know from Cloud Build and GitLab CI.
//!
//! A git trigger records (see the triggers' docs) `repository` (a name),
//! `ref` (`refs/heads/main`, `refs/tags/v1.0.0`), `branch` or `tag`,
//! `commit` (full sha), `author`, `message`, `pusher`, `deliveryId`.

use serde_json::Value;

/// `(name, value)` pairs; only variables whose source field is present.
pub(crate) fn step_env(trigger: &Value) -> Vec<(String, String)> {
    let field = |name: &str| {
        trigger
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let mut env = Vec::new();
    let mut set = |name: &str, value: Option<&str>| {
        if let Some(value) = value {
            env.push((name.to_owned(), value.to_owned()));
        }
    };
    let commit = field("commit");
    let branch = field("branch");
    let tag = field("tag");
    let ref_name = branch.or(tag).or_else(|| field("ref").map(short_ref));
    let repository = field("repository");

    set("COMMIT_SHA", commit);
    set("REVISION_ID", commit);
    set("SHORT_SHA", commit.map(|c| prefix(c, 7)));
    set("BRANCH_NAME", branch);
    set("TAG_NAME", tag);
    set("REF_NAME", ref_name);
    set("REPO_NAME", repository);
    set("CI_COMMIT_SHA", commit);
    set("CI_COMMIT_SHORT_SHA", commit.map(|c| prefix(c, 8)));
    set("CI_COMMIT_REF_NAME", ref_name);
    set("CI_COMMIT_BRANCH", branch);
    set("CI_COMMIT_TAG", tag);
    set("CI_COMMIT_MESSAGE", field("message"));
    set("CI_COMMIT_AUTHOR", field("author"));
    set("CI_PROJECT_NAME", repository);
    set("GANTRY_TRIGGER_TYPE", field("type"));
    env
}

fn short_ref(full: &str) -> &str {
    full.strip_prefix("refs/heads/")
        .or_else(|| full.strip_prefix("refs/tags/"))
        .unwrap_or(full)
}

fn prefix(text: &str, n: usize) -> &str {
    text.get(..n).unwrap_or(text)
}

#[cfg(test)]
mod tests {
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
            json!({"type": "git", "repository": "app", "ref": "refs/heads/main", "branch": "main",
                   "commit": "0123456789abcdef", "author": "Ann", "message": "fix [patch]"}),
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
        check(
            json!({"ref": "refs/tags/v1.2.0"}),
            &[("REF_NAME", "v1.2.0"), ("CI_COMMIT_REF_NAME", "v1.2.0")],
        );
    }
}
