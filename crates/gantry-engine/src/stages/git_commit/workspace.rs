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

/// One `fromWorkspace` entry: `source` (relative to the workspace) to `dest` (a path in the
/// clone). A file is copied; a directory replaces `dest` whole, so that files the step no
/// longer renders leave the repository too. Returns how many files were copied.
pub(super) async fn copy(
    workspace: PathBuf,
    source: String,
    dest: PathBuf,
    repository_path: String,
) -> Result<usize, String> {
    tokio::task::spawn_blocking(move || copy_blocking(&workspace, &source, &dest))
        .await
        .map_err(|e| format!("gitCommit: copying {repository_path:?} stopped: {e}"))?
        .map_err(|error| format!("gitCommit: fromWorkspace {repository_path:?}: {error}"))
}

fn copy_blocking(workspace: &Path, source: &str, dest: &Path) -> Result<usize, String> {
    let beneath = Beneath::workspace(workspace).map_err(|e| e.to_string())?;
    let source = source.trim_start_matches("./");
    match beneath.open_dir(source) {
        Ok(_) => {
            remove(dest).map_err(|e| format!("cannot replace {}: {e}", dest.display()))?;
            copy_dir(&beneath, source, dest)
        }
        Err(WorkspaceFileError::NotDirectory { .. }) => {
            copy_file(&beneath, source, dest)?;
            Ok(1)
        }
        Err(error) => Err(error.to_string()),
    }
}

/// Copies the regular files under `dir` (recursively) to `dest`. Links to files inside the
/// workspace are copied as the files they name; links to directories are not followed, so a
/// link loop cannot make the copy endless.
fn copy_dir(beneath: &Beneath, dir: &str, dest: &Path) -> Result<usize, String> {
    fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let mut copied = 0;
    for entry in beneath.walk(dir).map_err(|e| e.to_string())? {
        let shown = Path::new(dir).join(&entry.relative);
        let shown = shown.to_string_lossy();
        let shown = shown.trim_start_matches("./");
        if entry.relative.components().any(|c| c.as_os_str() == ".git") {
            return Err(format!("{shown}: a .git directory cannot be committed"));
        }
        let target = dest.join(&entry.relative);
        match entry.kind {
            EntryKind::Dir { .. } => fs::create_dir_all(&target)
                .map_err(|e| format!("cannot create {}: {e}", target.display()))?,
            EntryKind::Symlink(_) if beneath.open_dir(shown).is_ok() => {
                return Err(WorkspaceFileError::DirectoryLink {
                    path: shown.to_owned(),
                }
                .to_string());
            }
            EntryKind::Symlink(_) | EntryKind::File { .. } => {
                copy_file(beneath, shown, &target)?;
                copied += 1;
            }
        }
    }
    Ok(copied)
}

fn copy_file(beneath: &Beneath, shown: &str, dest: &Path) -> Result<(), String> {
    let mut file = beneath.open_file(shown).map_err(|e| e.to_string())?;
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    // A link already at the destination (committed to the repository) is replaced, never
    // written through.
    remove(dest).map_err(|e| format!("cannot replace {}: {e}", dest.display()))?;
    let mut out =
        File::create(dest).map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
    io::copy(&mut file, &mut out).map_err(|e| format!("cannot copy {shown}: {e}"))?;
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
