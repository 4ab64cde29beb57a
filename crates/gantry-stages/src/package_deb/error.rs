//! Why `packageDeb`, `publishDeb` or a deploy's `package:` failed; shown as is.

use gantry_apt::AptError;
use gantry_deb::DebError;

use crate::workspace_files::WorkspaceFileError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum PackageDebError {
    /// The workspace cannot be opened beneath (it is gone, or not a directory).
    #[error("{0}")]
    Workspace(WorkspaceFileError),
    #[error("cannot read {name} script: {source}")]
    Script {
        name: &'static str,
        source: WorkspaceFileError,
    },
    #[error("packageDeb directory: {0}")]
    Directory(WorkspaceFileError),
    /// The builder's message, naming the package's directory rather than the descriptor
    /// path it was handed.
    #[error("{0}")]
    Build(String),
    #[error("{0}")]
    Inspect(DebError),
    #[error("packageDeb output: {0}")]
    Output(WorkspaceFileError),
    #[error("package build task: {0}")]
    BuildTask(tokio::task::JoinError),
    #[error("this server has no APT repositories")]
    NoApt,
    #[error("publishDeb: reading the package stopped: {0}")]
    ReadTask(tokio::task::JoinError),
    #[error("publishDeb file: {0}")]
    File(WorkspaceFileError),
    #[error("{0}")]
    Apt(#[from] AptError),
    #[error("the file added no package")]
    NoPackageAdded,
}
