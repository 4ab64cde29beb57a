//! `run`: executes a stage's steps in the execution's workspace, on the host
//! or in containers that mount it at `/workspace`, in the order Cloud Build's
//! `waitFor` rules give (steps whose dependencies are done run in parallel).
//! Each step's lines go to the stage log as they come; `key=value` lines it
//! appends to `$GANTRY_OUTPUT` become stage outputs.
//!
//! Durability: a step's record (with the process group of its process, or of
//! the container engine's client) is written before the engine waits for it.
//! After a crash, finished steps are not run again; a step that was running
//! has its leftover processes killed and its container removed (found by
//! label), and is run again from its start, once (`onInterrupt: fail` opts
//! out).
//!
//! A failed step stops the others (Cloud Build's rule) unless it has
//! `allowFailure`. A `config:` file's top-level `timeout` bounds the whole
//! stage, counted from its start.

mod cloudbuild;
mod graph;
mod step;

/// A bake's build prints through the same pump as steps do.
pub(crate) use crate::executor::local::output;

use std::collections::BTreeMap;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use gantry_config::{OnInterrupt, RegistryAccess, RunStage, Step};
use gantry_store::{Status, StepRecord};
use serde_json::{Map, Value};

use super::{StageContext, StageFailure, StageResult, StageRunner};
use crate::clock;
use crate::executor::{LeftBehind, StageSpec, StepExecutor};
use crate::secret_lookup::SecretLookupError;
use step::{StageRun, StepEnd, StepRun, describe};

#[cfg(test)]
use output::parse_outputs;

impl StageRunner for gantry_config::stages::run::Run {
    async fn run(ctx: &StageContext, spec: &RunStage) -> StageResult {
        run(ctx, spec).await
    }
}

async fn run(ctx: &StageContext, spec: &RunStage) -> StageResult {
    let workspace = ctx.workspace();
    let run_dir = ctx.run_dir();
    for dir in [&workspace, &run_dir] {
        if let Err(error) = tokio::fs::create_dir_all(dir).await {
            return Err(StageFailure::Failed(format!(
                "cannot create {}: {error}",
                dir.display()
            )));
        }
    }
    let cloudbuild::Loaded {
        steps,
        images,
        objects,
        timeout,
        engine_cli,
    } = match steps_of(ctx, spec).await {
        Ok(loaded) => loaded,
        Err(error) => {
            let error = error.to_string();
            ctx.log.system(&error).await;
            return Err(StageFailure::Failed(error));
        }
    };
    // Docker builder steps in a container reach the engine through the gate, for as long
    // as this stage runs.
    let on_runners = !spec.runs_on.is_empty() || steps.iter().any(|s| !s.runs_on.is_empty());
    let _gate = match docker_gate(ctx, &steps, on_runners, &run_dir).await {
        Ok(gate) => gate,
        Err(error) => {
            ctx.log.system(&error).await;
            return Err(StageFailure::Failed(error));
        }
    };
    let dependencies = match graph::dependencies(&steps) {
        Ok(dependencies) => dependencies,
        Err(error) => return Err(StageFailure::Failed(error.to_string())),
    };
    let secrets = match resolve_secrets(ctx, &steps).await {
        Ok(secrets) => secrets,
        Err(error) => {
            let error = error.to_string();
            ctx.log.system(&error).await;
            return Err(StageFailure::Failed(error));
        }
    };
    // The execution's masker knows the secrets its stages name; a `config:`
    // file's steps may name more, masked from now on in every stage's log.
    ctx.log.masker.add(secrets.values().cloned());
    let log = ctx.log.clone();
    let containers = if steps.iter().any(|s| s.image.is_some()) || !images.is_empty() {
        ctx.containers().cloned()
    } else {
        None
    };
    let mut volumes: Vec<String> = steps
        .iter()
        .filter(|s| s.image.is_some())
        .flat_map(|s| s.volumes.iter().map(|v| v.name.clone()))
        .collect();
    volumes.sort_unstable();
    volumes.dedup();
    let executor = match ctx.step_executor(on_runners, spec.runner_wait) {
        Ok(executor) => executor,
        Err(error) => {
            ctx.log.system(&error).await;
            return Err(StageFailure::Failed(error));
        }
    };
    let stage = StageRun {
        ctx,
        log,
        stage_env: &spec.env,
        containers,
        secrets,
        stop: ctx.cancel.child_token(),
        engine_cli,
        executor,
        on_interrupt: spec.on_interrupt,
        runs_on: spec.runs_on.clone(),
        spec: StageSpec {
            execution: ctx.execution_id.clone(),
            stage: ctx.stage_id.clone(),
            workspace,
            run_dir,
            volumes,
            uses_containers: steps.iter().any(|s| s.image.is_some()) || !images.is_empty(),
            resumed: ctx.resumed,
        },
    };
    if let Err(error) = stage.executor.prepare(&stage.spec).await {
        let error = error.to_string();
        stage.log.system(&error).await;
        return Err(StageFailure::Failed(error));
    }
    let mut outcome = match (timeout, &spec.config) {
        (Some(timeout), Some(config)) => {
            run_graph_within(&stage, spec, &steps, &dependencies, timeout, config).await
        }
        _ => run_graph(&stage, spec, &steps, &dependencies).await,
    };
    if outcome.is_ok() && !images.is_empty() {
        outcome = push(&stage, &spec.registry, &images).await;
    }
    if let (Ok(outputs), Some(objects)) = (&mut outcome, &objects) {
        match keep_artifacts(ctx, &stage.spec, objects).await {
            Ok(kept) => {
                outputs.insert("artifacts".to_owned(), kept);
            }
            Err(error) => outcome = Err(error),
        }
    }
    if let Err(error) = stage.executor.release(&stage.spec).await {
        stage.log.system(&error.to_string()).await;
    }
    outcome
}

