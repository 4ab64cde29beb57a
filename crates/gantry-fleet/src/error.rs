//! What can go wrong with a fleet host, each naming the host and the cause.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum FleetError {
    #[error("unknown host {0:?}")]
    UnknownHost(String),
    #[error("host {host:?}: the private key secret {secret:?} is not in the secret store")]
    MissingKey { host: String, secret: String },
    #[error(
        "host {host:?} presented host key {presented}, not the pinned {expected}: refused (if the host was reinstalled, put its new key in hostKey)"
    )]
    HostKeyChanged {
        host: String,
        expected: String,
        presented: String,
    },
    #[error("host {host:?}: authentication refused for user {user:?} (is the key authorised?)")]
    AuthRefused { host: String, user: String },
    #[error("host {host:?} is unreachable: {cause}")]
    Unreachable { host: String, cause: String },
    #[error("host {host:?}: {what} failed: {cause}")]
    Remote {
        host: String,
        what: String,
        cause: String,
    },
    /// The host's engine could not pull a group's image.
    #[error("{host}: {message}")]
    Pull { host: String, message: String },
    #[error("host {host:?}: the agent answered: {message}")]
    Agent { host: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("fleet store: {0}")]
    Store(#[from] gantry_store::StoreError),
    #[error("secret store: {0}")]
    Secrets(#[from] gantry_secrets::SecretError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl FleetError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> FleetError {
        let what = what.into();
        move |source| FleetError::Io { what, source }
    }

    /// A fault of reaching the host rather than of what was asked of it:
    /// the host is then shown unreachable and its instances are replaced.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, FleetError::Unreachable { .. })
    }
}
