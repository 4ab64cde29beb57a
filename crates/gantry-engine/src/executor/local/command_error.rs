//! Why a step's command could not be built; the executor shows it after the step's name.

use gantry_container::ContainerError;
use gantry_sandbox::SandboxError;

use super::fd_delivery::DeliveryError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum CommandError {
    /// The image could not be found or pulled, or its command read.
    #[error("{0}")]
    Image(#[from] ContainerError),
    #[error("image {image:?} names no command and the step gives none")]
    NoCommand { image: String },
    #[error("{0}")]
    Secrets(#[from] DeliveryError),
    #[error("cannot hand its script over: {0}")]
    ScriptHandOver(std::io::Error),
    #[error("cannot write its script: {0}")]
    ScriptWrite(std::io::Error),
    /// The sandbox could not take the output file or confine the step.
    #[error("{0}")]
    Sandbox(#[from] SandboxError),
    #[error("dir {dir:?} must be a relative path inside the workspace")]
    DirOutside { dir: String },
    #[error("cannot create dir {dir:?}: {source}")]
    CreateDir { dir: String, source: std::io::Error },
}
