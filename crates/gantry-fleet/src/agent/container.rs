//! Instances of images: the host's container engine (podman, else docker;
//! as root, through `sudo -n` when the agent runs as another user, as a
//! deploy user runs `apt-get`) pulls the image and runs each instance as a
//! container on the host's network, so it listens on `HOST:PORT` exactly
//! as a command instance does and the load balancer reaches it the same
//! way.
//!
//! Registry credentials arrive inside the SSH channel (the agent protocol)
//! and reach the engine only as `gantry-container`'s private auth file in
//! `/dev/shm`, removed when the pull ends: never on a command line, never
//! on the host's disk, never logged.
//!
//! A container is named after its instance (`gantry-GROUP-iN`) and labelled
//! with its id, so one still running after its agent died (the engine's
//! containers are root's: a `kill -9` of the host user's processes leaves
//! them) is found by name and adopted by the next agent, without a restart.

use std::process::Stdio;
use std::time::Duration;

use gantry_container::{ContainerEngine, ContainerError, Credentials, is_loopback_registry};

use super::protocol::{InstanceSpec, Pulled, RegistryLogin};

/// The label carrying the instance id.
const INSTANCE_LABEL: &str = "io.gantry.instance";

/// The host's engine, run as root.
fn engine() -> Result<ContainerEngine, String> {
    ContainerEngine::detect(None)
        .map(ContainerEngine::as_root)
        .map_err(|_| "no container engine on the host (looked for podman and docker)".to_owned())
}

/// Pulls `image` (TLS verified unless told otherwise or the registry is on
/// loopback) and tells its digest.
pub(crate) async fn pull(
    image: &str,
    tls_verify: Option<bool>,
    login: Option<RegistryLogin>,
) -> Result<Pulled, String> {
    let engine = engine()?;
    // The auth file goes to /dev/shm; without it, it would go to the
    // temporary directory, a disk.
    if login.is_some() && !std::path::Path::new("/dev/shm").is_dir() {
        return Err(format!(
            "cannot pull {image} with credentials: the host has no /dev/shm to hold them in memory"
        ));
    }
    let tls_verify = tls_verify.unwrap_or_else(|| !is_loopback_registry(image));
    let credentials = login.map(|l| Credentials {
        user: l.user,
        password: l.password,
    });
    engine
        .pull_with(image, tls_verify, credentials.as_ref())
        .await
        .map_err(|error| match error {
            ContainerError::Unauthorized { registry, action } => {
                format!("the registry {registry} refused {action}: unauthorized")
            }
            other => other.to_string(),
        })?;
    tracing::info!(%image, engine = engine.name(), "image pulled");
    Ok(Pulled {
        engine: engine.name().to_owned(),
        digest: digest(&engine, image).await,
    })
}

/// The manifest digest the engine recorded for `image` (both engines keep
/// it in `RepoDigests` as `NAME@sha256:…`).
async fn digest(engine: &ContainerEngine, image: &str) -> Option<String> {
    let text = engine
        .output(
            "image inspect",
            &[
                "image",
                "inspect",
                "--format",
                "{{json .RepoDigests}}",
                image,
            ],
        )
        .await
        .ok()?;
    let digests: Vec<String> = serde_json::from_str(text.trim()).ok()?;
    digests
        .iter()
        .find_map(|d| Some(d.split_once('@')?.1.to_owned()))
}

pub(crate) fn container_name(spec: &InstanceSpec) -> String {
    format!("gantry-{}", spec.id)
}

/// Whether the instance's container runs (left by a previous agent).
pub(crate) async fn is_running(spec: &InstanceSpec) -> bool {
    let Ok(engine) = engine() else { return false };
    let name = container_name(spec);
    let args = [
        "container",
        "inspect",
        "--format",
        "{{.State.Running}}",
        &name,
    ];
    engine
        .output("container inspect", &args)
        .await
        .is_ok_and(|out| out.trim() == "true")
}

/// Follows a running container of the instance: `wait` lasts as long as
/// the container, as its `run` would.
pub(crate) fn wait_command(spec: &InstanceSpec) -> std::io::Result<tokio::process::Command> {
    let engine = engine().map_err(std::io::Error::other)?;
    let mut command = engine.command();
    command.arg("wait").arg(container_name(spec));
    Ok(command)
}

/// Removes the instance's container, running or not (one a previous agent
/// left, or one that would not stop within its grace).
pub(crate) async fn remove(spec: &InstanceSpec) {
    if let Ok(engine) = engine()
        && let Err(error) = engine.remove_container(&container_name(spec)).await
    {
        tracing::warn!(instance = %spec.id, %error, "cannot remove the instance's container");
    }
}

/// Stops the instance's container: SIGTERM, SIGKILL after its grace.
pub(crate) async fn stop(spec: &InstanceSpec) {
    let Ok(engine) = engine() else { return };
    let grace = spec.grace_seconds.to_string();
    let name = container_name(spec);
    let args = ["stop", "-t", &grace, &name];
    let stopping = engine.output("stop", &args);
    let limit = Duration::from_secs(spec.grace_seconds + 10);
    if !matches!(tokio::time::timeout(limit, stopping).await, Ok(Ok(_))) {
        tracing::warn!(instance = %spec.id, "the instance's container did not stop, removing it");
    }
    remove(spec).await;
}

/// The foreground `run` of the instance's container: it lasts as long as
/// the container, so the agent supervises it as it does a command. Values
/// of the environment go by name only (the engine reads them from its own
/// environment, which `sudo --preserve-env` passes on), so none is on a
/// command line.
pub(crate) fn run_command(
    spec: &InstanceSpec,
    image: &str,
) -> std::io::Result<tokio::process::Command> {
    let engine = engine().map_err(std::io::Error::other)?;
    let mut names: Vec<&str> = vec!["PORT", "HOST"];
    names.extend(spec.env.keys().map(String::as_str));
    let mut command = if engine.sudo {
        let mut sudo = tokio::process::Command::new("sudo");
        sudo.arg("-n")
            .arg(format!("--preserve-env={}", names.join(",")))
            .arg(&engine.program);
        sudo
    } else {
        tokio::process::Command::new(&engine.program)
    };
    command.args(["run", "--rm", "--pull", "never", "--network", "host"]);
    command.arg("--name").arg(container_name(spec));
    command
        .arg("--label")
        .arg(format!("{INSTANCE_LABEL}={}", spec.id));
    for name in &names {
        command.arg("-e").arg(name);
    }
    command
        .arg(image)
        .envs(&spec.env)
        .env("PORT", spec.port.to_string())
        .env("HOST", &spec.address)
        .stdin(Stdio::null());
    Ok(command)
}