/// The stage's steps: its own, or those of its Cloud Build file.
async fn steps_of(
    ctx: &StageContext,
    spec: &RunStage,
) -> Result<cloudbuild::Loaded, cloudbuild::LoadError> {
    match &spec.config {
        Some(config) => cloudbuild::load(ctx, config, &spec.substitutions).await,
        None => Ok(cloudbuild::Loaded {
            steps: spec.steps.clone(),
            images: Vec::new(),
            objects: None,
            timeout: None,
            engine_cli: Default::default(),
        }),
    }
}

/// The Docker API gate in the stage's run directory, when a container step is Cloud
/// Build's docker builder (translated with `DOCKER_HOST` at the gate: the image of `gantry
/// builders build`, or another mapped to it); forwarding to the engine's own API, started
/// for it if need be.
async fn docker_gate(
    ctx: &StageContext,
    steps: &[Step],
    on_runners: bool,
    run_dir: &std::path::Path,
) -> Result<Option<gantry_container::api_gate::ApiGate>, String> {
    use gantry_container::api_gate::{ApiGate, GATE_SOCKET_NAME, engine_api_socket};
    let through_gate = |step: &Step| {
        step.image.is_some()
            && step.env.get("DOCKER_HOST").map(String::as_str)
                == Some(gantry_cloudbuild::DOCKER_BUILDER_HOST)
    };
    if !steps.iter().any(through_gate) {
        return Ok(None);
    }
    // Steps on runners (the local one included) find a gate their runner opens beside
    // them; this one serves steps in the server's own process tree.
    if !ctx.runs_steps_itself(on_runners) {
        return Ok(None);
    }
    let Some(engine) = ctx.containers() else {
        return Err("the docker builder needs a container engine (podman or docker)".to_owned());
    };
    let upstream = engine_api_socket(engine, &ctx.data_dir().join("engine-api"))
        .await
        .map_err(|e| format!("the docker builder: {e}"))?;
    ApiGate::start(&run_dir.join(GATE_SOCKET_NAME), &upstream)
        .map(Some)
        .map_err(|e| format!("the docker builder: {e}"))
}

