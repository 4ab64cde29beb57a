//! Reading a `.deb` back: its control paragraph, checked, and the hashes a
//! repository index lists. Anything that is not a well-formed package is
//! refused with the reason.

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use crate::DebError;
use crate::ar::{self, ReadError};
use crate::control::{Control, parse_paragraphs};
use crate::gzip::GzMember;
use crate::names::{validate_architecture, validate_name};
use crate::version::Version;

/// A checked package: its control paragraph and the file's size and hashes.
#[derive(Clone, Debug)]
pub struct Package {
    pub control: Control,
    pub name: String,
    pub version: Version,
    pub architecture: String,
    pub size: u64,
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    pub sha512: String,
}

pub fn inspect_file(path: &Path) -> Result<Package, DebError> {
    let bytes = std::fs::read(path).map_err(DebError::io(path))?;
    inspect(&path.display().to_string(), &bytes)
}

/// Checks `bytes` as a package; `what` names it in errors (a file name).
pub fn inspect(what: &str, bytes: &[u8]) -> Result<Package, DebError> {
    let not_a_deb = |reason: &str| DebError::NotADeb {
        what: what.to_owned(),
        reason: reason.to_owned(),
    };
    check_magic(what, bytes)?;
    let members = ar::read_members(bytes).map_err(|error| ar_error(what, error))?;
    let Some(first) = members.first() else {
        return Err(no_members(what));
    };
    if first.name != "debian-binary" {
        return Err(not_a_deb("the first member is not debian-binary"));
    }
    if !first.data.starts_with(b"2.") {
        return Err(not_a_deb("unsupported format version in debian-binary"));
    }
    let corrupt = |reason: String| DebError::Corrupt {
        what: what.to_owned(),
        reason,
    };
    let name = |index: usize| members.get(index).map(|m| m.name.as_str());
    check_member_names(what, name(1), name(2))?;
    let (control_member, data_member) = (&members[1], &members[2]);

    let control_tar = decompress(&control_member.name, control_member.data).map_err(&corrupt)?;
    let control_text = find_control(&control_tar).map_err(&corrupt)?;
    check_tar(decompressor(&data_member.name, data_member.data).map_err(&corrupt)?)
        .map_err(|e| corrupt(format!("{}: {e}", data_member.name)))?;
    package_of(what, &control_text, bytes.len() as u64, Digests::of(bytes))
}

/// The file must start with the `ar` header; `head` is its start (or all
/// of it).
pub(crate) fn check_magic(what: &str, head: &[u8]) -> Result<(), DebError> {
    if head.starts_with(ar::MAGIC) {
        return Ok(());
    }
    if ar::MAGIC.starts_with(head) {
        return Err(DebError::Truncated {
            what: what.to_owned(),
            reason: "the file ends inside the ar header".to_owned(),
        });
    }
    Err(DebError::NotADeb {
        what: what.to_owned(),
        reason: "no ar archive header".to_owned(),
    })
}

/// An `ar` error as the refusal of `what`.
pub(crate) fn ar_error(what: &str, error: ReadError) -> DebError {
    match error {
        ReadError::Truncated(reason) => DebError::Truncated {
            what: what.to_owned(),
            reason,
        },
        ReadError::Corrupt(reason) => DebError::Corrupt {
            what: what.to_owned(),
            reason,
        },
    }
}

pub(crate) fn no_members(what: &str) -> DebError {
    DebError::Truncated {
        what: what.to_owned(),
        reason: "the archive has no members".to_owned(),
    }
}

/// The second and third members must be `control.tar*` and `data.tar*`
/// (the first was checked with its contents).
pub(crate) fn check_member_names(
    what: &str,
    second: Option<&str>,
    third: Option<&str>,
) -> Result<(), DebError> {
    let corrupt = |reason: &str| DebError::Corrupt {
        what: what.to_owned(),
        reason: reason.to_owned(),
    };
    if !second.is_some_and(|n| n.starts_with("control.tar")) {
        return Err(corrupt("the second member is not control.tar"));
    }
    if !third.is_some_and(|n| n.starts_with("data.tar")) {
        return Err(corrupt("the third member is not data.tar"));
    }
    Ok(())
}

/// The package described by the control file `control_text` of a file of
/// `size` bytes with these digests: its paragraph must be one, with a
/// valid name, version and architecture.
pub(crate) fn package_of(
    what: &str,
    control_text: &str,
    size: u64,
    digests: Digests,
) -> Result<Package, DebError> {
    let corrupt = |reason: String| DebError::Corrupt {
        what: what.to_owned(),
        reason,
    };
    let mut paragraphs =
        parse_paragraphs(control_text).map_err(|e| corrupt(format!("control file: {e}")))?;
    if paragraphs.len() != 1 {
        return Err(corrupt(format!(
            "control file has {} paragraphs, expected one",
            paragraphs.len()
        )));
    }
    let control = paragraphs.remove(0);
    let field = |name: &'static str| {
        control
            .get(name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or(DebError::MissingField {
                what: what.to_owned(),
                field: name,
            })
    };
    let name = field("Package")?;
    let version = field("Version")?;
    let architecture = field("Architecture")?;
    validate_name(&name)?;
    let version = Version::parse(&version)?;
    validate_architecture(&architecture)?;
    Ok(Package {
        name,
        version,
        architecture,
        size,
        md5: digests.md5,
        sha1: digests.sha1,
        sha256: digests.sha256,
        sha512: digests.sha512,
        control,
    })
}

