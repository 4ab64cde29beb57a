//! `bake`: builds an image from a Containerfile (or Dockerfile) in the
//! workspace with the container engine, tags and pushes it, and outputs
//! `image` and `digest`. Like Spinnaker's Bake, a bake whose inputs (the
//! build context's files, the Containerfile, the build arguments and the
//! target image) were baked before is skipped and gives the earlier result,
//! unless `rebake: true`.
//!
//! Durability: nothing here must not happen twice: a bake interrupted by a
//! restart builds again (the engine's layer cache makes that cheap) and
//! pushes the same image again.

mod error;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use gantry_config::{BakeStage, RegistryAccess};
use gantry_container::{ContainerError, Credentials};
use gantry_store::{BakeRecord, LogStream};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::run::output::{MAX_STEP_LOG, pump};
use super::{StageContext, StageFailure, StageResult, StageRunner};
use crate::clock;
use crate::secret_lookup::{self, RegistryCredentialsError};
use crate::workspace_files::{Beneath, EntryKind, WorkspaceFileError};
use error::BakeError;

impl StageRunner for gantry_config::stages::bake::Bake {
    async fn run(ctx: &StageContext, spec: &gantry_config::BakeStage) -> StageResult {
        run(ctx, spec).await
    }
}

pub(crate) async fn run(ctx: &StageContext, spec: &BakeStage) -> StageResult {
    match bake(ctx, spec).await {
        Ok(outputs) => Ok(outputs),
        Err(error) => {
            let error = format!("bake {}: {error}", spec.image);
            ctx.log.system(&error).await;
            Err(StageFailure::Failed(error))
        }
    }
}

async fn bake(ctx: &StageContext, spec: &BakeStage) -> Result<Map<String, Value>, BakeError> {
    let Some(engine) = ctx.containers().cloned() else {
        return Err(BakeError::NoContainerEngine);
    };
    let prepared = {
        let (workspace, run_dir, spec) = (ctx.workspace(), ctx.run_dir(), spec.clone());
        tokio::task::spawn_blocking(move || prepare(&workspace, &run_dir, &spec)).await??
    };
    let Prepared {
        context,
        containerfile,
        key,
    } = prepared;
    if !spec.rebake
        && let Some(earlier) = ctx.store().bake(&key).await?
    {
        ctx.log
            .system(&format!(
                "the same inputs were baked before as {} ({}): skipping (rebake: true bakes again)",
                earlier.image, earlier.digest
            ))
            .await;
        return Ok(outputs(&earlier, true));
    }

    let mut command = engine.command();
    command
        .arg("build")
        .arg("--tag")
        .arg(&spec.image)
        .arg("--file")
        .arg(&containerfile)
        .arg("--label")
        .arg(format!("io.gantry.bake-key={key}"))
        // What `pruneImages` may remove: only images Gantry built carry this.
        .arg("--label")
        .arg(format!("{}=1", gantry_container::labels::BUILT));
    for (name, value) in &spec.build_args {
        command.arg("--build-arg").arg(format!("{name}={value}"));
    }
    command.arg(&context).process_group(0);
    let mut child = command.spawn().map_err(|source| BakeError::Start {
        engine: engine.name(),
        source,
    })?;
    let budget = Arc::new(AtomicU64::new(MAX_STEP_LOG));
    let readers = [
        child.stdout.take().map(|out| {
            tokio::spawn(pump(
                out,
                ctx.log.clone(),
                0,
                LogStream::Stdout,
                budget.clone(),
            ))
        }),
        child.stderr.take().map(|err| {
            tokio::spawn(pump(
                err,
                ctx.log.clone(),
                0,
                LogStream::Stderr,
                budget.clone(),
            ))
        }),
    ];
    let status = tokio::select! {
        status = child.wait() => Some(status),
        _ = ctx.cancel.cancelled() => None,
    };
    let Some(status) = status else {
        if let Some(pid) = child.id() {
            crate::process::terminate_group(pid as i32, crate::process::GRACE).await;
        }
        let _ = child.wait().await;
        return Err(BakeError::Canceled);
    };
    for reader in readers.into_iter().flatten() {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), reader).await;
    }
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => {
            return Err(BakeError::BuildFailed {
                engine: engine.name(),
                status,
            });
        }
        Err(source) => {
            return Err(BakeError::Wait {
                engine: engine.name(),
                source,
            });
        }
    }

    let digest = if spec.push {
        let credentials = credentials(ctx, &spec.registry).await?;
        let tls_verify = spec
            .registry
            .tls_verify
            .unwrap_or_else(|| !gantry_container::is_loopback_registry(&spec.image));
        let digest = engine
            .push(&spec.image, tls_verify, credentials.as_ref())
            .await
            .map_err(|e| explain(e, &spec.registry))?;
        ctx.log
            .system(&format!("pushed {} ({digest})", spec.image))
            .await;
        digest
    } else {
        engine
            .image_id(&spec.image)
            .await
            .map_err(BakeError::ImageId)?
    };
    let record = BakeRecord {
        key,
        image: spec.image.clone(),
        digest,
        created_at: clock::now(),
    };
    ctx.store().put_bake(&record).await?;
    Ok(outputs(&record, false))
}