/// Copies a Cloud Build file's `artifacts.objects` into the artifact store; what it kept,
/// for the stage's outputs.
async fn keep_artifacts(
    ctx: &StageContext,
    spec: &StageSpec,
    objects: &gantry_cloudbuild::ObjectArtifacts,
) -> Result<Value, StageFailure> {
    let dest = crate::artifact_store::directory(ctx.data_dir(), &spec.execution, &spec.stage);
    let workspace = spec.workspace.clone();
    let objects = objects.clone();
    let kept = tokio::task::spawn_blocking(move || {
        crate::artifact_store::keep(&workspace, &dest, &objects)
    })
    .await
    .map_err(|e| StageFailure::Failed(format!("artifacts.objects: {e}")))?;
    match kept {
        Ok(kept) => {
            for object in &kept.objects {
                ctx.log
                    .system(&format!(
                        "kept {} as artifact {} ({} bytes, sha256 {})",
                        object.path, object.name, object.size, object.sha256
                    ))
                    .await;
            }
            Ok(serde_json::to_value(kept).unwrap_or_default())
        }
        Err(error) => {
            let error = error.to_string();
            ctx.log.system(&error).await;
            Err(StageFailure::Failed(error))
        }
    }
}

async fn push(stage: &StageRun<'_>, access: &RegistryAccess, images: &[String]) -> StageResult {
    let credentials = match crate::bake::credentials(stage.ctx, access).await {
        Ok(credentials) => credentials,
        Err(error) => return Err(StageFailure::Failed(format!("images: {error}"))),
    };
    let (_, insecure) = stage.ctx.registries();
    // Built on a runner, the images are in that runner's engine: pushed from there.
    let on_runner = stage
        .executor
        .push_on_runner(
            &stage.spec,
            cloudbuild::images_to_push(access, images, insecure),
            credentials.as_ref(),
            &stage.stop,
        )
        .await;
    let pushed = match (on_runner, &stage.containers) {
        (Some(pushed), _) => pushed
            .map(|pushed| pushed.into_iter().map(|p| (p.image, p.digest)).collect())
            .map_err(|failure| {
                let hint = if failure.unauthorized {
                    crate::bake::unauthorized_hint(access)
                } else {
                    String::new()
                };
                format!("images: {failure}{hint}")
            }),
        (None, Some(engine)) => {
            cloudbuild::push_images(engine, access, credentials.as_ref(), images, insecure)
                .await
                .map_err(|error| error.to_string())
        }
        (None, None) => Err(
            "images: no container engine is installed to push them (podman or docker)".to_owned(),
        ),
    };
    match pushed {
        Ok(pushed) => {
            let mut outputs = Map::new();
            for (image, digest) in &pushed {
                stage
                    .log
                    .system(&format!("pushed {image} ({digest})"))
                    .await;
            }
            outputs.insert(
                "images".to_owned(),
                serde_json::Value::Array(
                    pushed
                        .iter()
                        .map(
                            |(image, digest)| serde_json::json!({"image": image, "digest": digest}),
                        )
                        .collect(),
                ),
            );
            Ok(outputs)
        }
        Err(error) => {
            stage.log.system(&error).await;
            Err(StageFailure::Failed(error))
        }
    }
}

