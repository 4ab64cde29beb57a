//! The one way the server reads files that steps wrote: beneath a directory steps can write
//! (an execution's workspace, a stage's run directory), never outside it.
//!
//! Steps write these directories with rights the server does not lend them, and everything
//! here runs with the server's own. So a symbolic link a step left behind (`out.deb ->
//! DATA_DIR/secrets.key`, a directory link to `/`) must not make the server read, package,
//! publish or echo one of its own files. Every name is resolved by the kernel with
//! `openat2(2)` and `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` from a descriptor of the
//! directory, so a link that leaves it fails the open itself, and a step still running in a
//! parallel stage cannot swap a checked path for a link between a check and a read. Where
//! `openat2` is missing (Linux before 5.6), the file is opened and its real path, read on
//! the open descriptor from `/proc/self/fd`, must lie inside the directory.
//!
//! Files are opened with `O_NONBLOCK`, so a FIFO cannot make the server hang, and only
//! regular files are read.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

/// Why a file beneath the directory could not be read; every message names the path as the
/// pipeline wrote it.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceFileError {
    #[error("{path} must be a relative path inside the {place}, without ..")]
    NotRelative { path: String, place: &'static str },
    #[error("{path} is not in the {place}: no step wrote it (or a link there leads nowhere)")]
    Missing { path: String, place: &'static str },
    #[error("{path} leads outside the {place}: links out of it are not followed")]
    Outside { path: String, place: &'static str },
    #[error("{path} is not a regular file")]
    NotFile { path: String },
    #[error("{path} is not a directory")]
    NotDirectory { path: String },
    #[error("{path} is a link to a directory; links to directories are not followed")]
    DirectoryLink { path: String },
    #[error("{path} is larger than {limit} bytes")]
    TooLarge { path: String, limit: u64 },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

/// What an entry of a walked tree is. Links are reported as links (with their target), not
/// followed: the caller decides whether to keep them as links or to open what they name
/// through [`Beneath::open_file`], which refuses a link out of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir { mode: u32 },
    File { mode: u32 },
    Symlink(PathBuf),
}

/// One entry of [`Beneath::walk`]: its path relative to the walked directory
/// (`usr/bin/tool`) and what it is.
#[derive(Debug, Clone)]
pub struct Entry {
    pub relative: PathBuf,
    pub kind: EntryKind,
}

/// An open directory that steps write; every file is read beneath it.
pub struct Beneath {
    dir: OwnedFd,
    /// Its real path, for the fallback check where `openat2` is missing.
    root: PathBuf,
    /// What the directory is called in messages ("workspace", "run directory").
    place: &'static str,
}

impl Beneath {
    /// The execution's workspace.
    pub fn workspace(path: &Path) -> Result<Beneath, WorkspaceFileError> {
        Beneath::open(path, "workspace")
    }

    /// A stage's run directory (step output files).
    pub fn run_dir(path: &Path) -> Result<Beneath, WorkspaceFileError> {
        Beneath::open(path, "run directory")
    }

    fn open(path: &Path, place: &'static str) -> Result<Beneath, WorkspaceFileError> {
        let io = |source| WorkspaceFileError::Io {
            path: format!("the {place} {}", path.display()),
            source,
        };
        let root = std::fs::canonicalize(path).map_err(io)?;
        let dir = File::open(&root).map_err(io)?;
        Ok(Beneath {
            dir: dir.into(),
            root,
            place,
        })
    }

    /// Opens the regular file `relative` for reading; links are followed only while they stay
    /// beneath the directory.
    pub fn open_file(&self, relative: &str) -> Result<File, WorkspaceFileError> {
        let fd = self.resolve(relative, libc::O_RDONLY | libc::O_NONBLOCK, 0)?;
        let file = File::from(fd);
        let metadata = file
            .metadata()
            .map_err(|source| self.io(relative, source))?;
        if metadata.is_dir() {
            return Err(WorkspaceFileError::NotFile {
                path: relative.to_owned(),
            });
        }
        if !metadata.is_file() {
            return Err(WorkspaceFileError::NotFile {
                path: relative.to_owned(),
            });
        }
        Ok(file)
    }

    /// The bytes of the regular file `relative`, at most `limit` of them.
    pub fn read(&self, relative: &str, limit: u64) -> Result<Vec<u8>, WorkspaceFileError> {
        let file = self.open_file(relative)?;
        let mut bytes = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| self.io(relative, source))?;
        if bytes.len() as u64 > limit {
            return Err(WorkspaceFileError::TooLarge {
                path: relative.to_owned(),
                limit,
            });
        }
        Ok(bytes)
    }

    /// The text of the regular file `relative` (invalid UTF-8 is replaced).
    pub fn read_to_string(&self, relative: &str, limit: u64) -> Result<String, WorkspaceFileError> {
        let bytes = self.read(relative, limit)?;
        Ok(String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    /// Opens the directory `relative` ("." for the directory itself); a link to a directory is
    /// followed only while it stays beneath.
    pub fn open_dir(&self, relative: &str) -> Result<OwnedFd, WorkspaceFileError> {
        let fd = self.resolve(
            relative,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NONBLOCK,
            0,
        );
        match fd {
            Err(WorkspaceFileError::Io { source, .. })
                if source.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                Err(WorkspaceFileError::NotDirectory {
                    path: relative.to_owned(),
                })
            }
            other => other,
        }
    }

    /// Every entry beneath the directory `relative`, sorted by path, parents before their
    /// children. Links are listed as links and never entered, so neither a link out of the
    /// directory nor a link loop can widen or lengthen the walk.
    pub fn walk(&self, relative: &str) -> Result<Vec<Entry>, WorkspaceFileError> {
        self.walk_except(relative, &[])
    }

    /// [`Beneath::walk`], leaving out the entries named in `skip` at the top of the walk (and
    /// everything beneath them).
    pub fn walk_except(
        &self,
        relative: &str,
        skip: &[&str],
    ) -> Result<Vec<Entry>, WorkspaceFileError> {
        let top = self.open_dir(relative)?;
        let mut entries = Vec::new();
        self.walk_dir(&top, relative, Path::new(""), skip, &mut entries)?;
        entries.sort_by(|a, b| a.relative.cmp(&b.relative));
        Ok(entries)
    }

    /// Adds the entries of the open directory `dir` to `entries`, entering each
    /// subdirectory as it is met, so only one branch's descriptors are open at a time.
    fn walk_dir(
        &self,
        dir: &OwnedFd,
        top: &str,
        prefix: &Path,
        skip: &[&str],
        entries: &mut Vec<Entry>,
    ) -> Result<(), WorkspaceFileError> {
        let shown = |name: &Path| {
            Path::new(top)
                .join(name)
                .to_string_lossy()
                .trim_start_matches("./")
                .to_owned()
        };
        for name in list(dir).map_err(|source| self.io(&shown(prefix), source))? {
            if prefix.as_os_str().is_empty() && skip.iter().any(|s| OsStr::new(s) == name) {
                continue;
            }
            let path = prefix.join(&name);
            let stat =
                fstatat(dir.as_raw_fd(), &name).map_err(|source| self.io(&shown(&path), source))?;
            let kind = match stat.st_mode & libc::S_IFMT {
                libc::S_IFDIR => {
                    let child = openat_nofollow(dir.as_raw_fd(), &name, libc::O_DIRECTORY)
                        .map_err(|source| self.io(&shown(&path), source))?;
                    entries.push(Entry {
                        relative: path.clone(),
                        kind: EntryKind::Dir {
                            mode: stat.st_mode & 0o7777,
                        },
                    });
                    self.walk_dir(&child, top, &path, &[], entries)?;
                    continue;
                }
                libc::S_IFLNK => EntryKind::Symlink(
                    readlinkat(dir.as_raw_fd(), &name)
                        .map_err(|source| self.io(&shown(&path), source))?,
                ),
                libc::S_IFREG => EntryKind::File {
                    mode: stat.st_mode & 0o7777,
                },
                _ => {
                    return Err(WorkspaceFileError::NotFile { path: shown(&path) });
                }
            };
            entries.push(Entry {
                relative: path,
                kind,
            });
        }
        Ok(())
    }

    /// Writes `bytes` to the file `relative` through a temporary file and a rename in the
    /// same directory (the parent is resolved beneath, the temporary file is created
    /// exclusively and without following links), so a link a step put at either name is
    /// replaced, never written through.
    pub fn write_atomically(&self, relative: &str, bytes: &[u8]) -> Result<(), WorkspaceFileError> {
        use std::io::Write;
        let clean = self.check_relative(relative)?;
        let (Some(parent), Some(name)) = (clean.parent(), clean.file_name()) else {
            return Err(WorkspaceFileError::NotRelative {
                path: relative.to_owned(),
                place: self.place,
            });
        };
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        let dir = self.open_dir(&parent.to_string_lossy())?;
        let io = |source| self.io(relative, source);
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(".partial");
        let temp = CString::new(temp_name.into_vec()).map_err(|e| io(io::Error::other(e)))?;
        let target = CString::new(name.as_bytes()).map_err(|e| io(io::Error::other(e)))?;
        // SAFETY: NUL-terminated names and an open directory descriptor.
        unsafe { libc::unlinkat(dir.as_raw_fd(), temp.as_ptr(), 0) };
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        // SAFETY: as above; the descriptor returned is owned.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                temp.as_ptr(),
                flags | libc::O_CLOEXEC,
                0o644 as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(io(io::Error::last_os_error()));
        }
        // SAFETY: just opened, owned by nobody else.
        let mut file = unsafe { File::from_raw_fd(fd) };
        let written = file.write_all(bytes).and_then(|()| file.sync_all());
        // SAFETY: NUL-terminated names and an open directory descriptor.
        let renamed = written.and_then(|()| {
            let result = unsafe {
                libc::renameat(
                    dir.as_raw_fd(),
                    temp.as_ptr(),
                    dir.as_raw_fd(),
                    target.as_ptr(),
                )
            };
            if result < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        });
        if let Err(error) = renamed {
            // SAFETY: as above.
            unsafe { libc::unlinkat(dir.as_raw_fd(), temp.as_ptr(), 0) };
            return Err(io(error));
        }
        Ok(())
    }

    /// Copies the file or tree `relative` to `dest` (a place of the server's, outside the
    /// directory), so that what is used later is what was checked now: files are read
    /// beneath, links are copied as links, modes are kept. `dest` is replaced. Returns how
    /// many files were copied.
    pub fn copy_out(&self, relative: &str, dest: &Path) -> Result<usize, WorkspaceFileError> {
        use std::os::unix::fs::PermissionsExt;
        let io = |path: &Path, source| WorkspaceFileError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::symlink_metadata(dest) {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(dest).map_err(|e| io(dest, e))?,
            Ok(_) => std::fs::remove_file(dest).map_err(|e| io(dest, e))?,
            Err(_) => {}
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        let copy_file = |shown: &str, mode: u32, target: &Path| {
            let mut file = self.open_file(shown)?;
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(target)
                .map_err(|e| io(target, e))?;
            io::copy(&mut file, &mut out).map_err(|e| io(target, e))?;
            std::fs::set_permissions(target, std::fs::Permissions::from_mode(mode & 0o777))
                .map_err(|e| io(target, e))
        };
        let top = match self.open_dir(relative) {
            Ok(top) => top,
            Err(WorkspaceFileError::NotDirectory { .. }) => {
                let mode = self
                    .open_file(relative)?
                    .metadata()
                    .map_err(|e| self.io(relative, e))?;
                copy_file(relative, mode.permissions().mode(), dest)?;
                return Ok(1);
            }
            Err(error) => return Err(error),
        };
        drop(top);
        std::fs::create_dir(dest).map_err(|e| io(dest, e))?;
        let mut copied = 0;
        for entry in self.walk(relative)? {
            let target = dest.join(&entry.relative);
            let shown = Path::new(relative).join(&entry.relative);
            let shown = shown.to_string_lossy();
            match entry.kind {
                EntryKind::Dir { mode } => {
                    std::fs::create_dir(&target).map_err(|e| io(&target, e))?;
                    std::fs::set_permissions(
                        &target,
                        std::fs::Permissions::from_mode(mode & 0o777),
                    )
                    .map_err(|e| io(&target, e))?;
                }
                EntryKind::Symlink(link) => {
                    std::os::unix::fs::symlink(&link, &target).map_err(|e| io(&target, e))?
                }
                EntryKind::File { mode } => {
                    copy_file(shown.trim_start_matches("./"), mode, &target)?;
                    copied += 1;
                }
            }
        }
        Ok(copied)
    }

    /// The path under which the open directory `dir` (from [`Beneath::open_dir`]) can be
    /// handed to code that takes a path: it names that very directory, whatever a step
    /// renames or relinks afterwards.
    pub fn fd_path(dir: &OwnedFd) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()))
    }

    /// Resolves `relative` beneath the directory and opens it with `flags`.
    fn resolve(
        &self,
        relative: &str,
        flags: libc::c_int,
        resolve: u64,
    ) -> Result<OwnedFd, WorkspaceFileError> {
        let clean = self.check_relative(relative)?;
        let name = CString::new(clean.as_os_str().as_bytes()).map_err(|_| {
            WorkspaceFileError::NotRelative {
                path: relative.to_owned(),
                place: self.place,
            }
        })?;
        match openat2(
            self.dir.as_raw_fd(),
            &name,
            flags | libc::O_CLOEXEC,
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS | resolve,
        ) {
            Ok(fd) => Ok(fd),
            Err(error) if error.raw_os_error() == Some(libc::ENOSYS) => {
                self.resolve_by_proc(relative, &clean, flags)
            }
            Err(error) => Err(self.explain(relative, error)),
        }
    }

    /// The fallback without `openat2`: open, then check where the descriptor really is.
    fn resolve_by_proc(
        &self,
        relative: &str,
        clean: &Path,
        flags: libc::c_int,
    ) -> Result<OwnedFd, WorkspaceFileError> {
        let path =
            CString::new(self.root.join(clean).into_os_string().into_vec()).map_err(|_| {
                WorkspaceFileError::NotRelative {
                    path: relative.to_owned(),
                    place: self.place,
                }
            })?;
        // SAFETY: `path` is a valid NUL-terminated string; the descriptor returned is owned.
        let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(self.explain(relative, io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just opened and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map_err(|source| self.io(relative, source))?;
        if !real.starts_with(&self.root) {
            return Err(WorkspaceFileError::Outside {
                path: relative.to_owned(),
                place: self.place,
            });
        }
        Ok(fd)
    }

    fn check_relative(&self, relative: &str) -> Result<PathBuf, WorkspaceFileError> {
        let path = Path::new(relative);
        let mut clean = PathBuf::new();
        for component in path.components() {
            match component {
                Component::Normal(part) => clean.push(part),
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(WorkspaceFileError::NotRelative {
                        path: relative.to_owned(),
                        place: self.place,
                    });
                }
            }
        }
        if clean.as_os_str().is_empty() {
            clean.push(".");
        }
        Ok(clean)
    }

    fn explain(&self, relative: &str, error: io::Error) -> WorkspaceFileError {
        let path = relative.to_owned();
        let place = self.place;
        match error.raw_os_error() {
            // EXDEV: the resolution left the directory (an absolute link, or `..` past it);
            // ELOOP: a magic link (`/proc/self/root`) or a link loop.
            Some(libc::EXDEV) | Some(libc::ELOOP) => WorkspaceFileError::Outside { path, place },
            Some(libc::ENOENT) => WorkspaceFileError::Missing { path, place },
            _ => WorkspaceFileError::Io {
                path,
                source: error,
            },
        }
    }

    fn io(&self, relative: &str, source: io::Error) -> WorkspaceFileError {
        WorkspaceFileError::Io {
            path: relative.to_owned(),
            source,
        }
    }
}

