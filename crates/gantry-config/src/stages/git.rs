//! The git stages: `release` (semantic version tags), `gitCommit` and `gitPromote` (GitOps).

use std::collections::BTreeMap;

use super::{CheckStageType, SecretName, StageFields, StageType};
use crate::check::Checker;
use crate::yaml::{Node, Value};
use serde::{Deserialize, Serialize};

/// `release`: bumps the newest `vX.Y.Z[-suffix]` tag of a hosted repository by the strongest
/// `[major]`/`[minor]`/`[patch]` marker of the commits since the last version tag (or of a
/// pull request's title in the trigger's webhook payload) and tags the commit
/// `vX.Y.Z-<short sha>`. Outputs `released`, `version`, `tag`, `previous`, `bump`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseStage {
    /// A hosted repository; the trigger's repository when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The commit to tag; the trigger's commit when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Where the marker is looked for; when not given, a pull request's title in the
    /// trigger's payload, else the messages of every commit since the last version tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The bump when no marker is found; none means no marker, no release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_bump: Option<Bump>,
    /// The first version, when the repository has no version tag yet.
    #[serde(default = "default_initial_version")]
    pub initial_version: String,
    #[serde(default = "default_tag_prefix")]
    pub prefix: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Bump {
    Patch,
    Minor,
    Major,
}

/// `gitCommit`: writes `files` (inline content) and `fromWorkspace` (files a step rendered)
/// on `branch` of a hosted repository (or an external `url`), commits and pushes (which
/// triggers what watches that branch). Outputs `commit`, `changed`, `branch`, `repository`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitCommitStage {
    #[serde(flatten)]
    pub target: GitTarget,
    pub branch: String,
    /// Path in the repository → content.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// Path in the repository → path in the execution's workspace. A workspace directory
    /// replaces the repository directory whole (files it no longer has are removed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub from_workspace: BTreeMap<String, String>,
    /// The commit message; by default names the source commit and its author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Which repository `gitCommit` and `gitPromote` push to (fields of the stage itself).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitTarget {
    /// A hosted repository's name; or give `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// An external repository's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// With `url`: a secret holding `user:password` (or a bare token) for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
}

/// `gitPromote`: copies files as they are at `from` (a commit or branch) onto `to`, commits
/// and pushes (the `candidate` → `production` promotion). A branch `from` stands for the
/// commit this execution knows on it: the one its own `gitCommit` pushed there, else the one
/// whose push triggered it (so a re-run promotes what it deployed), else the branch's tip.
/// Outputs `commit`, `changed`, `source` (the commit promoted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitPromoteStage {
    #[serde(flatten)]
    pub target: GitTarget,
    pub from: String,
    pub to: String,
    /// Paths to copy; every file of `from` when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn default_initial_version() -> String {
    "0.1.0".to_owned()
}
fn default_tag_prefix() -> String {
    "v".to_owned()
}

/// The `release` stage type.
pub struct Release;

impl StageType for Release {
    type Spec = ReleaseStage;

    fn secret_names(_spec: &ReleaseStage) -> Vec<SecretName> {
        Vec::new()
    }
}

impl CheckStageType for Release {
    fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
        check_release(stage, cx)
    }
}

/// The `gitCommit` stage type.
pub struct GitCommit;

impl StageType for GitCommit {
    type Spec = GitCommitStage;

    fn secret_names(spec: &GitCommitStage) -> Vec<SecretName> {
        SecretName::credentials(spec.target.credentials.as_deref())
    }
}

impl CheckStageType for GitCommit {
    fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
        check_git_commit(stage, cx)
    }
}

/// The `gitPromote` stage type.
pub struct GitPromote;

impl StageType for GitPromote {
    type Spec = GitPromoteStage;

    fn secret_names(spec: &GitPromoteStage) -> Vec<SecretName> {
        SecretName::credentials(spec.target.credentials.as_deref())
    }
}

impl CheckStageType for GitPromote {
    fn check(stage: &mut StageFields<'_>, cx: &mut Checker<'_>) {
        check_git_promote(stage, cx)
    }
}

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
