//! Why a bake failed; the stage shows it after `bake IMAGE: `.

use std::path::PathBuf;
use std::process::ExitStatus;

use gantry_container::ContainerError;
use gantry_store::StoreError;

use crate::secret_lookup::RegistryCredentialsError;
use crate::workspace_files::WorkspaceFileError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum BakeError {
    #[error("no container engine is installed (podman or docker)")]
    NoContainerEngine,
    /// The workspace cannot be opened beneath (it is gone, or not a directory).
    #[error("{0}")]
    Workspace(WorkspaceFileError),
    #[error("the build context {shown:?} is not a directory in the workspace")]
    ContextNotADirectory { shown: String },
    #[error("the build context: {0}")]
    Context(WorkspaceFileError),
    #[error("the build context {shown:?}: {source}")]
    ContextPath {
        shown: String,
        source: std::io::Error,
    },
    /// A file of the build context could not be read while computing the bake key.
    #[error("{path}: {source}")]
    ContextFile {
        path: String,
        source: std::io::Error,
    },
    #[error("containerfile {given:?} not found in the build context")]
    ContainerfileNotFound { given: String },
    #[error("no Containerfile or Dockerfile in the build context")]
    NoContainerfile,
    #[error("containerfile: {0}")]
    Containerfile(WorkspaceFileError),
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The blocking preparation task panicked or was aborted.
    #[error("{0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot start {engine} build: {source}")]
    Start {
        engine: &'static str,
        source: std::io::Error,
    },
    #[error("canceled")]
    Canceled,
    #[error("{engine} build failed ({status}); see the stage's log")]
    BuildFailed {
        engine: &'static str,
        status: ExitStatus,
    },
    #[error("{engine} build: {source}")]
    Wait {
        engine: &'static str,
        source: std::io::Error,
    },
    #[error(transparent)]
    Credentials(#[from] RegistryCredentialsError),
    #[error(transparent)]
    Registry(#[from] super::RegistryRefusal),
    #[error("{0}")]
    ImageId(ContainerError),
}
