//! `gantry build`: runs a Cloud Build config locally, without a server (what
//! the retired `cloud-build-local` did), on the same step engine a server
//! uses: an engine on a throw-away SQLite store runs one `run` stage whose
//! first step copies the source into the workspace; `images` are pushed
//! once every step succeeded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use gantry_cloudbuild::{ImageMap, InsecureRegistries, RegistryMap, Translation};
use gantry_container::ContainerEngine;
use gantry_engine::{Engine, EngineConfig, Event, RunRequest};
use gantry_store::{LogStream, Status, Store};

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The source directory (copied into the build's /workspace).
    #[arg(default_value = ".", value_name = "SOURCE_DIR")]
    pub source: PathBuf,
    /// The Cloud Build file, relative to SOURCE_DIR unless absolute.
    #[arg(long, default_value = "cloudbuild.yaml", value_name = "FILE")]
    pub config: PathBuf,
    /// Substitutions, _KEY=VALUE,… (repeatable): user ones, and the
    /// built-ins gcloud lets a build set (COMMIT_SHA, REVISION_ID,
    /// SHORT_SHA, REPO_NAME, BRANCH_NAME, TAG_NAME).
    #[arg(long, value_name = "K=V,…", value_delimiter = ',')]
    pub substitutions: Vec<String>,
    /// $PROJECT_ID.
    #[arg(long, default_value = "local", value_name = "ID")]
    pub project: String,
    /// Replace a builder image, FROM=TO (repeatable); TO may be host:PROGRAM.
    #[arg(long = "image-map", value_name = "FROM=TO")]
    pub image_map: Vec<String>,
    /// Send images named under FROM to TO instead (repeatable), e.g.
    /// gcr.io/PROJECT=127.0.0.1:5000/PROJECT: the file's `images:`, the
    /// docker builder's arguments and builder images. Image names inside
    /// scripts are left as written.
    #[arg(long = "registry-map", value_name = "FROM=TO")]
    pub registry_map: Vec<String>,
    /// A registry the docker builder pushes to and pulls from without TLS
    /// (repeatable; loopback registries always are), HOST[:PORT].
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
    /// podman or docker (default: podman, else docker).
    #[arg(long, env = "GANTRY_CONTAINER_ENGINE", value_name = "ENGINE")]
    pub container_engine: Option<String>,
    /// Check the file and print the steps it would run, without running
    /// them; every problem a run would refuse is reported at once.
    #[arg(long)]
    pub dry_run: bool,
    /// With --data-dir: the database of that server, when it is not
    /// sqlite://DATA_DIR/gantry.db (e.g. postgres://…).
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// Where a file's `artifacts.objects` are kept: DIR/BUCKET/PATH/NAME for
    /// a location gs://BUCKET/PATH.
    #[arg(long, default_value = "artifacts", value_name = "DIR")]
    pub artifacts_dir: PathBuf,
    /// Take `availableSecrets` from environment variables named like the
    /// secrets instead of the secret store of the server whose data
    /// directory is --data-dir (or the default one).
    #[arg(long)]
    pub secrets_from_env: bool,
}

/// The engine a server or a build uses: the one chosen (which must exist),
/// else podman or docker if installed, else none.
pub fn container_engine(choice: Option<&str>) -> anyhow::Result<Option<ContainerEngine>> {
    match choice {
        Some(choice) => Ok(Some(ContainerEngine::detect(Some(choice))?)),
        None => Ok(ContainerEngine::detect(None).ok()),
    }
}

/// `FROM=TO` entries of `--image-map`.
pub fn image_map_entries(entries: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(ImageMap::parse(entries).map_err(anyhow::Error::msg)?.0)
}

