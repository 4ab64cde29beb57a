//! A stage's directories and volumes, before its first step and after its
//! last.

use std::path::{Path, PathBuf};

use gantry_container::{ContainerEngine, ContainerError};

use super::{LocalExecutor, labels};
use crate::executor::StageSpec;

/// Why a stage's directories or volumes could not be made ready, or removed.
#[derive(Debug, thiserror::Error)]
pub(super) enum PrepareError {
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the step user's git config: {0}")]
    GitConfig(std::io::Error),
    #[error("cannot make {} traversable: {source}", path.display())]
    Traversable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    HandOver(gantry_sandbox::SandboxError),
    #[error("cannot prepare the step user's directories: {0}")]
    Task(tokio::task::JoinError),
    #[error("volume {name:?}: {source}")]
    Volume {
        name: String,
        source: ContainerError,
    },
    /// Removing the stage's containers or volumes failed.
    #[error("{0}")]
    Remove(#[from] ContainerError),
}

/// The stage's private temporary directory: `HOME` and `TMPDIR` of its
/// confined host steps.
pub(super) fn tmp_dir(stage: &StageSpec) -> PathBuf {
    stage.run_dir.join("tmp")
}

/// The stage's temporary directory, its confined host steps' `HOME`; with a
/// step user, the stage's workspace and run directory (with its temporary
/// directory) become that user's, and the directories above them in the
/// data directory traversable (`--x` for others, never readable), so that
/// its host steps reach them and nothing else.
pub(super) async fn confinement(
    executor: &LocalExecutor,
    stage: &StageSpec,
) -> Result<(), PrepareError> {
    let Some(sandbox) = executor.sandbox().cloned() else {
        return Ok(());
    };
    let stepped_down = sandbox.identity().is_some();
    let data_dir = executor.config.data_dir.clone();
    let workspace = stage.workspace.clone();
    let run_dir = stage.run_dir.clone();
    let tmp = tmp_dir(stage);
    let work = move || -> Result<(), PrepareError> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&tmp).map_err(|source| PrepareError::CreateDir {
            path: tmp.clone(),
            source,
        })?;
        // A confined step's git trusts repositories other users own (a
        // clone from a path the server's user made): what git's ownership
        // check guards against, config planted by another user running as
        // this one, cannot hurt a step that holds nothing but its stage (the
        // step user's, or a runner user's under Landlock).
        std::fs::write(tmp.join(".gitconfig"), "[safe]\n\tdirectory = *\n")
            .map_err(PrepareError::GitConfig)?;
        if !stepped_down {
            return Ok(());
        }
        let traversed = [
            data_dir.clone(),
            data_dir.join("workspaces"),
            data_dir.join("runs"),
            run_dir.parent().map(Path::to_owned).unwrap_or_default(),
        ];
        for dir in traversed {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).map_err(
                |source| PrepareError::Traversable {
                    path: dir.clone(),
                    source,
                },
            )?;
        }
        sandbox
            .hand_over(&workspace)
            .map_err(PrepareError::HandOver)?;
        sandbox.hand_over(&run_dir).map_err(PrepareError::HandOver)
    };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(PrepareError::Task)?
}

/// Creates the named volumes the steps mount, labelled so that the end of
/// the stage (or a restart's cleanup) finds and removes them.
pub(super) async fn volumes(
    executor: &LocalExecutor,
    stage: &StageSpec,
) -> Result<(), PrepareError> {
    let Some(engine) = executor.containers().filter(|_| stage.uses_containers) else {
        return Ok(());
    };
    let labels = labels(stage);
    for name in &stage.volumes {
        labels
            .create_volume(engine, name)
            .await
            .map_err(|source| PrepareError::Volume {
                name: name.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Removes what the stage's containers left: the containers themselves
/// (a safety net: steps run with `--rm` and a stopped step removes its
/// own), and the stage's volumes when its steps mount any (every run of the
/// stage creates them again, so a stage without volumes has none left from
/// an interrupted run either; skipping spares an engine call per stage).
pub(super) async fn remove_leftovers(
    stage: &StageSpec,
    engine: &ContainerEngine,
) -> Result<(), PrepareError> {
    if !stage.uses_containers {
        return Ok(());
    }
    let labels = labels(stage);
    labels.remove_containers(engine).await?;
    if !stage.volumes.is_empty() {
        labels.remove_volumes(engine).await?;
    }
    Ok(())
}
