//! Checking a package read from a file a bounded buffer at a time, for
//! files too large to hold in memory (an upload of a gigabyte): the checks
//! of [`inspect`](crate::inspect), in the same order and with the same
//! refusals, and the digests computed as the bytes go by. Memory stays
//! around a megabyte whatever the file's size (an `.xz` member's decoder
//! aside, bounded by `XZ_MEMORY`). Small packages keep the in-memory path,
//! which is faster for them.
//!
//! Two passes: the first reads the `ar` member headers only, seeking over
//! the members' data, so that a truncated or damaged archive is refused
//! for that before anything else, as `inspect` refuses it; the second
//! reads the file once from start to end.

use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

use flate2::{Crc, Decompress, FlushDecompress, Status};

use crate::DebError;
use crate::ar::{self, ReadError};
use crate::inspect::{
    ForwardSeek, Hasher, Package, ar_error, check_magic, check_member_names, check_tar, no_members,
    package_of,
};

/// The largest `control` file accepted: real ones are a few kilobytes.
const CONTROL_LIMIT: u64 = 4 << 20;

/// The most an `.xz` member's decoder may allocate: what the largest
/// dictionary `xz -9` (and so `dpkg-deb -Zxz -z9`) uses, with room.
const XZ_MEMORY: u64 = 128 << 20;

/// How much of the file is read at a time.
const BUFFER: usize = 256 << 10;

/// Checks the package in `file` (from its start to its end); `what` names
/// it in errors.
pub fn inspect_reader<R: Read + Seek>(what: &str, mut file: R) -> Result<Package, DebError> {
    let io_error = |source: io::Error| DebError::Io {
        path: what.into(),
        source,
    };
    let layout = Layout::read(what, &mut file)?;
    file.seek(SeekFrom::Start(0)).map_err(io_error)?;
    let mut hashing = Hashing {
        inner: file,
        hasher: Hasher::default(),
        read: 0,
    };
    let control_text = check_members(what, &layout, &mut hashing)?;
    if hashing.read != layout.length {
        return Err(io_error(io::Error::other(
            "the file changed while it was checked",
        )));
    }
    package_of(what, &control_text, layout.length, hashing.hasher.finish())
}

/// The second pass: reads the whole file through `hashing` and checks the
/// members on the way; the text of the control file.
fn check_members<R: Read>(
    what: &str,
    layout: &Layout,
    hashing: &mut Hashing<R>,
) -> Result<String, DebError> {
    let corrupt = |reason: String| DebError::Corrupt {
        what: what.to_owned(),
        reason,
    };
    let io_error = |source: io::Error| DebError::Io {
        path: what.into(),
        source,
    };
    let mut reader = BufReader::with_capacity(BUFFER, hashing);
    let first = &layout.members[0];
    skip(&mut reader, first.start).map_err(io_error)?;
    let mut version = Vec::with_capacity(2);
    (&mut reader)
        .take(first.size.min(2))
        .read_to_end(&mut version)
        .map_err(io_error)?;
    if !version.starts_with(b"2.") {
        return Err(DebError::NotADeb {
            what: what.to_owned(),
            reason: "unsupported format version in debian-binary".to_owned(),
        });
    }
    let name = |index: usize| layout.members.get(index).map(|m| m.name.as_str());
    check_member_names(what, name(1), name(2))?;
    let (control, data) = (&layout.members[1], &layout.members[2]);
    let at = first.start + version.len() as u64;
    skip(&mut reader, control.start - at).map_err(io_error)?;

    let mut member = (&mut reader).take(control.size);
    let control_text = read_control(&control.name, &mut member).map_err(corrupt)?;
    let rest = member.limit();
    skip(&mut member, rest).map_err(io_error)?;
    let at = control.start + control.size;
    skip(&mut reader, data.start - at).map_err(io_error)?;

    let mut member = (&mut reader).take(data.size);
    check_tar(decompressor(&data.name, &mut member).map_err(corrupt)?)
        .map_err(|e| corrupt(format!("{}: {e}", data.name)))?;
    // The rest, other members included, is only hashed.
    io::copy(&mut reader, &mut io::sink()).map_err(io_error)?;
    Ok(control_text)
}

/// Where the members are, as the first pass found them.
struct Layout {
    length: u64,
    /// The first three (at least one, `debian-binary`); the names of the
    /// other two are checked in the order `inspect` checks them.
    members: Vec<Member>,
}