/// `data_dir` is a server's data directory (`--data-dir`, else the default
/// a server uses): its secret store gives the values of `availableSecrets`.
pub async fn run(args: BuildArgs, data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let source = args
        .source
        .canonicalize()
        .with_context(|| format!("source directory {}", args.source.display()))?;
    let config = source.join(&args.config);
    let text = std::fs::read_to_string(&config)
        .with_context(|| format!("cannot read {}", config.display()))?;
    let shown = args.config.display().to_string();
    let engine_choice = container_engine(args.container_engine.as_deref())?;
    let mut overrides = BTreeMap::new();
    for entry in &args.substitutions {
        let (key, value) = entry
            .split_once('=')
            .with_context(|| format!("substitution {entry:?} must be _KEY=VALUE"))?;
        overrides.insert(key.to_owned(), value.to_owned());
    }
    let build_id = build_id();
    let mut builtins: BTreeMap<String, String> = gantry_cloudbuild::builtin_names()
        .iter()
        .map(|n| (n.to_string(), String::new()))
        .collect();
    builtins.extend(gantry_cloudbuild::git_substitutions(&source));
    builtins.insert("PROJECT_ID".into(), args.project.clone());
    builtins.insert("BUILD_ID".into(), build_id.clone());
    builtins.insert("LOCATION".into(), "local".into());
    let mut image_map = gantry_engine::builders::builder_images(engine_choice.as_ref()).await;
    image_map.extend(image_map_entries(&args.image_map)?);
    // Reading and translating in one pass reports every problem of the
    // file at once, as a dry run promises.
    let translation = Translation {
        builtins,
        overrides,
        image_map: ImageMap(image_map),
        registry_map: RegistryMap::parse(&args.registry_map).map_err(anyhow::Error::msg)?,
        insecure_registries: InsecureRegistries(args.insecure_registries.clone()),
    };
    let build = gantry_cloudbuild::load(&shown, &text, &translation)?;
    for warning in &build.warnings {
        eprintln!("warning: {warning}");
    }
    if args.dry_run {
        let mut refused = refused_by_this_machine(&build, engine_choice.as_ref());
        if let Err(error) = check_secrets(&args, data_dir.as_deref(), &build.secrets).await {
            refused.push(format!("{error:#}"));
        }
        if !refused.is_empty() {
            bail!("{}", refused.join("\n"));
        }
        println!("{}", serde_json::to_string_pretty(&build.steps)?);
        return Ok(ExitCode::SUCCESS);
    }
    if !build.images.is_empty() && engine_choice.is_none() {
        bail!("images: no container engine is installed to push them (podman or docker)");
    }

    let data = tempfile::Builder::new()
        .prefix("gantry-build-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let store = Store::open(&format!(
        "sqlite://{}",
        data.path().join("gantry.db").display()
    ))
    .await
    .context("cannot open the build's store")?;
    let secrets = if args.secrets_from_env {
        let secrets = gantry_secrets::SecretStore::open(store.clone(), data.path())?;
        secrets_from_env(&secrets, &build.secrets).await?;
        secrets
    } else {
        match server_secrets(
            data_dir.as_deref(),
            args.database.as_deref(),
            &build.secrets,
        )
        .await?
        {
            Some(secrets) => secrets,
            None => gantry_secrets::SecretStore::open(store.clone(), data.path())?,
        }
    };
    let engine = Engine::start(
        store.clone(),
        EngineConfig {
            data_dir: data.path().to_owned(),
            containers: engine_choice.clone(),
            secrets: Some(secrets),
            stage_types: gantry_engine::StageRegistry::new(gantry_stages::BuiltInStages::new(
                gantry_stages::StageServices::default(),
            )?),
            ..EngineConfig::default()
        },
    )
    .await?;
    let pipeline = pipeline_spec(&source, build.steps, build.timeout)?;
    store
        .upsert_pipeline("cloudbuild", None, &pipeline, 0)
        .await?;
    let mut events = engine.subscribe();
    let execution = engine
        .run(RunRequest {
            pipeline: "cloudbuild".into(),
            ..RunRequest::default()
        })
        .await?;
    eprintln!(
        "build {build_id}: running {shown} from {}",
        source.display()
    );
    let names = step_names(&pipeline);
    let status = loop {
        match events.recv().await {
            Ok(Event::Log(line)) if line.execution_id == execution.id => print_line(&names, &line),
            Ok(Event::Execution {
                execution_id,
                status,
                ..
            }) if execution_id == execution.id && status.is_terminal() => break status,
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(error) => bail!("lost the engine's events: {error}"),
        }
    };
    // Lines are stored (then broadcast) in batches a few milliseconds
    // apart: the last ones, such as why a step failed, may follow the end.
    while let Ok(Ok(event)) =
        tokio::time::timeout(std::time::Duration::from_millis(200), events.recv()).await
    {
        if let Event::Log(line) = event
            && line.execution_id == execution.id
        {
            print_line(&names, &line);
        }
    }
    let mut error = store
        .stages(&execution.id)
        .await?
        .into_iter()
        .find_map(|stage| stage.error);
    let mut status = status;
    if let (Status::Succeeded, Some(objects)) = (status, &build.objects) {
        match keep_artifacts(data.path(), &execution.id, &args.artifacts_dir, objects) {
            Ok(()) => {}
            Err(why) => {
                status = Status::Failed;
                error = Some(why.to_string());
            }
        }
    }
    engine.shutdown().await;
    store.close().await;
    if status != Status::Succeeded {
        let error = error.map_or(String::new(), |e| format!(": {e}"));
        eprintln!("build {build_id}: {}{error}", status_word(status));
        return Ok(ExitCode::FAILURE);
    }
    if let Some(engine) = &engine_choice {
        for image in &build.images {
            let tls_verify = !translation.insecure_registries.covers(image);
            let digest = engine.push(image, tls_verify, None).await?;
            eprintln!("pushed {image} ({digest})");
        }
    }
    eprintln!("build {build_id}: succeeded");
    Ok(ExitCode::SUCCESS)
}

