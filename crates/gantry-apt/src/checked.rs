//! The checked packages of one add, kept until they are recorded: what
//! identifies each (name, version, architecture, hash) in memory, and their
//! paragraphs — most of a record's size — in a file under
//! `DATA_DIR/apt/incoming`. An add of any number of packages then holds
//! about 150 bytes per package instead of its whole paragraph, and still
//! records all of them in one go, under the lock, or none. The file is
//! removed when the `Checked` is dropped.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use gantry_store::{AptPackLocation, AptPackageKey, AptPackageRecord};

use crate::AptError;

pub(crate) struct Checked {
    /// In the order the files came.
    pub keys: Vec<AptPackageKey>,
    /// Whether this add wrote each one's bytes to its pack (else the store
    /// knew the package when it was checked).
    pub written: Vec<bool>,
    created_at: i64,
    /// The add's pack, which the records' offsets point into.
    pack: String,
    path: PathBuf,
    writer: Option<BufWriter<File>>,
}

/// Reads the paragraphs back, in order.
pub(crate) struct CheckedReader<'a> {
    checked: &'a Checked,
    reader: BufReader<File>,
    next: usize,
}

impl Checked {
    pub fn create(incoming: &Path, pack: &str) -> Result<Checked, AptError> {
        std::fs::create_dir_all(incoming).map_err(AptError::io(incoming.display()))?;
        let path = incoming.join(format!("{}.paragraphs", uuid::Uuid::now_v7().simple()));
        let file = File::create(&path).map_err(AptError::io(path.display()))?;
        Ok(Checked {
            keys: Vec::new(),
            written: Vec::new(),
            created_at: crate::service::now(),
            pack: pack.to_owned(),
            path,
            writer: Some(BufWriter::new(file)),
        })
    }

    /// Keeps one record: its key here, its paragraph and its offset in the
    /// add's pack (-1: not written by this add) in the file.
    pub fn push(&mut self, record: AptPackageRecord) -> Result<(), AptError> {
        let writer = self.writer.as_mut().expect("pushed after reading began");
        let control = record.control.as_bytes();
        let offset = record.location.as_ref().map_or(-1, |l| l.offset);
        writer
            .write_all(&offset.to_le_bytes())
            .and_then(|()| writer.write_all(&(control.len() as u64).to_le_bytes()))
            .and_then(|()| writer.write_all(control))
            .map_err(AptError::io(self.path.display()))?;
        self.written.push(record.location.is_some());
        self.keys.push(AptPackageKey {
            name: record.name,
            version: record.version,
            architecture: record.architecture,
            sha256: record.sha256,
            size: record.size,
        });
        Ok(())
    }

    /// Ends writing; the paragraphs can be read back from here on.
    pub fn seal(&mut self) -> Result<(), AptError> {
        if let Some(mut writer) = self.writer.take() {
            writer.flush().map_err(AptError::io(self.path.display()))?;
        }
        Ok(())
    }

    /// The add's pack, which the records' offsets point into.
    pub fn pack(&self) -> &str {
        &self.pack
    }

    pub fn reader(&self) -> Result<CheckedReader<'_>, AptError> {
        let file = File::open(&self.path).map_err(AptError::io(self.path.display()))?;
        Ok(CheckedReader {
            checked: self,
            reader: BufReader::new(file),
            next: 0,
        })
    }
}

impl CheckedReader<'_> {
    /// The next records whose index `wanted` accepts, at most `limit` of
    /// them; empty at the end.
    pub fn next_records(
        &mut self,
        wanted: impl Fn(usize) -> bool,
        limit: usize,
    ) -> Result<Vec<AptPackageRecord>, AptError> {
        let path = self.checked.path.display().to_string();
        let mut records = Vec::new();
        let mut control = Vec::new();
        while records.len() < limit && self.next < self.checked.keys.len() {
            let mut offset = [0u8; 8];
            let mut length = [0u8; 8];
            self.reader
                .read_exact(&mut offset)
                .and_then(|()| self.reader.read_exact(&mut length))
                .map_err(AptError::io(&path))?;
            control.resize(u64::from_le_bytes(length) as usize, 0);
            self.reader
                .read_exact(&mut control)
                .map_err(AptError::io(&path))?;
            let index = self.next;
            self.next += 1;
            if !wanted(index) {
                continue;
            }
            let key = &self.checked.keys[index];
            records.push(AptPackageRecord {
                sha256: key.sha256.clone(),
                name: key.name.clone(),
                version: key.version.clone(),
                architecture: key.architecture.clone(),
                size: key.size,
                control: String::from_utf8(std::mem::take(&mut control))
                    .expect("paragraphs are written from strings"),
                created_at: self.checked.created_at,
                location: match i64::from_le_bytes(offset) {
                    -1 => None,
                    offset => Some(AptPackLocation {
                        pack: self.checked.pack.clone(),
                        offset,
                    }),
                },
            });
        }
        Ok(records)
    }
}

/// Removes what adds cut short by a crash left in `incoming`: files older
/// than a day (a younger one may belong to an add running in another
/// process).
pub(crate) fn remove_abandoned(incoming: &Path) {
    let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(24 * 3600);
    for entry in std::fs::read_dir(incoming).into_iter().flatten().flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified < day_ago);
        if old && entry.file_name().to_string_lossy().ends_with(".paragraphs") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl Drop for Checked {
    fn drop(&mut self) {
        drop(self.writer.take());
        let _ = std::fs::remove_file(&self.path);
    }
}
