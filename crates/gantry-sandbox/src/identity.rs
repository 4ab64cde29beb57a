//! The unprivileged users confined processes run as: found by name, or
//! created (a system user without a login shell) when it is the default one
//! and the server runs as root. Two kinds: the step user (no home), which
//! host steps of the server's own executor run as, and the runner user,
//! which `gantry serve`'s local runner runs as: it has a home, where its
//! rootless podman keeps its images, and a range of subordinate ids for
//! its containers' user namespaces.

use std::ffi::{CStr, CString};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::SandboxError;

/// The user created for steps when none is configured.
pub const DEFAULT_USER: &str = "gantry-steps";

/// The user created for the local runner when none is configured.
pub const DEFAULT_RUNNER_USER: &str = "gantry-runner";

/// The home of the runner user Gantry creates.
const RUNNER_HOME: &str = "/var/lib/gantry-runner";

/// How many subordinate ids the runner user gets (one user namespace's
/// worth, as `useradd` gives ordinary users).
const SUBORDINATE_IDS: u64 = 65536;

/// A user and its primary group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Its home directory as the user database has it.
    pub home: PathBuf,
}

impl Identity {
    /// The user the local runner runs as: `name`, created first (with its
    /// home and subordinate ids) when it is [`DEFAULT_RUNNER_USER`] and does
    /// not exist yet. A default user found without subordinate ids gets
    /// them (its containers need them).
    pub fn runner(name: &str) -> Result<Identity, SandboxError> {
        let identity = find_or_create(name, Kind::Runner)?;
        if name == DEFAULT_RUNNER_USER {
            for file in ["/etc/subuid", "/etc/subgid"] {
                ensure_subordinate_ids(name, Path::new(file))?;
            }
        }
        Ok(identity)
    }
}

/// What a user is created for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Steps,
    Runner,
}

/// The identity named `name`, created first when it is the default user of
/// its kind and does not exist yet.
pub(crate) fn find_or_create(name: &str, kind: Kind) -> Result<Identity, SandboxError> {
    if let Some(identity) = lookup(name)? {
        return Ok(identity);
    }
    let default = match kind {
        Kind::Steps => DEFAULT_USER,
        Kind::Runner => DEFAULT_RUNNER_USER,
    };
    if name != default {
        return Err(SandboxError::NoSuchUser(name.to_owned()));
    }
    let mut useradd = Command::new("useradd");
    useradd.args(["--system", "--user-group", "--shell", "/usr/sbin/nologin"]);
    match kind {
        Kind::Steps => useradd.args(["--no-create-home", "--home-dir", "/nonexistent"]),
        Kind::Runner => useradd.args(["--create-home", "--home-dir", RUNNER_HOME]),
    };
    let output = useradd
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
    // SAFETY: pw_name and pw_dir point into `buffer`, NUL-terminated strings.
    let (name, home) = unsafe {
        (
            CStr::from_ptr(entry.pw_name).to_string_lossy().into_owned(),
            CStr::from_ptr(entry.pw_dir).to_string_lossy().into_owned(),
        )
    };
    Ok(Some(Identity {
        name,
        uid: entry.pw_uid,
        gid: entry.pw_gid,
        home: PathBuf::from(home),
    }))
}

/// Gives `name` a range of subordinate ids in `file` (`/etc/subuid` or
/// `/etc/subgid`) unless it has one: the first free one above every range
/// there, at least 100000 (where `useradd` starts ordinary users').
fn ensure_subordinate_ids(name: &str, file: &Path) -> Result<(), SandboxError> {
    let fail = |message: String| SandboxError::CreateUser {
        name: name.to_owned(),
        message,
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(fail(format!("cannot read {}: {error}", file.display()))),
    };
    if subordinate_range(&text, name).is_some() {
        return Ok(());
    }
    let start = first_free_subordinate_id(&text);
    let range = format!("{start}-{}", start + SUBORDINATE_IDS - 1);
    let option = if file.ends_with("subuid") {
        "--add-subuids"
    } else {
        "--add-subgids"
    };
    let output = Command::new("usermod")
        .args([option, &range, name])
        .output()
        .map_err(|error| fail(format!("usermod: {error}")))?;
    // Another server starting at the same time may have given it some.
    let now = std::fs::read_to_string(file).unwrap_or_default();
    if !output.status.success() && subordinate_range(&now, name).is_none() {
        return Err(fail(format!(
            "cannot give it subordinate ids {range} in {}: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

/// `name`'s range in a subordinate id file's text, `(start, count)`.
pub(crate) fn subordinate_range(text: &str, name: &str) -> Option<(u64, u64)> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}

/// The first id above every range of a subordinate id file's text.
pub(crate) fn first_free_subordinate_id(text: &str) -> u64 {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':').skip(1);
            let start: u64 = fields.next()?.parse().ok()?;
            let count: u64 = fields.next()?.parse().ok()?;
            Some(start + count)
        })
        .fold(100_000, u64::max)
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
