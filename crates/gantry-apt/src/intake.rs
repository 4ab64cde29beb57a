//! Packages arriving in a repository: each file is checked (a real `.deb`
//! with a sane control file), hashed once, and written once to the content
//! pool under its SHA-256. Files are taken a batch at a time and a batch is
//! checked on all cores, and what is kept of a checked file until it is
//! recorded is mostly on disk (`checked.rs`), so that memory stays bounded
//! by the batch however many packages one upload carries.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use gantry_store::AptPackageRecord;

use crate::AptError;
use crate::checked::Checked;
use crate::publish::content_path;

/// A batch is checked when it holds this many bytes or files.
const BATCH_BYTES: usize = 32 << 20;
const BATCH_FILES: usize = 1024;

/// Packages checked and stored so far by one add.
pub(crate) struct Intake {
    pool: PathBuf,
    incoming: PathBuf,
    /// Created with the first batch.
    checked: Option<Checked>,
    /// Files taken so far.
    taken: usize,
    stored: Stored,
    batch: Vec<(String, Vec<u8>)>,
    batch_bytes: usize,
    /// Whether the pool's 16 directories are known to exist.
    dirs_ready: bool,
}

/// Pool files one add created, and the ones it found already there. If the
/// add fails, the ones it created are removed again, so that a refused add
/// leaves nothing behind.
/// Files are named by their SHA-256 only (their paths follow from it).
pub(crate) struct Stored {
    pool: PathBuf,
    created: Vec<String>,
    found: Vec<String>,
}

impl Stored {
    fn new(pool: &Path) -> Stored {
        Stored {
            pool: pool.to_path_buf(),
            created: Vec::new(),
            found: Vec::new(),
        }
    }

    /// The SHA-256 of each file this add created.
    pub fn created_hashes(&self) -> Vec<String> {
        self.created.clone()
    }

    /// Removes the files this add created except those in `keep`.
    pub fn remove_except(self, keep: &HashSet<String>) {
        for sha256 in self.created {
            if !keep.contains(&sha256) {
                let _ = std::fs::remove_file(content_path(&self.pool, &sha256));
            }
        }
    }

    /// Checks that the files this add found in the pool instead of writing
    /// them are still there: they may have been written by a concurrent
    /// add that then failed and removed them. Called under the lock.
    pub fn check_present(&self) -> Result<(), AptError> {
        for sha256 in &self.found {
            let path = content_path(&self.pool, sha256);
            if !path.exists() {
                return Err(AptError::Conflict(format!(
                    "{}: removed by a concurrent add that failed; add again",
                    path.display()
                )));
            }
        }
        Ok(())
    }
}

impl Intake {
    /// An intake storing into `pool`, keeping what it checked in `incoming`.
    pub fn new(pool: &Path, incoming: &Path) -> Intake {
        Intake {
            pool: pool.to_path_buf(),
            incoming: incoming.to_path_buf(),
            checked: None,
            taken: 0,
            stored: Stored::new(pool),
            batch: Vec::new(),
            batch_bytes: 0,
            dirs_ready: false,
        }
    }

    /// Takes one file (`what` names it in errors).
    pub fn push(&mut self, what: String, bytes: Vec<u8>) -> Result<(), AptError> {
        self.batch_bytes += bytes.len();
        self.taken += 1;
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
        let before = self.taken;
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
        if self.taken == before {
            return Err(AptError::Invalid(
                "upload: the tar archive holds no files".to_owned(),
            ));
        }
        Ok(())
    }

    /// Checks and stores what is left; the records of every file taken, in
    /// the order they came (or what went wrong), and the pool files stored
    /// either way. The caller removes those of a failed add, under the lock:
    /// a concurrent add may have found and recorded them meanwhile.
    pub fn finish(mut self) -> (Result<Checked, AptError>, Stored) {
        let checked = self.flush().and_then(|()| {
            let mut checked = match self.checked.take() {
                Some(checked) => checked,
                None => Checked::create(&self.incoming)?,
            };
            checked.seal()?;
            Ok(checked)
        });
        (checked, self.stored)
    }

    /// The pool files stored so far, after an error.
    pub fn abandon(self) -> Stored {
        self.stored
    }

    fn flush(&mut self) -> Result<(), AptError> {
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        let checked = check_all(&batch)?;
        if !self.dirs_ready {
            for digit in "0123456789abcdef".chars() {
                let dir = self.pool.join(digit.to_string());
                std::fs::create_dir_all(&dir).map_err(AptError::io(dir.display()))?;
            }
            self.dirs_ready = true;
        }
        // Stored one after the other: creating a file is the most expensive
        // step of an add (the file system's inode allocation), and it does
        // not go faster from several threads here (measured).
        let mut failed = None;
        for (record, (_, bytes)) in checked.iter().zip(&batch) {
            if let Err(error) = store(&self.pool, &record.sha256, bytes, &mut self.stored) {
                failed = Some(error);
                break;
            }
        }
        if let Some(error) = failed {
            return Err(error);
        }
        let kept = match &mut self.checked {
            Some(kept) => kept,
            None => self.checked.insert(Checked::create(&self.incoming)?),
        };
        checked.into_iter().try_for_each(|record| kept.push(record))
    }
}

/// Writes a temporary file and renames it: a crash never leaves a partial
/// file under a content hash. The temporary name is this write's own: two
/// adds (in two processes, say) may store the same new file at once, and
/// both renames then succeed with the same contents.
fn store(pool: &Path, sha256: &str, bytes: &[u8], stored: &mut Stored) -> Result<(), AptError> {
    let path = content_path(pool, sha256);
    if path.exists() {
        stored.found.push(sha256.to_owned());
        return Ok(());
    }
    let dir = path.parent().expect("pool paths have a directory");
    let temp = dir.join(format!(
        ".{sha256}.{}.partial",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::write(&temp, bytes).map_err(AptError::io(temp.display()))?;
    std::fs::rename(&temp, &path).map_err(AptError::io(path.display()))?;
    stored.created.push(sha256.to_owned());
    Ok(())
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
