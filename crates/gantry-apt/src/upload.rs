//! Uploaded package files on their way in: the body is written to a file of
//! its own under `DATA_DIR/apt/uploads/` (readable by the server only, and
//! removed once the add is done), then checked and copied into the pack
//! from there a bounded buffer at a time (`intake.rs`), so that an upload
//! of any size takes no more of the server's memory than a small one.
//!
//! The file is read back through the descriptor it was created with, never
//! opened again by name: removing the leftovers of a crash when the
//! service opens (`remove_leftovers`) is then safe even while another
//! process is receiving an upload.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::AptError;

const EXTENSION: &str = "upload";

/// One upload's file; removed when dropped.
#[derive(Debug)]
pub struct Upload {
    path: PathBuf,
    file: File,
}

impl Upload {
    /// A new empty file in `dir`, mode 0600.
    pub(crate) fn create(dir: &Path) -> Result<Upload, AptError> {
        std::fs::create_dir_all(dir).map_err(AptError::io(dir.display()))?;
        let path = dir.join(format!("{}.{EXTENSION}", uuid::Uuid::now_v7().simple()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(AptError::io(path.display()))?;
        Ok(Upload { path, file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A second handle on the file, to write the upload into (it shares
    /// the file's position with this one).
    pub fn writer(&self) -> Result<File, AptError> {
        self.file
            .try_clone()
            .map_err(AptError::io(self.path.display()))
    }

    /// The file, to read what was written.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove an upload");
        }
    }
}

/// Removes the upload files a crash left in `dir`. An upload still being
/// received by a running process loses only its name: that process reads
/// it through its open descriptor.
pub(crate) fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == EXTENSION) {
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot remove a leftover upload");
                }
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, dir = %dir.display(), "removed uploads left by a crash");
    }
}
