//! One step, from its record to its end: started on the host in its own
//! process group, or in a container through the engine's CLI (whose client
//! process also gets a group, so that a restarted server can kill it).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use gantry_config::Step;
use gantry_container::ContainerEngine;
use gantry_store::{LogStream, Status, StepRecord};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::container::{ContainerStep, StageLabels, container_output_path};
use super::output::{MAX_STEP_LOG, pump, read_outputs};
use crate::clock;
use crate::logs::StageLog;
use crate::process::{self, ProcessId};
use crate::stages::StageContext;

pub(crate) enum StepEnd {
    Succeeded(Map<String, Value>),
    Failed(String),
    Canceled,
}

/// What the steps of one stage share.
pub(crate) struct StageRun<'a> {
    pub(crate) ctx: &'a StageContext,
    pub(crate) log: StageLog,
    pub(crate) workspace: PathBuf,
    pub(crate) run_dir: PathBuf,
    pub(crate) stage_env: &'a BTreeMap<String, String>,
    pub(crate) containers: Option<ContainerEngine>,
    pub(crate) labels: StageLabels,
    /// Values of every `secretEnv` name the stage's steps use.
    pub(crate) secrets: BTreeMap<String, String>,
    /// Cancelled when the execution stops or another step failed.
    pub(crate) stop: CancellationToken,
    /// Images this stage found (or pulled) already: each is checked once
    /// per stage, not once per step (an `image exists` is a whole engine
    /// process, ~50 ms here).
    pub(crate) images: std::sync::Mutex<std::collections::HashSet<String>>,
}

pub(crate) struct StepRun<'a> {
    pub(crate) stage: &'a StageRun<'a>,
    pub(crate) index: i64,
    pub(crate) step: &'a Step,
    pub(crate) interruptions: i64,
}

enum Ended {
    Exited,
    Canceled,
    TimedOut,
}