struct Member {
    name: String,
    start: u64,
    size: u64,
}

impl Layout {
    /// Reads every member header, as `ar::read_members` reads them from
    /// bytes in memory, keeping the first three.
    fn read(what: &str, file: &mut (impl Read + Seek)) -> Result<Layout, DebError> {
        let io_error = |source: io::Error| DebError::Io {
            path: what.into(),
            source,
        };
        let length = file.seek(SeekFrom::End(0)).map_err(io_error)?;
        file.seek(SeekFrom::Start(0)).map_err(io_error)?;
        let mut reader = BufReader::with_capacity(8 << 10, file);
        let mut head = Vec::with_capacity(ar::MAGIC.len());
        (&mut reader)
            .take(ar::MAGIC.len() as u64)
            .read_to_end(&mut head)
            .map_err(io_error)?;
        check_magic(what, &head)?;
        let mut members = Vec::with_capacity(3);
        let mut at = ar::MAGIC.len() as u64;
        let mut header = [0u8; 60];
        while at < length {
            if length - at < 60 {
                return Err(ar_error(
                    what,
                    ReadError::Truncated(format!("member header at byte {at} is cut short")),
                ));
            }
            reader.read_exact(&mut header).map_err(io_error)?;
            let (name, size) = parse_header(at, &header).map_err(|e| ar_error(what, e))?;
            let start = at + 60;
            if size > length - start {
                return Err(ar_error(
                    what,
                    ReadError::Truncated(format!(
                        "member {name:?} declares {size} bytes, {} remain",
                        length - start
                    )),
                ));
            }
            if members.len() < 3 {
                members.push(Member { name, start, size });
            }
            at = start + size + size % 2;
            if at < length {
                reader
                    .seek_relative((at - start) as i64)
                    .map_err(io_error)?;
            }
        }
        let Some(first) = members.first() else {
            return Err(no_members(what));
        };
        if first.name != "debian-binary" {
            return Err(DebError::NotADeb {
                what: what.to_owned(),
                reason: "the first member is not debian-binary".to_owned(),
            });
        }
        Ok(Layout { length, members })
    }
}

/// A member header's name and size, as `ar::read_members` reads them.
fn parse_header(at: u64, header: &[u8; 60]) -> Result<(String, u64), ReadError> {
    if &header[58..60] != b"`\n" {
        return Err(ReadError::Corrupt(format!(
            "bad member header at byte {at}"
        )));
    }
    let name = String::from_utf8_lossy(&header[0..16])
        .trim_end()
        .trim_end_matches('/')
        .to_owned();
    let size = std::str::from_utf8(&header[48..58])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| ReadError::Corrupt(format!("bad size of member {name:?}")))?;
    Ok((name, size))
}

/// Skips `count` bytes of `reader`; fewer is an error.
fn skip(reader: &mut impl Read, count: u64) -> io::Result<()> {
    let skipped = io::copy(&mut reader.take(count), &mut io::sink())?;
    if skipped < count {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file ends early",
        ));
    }
    Ok(())
}

/// A reader hashing what it reads.
struct Hashing<R> {
    inner: R,
    hasher: Hasher,
    read: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        self.read += read as u64;
        Ok(read)
    }
}

/// The `control` file of a `control.tar*` member, which is then read to its
/// end, as `inspect` decompresses it whole.
fn read_control(name: &str, member: &mut impl BufRead) -> Result<String, String> {
    let decoder = decompressor(name, member)?;
    let mut archive = tar::Archive::new(ForwardSeek {
        inner: decoder,
        position: 0,
    });
    let mut control = None;
    let entries = archive
        .entries_with_seek()
        .map_err(|e| format!("control.tar: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("control.tar: {e}"))?;
        let path = entry.path().map_err(|e| format!("control.tar: {e}"))?;
        if path.to_string_lossy().trim_start_matches("./") != "control" {
            continue;
        }
        if entry.size() > CONTROL_LIMIT {
            return Err(format!(
                "control.tar: the control file is larger than {} MiB",
                CONTROL_LIMIT >> 20
            ));
        }
        let mut text = String::new();
        entry
            .read_to_string(&mut text)
            .map_err(|e| format!("control.tar: control: {e}"))?;
        control = Some(text);
        break;
    }
    let control = control.ok_or_else(|| "control.tar has no control file".to_owned())?;
    let mut decoder = archive.into_inner().inner;
    io::copy(&mut decoder, &mut io::sink()).map_err(|e| format!("{name}: {e}"))?;
    Ok(control)
}

/// A reader of the uncompressed member, as `inspect`'s but over a stream.
fn decompressor<'a>(name: &str, member: impl BufRead + 'a) -> Result<Box<dyn Read + 'a>, String> {
    if name.ends_with(".gz") {
        Ok(Box::new(
            GzStream::new(member).map_err(|e| format!("{name}: {e}"))?,
        ))
    } else if name.ends_with(".xz") {
        let stream = liblzma::stream::Stream::new_stream_decoder(XZ_MEMORY, 0)
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(Box::new(liblzma::bufread::XzDecoder::new_stream(
            member, stream,
        )))
    } else if name.ends_with(".tar") {
        Ok(Box::new(member))
    } else {
        Err(format!("{name}: unsupported compression"))
    }
}

