//! The `ar` archive format as dpkg writes and reads it: the global header
//! `!<arch>\n`, then per member a 60-byte header (name, mtime, uid, gid,
//! mode, size, terminator) and the data, padded to an even length.

pub(crate) const MAGIC: &[u8] = b"!<arch>\n";

/// Appends one member with fixed metadata (mtime, owner and mode), so that
/// the same contents give the same bytes.
pub(crate) fn write_member(out: &mut Vec<u8>, name: &str, mtime: u64, data: &[u8]) {
    let header = format!(
        "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
        name,
        mtime,
        0,
        0,
        "100644",
        data.len()
    );
    debug_assert_eq!(header.len(), 60);
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(b'\n');
    }
}

/// One member of an archive being read.
pub(crate) struct Member<'a> {
    pub name: String,
    pub data: &'a [u8],
}

/// Why reading a member failed: the archive ended early, or a header is
/// not a header.
#[derive(Debug)]
pub(crate) enum ReadError {
    Truncated(String),
    Corrupt(String),
}

/// Reads the members in order.
pub(crate) fn read_members(bytes: &[u8]) -> Result<Vec<Member<'_>>, ReadError> {
    let mut members = Vec::new();
    let mut at = MAGIC.len();
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + 60) else {
            return Err(ReadError::Truncated(format!(
                "member header at byte {at} is cut short"
            )));
        };
        if &header[58..60] != b"`\n" {
            return Err(ReadError::Corrupt(format!(
                "bad member header at byte {at}"
            )));
        }
        let name = String::from_utf8_lossy(&header[0..16])
            .trim_end()
            .trim_end_matches('/')
            .to_owned();
        let size: usize = std::str::from_utf8(&header[48..58])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| ReadError::Corrupt(format!("bad size of member {name:?}")))?;
        let start = at + 60;
        let Some(data) = start
            .checked_add(size)
            .and_then(|end| bytes.get(start..end))
        else {
            return Err(ReadError::Truncated(format!(
                "member {name:?} declares {size} bytes, {} remain",
                bytes.len() - start
            )));
        };
        members.push(Member { name, data });
        at = start + size + size % 2;
    }
    Ok(members)
}
