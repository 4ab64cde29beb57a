//! An execution's workspace starts as a checkout of the commit that triggered it. Done once,
//! by the driver, before the first stage starts; an execution with no commit in its trigger
//! (a manual run, a cron) starts with an empty workspace as before.
//!
//! A trigger whose pipeline file (`config:`) could not be read at its commit records why in
//! `trigger.configError`; such an execution fails here, before any stage, with that reason.
//! The reason travels in the trigger, which is stored with the execution, so a restart
//! between creating the execution and failing it fails it all the same.

use gantry_git::Remote;
use gantry_store::{GitPush, Status, TriggerData};

use crate::engine::Engine;
use crate::secret_lookup::GitCredentialsError;
use crate::state::Execution;

/// Why an execution cannot start: its workspace cannot be made from its trigger.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkspaceError {
    /// The trigger's `config:` file could not be read at its commit; the reason as recorded.
    #[error("{0}")]
    Config(String),
    #[error("cannot check out the triggering commit: {0}")]
    Credentials(GitCredentialsError),
    #[error("cannot check out the triggering commit: {0}")]
    Repository(gantry_git::RepoError),
    #[error("cannot check out the triggering commit {commit}: {source}")]
    Checkout {
        commit: String,
        source: gantry_git::GitError,
    },
}

/// Checks out the trigger's commit into the workspace. `Err` is the reason the execution fails.
pub(crate) async fn prepare(engine: &Engine, execution: &Execution) -> Result<(), WorkspaceError> {
    let (stored, untouched) = {
        let state = execution.read().await;
        let untouched = state.stages.iter().all(|s| s.status == Status::Pending);
        (state.exec.trigger.clone(), untouched)
    };
    // A trigger of no known shape names no commit: the workspace starts empty.
    let push = match TriggerData::from_stored(&stored) {
        Ok(trigger) => trigger.git(),
        Err(error) => {
            tracing::warn!(execution = %execution.id, %error, "the workspace starts empty");
            None
        }
    };
    if let Some(error) = push.as_ref().and_then(|p| p.config_error.as_deref()) {
        return Err(WorkspaceError::Config(error.to_owned()));
    }
    // Once a stage has run, the workspace is its to change: a resumed execution keeps it.
    if !untouched {
        return Ok(());
    }
    let Some(push) = push else {
        return Ok(());
    };
    let Some((source, commit)) = source_of(engine, &push).await? else {
        return Ok(());
    };
    let dest = engine.data_dir().join("workspaces").join(&execution.id);
    let started = std::time::Instant::now();
    gantry_git::checkout(&source, &commit, &dest)
        .await
        .map_err(|source| WorkspaceError::Checkout {
            commit: commit.clone(),
            source,
        })?;
    tracing::debug!(execution = %execution.id, %commit, elapsed = ?started.elapsed(), "workspace checked out");
    Ok(())
}

/// Where to clone from and which commit, when the trigger names one: a hosted repository
/// by name (unless the push came from outside, with a `url`, and the secret-store name of its
/// `credentials`), else the `url`.
async fn source_of(
    engine: &Engine,
    push: &GitPush,
) -> Result<Option<(Remote, String)>, WorkspaceError> {
    let Some(commit) = present(Some(&push.commit)) else {
        return Ok(None);
    };
    if let Some(url) = present(push.url.as_deref()) {
        let credentials = match present(push.credentials.as_deref()) {
            Some(name) => Some(
                engine
                    .git_credentials(name)
                    .await
                    .map_err(WorkspaceError::Credentials)?,
            ),
            None => None,
        };
        let remote = Remote::new(url).with_credentials(credentials);
        return Ok(Some((remote, commit.to_owned())));
    }
    let Some(name) = present(Some(&push.repository)) else {
        return Ok(None);
    };
    let path = engine
        .git()
        .existing(name)
        .map_err(WorkspaceError::Repository)?;
    Ok(Some((
        Remote::new(path.to_string_lossy()),
        commit.to_owned(),
    )))
}

fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|s| !s.is_empty())
}
