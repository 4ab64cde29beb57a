//! One step, from its record to its end: started on the host in its own
//! process group, or in a container through the engine's CLI (whose client
//! process also gets a group, so that a restarted server can kill it).

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
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
use super::engine_cli;
use super::fd_delivery::{SCRIPT_FD, memory_file, pass_fd, secret_preamble, wrap_with_secrets};
use super::output::{MAX_STEP_LOG, pump, read_outputs};
use crate::clock;
use crate::engine::HostSteps;
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
    /// Steps that run the container engine's CLI on the host (a Cloud
    /// Build file's `gcr.io/cloud-builders/docker`): they need the engine,
    /// so they run unconfined, within what `engine_cli` allows (see
    /// `cloudbuild.rs`).
    pub(crate) engine_cli: std::collections::HashMap<usize, super::engine_cli::Allowed>,
    /// The stage's private temporary directory: `HOME` and `TMPDIR` of its
    /// confined host steps.
    pub(crate) tmp: PathBuf,
}

/// What a container step gets through the memory file under podman.
struct PodmanDelivery {
    file: Option<OwnedFd>,
    /// The script's path inside the container, when the step has one.
    script: Option<String>,
    /// The wrapping entrypoint and arguments of a step without a script
    /// but with secrets.
    command: Option<(String, Vec<String>)>,
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
        // Created anew, never opened through a name a step may have linked elsewhere (the
        // run directory is the step's to write).
        let _ = tokio::fs::remove_file(&output_file).await;
        let created = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&output_file)
            .await;
        if let Err(error) = created {
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
        // A script travels in an anonymous memory file, held open until the
        // step has started (through podman into its container); under the
        // docker CLI, in a file of the stage's run directory, removed when
        // the step ends. Never on a command line.
        let mut script_fd = None;
        let mut script_file = None;
        // The entrypoint and arguments of a container step whose secrets a
        // shell reads from the memory file before running its command.
        let mut wrapped: Option<(String, Vec<String>)> = None;
        // A builder step's context and file, open beneath the workspace
        // until the engine's process has started.
        let mut path_fds = Vec::new();
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
                // Variables whose value holds a secret are passed like
                // `secretEnv`.
                let mut secret_env = self.secret_env();
                let mut env = self.container_env(trigger_env);
                env.retain(|name, value| {
                    if stage.log.masker.reveals(value) {
                        secret_env.insert(name.clone(), value.clone());
                        false
                    } else {
                        true
                    }
                });
                let script = if engine.preserves_fds() {
                    // Podman hands the memory file on to the container: the
                    // secrets travel in it, ahead of the script (or of a
                    // shell that reads them and runs the step's command),
                    // never in the container's config on disk.
                    match self.podman_delivery(engine, image, &secret_env).await {
                        Ok(delivery) => {
                            script_fd = delivery.file;
                            wrapped = delivery.command;
                            secret_env.clear();
                            delivery.script
                        }
                        Err(error) => return self.fail(format!("{name}: {error}"), None).await,
                    }
                } else {
                    // The docker CLI cannot hand on a descriptor: the script
                    // is a file, the secrets go by name (`--env NAME`).
                    match &self.step.script {
                        Some(script) => match self.write_script(script).await {
                            Ok((host, inside)) => {
                                script_file = Some(host);
                                Some(inside)
                            }
                            Err(error) => {
                                return self.fail(format!("{name}: {error}"), None).await;
                            }
                        },
                        None => None,
                    }
                };
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
                    env,
                    secret_env: &secret_env,
                    script,
                    command: wrapped.clone(),
                    preserve_fds: u32::from(script_fd.is_some()),
                };
                let mut command = container.command(engine);
                if let Some(file) = &script_fd {
                    pass_fd(&mut command, file);
                }
                command
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
            (None, _) if ctx.engine.inner.config.host_steps == HostSteps::Off => {
                return self
                    .fail(
                        format!(
                            "{name} runs on the host, which this server refuses (gantry serve --host-steps off): give it an image"
                        ),
                        None,
                    )
                    .await;
            }
            (None, _) => match self.host_command(&name) {
                Ok((mut command, script)) => {
                    script_fd = script;
                    if let Some(allowed) = stage.engine_cli.get(&(self.index as usize)) {
                        match engine_cli::open_paths(
                            allowed,
                            &stage.workspace,
                            self.step.dir.as_deref(),
                        ) {
                            Ok((argv, fds)) => {
                                command = tokio::process::Command::new(&argv[0]);
                                command.args(&argv[1..]);
                                engine_cli::inherit(&mut command, &fds);
                                path_fds = fds;
                            }
                            Err(error) => {
                                return self.fail(format!("{name}: {error}"), None).await;
                            }
                        }
                    }
                    let sandbox = self.sandbox();
                    match sandbox {
                        Some(_) => {
                            gantry_sandbox::clean_environment(command.as_std_mut(), &stage.tmp)
                        }
                        None => remove_server_variables(&mut command),
                    }
                    command
                        .current_dir(&dir)
                        .envs(trigger_env)
                        .envs(stage.stage_env)
                        .envs(&self.step.env)
                        .envs(self.secret_env())
                        .env("GANTRY_OUTPUT", &output_file)
                        .env("GANTRY_WORKSPACE", &stage.workspace)
                        .env("GANTRY_EXECUTION_ID", &ctx.execution.id)
                        .env("GANTRY_STAGE_ID", &ctx.stage_id)
                        .env("GANTRY_STEP", self.index.to_string());
                    if let Some(sandbox) = sandbox
                        && let Err(error) = self.confine(sandbox, &mut command, &output_file)
                    {
                        return self
                            .fail(format!("{name}: cannot confine it: {error}"), None)
                            .await;
                    }
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
        gantry_sandbox::ordinary_umask(command.as_std_mut());

        let started_at = clock::now();
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                return self
                    .fail(format!("{name}: cannot start: {error}"), Some(started_at))
                    .await;
            }
        };
        drop(script_fd);
        drop(path_fds);
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
            (Ended::Exited, Ok(status))
                if wrapped.is_some()
                    && matches!(status.code(), Some(126 | 127))
                    && !self.image_has_shell().await =>
            {
                StepEnd::Failed(format!(
                    "{name}: image {:?} has no /bin/sh, which a container step with secrets needs: podman hands the secrets to a shell through a memory file, never on a command line or in the container's config",
                    self.step.image.as_deref().unwrap_or_default()
                ))
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
        self.after_container(script_file).await;
        // Read already: an output may hold a secret, sealed in the store
        // from now on, and never left on disk in the clear.
        let _ = tokio::fs::remove_file(&output_file).await;
        if let Err(error) = ctx.store().put_step(&record).await {
            return StepEnd::Failed(format!("{name}: {error}"));
        }
        end
    }

    /// The sandbox of this step: the engine's, unless the step is the
    /// container engine's CLI (which needs the engine's rights).
    fn sandbox(&self) -> Option<&gantry_sandbox::Sandbox> {
        if self.stage.engine_cli.contains_key(&(self.index as usize)) {
            return None;
        }
        self.stage.ctx.engine.inner.config.sandbox.as_ref()
    }

    /// Runs the host step as the step user, under Landlock: it writes the
    /// workspace and the stage's run directory (its `$GANTRY_OUTPUT`, its
    /// temporary directory) and reads nothing else of the data directory.
    fn confine(
        &self,
        sandbox: &gantry_sandbox::Sandbox,
        command: &mut tokio::process::Command,
        output_file: &Path,
    ) -> Result<(), String> {
        let stage = self.stage;
        sandbox.hand_over(output_file).map_err(|e| e.to_string())?;
        let access = gantry_sandbox::Access {
            writable: vec![stage.workspace.clone(), stage.run_dir.clone()],
        };
        sandbox
            .confine(command.as_std_mut(), &access)
            .map_err(|e| e.to_string())
    }

    /// Writes a container step's script where the container sees it
    /// (`/gantry/step-N.sh`); the host path and the path inside.
    async fn write_script(&self, script: &str) -> Result<(PathBuf, String), String> {
        use tokio::io::AsyncWriteExt;
        let file_name = format!("step-{}.sh", self.index);
        let path = self.stage.run_dir.join(&file_name);
        let _ = tokio::fs::remove_file(&path).await;
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .await
            .map_err(|e| format!("cannot write its script: {e}"))?;
        file.write_all(script.as_bytes())
            .await
            .map_err(|e| format!("cannot write its script: {e}"))?;
        Ok((path, super::container::inside_run_dir(&file_name)))
    }

    /// After a container step: its script goes, and what its container
    /// created in the workspace (as root) is given back to the step user.
    async fn after_container(&self, script_file: Option<PathBuf>) {
        if self.step.image.is_none() {
            return;
        }
        if let Some(path) = script_file {
            let _ = tokio::fs::remove_file(path).await;
        }
        if let Some(sandbox) = self.stage.ctx.engine.inner.config.sandbox.clone() {
            let workspace = self.stage.workspace.clone();
            let result = tokio::task::spawn_blocking(move || sandbox.hand_over(&workspace)).await;
            if let Ok(Err(error)) = result {
                self.stage.log.system(&error.to_string()).await;
            }
        }
    }

    /// The host command, and the memory file holding its script (to keep
    /// open until the process has started).
    fn host_command(
        &self,
        name: &str,
    ) -> Result<(tokio::process::Command, Option<OwnedFd>), String> {
        match (&self.step.script, &self.step.command) {
            (Some(script), _) => {
                let file = memory_file(script)
                    .map_err(|e| format!("{name}: cannot hand its script over: {e}"))?;
                let mut command = tokio::process::Command::new("sh");
                command.arg("-e").arg(format!("/dev/fd/{SCRIPT_FD}"));
                pass_fd(&mut command, &file);
                Ok((command, Some(file)))
            }
            (None, Some(argv)) if !argv.is_empty() => {
                let mut command = tokio::process::Command::new(&argv[0]);
                command.args(&argv[1..]);
                Ok((command, None))
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

    /// Under podman: the memory file for a container step (its secrets as
    /// `export` lines, then its script), the script's path inside, and
    /// for a step without a script but with secrets, the shell that reads
    /// them and runs its command.
    async fn podman_delivery(
        &self,
        engine: &ContainerEngine,
        image: &str,
        secret_env: &BTreeMap<String, String>,
    ) -> Result<PodmanDelivery, String> {
        let preamble = secret_preamble(secret_env).map_err(|e| e.to_string())?;
        let (text, command) = match &self.step.script {
            Some(script) => (Some(format!("{preamble}{script}")), None),
            None if secret_env.is_empty() => (None, None),
            None => {
                let argv = self.container_argv(engine, image).await?;
                (Some(preamble), Some(wrap_with_secrets(argv)))
            }
        };
        let file = match text {
            Some(text) => {
                Some(memory_file(&text).map_err(|e| format!("cannot hand its script over: {e}"))?)
            }
            None => None,
        };
        Ok(PodmanDelivery {
            file,
            script: self
                .step
                .script
                .as_ref()
                .map(|_| format!("/dev/fd/{SCRIPT_FD}")),
            command,
        })
    }

    /// What a container step without a script runs, as the engine would
    /// pick it: its entrypoint (or the image's), then its command or
    /// arguments (or, with neither entrypoint nor arguments, the image's
    /// command).
    async fn container_argv(
        &self,
        engine: &ContainerEngine,
        image: &str,
    ) -> Result<Vec<String>, String> {
        let step = self.step;
        let args = step.command.clone().unwrap_or_else(|| step.args.clone());
        let needs_image = step.entrypoint.is_none();
        let (image_entrypoint, image_cmd) = if needs_image {
            engine
                .image_command(image)
                .await
                .map_err(|e| e.to_string())?
        } else {
            Default::default()
        };
        let mut argv: Vec<String> = match &step.entrypoint {
            Some(entrypoint) => vec![entrypoint.clone()],
            None => image_entrypoint,
        };
        if args.is_empty() && needs_image {
            argv.extend(image_cmd);
        } else {
            argv.extend(args);
        }
        if argv.is_empty() {
            return Err(format!(
                "image {image:?} names no command and the step gives none"
            ));
        }
        Ok(argv)
    }

    /// Whether the step's image can start `/bin/sh` (asked after a wrapped
    /// step could not start its command, to tell which was missing).
    async fn image_has_shell(&self) -> bool {
        let (Some(image), Some(engine)) = (&self.step.image, &self.stage.containers) else {
            return true;
        };
        let probe = [
            "run",
            "--rm",
            "--pull=never",
            "--log-driver=none",
            "--entrypoint",
            "/bin/sh",
            image.as_str(),
            "-c",
            ":",
        ];
        engine.output("probe /bin/sh", &probe).await.is_ok()
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

/// The server's own variables (`GANTRY_DATA_DIR`, `GANTRY_TOKEN`, …) are
/// not for steps, confined or not.
fn remove_server_variables(command: &mut tokio::process::Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| n.starts_with("GANTRY_")) {
            command.env_remove(&name);
        }
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
