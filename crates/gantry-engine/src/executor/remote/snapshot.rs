//! Workspace snapshots: how the workspace follows a stage's steps to their
//! runners and back. A snapshot is an uncompressed tar of the workspace,
//! its entries in path order with their modes and modification times and
//! nothing of their owners, so that the same tree gives the same bytes and
//! the same SHA-256, which names it: a runner whose copy already has that
//! name fetches nothing.
//!
//! Packing reads the tree through `workspace_files::Beneath` (by
//! descriptor, links kept as links, never followed). Unpacking writes into
//! a directory this process has just created, never into one a step can
//! reach, and then swaps it in place of the old tree with two renames.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::workspace_files::{Beneath, EntryKind, WorkspaceFileError};

#[derive(Debug, thiserror::Error)]
pub(crate) enum SnapshotError {
    #[error(transparent)]
    Read(#[from] WorkspaceFileError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("the snapshot task failed: {0}")]
    Task(String),
}

pub(super) fn io_at(path: &Path) -> impl Fn(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes a snapshot of `workspace` to `out`; its SHA-256.
pub(crate) fn pack(workspace: &Path, out: &Path) -> Result<String, SnapshotError> {
    let beneath = Beneath::workspace(workspace)?;
    let file = File::create(out).map_err(io_at(out))?;
    let mut builder = tar::Builder::new(Hashing {
        inner: io::BufWriter::new(file),
        hash: Sha256::new(),
    });
    for entry in beneath.walk(".")? {
        let name = entry.relative.clone();
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        match &entry.kind {
            EntryKind::Dir { mode } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_size(0);
                header.set_mtime(0);
                builder
                    .append_data(&mut header, &name, io::empty())
                    .map_err(io_at(out))?;
            }
            EntryKind::File { mode } => {
                let relative = name.to_string_lossy();
                let file = beneath.open_file(&relative)?;
                let meta = file.metadata().map_err(io_at(&name))?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(meta.len());
                header.set_mtime(
                    meta.modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_secs()),
                );
                builder
                    .append_data(&mut header, &name, io::Read::take(file, meta.len()))
                    .map_err(io_at(out))?;
            }
            EntryKind::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                header.set_mtime(0);
                builder
                    .append_link(&mut header, &name, target)
                    .map_err(io_at(out))?;
            }
        }
    }
    let mut hashing = builder.into_inner().map_err(io_at(out))?;
    hashing.flush().map_err(io_at(out))?;
    Ok(hex::encode(hashing.hash.finalize()))
}

/// Replaces the tree at `workspace` by the snapshot in `tar` (a runner's
/// copy, which only its own steps change).
pub(crate) fn unpack(tar: &Path, workspace: &Path) -> Result<(), SnapshotError> {
    let incoming = unpack_beside(tar, workspace)?;
    swap_in(&incoming, workspace)
}

/// Makes the snapshot a step sent back (`tar`, taken from the snapshot
/// `base`) the server's workspace, keeping what other steps brought home
/// since `base` where this one changed nothing (`merge`). One at a time per
/// workspace ([`turn_of`]): parallel stages' steps come back at once. The
/// name of a new snapshot of the workspace when it kept anything (packed
/// beside `tar`); `None` when the workspace is `tar`'s tree.
pub(crate) fn bring_home(
    tar: &Path,
    base: Option<&Path>,
    workspace: &Path,
) -> Result<Option<String>, SnapshotError> {
    let mut turn = turn_of(workspace);
    let incoming = unpack_beside(tar, workspace)?;
    let merged = (|| -> Result<Option<String>, SnapshotError> {
        let Some(base) = base else {
            return Ok(None);
        };
        // Nothing came home since the step's base was taken: no merge.
        if turn.holds(workspace) == Some(snapshot_name(base)) {
            return Ok(None);
        }
        if !super::merge::keep_others_changes(base, tar, &incoming, workspace)? {
            return Ok(None);
        }
        let dir = tar.parent().unwrap_or(Path::new("/"));
        pack_named(&incoming, dir).map(Some)
    })();
    if merged.is_err() {
        let _ = std::fs::remove_dir_all(&incoming);
    }
    let merged = merged?;
    swap_in(&incoming, workspace)?;
    turn.record(
        workspace,
        merged.clone().unwrap_or_else(|| snapshot_name(tar)),
    );
    Ok(merged)
}

/// Packs the server's `workspace` into `dir` as a snapshot named by its
/// SHA-256, in its turn (so that no step comes home while it is read);
/// the name.
pub(crate) fn pack_workspace(workspace: &Path, dir: &Path) -> Result<String, SnapshotError> {
    let mut turn = turn_of(workspace);
    let sha256 = pack_named(workspace, dir)?;
    turn.record(workspace, sha256.clone());
    Ok(sha256)
}

