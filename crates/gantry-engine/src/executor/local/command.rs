//! Starting one step: its output file, its command (on the host, or a
//! container through the engine's CLI), its process group and its pipes.

use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use gantry_container::ContainerEngine;
use gantry_store::LogStream;
use tokio::sync::mpsc;

use super::command_error::CommandError;
use super::container::{ContainerStep, container_output_path, inside_run_dir};
use super::fd_delivery::{SCRIPT_FD, memory_file, pass_fd, secret_preamble, wrap_with_secrets};
use super::handle::LocalHandle;
use super::output::{MAX_STEP_LOG, pump};
use super::{LocalExecutor, engine_cli, labels, prepare};
use crate::clock;
use crate::engine::HostSteps;
use crate::executor::{Confinement, ExecutorError, LogLine, StageSpec, StepSecrets, StepSpec};
use crate::process::ProcessId;

/// Lines a step's pipes may send ahead of the reader.
const LOG_BUFFER: usize = 256;

/// Everything that must stay alive until the step's process started: the
/// memory file of its script and secrets, a builder's open paths.
#[derive(Default)]
struct Held {
    script_fd: Option<OwnedFd>,
    path_fds: Vec<OwnedFd>,
}

pub(super) async fn spawn(
    executor: &LocalExecutor,
    stage: &StageSpec,
    step: &StepSpec,
    secrets: StepSecrets,
) -> Result<(LocalHandle, mpsc::Receiver<LogLine>), ExecutorError> {
    let name = &step.name;
    let output_file = stage.run_dir.join(format!("step-{}.outputs", step.index));
    // Created anew, never opened through a name a step may have linked elsewhere (the
    // run directory is the step's to write).
    let _ = tokio::fs::remove_file(&output_file).await;
    tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&output_file)
        .await
        .map_err(|error| {
            ExecutorError::Refused(format!("{name}: cannot create its output file: {error}"))
        })?;
    let dir = working_dir(&stage.workspace, step.dir.as_deref())
        .map_err(|error| ExecutorError::Refused(format!("{name}: {error}")))?;
    let mut held = Held::default();
    let mut script_file = None;
    let mut wrapped = false;
    let mut command = match (&step.image, executor.containers()) {
        (Some(image), Some(engine)) => {
            let built = container_command(executor, stage, step, image, engine, secrets, &mut held)
                .await
                .map_err(|error| ExecutorError::Refused(format!("{name}: {error}")))?;
            script_file = built.script_file;
            wrapped = built.wrapped;
            built.command
        }
        (Some(image), None) => {
            return Err(ExecutorError::Refused(format!(
                "{name} runs in image {image:?} but no container engine is installed (podman or docker)"
            )));
        }
        (None, _) if executor.config.host_steps == HostSteps::Off => {
            return Err(ExecutorError::Refused(format!(
                "{name} runs on the host, which this server refuses (gantry serve --host-steps off): give it an image"
            )));
        }
        (None, _) => host_command(
            executor,
            stage,
            step,
            secrets,
            &dir,
            &output_file,
            &mut held,
        )?,
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    gantry_sandbox::ordinary_umask(command.as_std_mut());

    let started_at = clock::now();
    let mut child = command
        .spawn()
        .map_err(|error| ExecutorError::Start(format!("{name}: cannot start: {error}")))?;
    drop(held);
    let pid = child.id().unwrap_or_default() as i32;
    let leader = ProcessId::of(pid);
    executor.config.process_groups.lock().unwrap().insert(pid);

    let (sender, receiver) = mpsc::channel(LOG_BUFFER);
    let budget = Arc::new(AtomicU64::new(MAX_STEP_LOG));
    let readers = [
        child.stdout.take().map(|out| {
            tokio::spawn(pump(
                out,
                sender.clone(),
                step.index,
                LogStream::Stdout,
                budget.clone(),
            ))
        }),
        child.stderr.take().map(|err| {
            tokio::spawn(pump(
                err,
                sender.clone(),
                step.index,
                LogStream::Stderr,
                budget.clone(),
            ))
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    let container = step
        .image
        .as_ref()
        .and_then(|_| executor.containers().cloned())
        .map(|engine| (engine, labels(stage).container_name(step.index)));
    let handle = LocalHandle {
        process_groups: executor.config.process_groups.clone(),
        sandbox: executor.config.sandbox.clone(),
        child,
        started_at,
        pid,
        leader,
        readers,
        output_file,
        script_file,
        container,
        wrapped,
        image: step.image.clone(),
        workspace: stage.workspace.clone(),
        sender: Some(sender),
    };
    Ok((handle, receiver))
}

struct BuiltContainer {
    command: tokio::process::Command,
    /// Under docker, the script's file in the run directory.
    script_file: Option<PathBuf>,
    /// Whether a shell reads the secrets before running the step's command.
    wrapped: bool,
}

async fn container_command(
    executor: &LocalExecutor,
    stage: &StageSpec,
    step: &StepSpec,
    image: &str,
    engine: &ContainerEngine,
    secrets: StepSecrets,
    held: &mut Held,
) -> Result<BuiltContainer, CommandError> {
    let labels = labels(stage);
    // After a restart, a container of this step may be left from before its
    // record was written, holding the name. A fresh stage cannot have one:
    // names carry the execution and the stage, and a stage removes its
    // containers when it ends.
    if stage.resumed {
        let _ = engine
            .remove_container(&labels.container_name(step.index))
            .await;
    }
    if !executor.images.lock().unwrap().contains(image) {
        engine.ensure_image(image).await?;
        executor.images.lock().unwrap().insert(image.to_owned());
    }
    let mut secret_env = secrets.0;
    let mut script_file = None;
    let mut command_override = None;
    let script = if engine.preserves_fds() {
        // Podman hands the memory file on to the container: the secrets
        // travel in it, ahead of the script (or of a shell that reads them
        // and runs the step's command), never in the container's config on
        // disk.
        let preamble = secret_preamble(&secret_env)?;
        let text = match &step.script {
            Some(script) => Some(format!("{preamble}{script}")),
            None if secret_env.is_empty() => None,
            None => {
                let argv = container_argv(engine, step, image).await?;
                command_override = Some(wrap_with_secrets(argv));
                Some(preamble)
            }
        };
        if let Some(text) = text {
            held.script_fd = Some(memory_file(&text).map_err(CommandError::ScriptHandOver)?);
        }
        secret_env.clear();
        step.script.as_ref().map(|_| format!("/dev/fd/{SCRIPT_FD}"))
    } else {
        // The docker CLI cannot hand on a descriptor: the script is a file
        // of the run directory, the secrets go by name (`--env NAME`, the
        // value in the client's environment).
        match &step.script {
            Some(script) => {
                let (host, inside) = write_script(stage, step.index, script).await?;
                script_file = Some(host);
                Some(inside)
            }
            None => None,
        }
    };
    let mut env = step.env.clone();
    env.insert("GANTRY_OUTPUT".into(), container_output_path(step.index));
    env.insert("GANTRY_WORKSPACE".into(), "/workspace".into());
    env.insert("GANTRY_EXECUTION_ID".into(), stage.execution.clone());
    env.insert("GANTRY_STAGE_ID".into(), stage.stage.clone());
    env.insert("GANTRY_STEP".into(), step.index.to_string());
    let wrapped = command_override.is_some();
    let container = ContainerStep {
        labels: &labels,
        index: step.index,
        step,
        image,
        workspace: &stage.workspace,
        run_dir: &stage.run_dir,
        workdir: match &step.dir {
            Some(dir) => format!("/workspace/{}", dir.trim_start_matches("./")),
            None => "/workspace".to_owned(),
        },
        env,
        secret_env: &secret_env,
        script,
        command: command_override,
        preserve_fds: u32::from(held.script_fd.is_some()),
    };
    let mut command = container.command(engine);
    if let Some(file) = &held.script_fd {
        pass_fd(&mut command, file);
    }
    Ok(BuiltContainer {
        command,
        script_file,
        wrapped,
    })
}

/// What a container step without a script runs, as the engine would pick
/// it: its entrypoint (or the image's), then its command or arguments (or,
/// with neither entrypoint nor arguments, the image's command).
async fn container_argv(
    engine: &ContainerEngine,
    step: &StepSpec,
    image: &str,
) -> Result<Vec<String>, CommandError> {
    let args = step.command.clone().unwrap_or_else(|| step.args.clone());
    let needs_image = step.entrypoint.is_none();
    let (image_entrypoint, image_cmd) = if needs_image {
        engine.image_command(image).await?
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
        return Err(CommandError::NoCommand {
            image: image.to_owned(),
        });
    }
    Ok(argv)
}

/// Writes a container step's script where the container sees it
/// (`/gantry/step-N.sh`); the host path and the path inside.
async fn write_script(
    stage: &StageSpec,
    index: i64,
    script: &str,
) -> Result<(PathBuf, String), CommandError> {
    use tokio::io::AsyncWriteExt;
    let file_name = format!("step-{index}.sh");
    let path = stage.run_dir.join(&file_name);
    let _ = tokio::fs::remove_file(&path).await;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .await
        .map_err(CommandError::ScriptWrite)?;
    file.write_all(script.as_bytes())
        .await
        .map_err(CommandError::ScriptWrite)?;
    Ok((path, inside_run_dir(&file_name)))
}

fn host_command(
    executor: &LocalExecutor,
    stage: &StageSpec,
    step: &StepSpec,
    secrets: StepSecrets,
    dir: &Path,
    output_file: &Path,
    held: &mut Held,
) -> Result<tokio::process::Command, ExecutorError> {
    let name = &step.name;
    let mut command = match (&step.script, &step.command, &step.confinement) {
        (None, Some(_), Confinement::EngineCli(allowed)) => {
            let (argv, fds) =
                engine_cli::open_paths(allowed, &stage.workspace, step.dir.as_deref())
                    .map_err(|error| ExecutorError::Refused(format!("{name}: {error}")))?;
            let mut command = tokio::process::Command::new(&argv[0]);
            command.args(&argv[1..]);
            engine_cli::inherit(&mut command, &fds);
            held.path_fds = fds;
            command
        }
        (Some(script), _, _) => {
            let file = memory_file(script).map_err(|e| {
                ExecutorError::Refused(format!("{name}: cannot hand its script over: {e}"))
            })?;
            let mut command = tokio::process::Command::new("sh");
            command.arg("-e").arg(format!("/dev/fd/{SCRIPT_FD}"));
            pass_fd(&mut command, &file);
            held.script_fd = Some(file);
            command
        }
        (None, Some(argv), _) if !argv.is_empty() => {
            let mut command = tokio::process::Command::new(&argv[0]);
            command.args(&argv[1..]);
            command
        }
        _ => {
            return Err(ExecutorError::Refused(format!(
                "{name}: has neither a script nor a command"
            )));
        }
    };
    // The container engine's CLI needs the engine, which a confined process
    // cannot reach: it runs with the engine's own rights, within its allow-list.
    let sandbox = match step.confinement {
        Confinement::Step => executor.sandbox(),
        Confinement::EngineCli(_) => None,
    };
    match sandbox {
        Some(_) => {
            gantry_sandbox::clean_environment(command.as_std_mut(), &prepare::tmp_dir(stage))
        }
        None => remove_server_variables(&mut command),
    }
    command
        .current_dir(dir)
        .envs(&step.env)
        .envs(&secrets.0)
        .env("GANTRY_OUTPUT", output_file)
        .env("GANTRY_WORKSPACE", &stage.workspace)
        .env("GANTRY_EXECUTION_ID", &stage.execution)
        .env("GANTRY_STAGE_ID", &stage.stage)
        .env("GANTRY_STEP", step.index.to_string());
    if let Some(sandbox) = sandbox {
        confine(sandbox, stage, &mut command, output_file).map_err(|error| {
            ExecutorError::Refused(format!("{name}: cannot confine it: {error}"))
        })?;
    }
    Ok(command)
}

/// Runs the host step as the step user, under Landlock: it writes the
/// workspace and the stage's run directory (its `$GANTRY_OUTPUT`, its
/// temporary directory) and reads nothing else of the data directory.
fn confine(
    sandbox: &gantry_sandbox::Sandbox,
    stage: &StageSpec,
    command: &mut tokio::process::Command,
    output_file: &Path,
) -> Result<(), CommandError> {
    sandbox.hand_over(output_file)?;
    let access = gantry_sandbox::Access {
        writable: vec![stage.workspace.clone(), stage.run_dir.clone()],
    };
    Ok(sandbox.confine(command.as_std_mut(), &access)?)
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

/// The step's directory: the workspace, or `dir` inside it (never outside).
fn working_dir(workspace: &Path, dir: Option<&str>) -> Result<PathBuf, CommandError> {
    let Some(dir) = dir else {
        return Ok(workspace.to_owned());
    };
    let relative = Path::new(dir);
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(CommandError::DirOutside {
            dir: dir.to_owned(),
        });
    }
    let path = workspace.join(relative);
    std::fs::create_dir_all(&path).map_err(|source| CommandError::CreateDir {
        dir: dir.to_owned(),
        source,
    })?;
    Ok(path)
}
