//! The lock around every change of the APT repositories. Two processes may
//! work on one data directory at once (`gantry serve` and `gantry apt
//! --local`), so an in-process mutex is not enough: the lock is an
//! exclusive `flock` on `DATA_DIR/apt/lock`, which the kernel releases when
//! its holder exits, even by a crash. The in-process mutex in front of it
//! queues this process's own tasks fairly, so that they do not all park a
//! blocking thread in `flock`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gantry_unix::FileLock;

use crate::AptError;

#[derive(Clone, Debug)]
pub(crate) struct AptLock {
    path: PathBuf,
    local: Arc<tokio::sync::Mutex<()>>,
}

/// Held while one change is made; dropping it releases both locks.
pub(crate) struct AptGuard {
    // Dropped first: the flock goes, then this process's turn.
    _file: FileLock,
    _local: tokio::sync::OwnedMutexGuard<()>,
}

impl AptLock {
    pub fn new(dir: &Path) -> AptLock {
        AptLock {
            path: dir.join("lock"),
            local: Arc::default(),
        }
    }

    /// Waits for the lock: first this process's turn, then the other
    /// processes'.
    pub async fn acquire(&self) -> Result<AptGuard, AptError> {
        let local = self.local.clone().lock_owned().await;
        let path = self.path.clone();
        let file = tokio::task::spawn_blocking(move || lock_file(&path))
            .await
            .expect("apt lock task")?;
        Ok(AptGuard {
            _file: file,
            _local: local,
        })
    }
}

fn lock_file(path: &Path) -> Result<FileLock, AptError> {
    FileLock::wait(path).map_err(AptError::io(path.display()))
}
