//! `packageDeb` and `publishDeb`. Both are safe to run again after a crash:
//! a build is deterministic (same tree, same bytes), and adding a package a
//! repository already holds changes nothing (nor fires its trigger twice),
//! so neither needs durable state.

mod error;

use std::path::PathBuf;

use gantry_config::{PackageDebStage, PublishDebStage};
use gantry_deb::BuildOptions;
use serde_json::{Map, Value, json};

use super::{StageContext, StageFailure, StageResult, StageRunner};
use crate::workspace_files::Beneath;
pub(crate) use error::PackageDebError;

impl StageRunner for gantry_config::stages::package_deb::PackageDeb {
    async fn run(ctx: &StageContext, spec: &gantry_config::PackageDebStage) -> StageResult {
        package(ctx, spec).await
    }
}

impl StageRunner for gantry_config::stages::package_deb::PublishDeb {
    async fn run(ctx: &StageContext, spec: &gantry_config::PublishDebStage) -> StageResult {
        publish(ctx, spec).await
    }
}

pub(crate) async fn package(ctx: &StageContext, spec: &PackageDebStage) -> StageResult {
    match build(ctx, spec).await {
        Ok(outputs) => Ok(outputs),
        Err(error) => {
            let message = error.to_string();
            ctx.log.system(&message).await;
            Err(StageFailure::Failed(message))
        }
    }
}

pub(crate) async fn publish(ctx: &StageContext, spec: &PublishDebStage) -> StageResult {
    match add_and_publish(ctx, spec).await {
        Ok(outputs) => Ok(outputs),
        Err(error) => {
            let message = error.to_string();
            ctx.log.system(&message).await;
            Err(StageFailure::Failed(message))
        }
    }
}

/// Maintainer scripts larger than this are refused: they are shell scripts.
const MAX_SCRIPT: u64 = 16 << 20;

/// A package file `publishDeb` reads whole (APT uploads have no smaller bound either).
const MAX_PACKAGE: u64 = 4 << 30;

/// The execution's workspace, opened for reading what steps wrote in it (see
/// `crate::workspace_files`: links out of it are refused).
fn workspace(ctx: &StageContext) -> Result<Beneath, PackageDebError> {
    Beneath::workspace(&ctx.workspace()).map_err(PackageDebError::Workspace)
}

async fn build(
    ctx: &StageContext,
    spec: &PackageDebStage,
) -> Result<Map<String, Value>, PackageDebError> {
    let mut options = BuildOptions::new(&spec.package, &spec.version);
    if let Some(arch) = &spec.architecture {
        options.architecture = arch.clone();
    }
    options.depends = spec.depends.clone();
    if let Some(maintainer) = &spec.maintainer {
        options.maintainer = maintainer.clone();
    }
    if let Some(description) = &spec.description {
        options.description = description.clone();
    }
    let beneath = workspace(ctx)?;
    for (name, file) in [
        ("preinst", &spec.preinst),
        ("postinst", &spec.postinst),
        ("prerm", &spec.prerm),
        ("postrm", &spec.postrm),
    ] {
        if let Some(file) = file {
            let body = beneath
                .read(file, MAX_SCRIPT)
                .map_err(|source| PackageDebError::Script { name, source })?;
            options.scripts.push((name.to_owned(), body));
        }
    }
    // The root is opened beneath the workspace and handed to the builder by its
    // descriptor, so neither the root nor anything in it can lead the build outside; links
    // inside the root are packaged as links.
    let directory = beneath
        .open_dir(&spec.directory)
        .map_err(PackageDebError::Directory)?;
    let version = spec
        .version
        .split_once(':')
        .map_or(spec.version.as_str(), |(_, v)| v);
    let output_name = spec
        .output
        .clone()
        .unwrap_or_else(|| format!("{}_{version}_{}.deb", spec.package, options.architecture));
    let written = {
        let options = options.clone();
        let output_name = output_name.clone();
        let shown = spec.directory.clone();
        tokio::task::spawn_blocking(move || {
            let root = Beneath::fd_path(&directory);
            let bytes = gantry_deb::build(&root, &options).map_err(|e| {
                PackageDebError::Build(
                    e.to_string()
                        .replace(&root.display().to_string(), shown.trim_end_matches('/')),
                )
            })?;
            let package =
                gantry_deb::inspect(&output_name, &bytes).map_err(PackageDebError::Inspect)?;
            beneath
                .write_atomically(&output_name, &bytes)
                .map_err(PackageDebError::Output)?;
            Ok::<_, PackageDebError>(package)
        })
        .await
        .map_err(PackageDebError::BuildTask)??
    };
    ctx.log
        .system(&format!(
            "built {output_name} ({} bytes, sha256 {})",
            written.size, written.sha256
        ))
        .await;
    let mut outputs = Map::new();
    outputs.insert("file".into(), json!(output_name));
    outputs.insert("name".into(), json!(written.name));
    outputs.insert("version".into(), json!(written.version.as_str()));
    outputs.insert("architecture".into(), json!(written.architecture));
    outputs.insert("sha256".into(), json!(written.sha256));
    Ok(outputs)
}