/// One gzip member read from a stream, with the framing checks of
/// `gzip::GzMember` (which reads a member held in memory) and the same
/// refusals.
struct GzStream<R> {
    input: R,
    inflater: Decompress,
    crc: Crc,
    finished: bool,
}

/// FTEXT (a hint, ignored) and the four below.
const KNOWN_FLAGS: u8 = 0x1f;
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

impl<R: BufRead> GzStream<R> {
    fn new(mut input: R) -> io::Result<GzStream<R>> {
        skip_header(&mut input)?;
        Ok(GzStream {
            input,
            inflater: Decompress::new(false),
            crc: Crc::new(),
            finished: false,
        })
    }

    fn check_trailer(&mut self) -> io::Result<()> {
        let mut trailer = [0u8; 8];
        self.input.read_exact(&mut trailer).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                corrupt("the gzip trailer is cut")
            } else {
                e
            }
        })?;
        let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let length = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
        if crc != self.crc.sum() {
            return Err(corrupt("gzip CRC-32 mismatch"));
        }
        if length != self.crc.amount() {
            return Err(corrupt("gzip length mismatch"));
        }
        Ok(())
    }
}

impl<R: BufRead> Read for GzStream<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.finished || out.is_empty() {
            return Ok(0);
        }
        loop {
            let input = self.input.fill_buf()?;
            let (read_before, written_before) =
                (self.inflater.total_in(), self.inflater.total_out());
            let status = self
                .inflater
                .decompress(input, out, FlushDecompress::None)
                .map_err(|e| corrupt(&format!("deflate: {e}")))?;
            let read = (self.inflater.total_in() - read_before) as usize;
            let written = (self.inflater.total_out() - written_before) as usize;
            self.input.consume(read);
            self.crc.update(&out[..written]);
            if status == Status::StreamEnd {
                self.finished = true;
                self.check_trailer()?;
                return Ok(written);
            }
            if written > 0 {
                return Ok(written);
            }
            if read == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the deflate stream is cut",
                ));
            }
        }
    }
}

/// Reads past a gzip header (RFC 1952, 2.3).
fn skip_header(input: &mut impl BufRead) -> io::Result<()> {
    let cut = |e: io::Error| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            corrupt("the gzip header is cut")
        } else {
            e
        }
    };
    let mut fixed = [0u8; 10];
    input.read_exact(&mut fixed).map_err(cut)?;
    if fixed[..3] != [0x1f, 0x8b, 8] {
        return Err(corrupt("not gzip data (or not deflate-compressed)"));
    }
    let flags = fixed[3];
    if flags & !KNOWN_FLAGS != 0 {
        return Err(corrupt("reserved gzip header flags are set"));
    }
    if flags & FEXTRA != 0 {
        let mut length = [0u8; 2];
        input.read_exact(&mut length).map_err(cut)?;
        skip(input, u16::from_le_bytes(length) as u64).map_err(cut)?;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            skip_past_zero(input).map_err(cut)?;
        }
    }
    if flags & FHCRC != 0 {
        skip(input, 2).map_err(cut)?;
    }
    Ok(())
}

/// Reads up to and including the next zero byte, keeping nothing: a name
/// in a header may be as long as the sender likes.
fn skip_past_zero(input: &mut impl BufRead) -> io::Result<()> {
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        match buffer.iter().position(|&b| b == 0) {
            Some(end) => {
                input.consume(end + 1);
                return Ok(());
            }
            None => {
                let length = buffer.len();
                input.consume(length);
            }
        }
    }
}

fn corrupt(reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.to_owned())
}

#[cfg(test)]
mod tests;
