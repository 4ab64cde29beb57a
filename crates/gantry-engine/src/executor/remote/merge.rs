//! Bringing a step's workspace home when others brought theirs meanwhile.
//!
//! A runner sends back the whole tree its step left, taken from the
//! snapshot the step started from (its base). Steps of parallel stages
//! start from the same base and come back in any order: replacing the
//! server's workspace by each tree in turn would keep only the last one's
//! files. So the tree that comes back is merged, three ways, with what the
//! server's workspace holds now: every path the step left as its base had
//! it takes the workspace's version (another step's change, kept); every
//! path the step changed takes the step's (the later of two changes to one
//! path wins, as in a shared directory).
//!
//! The merge is done in the private directory the snapshot was unpacked
//! into, before it is swapped in: the workspace (which steps of the server
//! may write) is only read, beneath itself, never written through.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::snapshot::{SnapshotError, io_at};
use crate::workspace_files::{Beneath, EntryKind};

/// What one path holds, to tell whether two trees differ there. Contents
/// and modes count; modification times and owners do not.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Fingerprint {
    Dir { mode: u32 },
    File { mode: u32, sha256: [u8; 32] },
    Symlink(PathBuf),
}

type Tree = BTreeMap<PathBuf, Fingerprint>;

/// Makes `incoming` (the step's tree, unpacked from its snapshot `mine`)
/// hold what the workspace changed since the snapshot `base` wherever the
/// step did not change it. Whether it kept anything.
pub(crate) fn keep_others_changes(
    base: &Path,
    mine: &Path,
    incoming: &Path,
    workspace: &Path,
) -> Result<bool, SnapshotError> {
    if !workspace.is_dir() {
        return Ok(false);
    }
    let beneath = Beneath::workspace(workspace)?;
    let base = tree_of_snapshot(base)?;
    let theirs = tree_of_workspace(&beneath)?;
    if theirs == base {
        // Nobody brought anything home since the step started.
        return Ok(false);
    }
    let mut kept = false;
    let mine = tree_of_snapshot(mine)?;
    let paths: std::collections::BTreeSet<&PathBuf> = base.keys().chain(theirs.keys()).collect();
    for path in paths {
        let (before, now) = (base.get(path), theirs.get(path));
        if before == now || mine.get(path) != before {
            continue;
        }
        // Removing or replacing a directory would take what the step wrote
        // beneath it: the step's changes win.
        let was_dir = matches!(before, Some(Fingerprint::Dir { .. }));
        let stays_dir = matches!(now, Some(Fingerprint::Dir { .. }));
        if was_dir && !stays_dir && changed_beneath(&mine, &base, path) {
            continue;
        }
        let Some(target) = place_in(incoming, path, now.is_some())? else {
            continue;
        };
        kept = true;
        let io = io_at(&target);
        match now {
            None => remove(&target)?,
            Some(Fingerprint::Dir { mode }) => {
                let is_dir = std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir());
                if !is_dir {
                    remove(&target)?;
                    std::fs::create_dir(&target).map_err(&io)?;
                }
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode & 0o7777))
                    .map_err(&io)?;
            }
            Some(Fingerprint::Symlink(link)) => {
                remove(&target)?;
                std::os::unix::fs::symlink(link, &target).map_err(&io)?
            }
            // Replaces what is at the target (a link itself, not its target).
            Some(Fingerprint::File { .. }) => {
                beneath.copy_out(&path.to_string_lossy(), &target)?;
            }
        }
    }
    Ok(kept)
}

/// Whether the step changed anything strictly beneath the directory `path`.
fn changed_beneath(mine: &Tree, base: &Tree, path: &Path) -> bool {
    let beneath = |tree: &Tree| {
        tree.range(path.to_path_buf()..)
            .skip_while(|(p, _)| p.as_path() == path)
            .take_while(|(p, _)| p.starts_with(path))
            .map(|(p, _)| p.clone())
            .collect::<Vec<_>>()
    };
    beneath(mine)
        .into_iter()
        .chain(beneath(base))
        .any(|p| mine.get(&p) != base.get(&p))
}

/// Where `path` is in `root`: `None` when one of its parents is not a
/// directory (links included, which are never followed), or is missing and
/// `make_parents` is false (nothing there to remove).
fn place_in(
    root: &Path,
    path: &Path,
    make_parents: bool,
) -> Result<Option<PathBuf>, SnapshotError> {
    let mut at = root.to_path_buf();
    let parents: Vec<Component> = path.components().collect();
    let Some((_, parents)) = parents.split_last() else {
        return Ok(None);
    };
    for part in parents {
        let Component::Normal(name) = part else {
            return Ok(None);
        };
        at.push(name);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Ok(None),
            Err(error) if error.kind() == io::ErrorKind::NotFound && make_parents => {
                std::fs::create_dir(&at).map_err(io_at(&at))?
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_at(&at)(error)),
        }
    }
    Ok(Some(root.join(path)))
}

/// Removes whatever is at `path` (a link itself, never what it points to).
fn remove(path: &Path) -> Result<(), SnapshotError> {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    };
    removed.map_err(io_at(path))
}

fn tree_of_snapshot(tar: &Path) -> Result<Tree, SnapshotError> {
    let file = File::open(tar).map_err(io_at(tar))?;
    let mut archive = tar::Archive::new(io::BufReader::new(file));
    let mut tree = Tree::new();
    for entry in archive.entries().map_err(io_at(tar))? {
        let mut entry = entry.map_err(io_at(tar))?;
        let path = normal(&entry.path().map_err(io_at(tar))?);
        if path.as_os_str().is_empty() {
            continue;
        }
        let mode = entry.header().mode().map_err(io_at(tar))?;
        let fingerprint = match entry.header().entry_type() {
            tar::EntryType::Directory => Fingerprint::Dir { mode },
            tar::EntryType::Symlink => Fingerprint::Symlink(
                entry
                    .link_name()
                    .map_err(io_at(tar))?
                    .unwrap_or_default()
                    .into_owned(),
            ),
            _ => Fingerprint::File {
                mode,
                sha256: digest(&mut entry).map_err(io_at(tar))?,
            },
        };
        tree.insert(path, fingerprint);
    }
    Ok(tree)
}

fn tree_of_workspace(beneath: &Beneath) -> Result<Tree, SnapshotError> {
    let mut tree = Tree::new();
    for entry in beneath.walk(".")? {
        let path = normal(&entry.relative);
        let fingerprint = match entry.kind {
            EntryKind::Dir { mode } => Fingerprint::Dir { mode },
            EntryKind::Symlink(link) => Fingerprint::Symlink(link),
            EntryKind::File { mode } => {
                let mut file = beneath.open_file(&path.to_string_lossy())?;
                Fingerprint::File {
                    mode,
                    sha256: digest(&mut file).map_err(io_at(&path))?,
                }
            }
        };
        tree.insert(path, fingerprint);
    }
    Ok(tree)
}

/// `./a/b/` as `a/b`.
fn normal(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

fn digest(reader: &mut impl Read) -> io::Result<[u8; 32]> {
    let mut hash = Sha256::new();
    io::copy(reader, &mut hash)?;
    Ok(hash.finalize().into())
}