async fn add_and_publish(
    ctx: &StageContext,
    spec: &PublishDebStage,
) -> Result<Map<String, Value>, PackageDebError> {
    let apt = ctx.apt().ok_or(PackageDebError::NoApt)?.clone();
    let bytes = {
        let beneath = workspace(ctx)?;
        let file = spec.file.clone();
        tokio::task::spawn_blocking(move || beneath.read(&file, MAX_PACKAGE))
            .await
            .map_err(PackageDebError::ReadTask)?
            .map_err(PackageDebError::File)?
    };
    let report = apt
        .add(
            &spec.repository,
            vec![(spec.file.clone(), bytes)],
            spec.force_replace,
        )
        .await?;
    let package = report
        .added
        .first()
        .or(report.unchanged.first())
        .cloned()
        .ok_or(PackageDebError::NoPackageAdded)?;
    let publications = apt.update_publications_of(&spec.repository).await?;
    let mut urls = Vec::new();
    for publication in &publications {
        for source in &publication.spec.sources {
            let base = if publication.prefix == "." {
                "/apt".to_owned()
            } else {
                format!("/apt/{}", publication.prefix)
            };
            urls.push(format!(
                "{base}/{}",
                gantry_apt::pool_path(
                    &source.component,
                    &package.name,
                    &package.version,
                    &package.architecture
                )
            ));
        }
    }
    ctx.log
        .system(&format!(
            "{} {} {} in repository {} ({}); {} publication(s) updated",
            package.name,
            package.version,
            package.architecture,
            spec.repository,
            if report.added.is_empty() {
                "already there"
            } else {
                "added"
            },
            publications.len()
        ))
        .await;
    let mut outputs = Map::new();
    outputs.insert("name".into(), json!(package.name));
    outputs.insert("version".into(), json!(package.version));
    outputs.insert("architecture".into(), json!(package.architecture));
    outputs.insert("sha256".into(), json!(package.sha256));
    outputs.insert("url".into(), json!(urls.first()));
    outputs.insert("urls".into(), json!(urls));
    Ok(outputs)
}

/// A deploy's `package:`: the newest matching package of `repository`,
/// unpacked into the run directory (again from scratch on a resume, which
/// gives the same tree), as the server group's artifact directory.
pub(crate) async fn unpack_for_deploy(
    ctx: &StageContext,
    repository: &str,
    query: &str,
) -> Result<PathBuf, PackageDebError> {
    let apt = ctx.apt().ok_or(PackageDebError::NoApt)?.clone();
    let dest = ctx.run_dir().join(format!("package-{}", ctx.stage_id));
    let _ = std::fs::remove_dir_all(&dest);
    let package = apt.unpack(repository, query, &dest).await?;
    ctx.log
        .system(&format!(
            "deploying {} {} from APT repository {repository}",
            package.name, package.version
        ))
        .await;
    Ok(dest)
}

/// A deploy's `package:` for a provider with hosts: the newest matching
/// package of `repository` and the publication hosts install it from.
pub(crate) async fn install_on_hosts(
    ctx: &StageContext,
    repository: &str,
    query: &str,
) -> Result<gantry_deploy::model::HostPackage, PackageDebError> {
    let apt = ctx.apt().ok_or(PackageDebError::NoApt)?.clone();
    let found = apt.host_install(repository, query).await?;
    ctx.log
        .system(&format!(
            "installing {} {} from APT repository {repository} (distribution {}) on each host",
            found.name, found.version, found.distribution
        ))
        .await;
    Ok(gantry_deploy::model::HostPackage {
        name: found.name,
        version: found.version,
        prefix: found.prefix,
        distribution: found.distribution,
        component: found.component,
        signed_by: found.signed_by,
    })
}
