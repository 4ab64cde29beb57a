//! `flock(2)` on a file: held as long as the [`FileLock`] lives, released
//! by the kernel when the holding process exits, crash included. That is
//! why it, and not a lock file's mere existence, decides who owns a data
//! directory's data plane or its APT repositories.

use std::fs::File;
use std::io;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// An exclusive lock on a file; dropping it releases the lock.
#[derive(Debug)]
pub struct FileLock {
    _held: Flock<File>,
}

impl FileLock {
    /// Waits until the lock on `path` (created if missing) is ours.
    pub fn wait(path: &Path) -> io::Result<FileLock> {
        let mut file = open(path)?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusive) {
                Ok(held) => return Ok(FileLock { _held: held }),
                Err((back, Errno::EINTR)) => file = back,
                Err((_, errno)) => return Err(errno.into()),
            }
        }
    }

    /// The lock on `path` if no other process holds it; `None` if one does.
    pub fn try_now(path: &Path) -> io::Result<Option<FileLock>> {
        let file = open(path)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(held) => Ok(Some(FileLock { _held: held })),
            Err((_, Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(errno.into()),
        }
    }

    /// Whether some process holds the lock on `path` right now (a file that
    /// does not exist is not locked). The answer may be stale as soon as it
    /// is given: use it for reports, not to decide who may write.
    pub fn is_held(path: &Path) -> io::Result<bool> {
        if !path.exists() {
            return Ok(false);
        }
        Ok(FileLock::try_now(path)?.is_none())
    }
}

fn open(path: &Path) -> io::Result<File> {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_refused_to_a_second_holder_until_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = FileLock::try_now(&path).unwrap().expect("free at first");
        assert!(FileLock::try_now(&path).unwrap().is_none());
        assert!(FileLock::is_held(&path).unwrap());
        drop(first);
        assert!(!FileLock::is_held(&path).unwrap());
        let _second = FileLock::wait(&path).unwrap();
    }
}
