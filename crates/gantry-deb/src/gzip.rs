//! Reading a `.gz` member of a package with an inflater each thread keeps.
//!
//! `flate2::bufread::GzDecoder` sets up a new inflater for every stream:
//! a 47.5 KB allocation, two per package an add checks. Freed between
//! packages while the records of checked ones are kept, those blocks left
//! holes in the heap that the records' small strings filled: adding 1,000
//! packages peaked 2.5 MiB above its live data. Here each thread resets
//! and reuses one inflater; the gzip framing around the deflate stream
//! (RFC 1952: header, CRC-32 and length trailer) is read here.

use std::cell::Cell;
use std::io::{self, Read};

use flate2::{Crc, Decompress, FlushDecompress, Status};

thread_local! {
    /// This thread's inflater, when no member is being read.
    static INFLATER: Cell<Option<Decompress>> = const { Cell::new(None) };
}

/// FTEXT (a hint, ignored) and the four below.
const KNOWN_FLAGS: u8 = 0x1f;
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

/// The uncompressed bytes of one gzip member held in memory.
pub(crate) struct GzMember<'a> {
    /// The deflate stream not inflated yet, then the trailer.
    input: &'a [u8],
    /// Taken from this thread's slot, given back on drop.
    inflater: Option<Decompress>,
    crc: Crc,
    finished: bool,
}

impl<'a> GzMember<'a> {
    /// Reads the header; the member's bytes come from `read`.
    pub fn new(data: &'a [u8]) -> io::Result<GzMember<'a>> {
        let input = skip_header(data)?;
        let inflater = INFLATER.take().map_or_else(
            || Decompress::new(false),
            |mut inflater| {
                inflater.reset(false);
                inflater
            },
        );
        Ok(GzMember {
            input,
            inflater: Some(inflater),
            crc: Crc::new(),
            finished: false,
        })
    }

    /// After the deflate stream: its CRC-32 and length (mod 2^32) must be
    /// those of what was inflated. Bytes after the trailer are ignored, as
    /// gzip and `flate2` ignore them.
    fn check_trailer(&self) -> io::Result<()> {
        let Some(trailer) = self.input.get(..8) else {
            return Err(corrupt("the gzip trailer is cut"));
        };
        let crc = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
        let length = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes"));
        if crc != self.crc.sum() {
            return Err(corrupt("gzip CRC-32 mismatch"));
        }
        if length != self.crc.amount() {
            return Err(corrupt("gzip length mismatch"));
        }
        Ok(())
    }
}

impl Read for GzMember<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.finished || out.is_empty() {
            return Ok(0);
        }
        let inflater = self.inflater.as_mut().expect("held until drop");
        loop {
            let (read_before, written_before) = (inflater.total_in(), inflater.total_out());
            let status = inflater
                .decompress(self.input, out, FlushDecompress::None)
                .map_err(|e| corrupt(&format!("deflate: {e}")))?;
            let read = (inflater.total_in() - read_before) as usize;
            let written = (inflater.total_out() - written_before) as usize;
            self.input = &self.input[read..];
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

impl Drop for GzMember<'_> {
    fn drop(&mut self) {
        INFLATER.set(self.inflater.take());
    }
}

/// The bytes after a gzip header (RFC 1952, 2.3).
fn skip_header(data: &[u8]) -> io::Result<&[u8]> {
    let cut = || corrupt("the gzip header is cut");
    let fixed = data.get(..10).ok_or_else(cut)?;
    if fixed[..3] != [0x1f, 0x8b, 8] {
        return Err(corrupt("not gzip data (or not deflate-compressed)"));
    }
    let flags = fixed[3];
    if flags & !KNOWN_FLAGS != 0 {
        return Err(corrupt("reserved gzip header flags are set"));
    }
    let mut rest = &data[10..];
    if flags & FEXTRA != 0 {
        let length = rest.get(..2).ok_or_else(cut)?;
        let length = u16::from_le_bytes([length[0], length[1]]) as usize;
        rest = rest.get(2 + length..).ok_or_else(cut)?;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let end = rest.iter().position(|&b| b == 0).ok_or_else(cut)?;
            rest = &rest[end + 1..];
        }
    }
    if flags & FHCRC != 0 {
        rest = rest.get(2..).ok_or_else(cut)?;
    }
    Ok(rest)
}

fn corrupt(reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.to_owned())
}
