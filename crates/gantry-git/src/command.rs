//! Running `git`. Every call gets a predictable environment: no user or system config that
//! could prompt for credentials, sign commits or rewrite URLs, and a fixed identity fallback.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use crate::remote::Remote;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run git: {0}")]
    Spawn(#[source] std::io::Error),
    /// `what` says what was being done; `stderr` is git's own answer.
    #[error("{what}: {stderr}")]
    Failed { what: String, stderr: String },
    #[error("{0}")]
    Invalid(String),
}

/// A `git` command with Gantry's environment.
pub(crate) fn git(dir: Option<&Path>) -> Command {
    let mut command = Command::new("git");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("GIT_AUTHOR_NAME", "Gantry")
        .env("GIT_AUTHOR_EMAIL", "gantry@localhost")
        .env("GIT_COMMITTER_NAME", "Gantry")
        .env("GIT_COMMITTER_EMAIL", "gantry@localhost")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Runs `git ARGS` in `dir` against `remote`, answering with its credentials if it asks.
pub(crate) async fn run_remote<I, S>(
    dir: Option<&Path>,
    remote: &Remote,
    args: I,
    what: &str,
) -> Result<String, GitError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = git(dir);
    if let Some(credentials) = &remote.credentials {
        credentials.apply(&mut command);
    }
    command.args(args);
    output(command, what).await
}

/// Runs `git ARGS` in `dir`; its standard output on success.
pub(crate) async fn run<I, S>(dir: Option<&Path>, args: I, what: &str) -> Result<String, GitError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = git(dir);
    command.args(args);
    output(command, what).await
}

pub(crate) async fn output(mut command: Command, what: &str) -> Result<String, GitError> {
    let out = command.output().await.map_err(GitError::Spawn)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.trim();
        Err(GitError::Failed {
            what: what.to_owned(),
            stderr: if stderr.is_empty() {
                format!("git exited with {}", out.status)
            } else {
                stderr.lines().collect::<Vec<_>>().join("; ")
            },
        })
    }
}
