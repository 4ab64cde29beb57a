//! Writing one `Packages` index with its `Packages.gz` and `Packages.xz`
//! in a single pass over the text: every piece of text goes to the plain
//! file, the gzip encoder and (on its own thread, the slowest of the three)
//! the xz encoder, and each file is hashed as it is written. The text is
//! never held whole in memory, nor any compressed form.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use gantry_deb::{Digests, Hasher};

use crate::AptError;

/// The three files an index is published as, by name.
pub(crate) const INDEX_FILES: [&str; 3] = ["Packages", "Packages.gz", "Packages.xz"];

/// Text is handed to the xz thread in pieces of about this size.
const PIECE: usize = 256 << 10;

/// A file written: its name in the directory, size and digests.
pub(crate) struct Written {
    pub name: &'static str,
    pub path: PathBuf,
    pub size: u64,
    pub digests: Digests,
}

pub(crate) struct IndexWriter {
    plain: Hashing<BufWriter<File>>,
    gz: flate2::write::GzEncoder<Hashing<BufWriter<File>>>,
    xz: Option<mpsc::SyncSender<Vec<u8>>>,
    xz_thread: std::thread::JoinHandle<std::io::Result<Hashing<BufWriter<File>>>>,
    piece: Vec<u8>,
    dir: PathBuf,
}

impl IndexWriter {
    pub fn create(dir: &Path) -> Result<IndexWriter, AptError> {
        let open = |name: &str| -> Result<Hashing<BufWriter<File>>, AptError> {
            let path = dir.join(name);
            let file = File::create(&path).map_err(AptError::io(path.display()))?;
            Ok(Hashing::new(BufWriter::with_capacity(PIECE, file)))
        };
        let plain = open(INDEX_FILES[0])?;
        let gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(open(INDEX_FILES[1])?, flate2::Compression::fast());
        let xz_file = open(INDEX_FILES[2])?;
        // Two pieces in flight keep both cores busy without queueing the
        // whole index in memory when xz falls behind.
        let (sender, receiver) = mpsc::sync_channel::<Vec<u8>>(2);
        let xz_thread = std::thread::spawn(move || {
            // Preset 0: a Packages index is mostly digests, which no preset
            // compresses; higher ones take twice the time for a few percent.
            let mut encoder = liblzma::write::XzEncoder::new(xz_file, 0);
            for piece in receiver {
                encoder.write_all(&piece)?;
            }
            encoder.finish()
        });
        Ok(IndexWriter {
            plain,
            gz,
            xz: Some(sender),
            xz_thread,
            piece: Vec::with_capacity(PIECE),
            dir: dir.to_path_buf(),
        })
    }

    pub fn write(&mut self, text: &[u8]) -> Result<(), AptError> {
        self.piece.extend_from_slice(text);
        if self.piece.len() >= PIECE {
            self.pass_on()?;
        }
        Ok(())
    }

    /// Flushes everything; the three files written, in [`INDEX_FILES`] order.
    pub fn finish(mut self) -> Result<Vec<Written>, AptError> {
        self.pass_on()?;
        drop(self.xz.take());
        let failed = |name: &str| AptError::io(self.dir.join(name).display().to_string());
        let xz = self
            .xz_thread
            .join()
            .expect("xz thread")
            .map_err(failed(INDEX_FILES[2]))?;
        let gz = self.gz.finish().map_err(failed(INDEX_FILES[1]))?;
        let mut written = Vec::new();
        for (name, file) in INDEX_FILES.into_iter().zip([self.plain, gz, xz]) {
            let (size, digests) = file.finish().map_err(failed(name))?;
            written.push(Written {
                name,
                path: self.dir.join(name),
                size,
                digests,
            });
        }
        Ok(written)
    }

    fn pass_on(&mut self) -> Result<(), AptError> {
        let piece = std::mem::replace(&mut self.piece, Vec::with_capacity(PIECE));
        let failed = |name: &str| AptError::io(self.dir.join(name).display().to_string());
        self.plain
            .write_all(&piece)
            .map_err(failed(INDEX_FILES[0]))?;
        self.gz.write_all(&piece).map_err(failed(INDEX_FILES[1]))?;
        if let Some(xz) = &self.xz
            && xz.send(piece).is_err()
        {
            // The xz thread stopped on an error; `finish` reports it.
            self.xz = None;
        }
        Ok(())
    }
}

/// A writer that hashes and counts what goes through it.
struct Hashing<W> {
    inner: W,
    hasher: Hasher,
    size: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hasher: Hasher::default(),
            size: 0,
        }
    }

    fn finish(mut self) -> std::io::Result<(u64, Digests)> {
        self.inner.flush()?;
        Ok((self.size, self.hasher.finish()))
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
