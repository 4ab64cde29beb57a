//! `config: cloudbuild.yaml`: a `run` stage whose steps come from a Cloud
//! Build file in the workspace, and whose `images` are pushed once every
//! step succeeded.

use std::collections::{BTreeMap, HashMap};

use gantry_cloudbuild::{ImageMap, Translation};
use gantry_config::{RegistryAccess, Step};
use gantry_container::{ContainerEngine, Credentials};

use super::step::describe;
use crate::StageContext;
use crate::bake::RegistryRefusal;
use crate::cloudbuild_file::read_config;
use crate::executor::local::engine_cli::{self, Allowed};
use crate::workspace_files::WorkspaceFileError;

/// Why a `run` stage's Cloud Build file cannot run, or its images were not pushed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// The blocking read was aborted or panicked.
    #[error("{0}")]
    Task(tokio::task::JoinError),
    #[error("cannot read the Cloud Build file {config:?} in the workspace: {source}")]
    Read {
        config: String,
        source: WorkspaceFileError,
    },
    #[error("{0}")]
    Build(gantry_cloudbuild::CloudBuildError),
    /// Every step that runs the engine's CLI outside the allow-list, one line each.
    #[error("{}", refusals.join("\n"))]
    EngineCliRefused { refusals: Vec<String> },
}

/// An image of the build that was not pushed.
#[derive(Debug, thiserror::Error)]
#[error("images: {0}")]
pub(crate) struct PushError(RegistryRefusal);

/// The translated steps, the images to push and the file's `timeout`.
pub(crate) struct Loaded {
    pub(crate) steps: Vec<Step>,
    pub(crate) images: Vec<String>,
    /// `artifacts.objects`: kept in the artifact store once every step succeeded.
    pub(crate) objects: Option<gantry_cloudbuild::ObjectArtifacts>,
    pub(crate) timeout: Option<std::time::Duration>,
    /// Steps the image map runs as the container engine's own CLI on the
    /// host (`gcr.io/cloud-builders/docker`): they drive the engine, which
    /// a confined process cannot reach, so they run with the server's
    /// rights like the bakes do, and only for what `engine_cli` allows.
    /// Each such step's command, as the allow-list of `engine_cli` let it
    /// through.
    pub(crate) engine_cli: HashMap<usize, Allowed>,
}

pub(crate) async fn load(
    ctx: &StageContext,
    config: &str,
    overrides: &BTreeMap<String, String>,
) -> Result<Loaded, LoadError> {
    let (text, dir) = {
        let (workspace, owned) = (ctx.workspace(), config.to_owned());
        tokio::task::spawn_blocking(move || read_config(&workspace, &owned))
            .await
            .map_err(LoadError::Task)?
            .map_err(|source| LoadError::Read {
                config: config.to_owned(),
                source,
            })?
    };
    let file = gantry_cloudbuild::parse(config, &text).map_err(LoadError::Build)?;
    for warning in &file.warnings {
        ctx.log.system(&format!("warning: {warning}")).await;
    }
    let trigger = crate::trigger_env::step_env(&ctx.execution_record().await.trigger);
    let mut builtins: BTreeMap<String, String> = gantry_cloudbuild::builtin_names()
        .iter()
        .map(|name| (name.to_string(), String::new()))
        .collect();
    // The trigger's commit first; a checkout in the workspace knows better.
    for name in [
        "COMMIT_SHA",
        "SHORT_SHA",
        "BRANCH_NAME",
        "TAG_NAME",
        "REF_NAME",
        "REPO_NAME",
    ] {
        if let Some((_, value)) = trigger.iter().find(|(key, _)| key == name) {
            builtins.insert(name.to_owned(), value.clone());
        }
    }
    let git = tokio::task::spawn_blocking(move || gantry_cloudbuild::git_substitutions(&dir))
        .await
        .unwrap_or_default();
    builtins.extend(git.into_iter().filter(|(_, v)| !v.is_empty()));
    builtins.insert("PROJECT_ID".into(), "gantry".into());
    builtins.insert("BUILD_ID".into(), ctx.execution_id.clone());
    builtins.insert("LOCATION".into(), "local".into());
    let (registry_map, insecure_registries) = ctx.registries();
    let translation = Translation {
        builtins,
        overrides: overrides.clone(),
        image_map: image_map(ctx.image_map(), ctx.containers()).await,
        registry_map: registry_map.clone(),
        insecure_registries: insecure_registries.clone(),
    };
    let build = gantry_cloudbuild::translate(&file, &translation).map_err(LoadError::Build)?;
    let mut steps = build.steps;
    let engine_cli = match ctx.containers() {
        Some(engine) => allow_engine_cli(&mut steps, &engine.program.display().to_string())?,
        None => Default::default(),
    };
    Ok(Loaded {
        steps,
        images: build.images,
        objects: build.objects,
        timeout: build.timeout,
        engine_cli,
    })
}

