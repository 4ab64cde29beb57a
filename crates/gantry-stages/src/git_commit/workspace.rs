//! `fromWorkspace` of `gitCommit`: files a step wrote in the execution's workspace (a
//! rendered manifest), copied into the clone before the commit.
//!
//! The files are read through `crate::workspace_files`, the server's one way of reading what
//! steps wrote: a link out of the workspace, a link to a directory, a FIFO or a device is
//! refused, so a step cannot make the server commit one of its own files.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::workspace_files::{Beneath, EntryKind, WorkspaceFileError};

/// Why a `fromWorkspace` entry was not copied; `repository_path` is the entry's key.
#[derive(Debug, thiserror::Error)]
pub(super) enum FromWorkspaceError {
    #[error("gitCommit: copying {repository_path:?} stopped: {source}")]
    Stopped {
        repository_path: String,
        source: tokio::task::JoinError,
    },
    #[error("gitCommit: fromWorkspace {repository_path:?}: {source}")]
    Copy {
        repository_path: String,
        source: CopyError,
    },
}

/// What stopped a copy out of the workspace.
#[derive(Debug, thiserror::Error)]
pub(super) enum CopyError {
    /// Refused or unreadable beneath the workspace (a link out, a FIFO, a missing file).
    #[error("{0}")]
    Workspace(#[from] WorkspaceFileError),
    #[error("{shown}: a .git directory cannot be committed")]
    GitDirectory { shown: String },
    #[error("cannot create {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot replace {}: {source}", path.display())]
    Replace { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot copy {shown}: {source}")]
    Read { shown: String, source: io::Error },
}

/// One `fromWorkspace` entry: `source` (relative to the workspace) to `dest` (a path in the
/// clone). A file is copied; a directory replaces `dest` whole, so that files the step no
/// longer renders leave the repository too. Returns how many files were copied.
pub(super) async fn copy(
    workspace: PathBuf,
    source: String,
    dest: PathBuf,
    repository_path: String,
) -> Result<usize, FromWorkspaceError> {
    match tokio::task::spawn_blocking(move || copy_blocking(&workspace, &source, &dest)).await {
        Ok(copied) => copied.map_err(|source| FromWorkspaceError::Copy {
            repository_path,
            source,
        }),
        Err(source) => Err(FromWorkspaceError::Stopped {
            repository_path,
            source,
        }),
    }
}

fn copy_blocking(workspace: &Path, source: &str, dest: &Path) -> Result<usize, CopyError> {
    let beneath = Beneath::workspace(workspace)?;
    let source = source.trim_start_matches("./");
    match beneath.open_dir(source) {
        Ok(_) => {
            remove(dest).map_err(|source| CopyError::Replace {
                path: dest.to_owned(),
                source,
            })?;
            copy_dir(&beneath, source, dest)
        }
        Err(WorkspaceFileError::NotDirectory { .. }) => {
            copy_file(&beneath, source, dest)?;
            Ok(1)
        }
        Err(error) => Err(error.into()),
    }
}

/// Copies the regular files under `dir` (recursively) to `dest`. Links to files inside the
/// workspace are copied as the files they name; links to directories are not followed, so a
/// link loop cannot make the copy endless.
fn copy_dir(beneath: &Beneath, dir: &str, dest: &Path) -> Result<usize, CopyError> {
    fs::create_dir_all(dest).map_err(|source| CopyError::Create {
        path: dest.to_owned(),
        source,
    })?;
    let mut copied = 0;
    for entry in beneath.walk(dir)? {
        let shown = Path::new(dir).join(&entry.relative);
        let shown = shown.to_string_lossy();
        let shown = shown.trim_start_matches("./");
        if entry.relative.components().any(|c| c.as_os_str() == ".git") {
            return Err(CopyError::GitDirectory {
                shown: shown.to_owned(),
            });
        }
        let target = dest.join(&entry.relative);
        match entry.kind {
            EntryKind::Dir { .. } => {
                fs::create_dir_all(&target).map_err(|source| CopyError::Create {
                    path: target.clone(),
                    source,
                })?
            }
            EntryKind::Symlink(_) if beneath.open_dir(shown).is_ok() => {
                return Err(WorkspaceFileError::DirectoryLink {
                    path: shown.to_owned(),
                }
                .into());
            }
            EntryKind::Symlink(_) | EntryKind::File { .. } => {
                copy_file(beneath, shown, &target)?;
                copied += 1;
            }
        }
    }
    Ok(copied)
}

fn copy_file(beneath: &Beneath, shown: &str, dest: &Path) -> Result<(), CopyError> {
    let mut file = beneath.open_file(shown)?;
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(|source| CopyError::Create {
            path: parent.to_owned(),
            source,
        })?;
    }
    // A link already at the destination (committed to the repository) is replaced, never
    // written through.
    remove(dest).map_err(|source| CopyError::Replace {
        path: dest.to_owned(),
        source,
    })?;
    let mut out = File::create(dest).map_err(|source| CopyError::Write {
        path: dest.to_owned(),
        source,
    })?;
    io::copy(&mut file, &mut out).map_err(|source| CopyError::Read {
        shown: shown.to_owned(),
        source,
    })?;
    Ok(())
}

/// Removes a file, link or directory tree at `path` (links are removed, not followed).
fn remove(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}
