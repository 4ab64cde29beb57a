//! Packages arriving in a repository: each file is checked (a real `.deb`
//! with a sane control file), hashed once, and the ones the store does not
//! know yet are appended to the add's pack (`packs.rs`). Files are taken a
//! batch at a time and a batch is checked on all cores, and what is kept of
//! a checked file until it is recorded is mostly on disk (`checked.rs`), so
//! that memory stays bounded by the batch however many packages one upload
//! carries.
//!
//! A file larger than `IN_MEMORY` (an upload, or an entry of an uploaded
//! tar, first written to an upload file) is never held in memory: it is
//! checked and copied into the pack from its file a buffer at a time.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use gantry_deb::DebError;
use gantry_store::{AptPackLocation, AptPackageRecord};

use crate::AptError;
use crate::checked::Checked;
use crate::packs::PackWriter;
use crate::upload::Upload;

/// A batch is checked when it holds this many bytes or files.
const BATCH_BYTES: usize = 32 << 20;
const BATCH_FILES: usize = 1024;

/// Files up to this size are read into memory and checked with their
/// batch (the fast path, for the small packages most adds bring); larger
/// ones are checked from their file, a buffer at a time.
const IN_MEMORY: u64 = 16 << 20;

/// Which of these SHA-256 hashes the store already has a package for: their
/// bytes are not written again.
pub(crate) type KnownPackages =
    Box<dyn FnMut(&[String]) -> Result<HashSet<String>, AptError> + Send>;

/// Packages checked and stored so far by one add.
pub(crate) struct Intake {
    incoming: PathBuf,
    /// Where a large entry of a tar is written before it is checked.
    uploads: PathBuf,
    known: KnownPackages,
    pack: PackWriter,
    /// Created with the first batch.
    checked: Option<Checked>,
    /// The packages this add wrote to its pack (SHA-256 bytes), so that a
    /// file given twice is written once.
    written: HashSet<[u8; 32]>,
    /// Files taken so far.
    taken: usize,
    batch: Vec<(String, Vec<u8>)>,
    batch_bytes: usize,
}

impl Intake {
    /// An intake writing a new pack into `packs`, keeping what it checked
    /// in `incoming`.
    pub fn new(packs: &Path, incoming: &Path, known: KnownPackages) -> Intake {
        Intake {
            incoming: incoming.to_path_buf(),
            uploads: incoming.to_path_buf(),
            known,
            pack: PackWriter::new(packs),
            checked: None,
            written: HashSet::new(),
            taken: 0,
            batch: Vec::new(),
            batch_bytes: 0,
        }
    }

    /// Large entries of a tar are written to upload files in `uploads`
    /// (by default, beside what was checked).
    pub fn with_uploads(mut self, uploads: &Path) -> Intake {
        self.uploads = uploads.to_path_buf();
        self
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

    /// Takes one file on disk from its start (`what` names it): a small
    /// one as [`Intake::push`] takes it, a large one checked and copied
    /// into the pack a buffer at a time.
    pub fn push_file(&mut self, what: String, mut file: &File) -> Result<(), AptError> {
        let size = file
            .rewind()
            .and_then(|()| file.metadata())
            .map_err(AptError::io(&what))?
            .len();
        if size <= IN_MEMORY {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes).map_err(AptError::io(&what))?;
            return self.push(what, bytes);
        }
        // The batch before it goes first: records keep the files' order.
        self.flush()?;
        self.taken += 1;
        let package = gantry_deb::inspect_reader(&what, file).map_err(|error| match error {
            DebError::Io { path, source } => AptError::io(path.display())(source),
            other => AptError::Package(other),
        })?;
        self.keep(vec![record_of(package)], |pack, _| {
            file.rewind().map_err(AptError::io(&what))?;
            pack.append_from(file, size)
        })
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
            if entry.size() > IN_MEMORY {
                let upload = Upload::create(&self.uploads)?;
                let mut file = std::io::BufWriter::with_capacity(256 << 10, upload.writer()?);
                std::io::copy(&mut entry, &mut file)
                    .and_then(|_| file.flush())
                    .map_err(bad)?;
                drop(file);
                self.push_file(name, upload.file())?;
                continue;
            }
            let mut bytes = Vec::with_capacity(entry.size() as usize);
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

    /// Checks and stores what is left, and syncs the pack; the records of
    /// every file taken, in the order they came (or what went wrong), and
    /// the pack either way. The caller removes the pack of a failed add,
    /// under the lock, unless a record points into it.
    pub fn finish(mut self) -> (Result<Checked, AptError>, PackWriter) {
        let checked = self.flush().and_then(|()| {
            self.pack.finish()?;
            let mut checked = match self.checked.take() {
                Some(checked) => checked,
                None => Checked::create(&self.incoming, self.pack.name())?,
            };
            checked.seal()?;
            Ok(checked)
        });
        (checked, self.pack)
    }

    /// The pack written so far, after an error.
    pub fn abandon(self) -> PackWriter {
        self.pack
    }

    fn flush(&mut self) -> Result<(), AptError> {
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        if batch.is_empty() {
            return Ok(());
        }
        let checked = check_all(&batch)?;
        self.keep(checked, |pack, index| pack.append(&batch[index].1))
    }

    /// Keeps the records of checked files, appending to the pack (with
    /// `append`, given the file's index) those the store and this add do
    /// not have yet.
    fn keep(
        &mut self,
        checked: Vec<AptPackageRecord>,
        mut append: impl FnMut(&mut PackWriter, usize) -> Result<AptPackLocation, AptError>,
    ) -> Result<(), AptError> {
        let hashes: Vec<String> = checked.iter().map(|r| r.sha256.clone()).collect();
        let known = (self.known)(&hashes)?;
        let kept = match &mut self.checked {
            Some(kept) => kept,
            None => self
                .checked
                .insert(Checked::create(&self.incoming, self.pack.name())?),
        };
        for (index, mut record) in checked.into_iter().enumerate() {
            if !known.contains(&record.sha256) && self.written.insert(digest_key(&record.sha256)) {
                record.location = Some(append(&mut self.pack, index)?);
            }
            kept.push(record)?;
        }
        Ok(())
    }
}

/// A SHA-256 in hex as its 32 bytes (half the memory of the text).
fn digest_key(sha256: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    hex::decode_to_slice(sha256, &mut key).expect("digests are written as 64 hex digits");
    key
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
    Ok(record_of(gantry_deb::inspect(what, bytes)?))
}

fn record_of(package: gantry_deb::Package) -> AptPackageRecord {
    let mut control = package.control;
    for field in ["Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512"] {
        control.remove(field);
    }
    control.set("Size", package.size.to_string());
    control.set("MD5sum", package.md5);
    control.set("SHA1", package.sha1);
    control.set("SHA256", package.sha256.clone());
    control.set("SHA512", package.sha512);
    AptPackageRecord {
        sha256: package.sha256,
        name: package.name,
        version: package.version.to_string(),
        architecture: package.architecture,
        size: package.size as i64,
        control: control.to_text(),
        created_at: crate::service::now(),
        location: None,
    }
}