impl StepRun<'_> {
    pub(crate) async fn execute(&self) -> StepEnd {
        let stage = self.stage;
        let ctx = stage.ctx;
        let name = describe(self.index, self.step);
        let output_file = stage.run_dir.join(format!("step-{}.outputs", self.index));
        if let Err(error) = tokio::fs::write(&output_file, b"").await {
            return self
                .fail(
                    format!("{name}: cannot create its output file: {error}"),
                    None,
                )
                .await;
        }
        let dir = match working_dir(&stage.workspace, self.step.dir.as_deref()) {
            Ok(dir) => dir,
            Err(error) => return self.fail(format!("{name}: {error}"), None).await,
        };
        let trigger_env = {
            let state = ctx.execution.read().await;
            crate::trigger_env::step_env(&state.exec.trigger)
        };
        let mut command = match (&self.step.image, &stage.containers) {
            (Some(image), Some(engine)) => {
                // After a restart, a container of this step may be left from
                // before its record was written, holding the name. A fresh
                // stage cannot have one: names carry the execution and the
                // stage, and a stage removes its containers when it ends.
                if ctx.resumed {
                    let _ = engine
                        .remove_container(&stage.labels.container_name(self.index))
                        .await;
                }
                if !stage.images.lock().unwrap().contains(image) {
                    if let Err(error) = engine.ensure_image(image).await {
                        return self.fail(format!("{name}: {error}"), None).await;
                    }
                    stage.images.lock().unwrap().insert(image.clone());
                }
                let secret_env = self.secret_env();
                let container = ContainerStep {
                    labels: &stage.labels,
                    index: self.index,
                    step: self.step,
                    image,
                    workspace: &stage.workspace,
                    run_dir: &stage.run_dir,
                    workdir: match &self.step.dir {
                        Some(dir) => format!("/workspace/{}", dir.trim_start_matches("./")),
                        None => "/workspace".to_owned(),
                    },
                    env: self.container_env(trigger_env),
                    secret_env: &secret_env,
                };
                container.command(engine)
            }
            (Some(image), None) => {
                return self
                    .fail(
                        format!(
                            "{name} runs in image {image:?} but no container engine is installed (podman or docker)"
                        ),
                        None,
                    )
                    .await;
            }
            (None, _) => match self.host_command(&name) {
                Ok(mut command) => {
                    command
                        .current_dir(&dir)
                        .env_remove("GANTRY_TOKEN")
                        .envs(trigger_env)
                        .envs(stage.stage_env)
                        .envs(&self.step.env)
                        .envs(self.secret_env())
                        .env("GANTRY_OUTPUT", &output_file)
                        .env("GANTRY_WORKSPACE", &stage.workspace)
                        .env("GANTRY_EXECUTION_ID", &ctx.execution.id)
                        .env("GANTRY_STAGE_ID", &ctx.stage_id)
                        .env("GANTRY_STEP", self.index.to_string());
                    command
                }
                Err(error) => return self.fail(error, None).await,
            },
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);

        let started_at = clock::now();
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                return self
                    .fail(format!("{name}: cannot start: {error}"), Some(started_at))
                    .await;
            }
        };
        let pid = child.id().unwrap_or_default() as i32;
        let leader = ProcessId::of(pid);
        ctx.engine.inner.process_groups.lock().unwrap().insert(pid);
        let mut record = StepRecord {
            execution_id: ctx.execution.id.clone(),
            stage_id: ctx.stage_id.clone(),
            step: self.index,
            status: Status::Running,
            started_at: Some(started_at),
            ended_at: None,
            exit_code: None,
            pgid: Some(i64::from(pid)),
            proc_start: leader.map(|p| p.start),
            interruptions: self.interruptions,
            error: None,
        };
        if let Err(error) = ctx.store().put_step(&record).await {
            self.stop_container().await;
            process::kill_group(pid);
            let _ = child.wait().await;
            ctx.engine.inner.process_groups.lock().unwrap().remove(&pid);
            return StepEnd::Failed(format!("{name}: {error}"));
        }

        let budget = Arc::new(AtomicU64::new(MAX_STEP_LOG));
        let readers = [
            child.stdout.take().map(|out| {
                tokio::spawn(pump(
                    out,
                    stage.log.clone(),
                    self.index,
                    LogStream::Stdout,
                    budget.clone(),
                ))
            }),
            child.stderr.take().map(|err| {
                tokio::spawn(pump(
                    err,
                    stage.log.clone(),
                    self.index,
                    LogStream::Stderr,
                    budget.clone(),
                ))
            }),
        ];

        let timeout = async {
            match self.step.timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        };
        let exited = tokio::select! {
            status = child.wait() => Some(status),
            _ = stage.stop.cancelled() => None,
            _ = timeout => None,
        };
        let (ended, status) = match exited {
            Some(status) => (Ended::Exited, status),
            None => {
                let ended = if stage.stop.is_cancelled() {
                    Ended::Canceled
                } else {
                    Ended::TimedOut
                };
                // The engine client going away does not stop a container:
                // remove the container itself first.
                self.stop_container().await;
                process::terminate_group(pid, process::GRACE).await;
                (ended, child.wait().await)
            }
        };
        // Whatever the step left behind in its group goes with it; this also
        // closes pipes a background process would otherwise hold open.
        process::kill_group(pid);
        ctx.engine.inner.process_groups.lock().unwrap().remove(&pid);
        for reader in readers.into_iter().flatten() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), reader).await;
        }

        record.pgid = None;
        record.proc_start = None;
        record.ended_at = Some(clock::now());
        let exit_code = status.as_ref().ok().and_then(|s| s.code());
        record.exit_code = exit_code.map(i64::from);
        let end = match (ended, status) {
            (Ended::Canceled, _) => {
                record.status = Status::Canceled;
                StepEnd::Canceled
            }
            (Ended::TimedOut, _) => {
                let timeout = crate::stages::humanize(self.step.timeout.unwrap_or_default());
                StepEnd::Failed(format!("{name} timed out after {timeout}"))
            }
            (Ended::Exited, Err(error)) => {
                StepEnd::Failed(format!("{name}: cannot wait for it: {error}"))
            }
            (Ended::Exited, Ok(status))
                if status.success()
                    || status
                        .code()
                        .is_some_and(|c| self.step.allow_exit_codes.contains(&c)) =>
            {
                match read_outputs(&output_file).await {
                    Ok(outputs) => StepEnd::Succeeded(outputs),
                    Err(error) => StepEnd::Failed(format!("{name}: $GANTRY_OUTPUT: {error}")),
                }
            }
            (Ended::Exited, Ok(status)) => StepEnd::Failed(match status.code() {
                Some(125) if self.step.image.is_some() => format!(
                    "{name}: the container engine could not run the container (exit code 125; see the step's log)"
                ),
                Some(code) => format!("{name} exited with code {code}"),
                None => {
                    use std::os::unix::process::ExitStatusExt;
                    format!(
                        "{name} was killed by signal {}",
                        status.signal().unwrap_or_default()
                    )
                }
            }),
        };
        match &end {
            StepEnd::Succeeded(_) => record.status = Status::Succeeded,
            StepEnd::Failed(error) => {
                record.status = Status::Failed;
                record.error = Some(error.clone());
                stage.log.system(error).await;
            }
            StepEnd::Canceled => {}
        }
        stage.log.flush().await;
        if let Err(error) = ctx.store().put_step(&record).await {
            return StepEnd::Failed(format!("{name}: {error}"));
        }
        end
    }

    fn host_command(&self, name: &str) -> Result<tokio::process::Command, String> {
        match (&self.step.script, &self.step.command) {
            (Some(script), _) => {
                let mut command = tokio::process::Command::new("sh");
                command.arg("-e").arg("-c").arg(script);
                Ok(command)
            }
            (None, Some(argv)) if !argv.is_empty() => {
                let mut command = tokio::process::Command::new(&argv[0]);
                command.args(&argv[1..]);
                Ok(command)
            }
            _ => Err(format!("{name}: has neither a script nor a command")),
        }
    }

    /// The environment of a container step, lowest precedence first.
    fn container_env(
        &self,
        trigger_env: impl IntoIterator<Item = (String, String)>,
    ) -> BTreeMap<String, String> {
        let stage = self.stage;
        let mut env: BTreeMap<String, String> = trigger_env.into_iter().collect();
        env.extend(stage.stage_env.clone());
        env.extend(self.step.env.clone());
        env.insert("GANTRY_OUTPUT".into(), container_output_path(self.index));
        env.insert("GANTRY_WORKSPACE".into(), "/workspace".into());
        env.insert("GANTRY_EXECUTION_ID".into(), stage.ctx.execution.id.clone());
        env.insert("GANTRY_STAGE_ID".into(), stage.ctx.stage_id.clone());
        env.insert("GANTRY_STEP".into(), self.index.to_string());
        env
    }

    fn secret_env(&self) -> BTreeMap<String, String> {
        self.step
            .secret_env
            .iter()
            .filter_map(|entry| {
                let (variable, secret) = super::secret_env_entry(entry);
                Some((variable.to_owned(), self.stage.secrets.get(secret)?.clone()))
            })
            .collect()
    }

    async fn stop_container(&self) {
        if self.step.image.is_none() {
            return;
        }
        if let Some(engine) = &self.stage.containers {
            let name = self.stage.labels.container_name(self.index);
            if let Err(error) = engine.remove_container(&name).await {
                self.stage
                    .log
                    .system(&format!("cannot remove container {name}: {error}"))
                    .await;
            }
        }
    }

    async fn fail(&self, error: String, started_at: Option<i64>) -> StepEnd {
        let ctx = self.stage.ctx;
        self.stage.log.system(&error).await;
        let record = StepRecord {
            execution_id: ctx.execution.id.clone(),
            stage_id: ctx.stage_id.clone(),
            step: self.index,
            status: Status::Failed,
            started_at,
            ended_at: Some(clock::now()),
            exit_code: None,
            pgid: None,
            proc_start: None,
            interruptions: self.interruptions,
            error: Some(error.clone()),
        };
        let _ = ctx.store().put_step(&record).await;
        StepEnd::Failed(error)
    }
}

pub(crate) fn describe(index: i64, step: &Step) -> String {
    match (&step.name, &step.id) {
        (Some(name), _) | (None, Some(name)) => format!("step {} ({name})", index + 1),
        (None, None) => format!("step {}", index + 1),
    }
}

/// The step's directory: the workspace, or `dir` inside it (never outside).
fn working_dir(workspace: &Path, dir: Option<&str>) -> Result<PathBuf, String> {
    let Some(dir) = dir else {
        return Ok(workspace.to_owned());
    };
    let relative = Path::new(dir);
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "dir {dir:?} must be a relative path inside the workspace"
        ));
    }
    let path = workspace.join(relative);
    std::fs::create_dir_all(&path).map_err(|e| format!("cannot create dir {dir:?}: {e}"))?;
    Ok(path)
}
