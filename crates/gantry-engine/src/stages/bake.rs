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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use gantry_config::{BakeStage, RegistryAccess};
use gantry_container::{ContainerError, Credentials};
use gantry_store::{BakeRecord, LogStream};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::run::output::{MAX_STEP_LOG, pump};
use super::{Outcome, StageContext};
use crate::clock;

pub(crate) async fn run(ctx: &StageContext, spec: &BakeStage) -> Outcome {
    match bake(ctx, spec).await {
        Ok(outputs) => Outcome::Succeeded(outputs),
        Err(error) => {
            let error = format!("bake {}: {error}", spec.image);
            ctx.log.system(&error).await;
            Outcome::Failed(error)
        }
    }
}

async fn bake(ctx: &StageContext, spec: &BakeStage) -> Result<Map<String, Value>, String> {
    let Some(engine) = ctx.engine.inner.config.containers.clone() else {
        return Err("no container engine is installed (podman or docker)".to_owned());
    };
    let workspace = ctx.workspace();
    let context = workspace.join(spec.context.as_deref().unwrap_or("."));
    if !context.is_dir() {
        return Err(format!(
            "the build context {:?} is not a directory in the workspace",
            spec.context.as_deref().unwrap_or(".")
        ));
    }
    let containerfile = containerfile(&context, spec.containerfile.as_deref())?;
    let key = {
        let (context, containerfile, spec) = (context.clone(), containerfile.clone(), spec.clone());
        tokio::task::spawn_blocking(move || bake_key(&context, &containerfile, &spec))
            .await
            .map_err(|e| e.to_string())??
    };
    if !spec.rebake
        && let Some(earlier) = ctx.store().bake(&key).await.map_err(|e| e.to_string())?
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
        .arg(format!("io.gantry.bake-key={key}"));
    for (name, value) in &spec.build_args {
        command.arg("--build-arg").arg(format!("{name}={value}"));
    }
    command.arg(&context).process_group(0);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {} build: {e}", engine.name()))?;
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
        return Err("canceled".to_owned());
    };
    for reader in readers.into_iter().flatten() {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), reader).await;
    }
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => {
            return Err(format!(
                "{} build failed ({status}); see the stage's log",
                engine.name()
            ));
        }
        Err(error) => return Err(format!("{} build: {error}", engine.name())),
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
            .map_err(|e| e.to_string())?
    };
    let record = BakeRecord {
        key,
        image: spec.image.clone(),
        digest,
        created_at: clock::now(),
    };
    ctx.store()
        .put_bake(&record)
        .await
        .map_err(|e| e.to_string())?;
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
) -> Result<Option<Credentials>, String> {
    let Some(name) = &access.credentials else {
        return Ok(None);
    };
    let value = secret(ctx, name).await?;
    Credentials::parse(&value)
        .map(Some)
        .ok_or_else(|| format!("credentials: secret {name:?} must hold user:password"))
}

/// The value of a secret that holds credentials (`user:password`).
pub(crate) async fn secret(ctx: &StageContext, name: &str) -> Result<String, String> {
    let Some(secrets) = &ctx.engine.inner.config.secrets else {
        return Err(format!(
            "credentials: secret {name:?} needs a secret store, which this server lacks"
        ));
    };
    match secrets.get(name).await {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(format!("credentials: secret {name:?} does not exist")),
        Err(error) => Err(format!("credentials: secret {name:?}: {error}")),
    }
}

/// A registry error, with what to do about a 401.
pub(crate) fn explain(error: ContainerError, access: &RegistryAccess) -> String {
    let hint = match (&error, &access.credentials) {
        (ContainerError::Unauthorized { .. }, Some(name)) => {
            format!(": the credentials in secret {name:?} were refused")
        }
        (ContainerError::Unauthorized { .. }, None) => {
            ": it needs credentials (credentials: a secret holding user:password)".to_owned()
        }
        _ => String::new(),
    };
    format!("{error}{hint}")
}

fn containerfile(context: &Path, given: Option<&str>) -> Result<PathBuf, String> {
    if let Some(given) = given {
        let path = context.join(given);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "containerfile {given:?} not found in the build context"
            ))
        };
    }
    ["Containerfile", "Dockerfile"]
        .iter()
        .map(|name| context.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| "no Containerfile or Dockerfile in the build context".to_owned())
}

/// SHA-256 over everything the image is made of. Files are visited in name
/// order; `.git` is left out (a commit changes it without changing the
/// files the build sees).
fn bake_key(context: &Path, containerfile: &Path, spec: &BakeStage) -> Result<String, String> {
    let mut hash = Sha256::new();
    hash.update(b"gantry-bake-1\0");
    hash.update(spec.image.as_bytes());
    hash.update(b"\0");
    for (name, value) in &spec.build_args {
        hash.update(format!("{name}={value}\0").as_bytes());
    }
    let text = std::fs::read(containerfile).map_err(|e| format!("containerfile: {e}"))?;
    hash.update(&text);
    hash.update(b"\0");
    hash_dir(&mut hash, context, Path::new(""))?;
    Ok(hex::encode(hash.finalize()))
}

fn hash_dir(hash: &mut Sha256, root: &Path, relative: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = root.join(relative);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if relative.as_os_str().is_empty() && name == ".git" {
            continue;
        }
        let path = relative.join(&name);
        let meta = std::fs::symlink_metadata(entry.path()).map_err(|e| e.to_string())?;
        hash.update(path.to_string_lossy().as_bytes());
        hash.update(format!("\0{:o}\0", meta.permissions().mode() & 0o777).as_bytes());
        if meta.is_dir() {
            hash.update(b"d");
            hash_dir(hash, root, &path)?;
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(|e| e.to_string())?;
            hash.update(target.to_string_lossy().as_bytes());
        } else {
            let mut file = std::fs::File::open(entry.path()).map_err(|e| e.to_string())?;
            std::io::copy(&mut file, hash).map_err(|e| e.to_string())?;
        }
        hash.update(b"\0");
    }
    Ok(())
}
