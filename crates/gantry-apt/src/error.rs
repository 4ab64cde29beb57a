use gantry_deb::DebError;
use gantry_store::StoreError;

/// What can go wrong with repositories, snapshots and publications.
/// `NotFound`, `Conflict` and `Invalid` are the caller's to fix; the rest
/// are ours or the machine's.
#[derive(Debug, thiserror::Error)]
pub enum AptError {
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Package(#[from] DebError),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error(transparent)]
    Store(StoreError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<StoreError> for AptError {
    fn from(error: StoreError) -> AptError {
        match error {
            StoreError::Conflict { kind, id } => {
                AptError::Conflict(format!("{kind} {id:?} already exists"))
            }
            StoreError::NotFound { kind, id } => AptError::NotFound { kind, name: id },
            other => AptError::Store(other),
        }
    }
}

impl AptError {
    pub(crate) fn io(path: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> AptError {
        let path = path.to_string();
        move |source| AptError::Io { path, source }
    }
}
