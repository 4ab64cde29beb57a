//! Landlock through its three system calls: a ruleset built in the server
//! (opening paths, adding rules), enforced by the child between fork and
//! exec, where only async-signal-safe calls are allowed.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: u32 = 1;

const EXECUTE: u64 = 1 << 0;
const WRITE_FILE: u64 = 1 << 1;
const READ_FILE: u64 = 1 << 2;
const READ_DIR: u64 = 1 << 3;
/// Removing, making and linking entries (ABI 1: bits 4 to 12).
const CHANGE_DIR: u64 = 0b1_1111_1111 << 4;
const REFER: u64 = 1 << 13;
const TRUNCATE: u64 = 1 << 14;
const IOCTL_DEV: u64 = 1 << 15;
/// Rights that make sense on a file (a rule on a file may hold only these).
const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;
/// Landlock ABI 6: signals only to processes in the same domain or below.
const SCOPE_SIGNAL: u64 = 1 << 1;

/// What a rule grants beneath a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grant {
    /// Read files, list directories, execute programs.
    Read,
    /// Everything Landlock knows of.
    Full,
}

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The highest Landlock ABI the kernel offers, `None` without Landlock.
pub(crate) fn abi() -> Option<u32> {
    // SAFETY: a null attribute with size 0 and the version flag only asks
    // the kernel for its ABI version.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    (version >= 1).then_some(version as u32)
}

/// Every filesystem right the kernel's ABI knows.
fn handled(abi: u32) -> u64 {
    let mut rights = EXECUTE | WRITE_FILE | READ_FILE | READ_DIR | CHANGE_DIR;
    if abi >= 2 {
        rights |= REFER;
    }
    if abi >= 3 {
        rights |= TRUNCATE;
    }
    if abi >= 5 {
        rights |= IOCTL_DEV;
    }
    rights
}

/// A ruleset being built; [`Ruleset::into_fd`] gives what the child enforces.
pub(crate) struct Ruleset {
    fd: OwnedFd,
    handled: u64,
}

impl Ruleset {
    pub(crate) fn new(abi: u32) -> io::Result<Ruleset> {
        let handled = handled(abi);
        let attr = RulesetAttr {
            handled_access_fs: handled,
            handled_access_net: 0,
            scoped: if abi >= 6 { SCOPE_SIGNAL } else { 0 },
        };
        // Older kernels read only the fields they know; the others are zero
        // below ABI 6, which they accept.
        let size = if abi >= 6 {
            std::mem::size_of::<RulesetAttr>()
        } else {
            std::mem::size_of::<u64>()
        };
        // SAFETY: `attr` is a valid ruleset attribute of at least `size` bytes.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                size,
                0u32,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel returned a new file descriptor that we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        Ok(Ruleset { fd, handled })
    }

    /// Grants `grant` beneath `path`; a path that does not exist is skipped.
    pub(crate) fn allow(&mut self, path: &Path, grant: Grant) -> io::Result<()> {
        let Some(target) = open_path(path)? else {
            return Ok(());
        };
        let mut access = match grant {
            Grant::Read => READ_FILE | READ_DIR | EXECUTE,
            Grant::Full => self.handled,
        } & self.handled;
        if !target.1 {
            access &= FILE_RIGHTS;
        }
        let attr = PathBeneathAttr {
            allowed_access: access,
            parent_fd: target.0.as_raw_fd(),
        };
        // SAFETY: `attr` is a valid path-beneath attribute whose fd is open.
        let result = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                self.fd.as_raw_fd(),
                RULE_PATH_BENEATH,
                &attr as *const PathBeneathAttr,
                0u32,
            )
        };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Grants `grant` on everything beneath `root` except `excluded` (and
    /// what is beneath them). Landlock only adds rights, so the parts of
    /// `root` around an excluded path get one rule each: every entry of
    /// every directory on the way down to it, except the one leading on.
    /// Symbolic links get no rule: what they point to is checked where it is.
    pub(crate) fn allow_except(
        &mut self,
        root: &Path,
        excluded: &[PathBuf],
        grant: Grant,
    ) -> io::Result<()> {
        if excluded.iter().any(|e| root.starts_with(e)) {
            return Ok(());
        }
        if !excluded.iter().any(|e| e.starts_with(root)) {
            return self.allow(root, grant);
        }
        let entries = match std::fs::read_dir(root) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            // A directory this process may cross but not list: what is in it
            // cannot be named, so nothing beneath it is granted (but what the
            // caller grants by its full path).
            Err(error) if error.kind() == io::ErrorKind::PermissionDenied => return Ok(()),
            Err(error) => return Err(error),
        };
        for entry in entries {
            let entry = entry?;
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_symlink() {
                continue;
            }
            self.allow_except(&entry.path(), excluded, grant)?;
        }
        Ok(())
    }

    pub(crate) fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

/// Opens `path` for a rule (`O_PATH`, not following a final symbolic link);
/// `None` when it does not exist. The flag says whether it is a directory.
fn open_path(path: &Path) -> io::Result<Option<(OwnedFd, bool)>> {
    let name = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    // SAFETY: `name` is a valid C string; the flags open no file contents.
    let fd = unsafe {
        libc::open(
            name.as_ptr(),
            libc::O_PATH | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    if fd < 0 {
        let error = io::Error::last_os_error();
        return match error.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ELOOP) => Ok(None),
            _ => Err(error),
        };
    }
    // SAFETY: `open` returned a new descriptor that we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fd` is open and `stat` has room for the answer.
    if unsafe { libc::fstat(fd.as_raw_fd(), stat.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat succeeded, so it filled `stat`.
    let mode = unsafe { stat.assume_init() }.st_mode;
    if mode & libc::S_IFMT == libc::S_IFLNK {
        return Ok(None);
    }
    Ok(Some((fd, mode & libc::S_IFMT == libc::S_IFDIR)))
}

/// Enforces the ruleset on the calling process. Runs in the child between
/// fork and exec: system calls only, no allocation.
pub(crate) fn restrict_self(ruleset: RawFd) -> io::Result<()> {
    // SAFETY: `ruleset` is a Landlock ruleset descriptor inherited from the
    // parent; no_new_privs was set before, as the kernel requires.
    let result = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
