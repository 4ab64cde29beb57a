//! A build's context and file, opened beneath the workspace when the step
//! starts (an earlier step may have made them) and handed to the engine as
//! descriptors.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use super::policy::{Allowed, PathKind};
use crate::workspace_files::{Beneath, WorkspaceFileError};

/// Why a path argument of a builder step cannot be handed to the engine.
#[derive(Debug, thiserror::Error)]
#[error("argument {argument:?}: {source}")]
pub(crate) struct PathError {
    argument: String,
    source: WorkspaceFileError,
}

/// The command with each path argument replaced by `/dev/fd/N`, and the
/// open descriptors, which the engine's process must inherit
/// ([`inherit`]). `dir` is the step's directory in the workspace.
pub(crate) fn open_paths(
    allowed: &Allowed,
    workspace: &Path,
    dir: Option<&str>,
) -> Result<(Vec<String>, Vec<OwnedFd>), PathError> {
    let mut argv = allowed.argv.clone();
    let mut fds = Vec::new();
    if allowed.paths.is_empty() {
        return Ok((argv, fds));
    }
    let workspace = Beneath::workspace(workspace).map_err(|source| PathError {
        argument: ".".into(),
        source,
    })?;
    for path in &allowed.paths {
        let argument = argv[path.index].clone();
        let relative = match dir {
            Some(dir) if !Path::new(&argument).is_absolute() => {
                format!("{}/{argument}", dir.trim_end_matches('/'))
            }
            _ => argument.clone(),
        };
        let opened = match path.kind {
            PathKind::Directory => workspace.open_dir(&relative),
            PathKind::File => workspace.open_file(&relative).map(OwnedFd::from),
        };
        let fd = opened.map_err(|source| PathError { argument, source })?;
        argv[path.index] = format!("/dev/fd/{}", fd.as_raw_fd());
        fds.push(fd);
    }
    Ok((argv, fds))
}

/// Lets the process `command` starts inherit `fds` under their own numbers.
pub(crate) fn inherit(command: &mut tokio::process::Command, fds: &[OwnedFd]) {
    let raw: Vec<i32> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    // SAFETY: fcntl is an async-signal-safe system call, and `raw` is only
    // read.
    unsafe {
        command.pre_exec(move || {
            for &fd in &raw {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}