/// Copies the build's `artifacts.objects` to `dir`/BUCKET/PATH, as Cloud Build uploads them.
fn keep_artifacts(
    data_dir: &Path,
    execution: &str,
    dir: &Path,
    objects: &gantry_cloudbuild::ObjectArtifacts,
) -> Result<(), gantry_engine::artifact_store::ArtifactError> {
    let bucket_path = objects
        .location
        .trim_start_matches("gs://")
        .trim_matches('/');
    let dest = bucket_path
        .split('/')
        .filter(|part| !part.is_empty() && *part != "." && *part != "..")
        .fold(dir.to_path_buf(), |path, part| path.join(part));
    let kept =
        gantry_engine::artifact_store::keep_from_execution(data_dir, execution, &dest, objects)?;
    for object in kept.objects {
        eprintln!(
            "kept {} as {} ({} bytes, sha256 {})",
            object.path,
            dest.join(&object.name).display(),
            object.size,
            object.sha256
        );
    }
    Ok(())
}

/// What this machine would refuse when the build runs: container steps
/// without a container engine. (The file's own problems are found by
/// `gantry_cloudbuild::load`.)
fn refused_by_this_machine(
    build: &gantry_cloudbuild::Build,
    engine: Option<&ContainerEngine>,
) -> Vec<String> {
    if engine.is_some() {
        return Vec::new();
    }
    let mut refused: Vec<String> = build
        .steps
        .iter()
        .enumerate()
        .filter_map(|(index, step)| {
            let image = step.image.as_ref()?;
            Some(format!(
                "step {} runs in image {image:?} but no container engine is installed (podman or docker)",
                index + 1
            ))
        })
        .collect();
    if !build.images.is_empty() {
        refused.push(
            "images: no container engine is installed to push them (podman or docker)".to_owned(),
        );
    }
    refused
}

/// Whether the secrets `availableSecrets` names can be read as a run would
/// read them, without changing anything.
async fn check_secrets(
    args: &BuildArgs,
    data_dir: Option<&Path>,
    secrets: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    if args.secrets_from_env {
        for secret in secrets.values() {
            if std::env::var_os(secret).is_none() {
                bail!(
                    "secret {secret:?} (availableSecrets): --secrets-from-env reads it from the variable {secret}, which is not set"
                );
            }
        }
        return Ok(());
    }
    server_secrets(data_dir, args.database.as_deref(), secrets).await?;
    Ok(())
}

