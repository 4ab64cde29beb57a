//! Packages arriving in a repository: each file is checked (a real `.deb`
//! with a sane control file), hashed once, and written once to the content
//! pool under its SHA-256. Files are taken a batch at a time and a batch is
//! checked on all cores, so that memory stays bounded by the batch however
//! many packages one upload carries.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use gantry_store::AptPackageRecord;

use crate::AptError;
use crate::publish::content_path;

/// A batch is checked when it holds this many bytes or files.
const BATCH_BYTES: usize = 32 << 20;
const BATCH_FILES: usize = 1024;

/// Packages checked and stored so far by one add.
pub(crate) struct Intake {
    pool: PathBuf,
    records: Vec<AptPackageRecord>,
    stored: Stored,
    known_dirs: HashSet<PathBuf>,
    batch: Vec<(String, Vec<u8>)>,
    batch_bytes: usize,
}

/// Pool files one add created. If the add fails they are removed again,
/// so that a refused add leaves nothing behind.
#[derive(Default)]
pub(crate) struct Stored {
    created: Vec<PathBuf>,
}

impl Stored {
    pub fn remove(self) {
        for path in self.created {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Intake {
    pub fn new(pool: &Path) -> Intake {
        Intake {
            pool: pool.to_path_buf(),
            records: Vec::new(),
            stored: Stored::default(),
            known_dirs: HashSet::new(),
            batch: Vec::new(),
            batch_bytes: 0,
        }
    }

    /// Takes one file (`what` names it in errors).
    pub fn push(&mut self, what: String, bytes: Vec<u8>) -> Result<(), AptError> {
        self.batch_bytes += bytes.len();
        self.batch.push((what, bytes));
        if self.batch_bytes >= BATCH_BYTES || self.batch.len() >= BATCH_FILES {
            self.flush()?;
        }
        Ok(())
    }

    /// Takes every regular file of a tar stream.
    pub fn push_tar(&mut self, reader: impl Read) -> Result<(), AptError> {
        let bad = |e: std::io::Error| {
            AptError::Invalid(format!("upload: not a readable tar archive: {e}"))
        };
        let mut archive = tar::Archive::new(reader);
        let before = self.records.len() + self.batch.len();
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry.path().map_err(bad)?.to_string_lossy().into_owned();
            // The header's size is the sender's claim: reserve no more than
            // a typical package for it, the rest grows as data arrives.
            let mut bytes = Vec::with_capacity(entry.size().min(16 << 20) as usize);
            entry.read_to_end(&mut bytes).map_err(bad)?;
            self.push(name, bytes)?;
        }
        if self.records.len() + self.batch.len() == before {
            return Err(AptError::Invalid(
                "upload: the tar archive holds no files".to_owned(),
            ));
        }
        Ok(())
    }

    /// Checks and stores what is left; the records of every file taken, in
    /// the order they came, and the pool files created.
    pub fn finish(mut self) -> Result<(Vec<AptPackageRecord>, Stored), AptError> {
        if let Err(error) = self.flush() {
            self.abandon();
            return Err(error);
        }
        Ok((self.records, self.stored))
    }

    /// Removes what was stored so far (after an error).
    pub fn abandon(self) {
        self.stored.remove();
    }

    fn flush(&mut self) -> Result<(), AptError> {
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        let checked = check_all(&batch)?;
        for ((_, bytes), record) in batch.iter().zip(&checked) {
            self.store(&record.sha256, bytes)?;
        }
        self.records.extend(checked);
        Ok(())
    }

    /// Writes a temporary file and renames it: a crash never leaves a
    /// partial file under a content hash.
    fn store(&mut self, sha256: &str, bytes: &[u8]) -> Result<(), AptError> {
        let path = content_path(&self.pool, sha256);
        let dir = path.parent().expect("pool paths have a directory");
        if !self.known_dirs.contains(dir) {
            std::fs::create_dir_all(dir).map_err(AptError::io(dir.display()))?;
            self.known_dirs.insert(dir.to_path_buf());
        }
        if path.exists() {
            return Ok(());
        }
        let temp = dir.join(format!(".{sha256}.partial"));
        std::fs::write(&temp, bytes).map_err(AptError::io(temp.display()))?;
        std::fs::rename(&temp, &path).map_err(AptError::io(path.display()))?;
        self.stored.created.push(path);
        Ok(())
    }
}

/// Checks a batch on all cores; the first bad file fails the batch.
fn check_all(files: &[(String, Vec<u8>)]) -> Result<Vec<AptPackageRecord>, AptError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = files.len().div_ceil(threads).max(1);
    if files.len() <= chunk {
        return files
            .iter()
            .map(|(what, bytes)| check(what, bytes))
            .collect();
    }
    let parts: Vec<Result<Vec<AptPackageRecord>, AptError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(what, bytes)| check(what, bytes))
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("package check thread"))
            .collect()
    });
    let mut records = Vec::with_capacity(files.len());
    for part in parts {
        records.extend(part?);
    }
    Ok(records)
}

/// Reads one package into its record: the control paragraph as an index
/// lists it (without `Filename`, which depends on where it is published).
fn check(what: &str, bytes: &[u8]) -> Result<AptPackageRecord, AptError> {
    let package = gantry_deb::inspect(what, bytes)?;
    let mut control = package.control;
    for field in ["Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512"] {
        control.remove(field);
    }
    control.set("Size", package.size.to_string());
    control.set("MD5sum", package.md5);
    control.set("SHA1", package.sha1);
    control.set("SHA256", package.sha256.clone());
    control.set("SHA512", package.sha512);
    Ok(AptPackageRecord {
        sha256: package.sha256,
        name: package.name,
        version: package.version.to_string(),
        architecture: package.architecture,
        size: package.size as i64,
        control: control.to_text(),
        created_at: crate::service::now(),
    })
}