/// [`run_graph`] under a Cloud Build file's top-level `timeout`, counted
/// from the stage's start (a restart does not give it a new one): at the
/// deadline the steps are stopped (their containers removed) and the stage
/// fails naming the file's timeout.
async fn run_graph_within(
    stage: &StageRun<'_>,
    spec: &RunStage,
    steps: &[Step],
    dependencies: &[Vec<usize>],
    timeout: std::time::Duration,
    config: &str,
) -> StageResult {
    let elapsed = (clock::now() - stage.ctx.started_at).max(0) as u64;
    let left = timeout.saturating_sub(std::time::Duration::from_millis(elapsed));
    let graph = run_graph(stage, spec, steps, dependencies);
    tokio::pin!(graph);
    tokio::select! {
        outcome = &mut graph => outcome,
        _ = tokio::time::sleep(left) => {
            stage.stop.cancel();
            let _ = graph.await;
            if stage.ctx.cancel.is_cancelled() {
                return Err(StageFailure::Canceled(stage.ctx.cancel_reason().await));
            }
            let error = format!(
                "the build timed out after {} (timeout in {config})",
                crate::humanize(timeout)
            );
            stage.log.system(&error).await;
            Err(StageFailure::Failed(error))
        }
    }
}

/// Runs the steps as their dependencies allow, stopping the others at the
/// first failure that is not allowed.
async fn run_graph(
    stage: &StageRun<'_>,
    spec: &RunStage,
    steps: &[Step],
    dependencies: &[Vec<usize>],
) -> StageResult {
    let ctx = stage.ctx;
    let previous = match ctx.store().steps(&ctx.execution_id, &ctx.stage_id).await {
        Ok(steps) => steps,
        Err(error) => return Err(StageFailure::Failed(error.to_string())),
    };
    let mut done = vec![false; steps.len()];
    let mut started = vec![false; steps.len()];
    let mut interruptions = vec![0; steps.len()];
    for (index, step) in steps.iter().enumerate() {
        let Some(before) = previous.iter().find(|s| s.step == index as i64) else {
            continue;
        };
        match before.status {
            Status::Succeeded => {
                done[index] = true;
                started[index] = true;
            }
            Status::Running => {
                let policy = step.on_interrupt.unwrap_or(spec.on_interrupt);
                match interrupted(stage, before, policy, &describe(index as i64, step)).await {
                    Ok(count) => interruptions[index] = count,
                    Err(failure) => return Err(failure),
                }
            }
            _ => {}
        }
    }

    let mut failure: Option<String> = None;
    let mut running = FuturesUnordered::new();
    loop {
        if !stage.stop.is_cancelled() {
            for index in 0..steps.len() {
                if !started[index] && dependencies[index].iter().all(|d| done[*d]) {
                    started[index] = true;
                    let run = StepRun {
                        stage,
                        index: index as i64,
                        step: &steps[index],
                        interruptions: interruptions[index],
                    };
                    running.push(async move { (index, run.execute().await) });
                }
            }
        }
        let Some((index, end)) = running.next().await else {
            break;
        };
        match end {
            StepEnd::Succeeded(outputs) => {
                done[index] = true;
                let outputs = seal_secret_outputs(stage, outputs);
                // A write of the execution per step only when it has outputs.
                if !outputs.is_empty()
                    && let Err(error) = ctx.add_outputs(outputs).await
                {
                    failure.get_or_insert(error.to_string());
                    stage.stop.cancel();
                }
            }
            StepEnd::Failed(error) if steps[index].allow_failure => {
                done[index] = true;
                stage
                    .log
                    .system(&format!("{error} (allowed to fail: the stage goes on)"))
                    .await;
            }
            StepEnd::Failed(error) => {
                failure.get_or_insert(error);
                stage.stop.cancel();
            }
            StepEnd::Canceled => {}
        }
    }
    if ctx.cancel.is_cancelled() {
        return Err(StageFailure::Canceled(ctx.cancel_reason().await));
    }
    match failure {
        Some(error) => Err(StageFailure::Failed(error)),
        None => Ok(Map::new()),
    }
}

/// Outputs that hold a secret the execution knows (a secret parameter
/// echoed into `$GANTRY_OUTPUT`, say) are stored sealed: expressions of
/// later stages read them, the API and the database never see them.
fn seal_secret_outputs(stage: &StageRun<'_>, outputs: Map<String, Value>) -> Map<String, Value> {
    let secrets = stage.ctx.secrets();
    outputs
        .into_iter()
        .map(|(name, value)| match value {
            Value::String(text) if stage.log.masker.reveals(&text) => {
                (name, crate::sealed::seal(secrets, &text))
            }
            other => (name, other),
        })
        .collect()
}