/// Step output to stdout, Gantry's own lines to stderr, each prefixed with
/// the step's id (or name).
fn print_line(names: &[String], line: &gantry_store::LogLine) {
    let name = usize::try_from(line.step)
        .ok()
        .and_then(|i| names.get(i))
        .map_or("gantry", String::as_str);
    match line.stream {
        LogStream::System => eprintln!("[{name}] {}", line.line),
        _ => println!("[{name}] {}", line.line),
    }
}

/// The secret store of the server whose data directory is `data_dir`
/// (its key file, its database), as that server reads it; every secret
/// `availableSecrets` names must be there. `None` when the build names no
/// secret.
async fn server_secrets(
    data_dir: Option<&Path>,
    database: Option<&str>,
    wanted: &BTreeMap<String, String>,
) -> anyhow::Result<Option<gantry_secrets::SecretStore>> {
    let Some(name) = wanted.values().next() else {
        return Ok(None);
    };
    let Some(data_dir) = data_dir else {
        bail!(
            "secret {name:?} (availableSecrets): give --data-dir DIR to read a server's secret store, or --secrets-from-env"
        );
    };
    let url = match database {
        Some(url) => url.to_owned(),
        None => {
            let path = data_dir.join("gantry.db");
            if !path.is_file() {
                bail!(
                    "{} has no gantry.db: is it a server's data directory? (--database for a server on PostgreSQL)",
                    data_dir.display()
                );
            }
            format!("sqlite://{}", path.display())
        }
    };
    let store = Store::open_existing(&url)
        .await
        .with_context(|| format!("cannot open the secret store of {}", data_dir.display()))?;
    let secrets = gantry_secrets::SecretStore::open_existing(store, data_dir)?;
    for name in wanted.values() {
        if secrets.get(name).await?.is_none() {
            bail!(
                "secret {name:?} (availableSecrets) does not exist in the secret store of {}",
                data_dir.display()
            );
        }
    }
    Ok(Some(secrets))
}

/// `--secrets-from-env`: each secret from the variable of its name.
async fn secrets_from_env(
    store: &gantry_secrets::SecretStore,
    secrets: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    for secret in secrets.values() {
        let value = std::env::var(secret).with_context(|| {
            format!(
                "secret {secret:?} (availableSecrets): --secrets-from-env reads it from the variable {secret}, which is not set"
            )
        })?;
        store.set(secret, &value, 0).await?;
    }
    Ok(())
}

fn pipeline_spec(
    source: &Path,
    steps: Vec<gantry_config::Step>,
    timeout: Option<std::time::Duration>,
) -> anyhow::Result<serde_json::Value> {
    let mut steps = serde_json::to_value(steps)?;
    let list = steps.as_array_mut().expect("a list serializes as an array");
    // Steps that start at once (`waitFor: ['-']`) still need the source.
    for step in list.iter_mut() {
        if step["waitFor"]
            .as_array()
            .is_some_and(|w| w.iter().any(|x| x == "-"))
        {
            step["waitFor"] = serde_json::json!(["gantry-source"]);
        }
    }
    list.insert(
        0,
        serde_json::json!({
            "name": "source",
            "id": "gantry-source",
            "command": ["cp", "-a", format!("{}/.", source.display()), "."],
        }),
    );
    let mut stage = serde_json::json!({ "id": "build", "type": "run", "steps": steps });
    if let Some(timeout) = timeout {
        stage["timeout"] = serde_json::Value::String(format!("{}s", timeout.as_secs()));
    }
    let spec = serde_json::json!({ "name": "cloudbuild", "stages": [stage] });
    // Checked by the same types the engine reads it with.
    let pipeline: gantry_config::Pipeline = serde_json::from_value(spec)?;
    Ok(serde_json::to_value(pipeline)?)
}

fn step_names(pipeline: &serde_json::Value) -> Vec<String> {
    pipeline["stages"][0]["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, s)| {
            s["id"]
                .as_str()
                .or(s["name"].as_str())
                .map_or_else(|| format!("step {i}"), str::to_owned)
        })
        .collect()
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Canceled => "canceled",
        _ => "failed",
    }
}

/// Cloud Build's ids are UUIDs; any unique string serves here.
fn build_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{:x}", std::process::id())
}
