use thiserror::Error;

#[derive(Debug, Error)]
pub enum ContainerError {
    #[error("container engine {0:?} is not installed (not found on PATH)")]
    NotInstalled(String),
    #[error("no container engine is installed (looked for podman and docker)")]
    NoneInstalled,
    #[error("unknown container engine {0:?}; expected podman or docker")]
    Unknown(String),
    #[error("{program} {action}: {message}")]
    Command {
        program: String,
        action: String,
        message: String,
    },
    #[error("registry {registry}: {message}")]
    Registry { registry: String, message: String },
    /// The registry asked for credentials, or refused the ones given.
    #[error("registry {registry} answered 401 unauthorized to {action}")]
    Unauthorized { registry: String, action: String },
    #[error("invalid image reference {0:?}")]
    BadReference(String),
}
