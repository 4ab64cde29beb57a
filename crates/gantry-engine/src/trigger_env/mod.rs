//! The environment variables a step gets from what triggered its execution,
//! under the names users already know from Cloud Build and GitLab CI: the
//! commit of a push (or of `gantry run --ref`, or the one an upstream
//! execution was started for), and the trigger's type.

use gantry_store::{Cause, TriggerData};
use serde_json::Value;

/// `(name, value)` pairs for an execution's stored `trigger`; only variables
/// whose source field is present. A trigger none of today's shapes reads gives
/// none (and says so in the server log).
pub fn step_env(stored: &Value) -> Vec<(String, String)> {
    match TriggerData::from_stored(stored) {
        Ok(trigger) => env_of(&trigger),
        Err(error) => {
            tracing::warn!(%error, "the execution's trigger gives its steps no variables");
            Vec::new()
        }
    }
}

fn env_of(trigger: &TriggerData) -> Vec<(String, String)> {
    let git = trigger.git().unwrap_or_default();
    let present = |value: &str| -> Option<String> { (!value.is_empty()).then(|| value.to_owned()) };
    let optional = |value: &Option<String>| value.as_deref().and_then(present);
    let mut env = Vec::new();
    let mut set = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            env.push((name.to_owned(), value));
        }
    };
    let commit = present(&git.commit);
    let branch = optional(&git.branch);
    let tag = optional(&git.tag);
    let ref_name = branch
        .clone()
        .or_else(|| tag.clone())
        .or_else(|| present(short_ref(&git.reference)));
    // An artifact trigger's APT repository has always been given as `REPO_NAME` too.
    let repository = match &trigger.cause {
        Cause::Artifact { repository, .. } => present(repository),
        _ => present(&git.repository),
    };

    set("COMMIT_SHA", commit.clone());
    set("REVISION_ID", commit.clone());
    set("SHORT_SHA", commit.as_deref().map(|c| prefix(c, 7)));
    set("BRANCH_NAME", branch.clone());
    set("TAG_NAME", tag.clone());
    set("REF_NAME", ref_name.clone());
    set("REPO_NAME", repository.clone());
    set("CI_COMMIT_SHA", commit.clone());
    set(
        "CI_COMMIT_SHORT_SHA",
        commit.as_deref().map(|c| prefix(c, 8)),
    );
    set("CI_COMMIT_REF_NAME", ref_name);
    set("CI_COMMIT_BRANCH", branch);
    set("CI_COMMIT_TAG", tag);
    set("CI_COMMIT_MESSAGE", optional(&git.message));
    set("CI_COMMIT_AUTHOR", optional(&git.author));
    set("CI_PROJECT_NAME", repository);
    set("GANTRY_TRIGGER_TYPE", Some(trigger.type_name().to_owned()));
    env
}

fn short_ref(full: &str) -> &str {
    full.strip_prefix("refs/heads/")
        .or_else(|| full.strip_prefix("refs/tags/"))
        .unwrap_or(full)
}

fn prefix(text: &str, n: usize) -> String {
    text.get(..n).unwrap_or(text).to_owned()
}

#[cfg(test)]
mod tests;
