//! The unprivileged user confined processes run as: found by name, or
//! created (a system user without a home or a login shell) when it is the
//! default one and the server runs as root.

use std::ffi::{CStr, CString};
use std::io;
use std::path::Path;
use std::process::Command;

use crate::SandboxError;

/// The user created for steps when none is configured.
pub const DEFAULT_USER: &str = "gantry-steps";

/// A user and its primary group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// The identity named `name`, created first when it is [`DEFAULT_USER`]
/// and does not exist yet.
pub(crate) fn find_or_create(name: &str) -> Result<Identity, SandboxError> {
    if let Some(identity) = lookup(name)? {
        return Ok(identity);
    }
    if name != DEFAULT_USER {
        return Err(SandboxError::NoSuchUser(name.to_owned()));
    }
    let output = Command::new("useradd")
        .args(["--system", "--user-group", "--no-create-home"])
        .args(["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"])
        .arg(name)
        .output()
        .map_err(|e| SandboxError::CreateUser {
            name: name.to_owned(),
            message: e.to_string(),
        })?;
    // Another server on this machine may have created it at the same time.
    match lookup(name)? {
        Some(identity) => Ok(identity),
        None => Err(SandboxError::CreateUser {
            name: name.to_owned(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        }),
    }
}

fn lookup(name: &str) -> Result<Option<Identity>, SandboxError> {
    let c_name = CString::new(name).map_err(|_| SandboxError::NoSuchUser(name.to_owned()))?;
    let mut entry = std::mem::MaybeUninit::<libc::passwd>::uninit();
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the sizes given; getpwnam_r
    // writes the entry into `entry` and its strings into `buffer`.
    let result = unsafe {
        libc::getpwnam_r(
            c_name.as_ptr(),
            entry.as_mut_ptr(),
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if result != 0 {
        return Err(SandboxError::Lookup {
            name: name.to_owned(),
            source: io::Error::from_raw_os_error(result),
        });
    }
    if found.is_null() {
        return Ok(None);
    }
    // SAFETY: getpwnam_r found the user, so `entry` is filled in.
    let entry = unsafe { entry.assume_init() };
    // SAFETY: pw_name points into `buffer`, a NUL-terminated string.
    let name = unsafe { CStr::from_ptr(entry.pw_name) }
        .to_string_lossy()
        .into_owned();
    Ok(Some(Identity {
        name,
        uid: entry.pw_uid,
        gid: entry.pw_gid,
    }))
}

/// Gives `path` and everything beneath it to `identity`, without following
/// symbolic links, and takes away any right of group and others.
pub(crate) fn hand_over(path: &Path, identity: &Identity) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::symlink_metadata(path)?;
    std::os::unix::fs::lchown(path, Some(identity.uid), Some(identity.gid))?;
    if metadata.file_type().is_symlink() {
        return Ok(());
    }
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o1700))?;
    }
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path)? {
            hand_over(&entry?.path(), identity)?;
        }
    }
    Ok(())
}
