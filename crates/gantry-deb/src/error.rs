use std::path::PathBuf;

/// What can go wrong building or reading a package. Messages name the
/// object and the problem, lowercase, without a trailing period.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("{what}: not a Debian package ({reason})")]
    NotADeb { what: String, reason: String },
    #[error("{what}: truncated archive ({reason})")]
    Truncated { what: String, reason: String },
    #[error("{what}: corrupt archive ({reason})")]
    Corrupt { what: String, reason: String },
    #[error("{what}: control file is missing the {field} field")]
    MissingField { what: String, field: &'static str },
    #[error("invalid package name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid version {version:?}: {reason}")]
    InvalidVersion {
        version: String,
        reason: &'static str,
    },
    #[error("invalid architecture {arch:?}: {reason}")]
    InvalidArchitecture { arch: String, reason: &'static str },
    #[error("invalid control field {field}: {reason}")]
    InvalidField { field: String, reason: &'static str },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DebError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DebError {
        let path = path.into();
        move |source| DebError::Io { path, source }
    }
}
