//! Names of repositories, snapshots, distributions, components and
//! prefixes. They become directory names and URL segments, so only a safe
//! alphabet is allowed and nothing that climbs out (`/` where not a
//! separator, `..`, a leading `.`).

use crate::AptError;

/// The default prefix, published at the root of `/apt/`.
pub const DEFAULT_PREFIX: &str = ".";

pub fn check_name(kind: &str, name: &str) -> Result<(), AptError> {
    let invalid = |reason: &str| {
        Err(AptError::Invalid(format!(
            "invalid {kind} name {name:?}: {reason}"
        )))
    };
    if name.is_empty() {
        return invalid("must not be empty");
    }
    if name.len() > 128 {
        return invalid("must be at most 128 characters");
    }
    if name.chars().any(char::is_control) {
        return invalid("must not contain control characters");
    }
    if name.contains('/') || name.contains("..") || name.starts_with('.') {
        return invalid("must not contain '/' or '..' or start with '.'");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-+~".contains(c))
    {
        return invalid("may contain only letters, digits and '._-+~'");
    }
    Ok(())
}

/// A prefix: `.` or `/`-separated safe names, none of them `dists` or
/// `pool` first (those belong to the default prefix's tree).
pub fn normalize_prefix(prefix: Option<&str>) -> Result<String, AptError> {
    let prefix = prefix.unwrap_or(DEFAULT_PREFIX).trim_matches('/');
    if prefix.is_empty() || prefix == DEFAULT_PREFIX {
        return Ok(DEFAULT_PREFIX.to_owned());
    }
    for segment in prefix.split('/') {
        check_name("prefix", segment)?;
    }
    let first = prefix.split('/').next().unwrap_or_default();
    if matches!(first, "dists" | "pool") {
        return Err(AptError::Invalid(format!(
            "invalid prefix name {prefix:?}: must not start with dists or pool"
        )));
    }
    Ok(prefix.to_owned())
}
