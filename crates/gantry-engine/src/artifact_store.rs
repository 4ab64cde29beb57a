//! The artifact store: files a build keeps (Cloud Build's `artifacts.objects`), copied out of
//! the workspace once every step succeeded, to `DATA_DIR/artifacts/EXECUTION/STAGE/NAME`,
//! and listed in the stage's outputs (`artifacts`). Cloud Build uploads each matching file
//! to its bucket under its own name; so does this store, under the stage: two files of one
//! name fail the stage rather than one silently replacing the other.
//!
//! Files are read beneath the workspace ([`Beneath`]): a link a step left out of it is
//! refused, never followed. Each copy is written under a temporary name, synced, then
//! renamed, so a listed artifact is always whole.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use gantry_cloudbuild::ObjectArtifacts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::workspace_files::{Beneath, EntryKind, WorkspaceFileError};

/// One kept file, as the stage's outputs and the API list it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptArtifact {
    /// Its file name (as in the bucket).
    pub name: String,
    /// Where it was in the workspace.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// What a stage's outputs hold under `artifacts`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptArtifacts {
    /// The file's `location` (`gs://bucket/dir/`), which names them on Cloud Build.
    pub location: String,
    pub objects: Vec<KeptArtifact>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifacts.objects: {0}")]
    Workspace(String),
    #[error("artifacts.objects: no workspace file matches {0}")]
    NoMatch(String),
    #[error("artifacts.objects: {first} and {second} would both be stored as {name}")]
    SameName {
        name: String,
        first: String,
        second: String,
    },
    #[error("artifacts.objects: cannot store {path}: {source}")]
    Store {
        path: String,
        source: std::io::Error,
    },
}

/// Where the artifacts of `stage` of `execution` are kept.
pub fn directory(data_dir: &Path, execution: &str, stage: &str) -> PathBuf {
    data_dir.join("artifacts").join(execution).join(stage)
}

/// The kept file `name` of that stage, if `name` is a plain file name (no directory, no
/// `..`) and it exists.
pub fn file(data_dir: &Path, execution: &str, stage: &str, name: &str) -> Option<PathBuf> {
    let plain = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && !part.contains('/')
            && !part.contains('\0')
    };
    if !(plain(execution) && plain(stage) && plain(name)) {
        return None;
    }
    let path = directory(data_dir, execution, stage).join(name);
    path.is_file().then_some(path)
}

impl From<WorkspaceFileError> for ArtifactError {
    fn from(error: WorkspaceFileError) -> Self {
        ArtifactError::Workspace(error.to_string())
    }
}

/// [`keep`] for the workspace of `execution` in the data directory `data_dir` (`gantry
/// build`, which keeps a build's files in a directory of its own choosing).
pub fn keep_from_execution(
    data_dir: &Path,
    execution: &str,
    dest: &Path,
    objects: &ObjectArtifacts,
) -> Result<KeptArtifacts, ArtifactError> {
    keep(&data_dir.join("workspaces").join(execution), dest, objects)
}

/// Copies the workspace files matching `objects.paths` into `dest`.
pub fn keep(
    workspace: &Path,
    dest: &Path,
    objects: &ObjectArtifacts,
) -> Result<KeptArtifacts, ArtifactError> {
    let beneath = Beneath::workspace(workspace)?;
    let files: Vec<String> = beneath
        .walk(".")?
        .into_iter()
        .filter(|entry| !matches!(entry.kind, EntryKind::Dir { .. }))
        .map(|entry| entry.relative.to_string_lossy().into_owned())
        .collect();
    let mut chosen: Vec<(String, String)> = Vec::new();
    for pattern in &objects.paths {
        let Some(glob) = gantry_config::glob::compile(pattern) else {
            return Err(ArtifactError::NoMatch(pattern.clone()));
        };
        let matched: Vec<&String> = files.iter().filter(|path| glob.is_match(path)).collect();
        if matched.is_empty() {
            return Err(ArtifactError::NoMatch(pattern.clone()));
        }
        for path in matched {
            let name = path.rsplit('/').next().unwrap_or(path).to_owned();
            match chosen.iter().find(|(n, _)| *n == name) {
                Some((_, first)) if first == path => {}
                Some((_, first)) => {
                    return Err(ArtifactError::SameName {
                        name,
                        first: first.clone(),
                        second: path.clone(),
                    });
                }
                None => chosen.push((name, path.clone())),
            }
        }
    }
    let store = |path: &str, source| ArtifactError::Store {
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(dest).map_err(|e| store(&dest.display().to_string(), e))?;
    let mut kept = Vec::new();
    for (name, path) in chosen {
        let mut source = beneath.open_file(&path)?;
        let temporary = dest.join(format!(".{name}.partial"));
        let mut out = std::fs::File::create(&temporary).map_err(|e| store(&path, e))?;
        let mut digest = Sha256::new();
        let mut size = 0u64;
        let mut buffer = vec![0u8; 64 << 10];
        loop {
            let read = source.read(&mut buffer).map_err(|e| store(&path, e))?;
            if read == 0 {
                break;
            }
            digest.update(&buffer[..read]);
            out.write_all(&buffer[..read])
                .map_err(|e| store(&path, e))?;
            size += read as u64;
        }
        out.sync_all().map_err(|e| store(&path, e))?;
        std::fs::rename(&temporary, dest.join(&name)).map_err(|e| store(&path, e))?;
        kept.push(KeptArtifact {
            name,
            path,
            size,
            sha256: hex::encode(digest.finalize()),
        });
    }
    Ok(KeptArtifacts {
        location: objects.location.clone(),
        objects: kept,
    })
}