/// `openat2(2)`, which the libc crate declares the structure of but no wrapper for.
fn openat2(dir: RawFd, name: &CString, flags: libc::c_int, resolve: u64) -> io::Result<OwnedFd> {
    // SAFETY: `open_how` is plain data; zeroed is its documented neutral value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.resolve = resolve;
    loop {
        // SAFETY: `name` is NUL-terminated, `how` lives across the call and its size is given.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                name.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel returned a new descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
        let error = io::Error::last_os_error();
        // EAGAIN: RESOLVE_BENEATH saw a rename race on the way and asks to try again.
        if error.raw_os_error() != Some(libc::EAGAIN) && error.kind() != io::ErrorKind::Interrupted
        {
            return Err(error);
        }
    }
}

/// Opens `name` in `dir` without following a link in its place.
fn openat_nofollow(dir: RawFd, name: &OsStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let name = CString::new(name.as_bytes()).map_err(io::Error::other)?;
    // SAFETY: `name` is NUL-terminated; the descriptor returned is owned.
    let fd = unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            flags | libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just opened, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fstatat(dir: RawFd, name: &OsStr) -> io::Result<libc::stat> {
    let name = CString::new(name.as_bytes()).map_err(io::Error::other)?;
    // SAFETY: `stat` is plain data filled by the kernel.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers for the duration of the call.
    let result = unsafe { libc::fstatat(dir, name.as_ptr(), &mut stat, libc::AT_SYMLINK_NOFOLLOW) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stat)
}

fn readlinkat(dir: RawFd, name: &OsStr) -> io::Result<PathBuf> {
    let name = CString::new(name.as_bytes()).map_err(io::Error::other)?;
    let mut buffer = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: the buffer's length is given; the kernel writes at most that much.
    let length =
        unsafe { libc::readlinkat(dir, name.as_ptr(), buffer.as_mut_ptr().cast(), buffer.len()) };
    if length < 0 {
        return Err(io::Error::last_os_error());
    }
    buffer.truncate(length as usize);
    Ok(PathBuf::from(std::ffi::OsString::from_vec(buffer)))
}

/// The names in the open directory `dir` (through its descriptor, so the listing is of that
/// directory whatever its path has become).
fn list(dir: &OwnedFd) -> io::Result<Vec<std::ffi::OsString>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))? {
        names.push(entry?.file_name());
    }
    Ok(names)
}

#[cfg(test)]
mod tests;
