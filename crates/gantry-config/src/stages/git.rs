//! The git stages: `release` (semantic version tags), `gitCommit` and `gitPromote` (GitOps).

use super::{StageFields, StageType};
use crate::check::Checker;
use crate::yaml::{Node, Value};

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
    let inline = f.get("files");
    let copied = f.get("fromWorkspace");
    if inline.is_none() && copied.is_none() {
        // Reported as a missing `files`, the common form; `fromWorkspace` is the other one.
        f.require(cx, "files");
    }
    let mut maps: Vec<(&Node, &'static str)> = Vec::new();
    if let Some(node) = inline
        && f.text_map(cx, "files").is_some()
    {
        maps.push((node, "files"));
    }
    if let Some(node) = copied
        && f.text_map(cx, "fromWorkspace").is_some()
    {
        maps.push((node, "fromWorkspace"));
    }
    // In file order, so that a path written twice is reported where it is written again.
    maps.sort_by_key(|(node, _)| node.span.start);
    let mut seen = Vec::new();
    for (node, field) in maps {
        check_paths(cx, node, field, &mut seen);
    }
    f.string(cx, "message");
}

/// The keys of `files` or `fromWorkspace` are paths in the repository and, for
/// `fromWorkspace`, the values are paths in the workspace: each must stay inside its tree. A
/// repository path written twice (in either mapping) is refused, since one would silently win.
fn check_paths(cx: &mut Checker<'_>, node: &Node, field: &str, seen: &mut Vec<String>) {
    let Value::Map(entries) = &node.value else {
        return;
    };
    for (key, value) in entries {
        let path = key.scalar_text(cx.source).unwrap_or_default();
        if !is_relative_inside(&path) || path.split('/').any(|part| part == ".git") {
            cx.error(
                key.span.start,
                format!(
                    "{field:?}: {path:?} must be a relative path inside the repository (no \
                     \"..\", no leading \"/\", not in .git)"
                ),
            );
        }
        let normal = normalize(&path);
        if seen.contains(&normal) {
            cx.error(
                key.span.start,
                format!("{field:?}: {path:?} is written twice; give each repository path once"),
            );
        } else {
            seen.push(normal);
        }
        if field == "fromWorkspace"
            && let Some(source) = value.scalar_text(cx.source)
            && !source.contains("${{")
            && !is_relative_inside(&source)
        {
            cx.error(
                value.span.start,
                format!(
                    "\"fromWorkspace\": {source:?} must be a relative path inside the \
                     workspace (no \"..\", no leading \"/\")"
                ),
            );
        }
    }
}

/// Relative, without `..`, not empty.
fn is_relative_inside(path: &str) -> bool {
    !path.trim().is_empty()
        && !path.starts_with('/')
        && path.split('/').all(|part| part != "..")
        && !normalize(path).is_empty()
}

/// `./k8s//a.yaml/` and `k8s/a.yaml` name one file.
fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn check_git_promote(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
    crate::triggers::check_repository_or_url(cx, &mut stage.fields);
    let f = &mut stage.fields;
    f.required_string(cx, "from");
    f.required_string(cx, "to");
    f.strings(cx, "files");
    f.string(cx, "message");
}