fn outputs(record: &BakeRecord, skipped: bool) -> Map<String, Value> {
    let mut outputs = Map::new();
    outputs.insert("image".into(), Value::String(record.image.clone()));
    outputs.insert("digest".into(), Value::String(record.digest.clone()));
    outputs.insert("skipped".into(), Value::Bool(skipped));
    outputs.insert("bakeKey".into(), Value::String(record.key.clone()));
    outputs
}

/// The registry account `access.credentials` names in the secret store.
pub(crate) async fn credentials(
    ctx: &StageContext,
    access: &RegistryAccess,
) -> Result<Option<Credentials>, RegistryCredentialsError> {
    let Some(name) = &access.credentials else {
        return Ok(None);
    };
    let value = secret_lookup::lookup(ctx.secrets(), name)
        .await
        .map_err(|reason| RegistryCredentialsError::Lookup {
            name: name.clone(),
            reason,
        })?;
    Credentials::parse(&value)
        .map(Some)
        .ok_or_else(|| RegistryCredentialsError::NotUserPassword { name: name.clone() })
}

/// A registry's error, with what to do about a 401.
#[derive(Debug, thiserror::Error)]
#[error("{error}{hint}")]
pub(crate) struct RegistryRefusal {
    error: ContainerError,
    hint: String,
}

/// A registry error, with what to do about a 401.
pub(crate) fn explain(error: ContainerError, access: &RegistryAccess) -> RegistryRefusal {
    let hint = match &error {
        ContainerError::Unauthorized { .. } => unauthorized_hint(access),
        _ => String::new(),
    };
    RegistryRefusal { error, hint }
}

/// What to do about a registry's 401, wherever the push or pull ran.
pub(crate) fn unauthorized_hint(access: &RegistryAccess) -> String {
    match &access.credentials {
        Some(name) => format!(": the credentials in secret {name:?} were refused"),
        None => ": it needs credentials (credentials: a secret holding user:password)".to_owned(),
    }
}

/// What a bake gives the container engine, read by the server beneath the workspace.
struct Prepared {
    /// The build context's real path, once opened beneath the workspace.
    context: PathBuf,
    /// A copy of the Containerfile in the stage's run directory, which steps cannot write:
    /// the engine reads the copy the server checked, not a name a step could relink.
    containerfile: PathBuf,
    key: String,
}

/// Containerfiles larger than this are refused.
const MAX_CONTAINERFILE: u64 = 4 << 20;

