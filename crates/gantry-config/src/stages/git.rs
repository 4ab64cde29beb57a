//! The git stages: `release` (semantic version tags), `gitCommit` and `gitPromote` (GitOps).

use super::{StageFields, StageType};
use crate::check::Checker;

pub(super) const RELEASE: StageType = StageType {
    name: "release",
    check: check_release,
};

pub(super) const GIT_COMMIT: StageType = StageType {
    name: "gitCommit",
    check: check_git_commit,
};

pub(super) const GIT_PROMOTE: StageType = StageType {
    name: "gitPromote",
    check: check_git_promote,
};

fn check_release(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    let f = &mut stage.fields;
    f.string(cx, "repository");
    f.string(cx, "commit");
    f.string(cx, "message");
    f.choice(cx, "defaultBump", &["patch", "minor", "major"]);
    if let Some((version, node)) = f.text(cx, "initialVersion") {
        let parts: Vec<&str> = version.split('.').collect();
        if parts.len() != 3 || parts.iter().any(|p| p.parse::<u64>().is_err()) {
            cx.error(
                node.span.start,
                format!(
                    "\"initialVersion\" must be MAJOR.MINOR.PATCH (e.g. 0.1.0), not {version:?}"
                ),
            );
        }
    }
    f.string(cx, "prefix");
}

fn check_git_commit(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    crate::triggers::check_repository_or_url(cx, &mut stage.fields);
    let f = &mut stage.fields;
    f.required_string(cx, "branch");
    if f.get("files").is_some() {
        f.text_map(cx, "files");
    } else {
        f.require(cx, "files");
    }
    f.string(cx, "message");
}

fn check_git_promote(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    crate::triggers::check_repository_or_url(cx, &mut stage.fields);
    let f = &mut stage.fields;
    f.required_string(cx, "from");
    f.required_string(cx, "to");
    f.strings(cx, "files");
    f.string(cx, "message");
}
