//! A Cloud Build file in an execution's workspace, as the engine reads it: the server masks
//! the secrets the file names in every stage's log before the `run` stage that reads it
//! starts, so reading the file is the orchestrator's as much as the stage's.

use std::path::Path;

use crate::workspace_files::{Beneath, WorkspaceFileError};

/// The secret-store names the Cloud Build file `config` in `workspace`
/// makes available (`availableSecrets`); none while there is no such file
/// or it does not parse (the stage reading it reports that).
pub async fn secret_names(workspace: &Path, config: &str) -> Vec<String> {
    let read = {
        let (workspace, config) = (workspace.to_owned(), config.to_owned());
        tokio::task::spawn_blocking(move || read_config(&workspace, &config)).await
    };
    let Ok(Ok((text, _))) = read else {
        return Vec::new();
    };
    gantry_cloudbuild::parse(config, &text)
        .map(|file| file.secrets.into_values().collect())
        .unwrap_or_default()
}

/// Cloud Build files larger than this are refused.
pub const MAX_CONFIG: u64 = 4 << 20;

/// The text of the Cloud Build file `config`, read beneath the workspace (`crate::
/// workspace_files`: a link out of it is refused, so the server never parses, or echoes in
/// an error, a file of its own), and the real path of its directory, where git is asked for
/// the commit.
pub fn read_config(
    workspace: &Path,
    config: &str,
) -> Result<(String, std::path::PathBuf), WorkspaceFileError> {
    let beneath = Beneath::workspace(workspace)?;
    let text = beneath.read_to_string(config, MAX_CONFIG)?;
    let parent = Path::new(config)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| ".".to_owned());
    let dir = beneath.open_dir(&parent)?;
    let real =
        std::fs::read_link(Beneath::fd_path(&dir)).map_err(|source| WorkspaceFileError::Io {
            path: parent,
            source,
        })?;
    Ok((text, real))
}
