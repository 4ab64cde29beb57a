//! Package files in packs: an add appends the new packages it brings to one
//! file of its own, `DATA_DIR/apt/packs/<id>.pack`, and the store records
//! where each one starts. Writing one file per package used to be most of
//! an add's time: creating an inode costs tens of microseconds on ext4,
//! far more than writing a small package's bytes.
//!
//! A pack is written by one add (or by a cleanup rewriting packs) and never
//! changes once it is recorded, so readers need no lock. An add that fails
//! removes its pack, unless a record points into it (see
//! `Apt::remove_unrecorded`). `apt db cleanup` (`cleanup/`) removes packs
//! none of whose packages remain and rewrites those half dead or more into
//! a new pack; a reader that finds a pack gone looks its package up again
//! (`Apt::open_package`).

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use gantry_store::{AptPackLocation, AptPackageFile};

use crate::AptError;
use crate::publish::content_path;

/// Appends package files to a new pack, created on the first append (an
/// add that brings only known packages writes nothing).
pub(crate) struct PackWriter {
    dir: PathBuf,
    name: String,
    open: Option<OpenPack>,
}

struct OpenPack {
    path: PathBuf,
    file: BufWriter<File>,
    length: u64,
}

impl PackWriter {
    pub fn new(dir: &Path) -> PackWriter {
        PackWriter {
            dir: dir.to_path_buf(),
            name: uuid::Uuid::now_v7().simple().to_string(),
            open: None,
        }
    }

    /// The pack's name, as records store it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends one package's bytes; where they start.
    pub fn append(&mut self, bytes: &[u8]) -> Result<AptPackLocation, AptError> {
        let open = self.open()?;
        let offset = open.length;
        open.file
            .write_all(bytes)
            .map_err(AptError::io(open.path.display()))?;
        open.length += bytes.len() as u64;
        Ok(self.location(offset))
    }

    /// Appends one package of `size` bytes read from `reader` a buffer at
    /// a time (a large upload); where it starts. Fewer bytes than `size`
    /// is an error.
    pub fn append_from(
        &mut self,
        reader: impl Read,
        size: u64,
    ) -> Result<AptPackLocation, AptError> {
        let open = self.open()?;
        let offset = open.length;
        let copied = std::io::copy(&mut reader.take(size), &mut open.file)
            .map_err(AptError::io(open.path.display()))?;
        open.length += copied;
        if copied != size {
            return Err(AptError::io(open.path.display())(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("a package of {size} bytes ended after {copied}"),
            )));
        }
        Ok(self.location(offset))
    }

    /// The pack, created on the first append.
    fn open(&mut self) -> Result<&mut OpenPack, AptError> {
        if self.open.is_none() {
            std::fs::create_dir_all(&self.dir).map_err(AptError::io(self.dir.display()))?;
            let path = pack_path(&self.dir, &self.name);
            let file = File::create_new(&path).map_err(AptError::io(path.display()))?;
            self.open = Some(OpenPack {
                path,
                file: BufWriter::with_capacity(256 << 10, file),
                length: 0,
            });
        }
        Ok(self.open.as_mut().expect("opened above"))
    }

    fn location(&self, offset: u64) -> AptPackLocation {
        AptPackLocation {
            pack: self.name.clone(),
            offset: offset as i64,
        }
    }

    /// Flushes and syncs the pack: its bytes are on disk before any record
    /// points at them. Whether anything was written.
    pub fn finish(&mut self) -> Result<bool, AptError> {
        let Some(open) = &mut self.open else {
            return Ok(false);
        };
        open.file
            .flush()
            .and_then(|()| open.file.get_ref().sync_data())
            .map_err(AptError::io(open.path.display()))?;
        Ok(true)
    }

    /// Removes the pack (an add that failed); nothing if none was written.
    pub fn remove(self) {
        if let Some(open) = self.open {
            drop(open.file);
            let _ = std::fs::remove_file(&open.path);
        }
    }
}

pub(crate) fn pack_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.pack"))
}

/// Where a package's bytes are: a file and the span in it.
#[derive(Debug)]
pub struct PackageBytes {
    pub path: PathBuf,
    pub file: File,
    pub offset: u64,
    pub size: u64,
}

impl PackageBytes {
    /// Opens a recorded package's bytes: its span of a pack, or its whole
    /// file in the content pool (packages recorded before packs).
    pub(crate) fn open(
        packs: &Path,
        pool: &Path,
        package: &AptPackageFile,
    ) -> Result<PackageBytes, AptError> {
        let (path, offset) = match &package.location {
            Some(location) => (pack_path(packs, &location.pack), location.offset as u64),
            None => (content_path(pool, &package.sha256), 0),
        };
        let file = File::open(&path).map_err(AptError::io(path.display()))?;
        Ok(PackageBytes {
            path,
            file,
            offset,
            size: package.size as u64,
        })
    }

    /// The whole package, read into memory.
    pub fn read_all(mut self) -> Result<Vec<u8>, AptError> {
        let mut bytes = Vec::with_capacity(self.size as usize);
        let read = self
            .file
            .seek(SeekFrom::Start(self.offset))
            .and_then(|_| (&mut self.file).take(self.size).read_to_end(&mut bytes));
        let short = || {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("package at offset {} cut short", self.offset),
            )
        };
        match read {
            Ok(n) if n as u64 == self.size => Ok(bytes),
            Ok(_) => Err(AptError::io(self.path.display())(short())),
            Err(e) => Err(AptError::io(self.path.display())(e)),
        }
    }
}