/// Packs `tree` into `dir/SHA256.tar`; the name.
fn pack_named(tree: &Path, dir: &Path) -> Result<String, SnapshotError> {
    std::fs::create_dir_all(dir).map_err(io_at(dir))?;
    let temporary = dir.join(format!(".pack-{}", uuid::Uuid::now_v7()));
    let sha256 = pack(tree, &temporary)?;
    let named = dir.join(format!("{sha256}.tar"));
    std::fs::rename(&temporary, &named).map_err(io_at(&named))?;
    Ok(sha256)
}

/// A workspace's turn, and the snapshot it was last known to hold (packed
/// or brought home): a step whose base that is comes home without a merge.
/// Steps on runners are the only writers of a server's workspace when it
/// has a local runner; a stage of the server's own steps
/// (`--local-runner off`) running beside a runner's is not seen here, and
/// the later to come home of the two then wins where both wrote.
struct Turn(Option<(PathBuf, String)>);

impl Turn {
    fn holds(&self, workspace: &Path) -> Option<String> {
        match &self.0 {
            Some((path, name)) if path == workspace => Some(name.clone()),
            _ => None,
        }
    }

    fn record(&mut self, workspace: &Path, name: String) {
        self.0 = Some((workspace.to_owned(), name));
    }
}

/// The turn of `workspace` to be packed or to take a snapshot home. In
/// this process: one server owns a data directory (its data-plane lock),
/// and steps come home through it alone. Workspaces share a fixed set of
/// turns, so that none is ever left behind (two sharing one only lose the
/// shortcut past the merge).
fn turn_of(workspace: &Path) -> std::sync::MutexGuard<'static, Turn> {
    use std::hash::{Hash, Hasher};
    static TURNS: [std::sync::Mutex<Turn>; 64] = [const { std::sync::Mutex::new(Turn(None)) }; 64];
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    workspace.hash(&mut hasher);
    let turn = &TURNS[(hasher.finish() % TURNS.len() as u64) as usize];
    turn.lock().unwrap_or_else(|e| e.into_inner())
}

fn name_of(workspace: &Path) -> String {
    workspace
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A snapshot's name from its file (`SHA256.tar`).
fn snapshot_name(tar: &Path) -> String {
    tar.file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Unpacks `tar` into a new directory beside `workspace`, which no step
/// can reach; its path.
fn unpack_beside(tar: &Path, workspace: &Path) -> Result<PathBuf, SnapshotError> {
    let parent = workspace.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(io_at(parent))?;
    let incoming = parent.join(format!(
        ".{}.incoming-{}",
        name_of(workspace),
        uuid::Uuid::now_v7()
    ));
    std::fs::create_dir(&incoming).map_err(io_at(&incoming))?;
    let unpacked = (|| {
        let file = File::open(tar).map_err(io_at(tar))?;
        let mut archive = tar::Archive::new(io::BufReader::new(file));
        archive.set_preserve_permissions(true);
        archive.set_preserve_mtime(true);
        archive.set_unpack_xattrs(false);
        // `unpack` refuses entries that would land outside `incoming`,
        // through `..` or through a link an earlier entry made.
        archive.unpack(&incoming).map_err(io_at(tar))
    })();
    if let Err(error) = unpacked {
        let _ = std::fs::remove_dir_all(&incoming);
        return Err(error);
    }
    Ok(incoming)
}

/// Puts `incoming` in place of `workspace` with two renames, and removes
/// the old tree.
fn swap_in(incoming: &Path, workspace: &Path) -> Result<(), SnapshotError> {
    let parent = workspace.parent().unwrap_or(Path::new("/"));
    let outgoing = parent.join(format!(
        ".{}.outgoing-{}",
        name_of(workspace),
        uuid::Uuid::now_v7()
    ));
    let had_one = match std::fs::rename(workspace, &outgoing) {
        Ok(()) => true,
        Err(error) if error.kind() == io::ErrorKind::NotFound => false,
        Err(error) => {
            let _ = std::fs::remove_dir_all(incoming);
            return Err(io_at(workspace)(error));
        }
    };
    std::fs::rename(incoming, workspace).map_err(io_at(workspace))?;
    if had_one {
        let _ = std::fs::remove_dir_all(&outgoing);
    }
    Ok(())
}

/// Runs `work` off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SnapshotError> + Send + 'static,
) -> Result<T, SnapshotError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SnapshotError::Task(e.to_string()))?
}

/// A writer that hashes what goes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.hash.update(&bytes[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
