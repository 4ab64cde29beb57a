//! Everything `gantry serve` writes is its own user's alone: a 0077 umask
//! for what it creates from now on, and at start the modes of an existing
//! data directory tightened (a data directory written by an older version
//! held `gantry.db` at 0644).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Files and directories the server creates get no right for group and
/// others.
pub fn set_umask() {
    // SAFETY: umask cannot fail and touches no memory.
    unsafe {
        libc::umask(0o077);
    }
}

/// Removes every right of group and others beneath `data_dir`, and gives
/// `data_dir` itself `traverse` (0711 when a step user must reach its
/// workspace in it, else 0700). Returns how many modes changed. Directories
/// the step user owns are the steps' own and are left as they are.
pub fn tighten(data_dir: &Path, step_uid: Option<u32>, traverse: bool) -> std::io::Result<usize> {
    let mode = if traverse { 0o711 } else { 0o700 };
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(mode))?;
    let mut changed = 0;
    for entry in std::fs::read_dir(data_dir)? {
        changed += tighten_tree(&entry?.path(), step_uid, traverse)?;
    }
    Ok(changed)
}

fn tighten_tree(path: &Path, step_uid: Option<u32>, traverse: bool) -> std::io::Result<usize> {
    use std::os::unix::fs::MetadataExt;
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        // Something removed it meanwhile (an execution's directory).
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    if metadata.file_type().is_symlink() || step_uid == Some(metadata.uid()) {
        return Ok(0);
    }
    let mut changed = 0;
    let mode = metadata.permissions().mode() & 0o7777;
    // The directories above a step's workspace and run directory stay
    // traversable while a step user needs them.
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let parent = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let keep_traverse = traverse
        && metadata.is_dir()
        && (matches!(name, "workspaces" | "runs") || parent == "runs");
    let wanted = if keep_traverse {
        (mode & !0o077) | 0o011
    } else {
        mode & !0o077
    };
    if wanted != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted))?;
        changed += 1;
    }
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path)? {
            changed += tighten_tree(&entry?.path(), step_uid, traverse)?;
        }
    }
    Ok(changed)
}
