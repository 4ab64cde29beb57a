//! `gitCommit`, and what it shares with `gitPromote` (the GitOps stages). Each clones a branch
//! of a repository into the stage's run directory, changes files (inline `files`, or
//! `fromWorkspace`: files a step rendered, see `workspace.rs`), commits, and pushes: to a
//! hosted repository through `Repositories::push_from`, so that the push triggers what watches
//! that branch; to an external `url` with the stage's `credentials` from the secret store,
//! which reach git through a credential helper (never a URL or an argument) and are hidden
//! from the errors the stage reports.
//!
//! Both are idempotent by content: run again (after a restart, or re-running an execution)
//! they write the same files; when nothing changed there is nothing to commit, and the branch
//! head is the output.

use std::path::{Component, Path};

use gantry_config::{GitCommitStage, GitTarget};
use gantry_git::Remote;
use serde_json::{Map, json};

use super::{StageContext, StageFailure, StageResult, StageRunner};

mod workspace;

/// Why a GitOps stage cannot reach its repository; `kind` is the stage type's name.
#[derive(Debug, thiserror::Error)]
pub(super) enum GitTargetError {
    #[error("{kind}: {source}")]
    Repository {
        kind: &'static str,
        source: gantry_git::RepoError,
    },
    #[error("{kind}: {source}")]
    Credentials {
        kind: &'static str,
        source: crate::GitCredentialsError,
    },
    #[error("{kind}: no \"repository\" and no \"url\"")]
    NoLocation { kind: &'static str },
    /// Cloning failed; git's message with the credentials' password hidden.
    #[error("{kind}: {masked}")]
    Clone { kind: &'static str, masked: String },
}

/// The repository a GitOps stage pushes to.
pub(super) struct Target {
    /// The hosted repository's name, or `None` for an external URL.
    hosted: Option<String>,
    remote: Remote,
    /// How messages name it.
    name: String,
}

impl Target {
    /// From the stage's `repository`, or `url` and `credentials`.
    async fn resolve(ctx: &StageContext, location: &GitTarget) -> Result<Target, GitTargetError> {
        let kind = ctx.spec.kind.type_name();
        match (location.repository.as_deref(), location.url.as_deref()) {
            (Some(name), _) => {
                let path = ctx
                    .git()
                    .existing(name)
                    .map_err(|source| GitTargetError::Repository { kind, source })?;
                Ok(Target {
                    hosted: Some(name.to_owned()),
                    remote: Remote::new(path.to_string_lossy()),
                    name: name.to_owned(),
                })
            }
            (None, Some(url)) => {
                let credentials = match location.credentials.as_deref() {
                    Some(name) => Some(
                        ctx.git_credentials(name)
                            .await
                            .map_err(|source| GitTargetError::Credentials { kind, source })?,
                    ),
                    None => None,
                };
                Ok(Target {
                    hosted: None,
                    remote: Remote::new(url).with_credentials(credentials),
                    name: url.to_owned(),
                })
            }
            (None, None) => Err(GitTargetError::NoLocation { kind }),
        }
    }

    /// How messages name it: the hosted name, or the URL.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// The hosted repository's name; `None` for an external URL.
    pub(super) fn hosted(&self) -> Option<&str> {
        self.hosted.as_deref()
    }

    /// `text` with the credentials' password hidden (git does not print it, but an error
    /// message is no place to find out otherwise).
    fn mask(&self, text: &str) -> String {
        match &self.remote.credentials {
            Some(credentials) if !credentials.password.is_empty() => {
                text.replace(&credentials.password, "***")
            }
            _ => text.to_owned(),
        }
    }
}

impl StageRunner for gantry_config::stages::git::GitCommit {
    async fn run(ctx: &StageContext, spec: &gantry_config::GitCommitStage) -> StageResult {
        commit(ctx, spec).await
    }
}

pub(crate) async fn commit(ctx: &StageContext, spec: &GitCommitStage) -> StageResult {
    let work = ctx.run_dir().join("git");
    let target = match open(ctx, &spec.target, &spec.branch, &work).await {
        Ok(target) => target,
        Err(error) => return Err(StageFailure::Failed(error.to_string())),
    };
    // Workspace files first: an inline file inside a copied directory is then added to it.
    for (file, source) in &spec.from_workspace {
        if !is_relative_inside(file) {
            return Err(StageFailure::Failed(format!(
                "gitCommit: file {file:?} must be a relative path inside the repository"
            )));
        }
        let copied = workspace::copy(
            ctx.workspace(),
            source.clone(),
            work.join(file),
            file.clone(),
        )
        .await;
        match copied {
            Ok(count) => {
                ctx.log
                    .system(&format!(
                        "{file}: {count} file{} from {source} of the workspace",
                        if count == 1 { "" } else { "s" }
                    ))
                    .await
            }
            Err(error) => return Err(StageFailure::Failed(error.to_string())),
        }
    }
    for (file, content) in &spec.files {
        if !is_relative_inside(file) {
            return Err(StageFailure::Failed(format!(
                "gitCommit: file {file:?} must be a relative path inside the repository"
            )));
        }
        let path = work.join(file);
        if let Some(parent) = path.parent()
            && let Err(error) = tokio::fs::create_dir_all(parent).await
        {
            return Err(StageFailure::Failed(format!(
                "gitCommit: cannot create {}: {error}",
                parent.display()
            )));
        }
        if let Err(error) = tokio::fs::write(&path, content).await {
            return Err(StageFailure::Failed(format!(
                "gitCommit: cannot write {file}: {error}"
            )));
        }
    }
    let message = match &spec.message {
        Some(message) => message.clone(),
        None => default_message(ctx, &format!("Update {}", target.name)).await,
    };
    finish(ctx, &target, &spec.branch, &work, &message).await
}

/// Finds the stage's repository and clones its `branch` into `work`.
pub(super) async fn open(
    ctx: &StageContext,
    location: &GitTarget,
    branch: &str,
    work: &Path,
) -> Result<Target, GitTargetError> {
    let target = Target::resolve(ctx, location).await?;
    let kind = ctx.spec.kind.type_name();
    gantry_git::clone_branch(&target.remote, branch, work)
        .await
        .map_err(|e| GitTargetError::Clone {
            kind,
            masked: target.mask(&e.to_string()),
        })?;
    Ok(target)
}

pub(super) async fn finish(
    ctx: &StageContext,
    target: &Target,
    branch: &str,
    work: &Path,
    message: &str,
) -> StageResult {
    let repository = &target.name;
    let kind = ctx.spec.kind.type_name();
    let committed = match gantry_git::commit_all(work, message).await {
        Ok(committed) => committed,
        Err(error) => return Err(StageFailure::Failed(format!("{kind}: {error}"))),
    };
    let mut outputs = Map::new();
    outputs.insert("branch".into(), json!(branch));
    // With `branch`, what lets a later `gitPromote` of this execution find this commit.
    outputs.insert("repository".into(), json!(repository));
    let Some(commit) = committed else {
        ctx.log
            .system(&format!(
                "{branch} of {repository} already holds these files: nothing to commit"
            ))
            .await;
        outputs.insert("changed".into(), json!(false));
        outputs.insert(
            "commit".into(),
            json!(gantry_git::head(work).await.unwrap_or_default()),
        );
        return Ok(outputs);
    };
    let pusher = format!("execution {}", ctx.execution_id);
    let refspec = format!("HEAD:refs/heads/{branch}");
    let pushed = match &target.hosted {
        Some(name) => ctx
            .git()
            .push_from(work, name, &refspec, &pusher)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        None => gantry_git::push(work, &target.remote, &refspec)
            .await
            .map_err(|e| e.to_string()),
    };
    if let Err(error) = pushed {
        let error = target.mask(&format!(
            "{kind}: the push to {branch} of {repository} was rejected: {error}"
        ));
        ctx.log.system(&error).await;
        return Err(StageFailure::Failed(error));
    }
    ctx.log
        .system(&format!(
            "pushed {} to {branch} of {repository}",
            short(&commit)
        ))
        .await;
    outputs.insert("changed".into(), json!(true));
    outputs.insert("commit".into(), json!(commit));
    Ok(outputs)
}

/// `TITLE`, then the source commit, its author and message, and the execution.
pub(super) async fn default_message(ctx: &StageContext, title: &str) -> String {
    let mut message = format!("{title}\n\n");
    if let Some(push) = ctx.trigger_push().await.filter(|p| !p.commit.is_empty()) {
        message.push_str(&format!(
            "Source: {}@{} by {}\n",
            push.repository,
            short(&push.commit),
            push.author.as_deref().unwrap_or("")
        ));
        let source_message = push.message.as_deref().unwrap_or("");
        if let Some(subject) = source_message.lines().next() {
            message.push_str(&format!("Source message: {subject}\n"));
        }
    }
    message.push_str(&format!("Execution: {}\n", ctx.execution_id));
    message
}

pub(super) fn short(commit: &str) -> &str {
    if commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        &commit[..7]
    } else {
        commit
    }
}

fn is_relative_inside(file: &str) -> bool {
    let path = Path::new(file);
    path.components().any(|c| matches!(c, Component::Normal(_)))
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && !path.components().any(|c| c.as_os_str() == ".git")
}
