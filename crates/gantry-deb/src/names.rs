//! Package names and architectures as Debian policy allows them. They end
//! up in file names of the pool and in URLs, so anything that could climb
//! out of a directory (`/`, `..`) or hide in a terminal is refused.

use crate::DebError;

/// Policy 5.6.1: at least two characters, lowercase letters, digits, `+`,
/// `-`, `.`, starting with a letter or digit.
pub fn validate_name(name: &str) -> Result<(), DebError> {
    let invalid = |reason| DebError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.len() < 2 {
        return Err(invalid("must be at least two characters long"));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(invalid("must not contain control characters"));
    }
    if name.contains('/') || name.contains("..") {
        return Err(invalid("must not contain '/' or '..'"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err(invalid("must start with a lowercase letter or a digit"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
    {
        return Err(invalid(
            "may contain only lowercase letters, digits, '+', '-' and '.'",
        ));
    }
    Ok(())
}

/// An architecture such as `amd64`, `arm64` or `all`.
pub fn validate_architecture(arch: &str) -> Result<(), DebError> {
    let invalid = |reason| DebError::InvalidArchitecture {
        arch: arch.to_owned(),
        reason,
    };
    if arch.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if !arch
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || arch.starts_with('-')
    {
        return Err(invalid(
            "may contain only lowercase letters, digits and '-'",
        ));
    }
    Ok(())
}