/// A secret a step names in `secretEnv` that has no value here; `step` describes the step.
#[derive(Debug, thiserror::Error)]
enum StepSecretError {
    #[error("{step} needs secret {name:?} but this server has no secret store")]
    NoSecretStore { step: String, name: String },
    #[error("{step}: secret {name:?}{reason}")]
    Lookup {
        step: String,
        name: String,
        reason: SecretLookupError,
    },
}

/// The values of every secret the steps name in `secretEnv`; a missing one
/// fails the stage before any step runs.
async fn resolve_secrets(
    ctx: &StageContext,
    steps: &[Step],
) -> Result<BTreeMap<String, String>, StepSecretError> {
    let mut values = BTreeMap::new();
    for (index, step) in steps.iter().enumerate() {
        for entry in &step.secret_env {
            let (_, name) = secret_env_entry(entry);
            if values.contains_key(name) {
                continue;
            }
            let (step, name) = (describe(index as i64, step), name.to_owned());
            match crate::secret_lookup::lookup(ctx.secrets(), &name).await {
                Ok(value) => {
                    values.insert(name, value);
                }
                Err(SecretLookupError::NoSecretStore) => {
                    return Err(StepSecretError::NoSecretStore { step, name });
                }
                Err(reason) => return Err(StepSecretError::Lookup { step, name, reason }),
            }
        }
    }
    Ok(values)
}

/// A `secretEnv` entry: `NAME` (the variable is named like the secret) or
/// `VARIABLE=SECRET`.
pub(crate) fn secret_env_entry(entry: &str) -> (&str, &str) {
    entry.split_once('=').unwrap_or((entry, entry))
}

/// Handles a step that was running when the server stopped: kills what is
/// left of it (its processes, its container), then decides whether it runs
/// again. `Ok(n)` is the new interruption count.
async fn interrupted(
    stage: &StageRun<'_>,
    before: &StepRecord,
    policy: OnInterrupt,
    name: &str,
) -> Result<i64, StageFailure> {
    let ctx = stage.ctx;
    let left = match (before.pgid, before.proc_start) {
        (Some(pgid), Some(start)) => Some(LeftBehind { pgid, start }),
        _ => None,
    };
    let reaped = stage.executor.reap(&stage.spec, before.step, left).await;
    if reaped.killed_processes > 0 {
        stage
            .log
            .system(&format!(
                "{name}: killed {} leftover process(es) of the interrupted run",
                reaped.killed_processes
            ))
            .await;
    }
    if reaped.removed_containers > 0 {
        stage
            .log
            .system(&format!(
                "{name}: removed {} leftover container(s) of the interrupted run",
                reaped.removed_containers
            ))
            .await;
    }
    for error in &reaped.errors {
        stage
            .log
            .system(&format!(
                "{name}: cannot remove its leftover container: {error}"
            ))
            .await;
    }
    let give_up = match policy {
        OnInterrupt::Fail => Some(format!(
            "{name} was interrupted by a server restart (onInterrupt: fail)"
        )),
        OnInterrupt::Rerun if before.interruptions >= 1 => Some(format!(
            "{name} was interrupted by a server restart again after being re-run once"
        )),
        OnInterrupt::Rerun => None,
    };
    if let Some(error) = give_up {
        let record = StepRecord {
            status: Status::Failed,
            ended_at: Some(clock::now()),
            error: Some(error.clone()),
            pgid: None,
            proc_start: None,
            ..before.clone()
        };
        let _ = ctx.store().put_step(&record).await;
        stage.log.system(&error).await;
        return Err(StageFailure::Failed(error));
    }
    stage
        .log
        .system(&format!(
            "{name} was interrupted by a server restart: running it again from its start"
        ))
        .await;
    Ok(before.interruptions + 1)
}

#[cfg(test)]
mod tests;