/// The four digests an APT index lists for a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digests {
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    pub sha512: String,
}

impl Digests {
    /// All four in one pass over `bytes`, a cache-sized block at a time,
    /// so that a large file is read from memory once rather than four times.
    pub fn of(bytes: &[u8]) -> Digests {
        let mut hasher = Hasher::default();
        for block in bytes.chunks(64 << 10) {
            hasher.update(block);
        }
        hasher.finish()
    }
}

/// [`Digests`] of data that arrives in pieces.
#[derive(Clone, Default)]
pub struct Hasher {
    md5: Md5,
    sha1: Sha1,
    sha256: Sha256,
    sha512: Sha512,
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        self.sha1.update(data);
        self.sha256.update(data);
        self.sha512.update(data);
    }

    pub fn finish(self) -> Digests {
        Digests {
            md5: hex::encode(self.md5.finalize()),
            sha1: hex::encode(self.sha1.finalize()),
            sha256: hex::encode(self.sha256.finalize()),
            sha512: hex::encode(self.sha512.finalize()),
        }
    }
}

fn decompress(name: &str, data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    decompressor(name, data)?
        .read_to_end(&mut out)
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(out)
}

/// A reader of the uncompressed member, so that a large `data.tar` is
/// checked without being held in memory. Both decoders read the member's
/// bytes in place, with no buffer of their own to allocate and zero per
/// package; `.gz` reuses the thread's inflater (`gzip.rs`).
fn decompressor<'a>(name: &str, data: &'a [u8]) -> Result<Box<dyn Read + 'a>, String> {
    if name.ends_with(".gz") {
        Ok(Box::new(
            GzMember::new(data).map_err(|e| format!("{name}: {e}"))?,
        ))
    } else if name.ends_with(".xz") {
        Ok(Box::new(liblzma::bufread::XzDecoder::new(data)))
    } else if name.ends_with(".tar") {
        Ok(Box::new(data))
    } else {
        Err(format!("{name}: unsupported compression"))
    }
}

fn find_control(tar_bytes: &[u8]) -> Result<String, String> {
    let mut archive = tar::Archive::new(Cursor::new(tar_bytes));
    let entries = archive
        .entries_with_seek()
        .map_err(|e| format!("control.tar: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("control.tar: {e}"))?;
        let path = entry.path().map_err(|e| format!("control.tar: {e}"))?;
        let name = path.to_string_lossy().trim_start_matches("./").to_owned();
        if name == "control" {
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|e| format!("control.tar: control: {e}"))?;
            return Ok(text);
        }
    }
    Err("control.tar has no control file".to_owned())
}

/// Reads every entry through, so that a cut or damaged data archive is
/// found now rather than by `dpkg -i` on a server.
pub(crate) fn check_tar(tar: impl Read) -> Result<(), String> {
    let mut archive = tar::Archive::new(ForwardSeek {
        inner: tar,
        position: 0,
    });
    // One buffer for all entries: `io::copy` zeroes a new one each time.
    let mut scratch = [0u8; 8192];
    for entry in archive.entries_with_seek().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        while entry.read(&mut scratch).map_err(|e| e.to_string())? > 0 {}
    }
    Ok(())
}

/// A reader that "seeks" forward by reading and dropping the bytes. The tar
/// reader skips each entry's padding by seeking when it can; when it
/// cannot, it zeroes a 32 KiB buffer to read the padding into, nine times
/// per package: a sixth of a small package's check. Seeking anywhere but
/// forward is refused, which the tar reader never asks for.
pub(crate) struct ForwardSeek<R> {
    pub(crate) inner: R,
    /// Bytes read so far: the answer to a seek, from which the tar reader
    /// computes where the next header starts.
    pub(crate) position: u64,
}

impl<R: Read> Read for ForwardSeek<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.position += read as u64;
        Ok(read)
    }
}

impl<R: Read> Seek for ForwardSeek<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let SeekFrom::Current(ahead @ 0..) = to else {
            return Err(std::io::Error::other("only forward seeks are possible"));
        };
        // Padding is under 512 bytes; a longer skip takes several reads.
        let mut dropped = [0u8; 512];
        let mut left = ahead as u64;
        while left > 0 {
            let want = left.min(dropped.len() as u64) as usize;
            match self.read(&mut dropped[..want])? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                read => left -= read as u64,
            }
        }
        Ok(self.position)
    }
}

/// Unpacks the files of a checked package (its `data.tar`) under `dest`.
/// Entries that would land outside `dest` (`..`, absolute links) are
/// refused by the tar reader.
pub fn extract_data(what: &str, bytes: &[u8], dest: &Path) -> Result<(), DebError> {
    inspect(what, bytes)?;
    let members = ar::read_members(bytes).map_err(|_| DebError::Corrupt {
        what: what.to_owned(),
        reason: "unreadable archive".to_owned(),
    })?;
    let data = &members[2];
    let tar_bytes = decompress(&data.name, data.data).map_err(|reason| DebError::Corrupt {
        what: what.to_owned(),
        reason,
    })?;
    std::fs::create_dir_all(dest).map_err(DebError::io(dest))?;
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    archive.set_preserve_permissions(true);
    for entry in archive.entries().map_err(DebError::io(dest))? {
        let mut entry = entry.map_err(DebError::io(dest))?;
        entry.unpack_in(dest).map_err(DebError::io(dest))?;
    }
    Ok(())
}