/// Checks the steps that run the engine's CLI (`program`) on the host
/// against its allow-list, before any step runs; every refusal is reported
/// at once, each naming its step.
fn allow_engine_cli(
    steps: &mut [Step],
    program: &str,
) -> Result<HashMap<usize, Allowed>, LoadError> {
    let mut allowed = HashMap::new();
    let mut refusals = Vec::new();
    for (index, step) in steps.iter_mut().enumerate() {
        let Some(argv) = step.command.as_ref().filter(|argv| {
            step.image.is_none() && argv.first().map(String::as_str) == Some(program)
        }) else {
            continue;
        };
        match engine_cli::check(argv) {
            Ok(command) => {
                step.command = Some(command.argv.clone());
                allowed.insert(index, command);
            }
            Err(refused) => refusals.push(format!(
                "{} runs the host's container engine CLI for gcr.io/cloud-builders/docker: {refused}",
                describe(index as i64, step)
            )),
        }
    }
    if refusals.is_empty() {
        Ok(allowed)
    } else {
        Err(LoadError::EngineCliRefused { refusals })
    }
}

/// The configured map, with `gcr.io/cloud-builders/docker` running the
/// engine's CLI on the host unless the map says otherwise.
pub(crate) async fn image_map(
    configured: &BTreeMap<String, String>,
    engine: Option<&ContainerEngine>,
) -> ImageMap {
    let mut map = crate::builders::builder_images(engine).await;
    map.extend(configured.clone());
    ImageMap(map)
}

/// The build's `images`, each with whether its registry's certificate is
/// checked: the stage's `tlsVerify`, else not for loopback registries
/// (Docker's own default for 127.0.0.0/8) and those configured insecure.
pub(crate) fn images_to_push(
    access: &RegistryAccess,
    images: &[String],
    insecure: &gantry_cloudbuild::InsecureRegistries,
) -> Vec<crate::executor::remote::ImageToPush> {
    images
        .iter()
        .map(|image| crate::executor::remote::ImageToPush {
            image: image.clone(),
            tls_verify: access.tls_verify.unwrap_or_else(|| {
                !gantry_container::is_loopback_registry(image) && !insecure.covers(image)
            }),
        })
        .collect()
}

/// Pushes the build's `images` with the stage's registry access; by
/// default loopback registries without TLS verification (Docker's own
/// default for 127.0.0.0/8).
pub(crate) async fn push_images(
    engine: &ContainerEngine,
    access: &RegistryAccess,
    credentials: Option<&Credentials>,
    images: &[String],
    insecure: &gantry_cloudbuild::InsecureRegistries,
) -> Result<Vec<(String, String)>, PushError> {
    let mut pushed = Vec::new();
    for target in images_to_push(access, images, insecure) {
        let digest = engine
            .push(&target.image, target.tls_verify, credentials)
            .await
            .map_err(|e| PushError(crate::bake::explain(e, access)))?;
        pushed.push((target.image, digest));
    }
    Ok(pushed)
}
