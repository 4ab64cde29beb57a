//! `gitPromote`: copies the files of one commit onto another branch (`candidate` →
//! `production` after a successful deploy), commits and pushes. Re-running an earlier
//! execution promotes its files again, recording a new commit: the branch stays an honest
//! history of what ran.
//!
//! `from` may be a commit or a branch. A branch stands for the commit of it that this
//! execution is about, not for whatever the branch holds by the time the stage runs (a newer
//! delivery may have moved it, and a re-run of an earlier delivery must promote what it
//! deployed): the commit this execution's own `gitCommit` pushed to that branch, else the
//! commit whose push to that branch triggered the execution, else the branch's tip.

use gantry_config::{GitPromoteStage, StageKind};
use gantry_store::Status;
use serde_json::{Value, json};

use super::git_commit::{Target, default_message, finish, open, short};
use super::{StageContext, StageFailure, StageResult, StageRunner};

impl StageRunner for gantry_config::stages::git::GitPromote {
    async fn run(ctx: &StageContext, spec: &gantry_config::GitPromoteStage) -> StageResult {
        run(ctx, spec).await
    }
}

pub(crate) async fn run(ctx: &StageContext, spec: &GitPromoteStage) -> StageResult {
    let work = ctx.run_dir().join("git");
    let target = match open(ctx, &spec.target, &spec.to, &work).await {
        Ok(target) => target,
        Err(error) => return Err(StageFailure::Failed(error.to_string())),
    };
    let source = source(ctx, spec, &target, &work).await?;
    if let Err(error) = gantry_git::copy_from(&work, &source, &spec.files).await {
        return Err(StageFailure::Failed(format!("gitPromote: {error}")));
    }
    let message = match &spec.message {
        Some(message) => message.clone(),
        None => {
            let what = if source == spec.from {
                short(&source).to_owned()
            } else {
                format!("{} of {}", short(&source), spec.from)
            };
            default_message(ctx, &format!("Promote {what} to {}", spec.to)).await
        }
    };
    let mut outcome = finish(ctx, &target, &spec.to, &work, &message).await;
    if let Ok(outputs) = &mut outcome {
        outputs.insert("source".into(), json!(source));
    }
    outcome
}

/// The commit to promote: `from` itself unless it is a branch of the repository; for a
/// branch, the commit of it this execution knows (see the module's comment).
async fn source(
    ctx: &StageContext,
    spec: &GitPromoteStage,
    target: &Target,
    work: &std::path::Path,
) -> Result<String, StageFailure> {
    let from = spec.from.as_str();
    let Some(tip) = gantry_git::remote_branch(work, from).await else {
        return Ok(from.to_owned());
    };
    let (commit, why) = if let Some((commit, stage)) = committed_here(ctx, target, from).await {
        (
            commit,
            format!("the commit stage {stage:?} of this execution pushed"),
        )
    } else if let Some(commit) = triggering_commit(ctx, target, from).await {
        (commit, "the push that triggered this execution".to_owned())
    } else {
        (tip.clone(), format!("the tip of {from}"))
    };
    if !gantry_git::contains_commit(work, &commit).await {
        return Err(StageFailure::Failed(format!(
            "gitPromote: {} ({why}) is no longer in {} (was {from} force-pushed?)",
            short(&commit),
            target.name()
        )));
    }
    let newer = if commit == tip {
        String::new()
    } else {
        format!("; {from} has moved on to {}", short(&tip))
    };
    ctx.log
        .system(&format!(
            "promoting {} of {from} to {}: {why}{newer}",
            short(&commit),
            spec.to
        ))
        .await;
    Ok(commit)
}

/// The commit a succeeded `gitCommit` stage of this execution pushed to `branch` of the same
/// repository (the latest, if several did), and that stage's id.
async fn committed_here(
    ctx: &StageContext,
    target: &Target,
    branch: &str,
) -> Option<(String, String)> {
    ctx.other_stages()
        .await
        .into_iter()
        .filter(|(record, kind)| {
            record.status == Status::Succeeded
                && matches!(kind, StageKind::GitCommit(_))
                && record.outputs.get("repository").and_then(Value::as_str) == Some(target.name())
                && record.outputs.get("branch").and_then(Value::as_str) == Some(branch)
        })
        .filter_map(|(record, _)| {
            let commit = record.outputs.get("commit").and_then(Value::as_str)?;
            (!commit.is_empty())
                .then(|| (record.ended_at, commit.to_owned(), record.stage_id.clone()))
        })
        .max_by_key(|(ended, _, _)| *ended)
        .map(|(_, commit, stage)| (commit, stage))
}

/// The trigger's commit, when the trigger was a push (or a run by hand of a ref) of `branch`
/// of the same repository. A re-run keeps its earlier execution's trigger, and so its commit.
async fn triggering_commit(ctx: &StageContext, target: &Target, branch: &str) -> Option<String> {
    let push = ctx.trigger_push().await?;
    if push.branch.as_deref() != Some(branch) {
        return None;
    }
    let same = match (target.hosted(), push.url.as_deref()) {
        (Some(name), None) => push.repository == name,
        (None, Some(url)) => same_repository(url, target.name()),
        _ => false,
    };
    if !same {
        return None;
    }
    Some(push.commit).filter(|c| !c.is_empty())
}

/// `https://Host/org/app.git/` and `https://host/org/app` name one repository.
fn same_repository(a: &str, b: &str) -> bool {
    fn normal(url: &str) -> String {
        let url = url.trim().trim_end_matches('/');
        url.strip_suffix(".git").unwrap_or(url).to_lowercase()
    }
    normal(a) == normal(b)
}
