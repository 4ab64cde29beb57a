//! `gitCommit`, and what it shares with `gitPromote` (the GitOps stages). Each clones a branch of a hosted
//! repository into the stage's run directory, changes files, commits, and pushes through
//! `Repositories::push_from`, so that the push triggers what watches that branch.
//!
//! Both are idempotent by content: run again (after a restart, or re-running an execution)
//! they write the same files; when nothing changed there is nothing to commit, and the branch
//! head is the output.

use std::path::{Component, Path};

use gantry_config::GitCommitStage;
use serde_json::{Map, Value, json};

use super::{Outcome, StageContext};

pub(crate) async fn commit(ctx: &StageContext, spec: &GitCommitStage) -> Outcome {
    let work = ctx.run_dir().join("git");
    let source = match prepare(ctx, &spec.repository, &spec.branch, &work).await {
        Ok(source) => source,
        Err(error) => return Outcome::Failed(error),
    };
    for (file, content) in &spec.files {
        if !is_relative_inside(file) {
            return Outcome::Failed(format!(
                "gitCommit: file {file:?} must be a relative path inside the repository"
            ));
        }
        let path = work.join(file);
        if let Some(parent) = path.parent()
            && let Err(error) = tokio::fs::create_dir_all(parent).await
        {
            return Outcome::Failed(format!(
                "gitCommit: cannot create {}: {error}",
                parent.display()
            ));
        }
        if let Err(error) = tokio::fs::write(&path, content).await {
            return Outcome::Failed(format!("gitCommit: cannot write {file}: {error}"));
        }
    }
    let message = match &spec.message {
        Some(message) => message.clone(),
        None => default_message(ctx, &format!("Update {}", source)).await,
    };
    finish(ctx, &spec.repository, &spec.branch, &work, &message).await
}

/// Clones `branch` of the hosted repository into `work`; returns the repository's name.
pub(super) async fn prepare(
    ctx: &StageContext,
    repository: &str,
    branch: &str,
    work: &Path,
) -> Result<String, String> {
    let path = ctx
        .engine
        .git()
        .existing(repository)
        .map_err(|e| format!("{}: {e}", ctx.spec.kind.type_name()))?;
    gantry_git::clone_branch(&path.to_string_lossy(), branch, work)
        .await
        .map_err(|e| format!("{}: {e}", ctx.spec.kind.type_name()))?;
    Ok(repository.to_owned())
}

pub(super) async fn finish(
    ctx: &StageContext,
    repository: &str,
    branch: &str,
    work: &Path,
    message: &str,
) -> Outcome {
    let kind = ctx.spec.kind.type_name();
    let committed = match gantry_git::commit_all(work, message).await {
        Ok(committed) => committed,
        Err(error) => return Outcome::Failed(format!("{kind}: {error}")),
    };
    let mut outputs = Map::new();
    outputs.insert("branch".into(), json!(branch));
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
        return Outcome::Succeeded(outputs);
    };
    let pusher = format!("execution {}", ctx.execution.id);
    let refspec = format!("HEAD:refs/heads/{branch}");
    if let Err(error) = ctx
        .engine
        .git()
        .push_from(work, repository, &refspec, &pusher)
        .await
    {
        return Outcome::Failed(format!(
            "{kind}: the push to {branch} of {repository} was rejected: {error}"
        ));
    }
    ctx.log
        .system(&format!(
            "pushed {} to {branch} of {repository}",
            short(&commit)
        ))
        .await;
    outputs.insert("changed".into(), json!(true));
    outputs.insert("commit".into(), json!(commit));
    Outcome::Succeeded(outputs)
}

/// `TITLE`, then the source commit, its author and message, and the execution.
pub(super) async fn default_message(ctx: &StageContext, title: &str) -> String {
    let trigger = ctx.execution.read().await.exec.trigger.clone();
    let field = |name: &str| {
        trigger
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let mut message = format!("{title}\n\n");
    if !field("commit").is_empty() {
        message.push_str(&format!(
            "Source: {}@{} by {}\n",
            field("repository"),
            short(&field("commit")),
            field("author")
        ));
        let source_message = field("message");
        if let Some(subject) = source_message.lines().next() {
            message.push_str(&format!("Source message: {subject}\n"));
        }
    }
    message.push_str(&format!("Execution: {}\n", ctx.execution.id));
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
    !file.is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && !path.components().any(|c| c.as_os_str() == ".git")
}