/// Opens the build context and its Containerfile beneath the workspace (see
/// `crate::workspace_files`), keeps a copy of the Containerfile and computes the bake key.
fn prepare(workspace: &Path, run_dir: &Path, spec: &BakeStage) -> Result<Prepared, BakeError> {
    let beneath = Beneath::workspace(workspace).map_err(BakeError::Workspace)?;
    let shown = spec.context.as_deref().unwrap_or(".");
    let context_dir = beneath.open_dir(shown).map_err(|error| match error {
        WorkspaceFileError::NotDirectory { .. } | WorkspaceFileError::Missing { .. } => {
            BakeError::ContextNotADirectory {
                shown: shown.to_owned(),
            }
        }
        error => BakeError::Context(error),
    })?;
    let context = std::fs::read_link(Beneath::fd_path(&context_dir)).map_err(|source| {
        BakeError::ContextPath {
            shown: shown.to_owned(),
            source,
        }
    })?;
    let relative = containerfile(&beneath, shown, spec.containerfile.as_deref())?;
    let text = beneath
        .read(&relative, MAX_CONTAINERFILE)
        .map_err(BakeError::Containerfile)?;
    let key = bake_key(&beneath, shown, &text, spec)?;
    std::fs::create_dir_all(run_dir).map_err(|source| BakeError::CreateDir {
        path: run_dir.to_owned(),
        source,
    })?;
    let copy = run_dir.join("Containerfile");
    let _ = std::fs::remove_file(&copy);
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&copy)
            .map_err(|source| BakeError::Write {
                path: copy.clone(),
                source,
            })?;
        file.write_all(&text).map_err(|source| BakeError::Write {
            path: copy.clone(),
            source,
        })?;
    }
    Ok(Prepared {
        context,
        containerfile: copy,
        key,
    })
}

/// The Containerfile's path relative to the workspace: the one the stage names, else a
/// `Containerfile` or `Dockerfile` at the top of the context.
fn containerfile(
    beneath: &Beneath,
    context: &str,
    given: Option<&str>,
) -> Result<String, BakeError> {
    let join = |name: &str| {
        Path::new(context)
            .join(name)
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned()
    };
    if let Some(given) = given {
        let path = join(given);
        return match beneath.open_file(&path) {
            Ok(_) => Ok(path),
            Err(WorkspaceFileError::Missing { .. }) => Err(BakeError::ContainerfileNotFound {
                given: given.to_owned(),
            }),
            Err(error) => Err(BakeError::Containerfile(error)),
        };
    }
    for name in ["Containerfile", "Dockerfile"] {
        let path = join(name);
        match beneath.open_file(&path) {
            Ok(_) => return Ok(path),
            Err(WorkspaceFileError::Missing { .. }) => continue,
            Err(error) => return Err(BakeError::Containerfile(error)),
        }
    }
    Err(BakeError::NoContainerfile)
}

/// SHA-256 over everything the image is made of. Files are visited in name
/// order; `.git` is left out (a commit changes it without changing the
/// files the build sees). Files are read beneath the workspace: a link is
/// hashed as its target's name, and a FIFO or device stops the bake instead
/// of hanging it.
fn bake_key(
    beneath: &Beneath,
    context: &str,
    containerfile: &[u8],
    spec: &BakeStage,
) -> Result<String, BakeError> {
    let mut hash = Sha256::new();
    hash.update(b"gantry-bake-1\0");
    hash.update(spec.image.as_bytes());
    hash.update(b"\0");
    for (name, value) in &spec.build_args {
        hash.update(format!("{name}={value}\0").as_bytes());
    }
    hash.update(containerfile);
    hash.update(b"\0");
    let entries = beneath
        .walk_except(context, &[".git"])
        .map_err(BakeError::Context)?;
    for entry in entries {
        hash.update(entry.relative.to_string_lossy().as_bytes());
        let mode = match &entry.kind {
            EntryKind::Dir { mode } | EntryKind::File { mode } => mode & 0o777,
            EntryKind::Symlink(_) => 0o777,
        };
        hash.update(format!("\0{mode:o}\0").as_bytes());
        match entry.kind {
            EntryKind::Dir { .. } => hash.update(b"d"),
            EntryKind::Symlink(target) => hash.update(target.to_string_lossy().as_bytes()),
            EntryKind::File { .. } => {
                let path = Path::new(context).join(&entry.relative);
                let path = path.to_string_lossy();
                let mut file = beneath
                    .open_file(path.trim_start_matches("./"))
                    .map_err(BakeError::Context)?;
                std::io::copy(&mut file, &mut hash).map_err(|source| BakeError::ContextFile {
                    path: path.to_string(),
                    source,
                })?;
            }
        }
        hash.update(b"\0");
    }
    Ok(hex::encode(hash.finalize()))
}
