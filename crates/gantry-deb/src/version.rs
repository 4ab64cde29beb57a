//! Debian versions, `[epoch:]upstream[-revision]`, ordered exactly as
//! dpkg's `verrevcmp` orders them (`~` sorts before everything, even the
//! end of the string; letters before other symbols; digit runs numerically).

use std::cmp::Ordering;
use std::fmt;

use crate::DebError;

/// A parsed, valid Debian version. `Ord` is dpkg's order; `Eq` follows it
/// (`1.0` equals `0:1.0` and `1.0-0`... as dpkg says, `1.0` equals `1.0-0`
/// only in order, the text stays as given).
#[derive(Clone, Debug)]
pub struct Version {
    text: String,
    epoch: u64,
    upstream: String,
    revision: String,
}

impl Version {
    pub fn parse(text: &str) -> Result<Version, DebError> {
        let invalid = |reason| DebError::InvalidVersion {
            version: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(invalid("must not contain whitespace or control characters"));
        }
        if text.contains('/') {
            return Err(invalid("must not contain '/'"));
        }
        let (epoch, rest) = match text.split_once(':') {
            Some((epoch, rest)) => {
                if epoch.is_empty() || !epoch.chars().all(|c| c.is_ascii_digit()) {
                    return Err(invalid("epoch must be a number"));
                }
                let epoch = epoch.parse().map_err(|_| invalid("epoch is too large"))?;
                (epoch, rest)
            }
            None => (0, text),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((upstream, revision)) => (upstream, revision),
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(invalid("upstream version must not be empty"));
        }
        if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(invalid("upstream version must start with a digit"));
        }
        if !upstream
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~-:".contains(c))
        {
            return Err(invalid(
                "upstream version may contain only letters, digits and '.+~-:'",
            ));
        }
        if rest.ends_with('-') {
            return Err(invalid("revision must not be empty"));
        }
        if !revision
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~".contains(c))
        {
            return Err(invalid(
                "revision may contain only letters, digits and '.+~'",
            ));
        }
        Ok(Version {
            text: text.to_owned(),
            epoch,
            upstream: upstream.to_owned(),
            revision: revision.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The version as it appears in file names: without the epoch, since
    /// `:` is awkward in URLs and Debian's own pools leave it out.
    pub fn without_epoch(&self) -> &str {
        match self.text.split_once(':') {
            Some((_, rest)) => rest,
            None => &self.text,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(&self.upstream, &other.upstream))
            .then_with(|| verrevcmp(&self.revision, &other.revision))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

/// Compares two version strings; an invalid one is an error.
pub fn compare_versions(a: &str, b: &str) -> Result<Ordering, DebError> {
    Ok(Version::parse(a)?.cmp(&Version::parse(b)?))
}

/// dpkg's weight of one character of a non-digit run; `None` is the end.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}
