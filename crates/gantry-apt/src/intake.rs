//! Packages arriving in a repository: each file is checked (a real `.deb`
//! with a sane control file), hashed once, and the ones the store does not
//! know yet are appended to the add's pack (`packs.rs`). Files are taken a
//! batch at a time and a batch is checked on all cores, and what is kept of
//! a checked file until it is recorded is mostly on disk (`checked.rs`), so
//! that memory stays bounded by the batch however many packages one upload
//! carries.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use gantry_store::AptPackageRecord;

use crate::AptError;
use crate::checked::Checked;
use crate::packs::PackWriter;

/// A batch is checked when it holds this many bytes or files.
const BATCH_BYTES: usize = 32 << 20;
const BATCH_FILES: usize = 1024;

/// Which of these SHA-256 hashes the store already has a package for: their
/// bytes are not written again.
pub(crate) type KnownPackages =
    Box<dyn FnMut(&[String]) -> Result<HashSet<String>, AptError> + Send>;

/// Packages checked and stored so far by one add.
pub(crate) struct Intake {
    incoming: std::path::PathBuf,
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
            known,
            pack: PackWriter::new(packs),
            checked: None,
            written: HashSet::new(),
            taken: 0,
            batch: Vec::new(),
            batch_bytes: 0,
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
        let hashes: Vec<String> = checked.iter().map(|r| r.sha256.clone()).collect();
        let known = (self.known)(&hashes)?;
        let kept = match &mut self.checked {
            Some(kept) => kept,
            None => self
                .checked
                .insert(Checked::create(&self.incoming, self.pack.name())?),
        };
        for (mut record, (_, bytes)) in checked.into_iter().zip(&batch) {
            if !known.contains(&record.sha256) && self.written.insert(digest_key(&record.sha256)) {
                record.location = Some(self.pack.append(bytes)?);
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
        location: None,
    })
}
