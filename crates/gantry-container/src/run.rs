//! One step container: `podman run` (or `docker run`) in the foreground, so
//! that its stdout and stderr are the command's pipes and its exit code is
//! the step's.

use std::path::PathBuf;

use crate::engine::{ContainerEngine, EngineKind};

/// A volume mounted into a step container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeMount {
    /// A named engine volume (shared between the steps that mount it).
    Named { name: String, path: String },
    /// A host directory.
    Bind { host: PathBuf, path: String },
}

/// Everything a step container needs. `env` is passed on the command line;
/// for `env_names` the command passes `--env NAME` and the caller sets the
/// value on the engine process, so that secret values never appear in a
/// process list.
#[derive(Clone, Debug, Default)]
pub struct ContainerRun {
    /// Also used to find the container again (to stop or remove it).
    pub name: String,
    pub image: String,
    pub labels: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub env: Vec<(String, String)>,
    pub env_names: Vec<String>,
    pub volumes: Vec<VolumeMount>,
    pub entrypoint: Option<String>,
    pub args: Vec<String>,
    /// Descriptors beyond stdio (3, 4, …) the container gets from the
    /// engine's client (podman's `--preserve-fds`; docker has no such
    /// thing, see [`ContainerEngine::preserves_fds`]).
    pub preserve_fds: u32,
}

impl ContainerEngine {
    /// Whether the client hands open descriptors on to the container (the
    /// docker CLI talks to a daemon, which cannot get them).
    pub fn preserves_fds(&self) -> bool {
        self.kind == EngineKind::Podman
    }

    /// The foreground `run` command for `spec`, with its output piped; the
    /// caller adds the environment values and spawns it.
    pub fn run_command(&self, spec: &ContainerRun) -> tokio::process::Command {
        let mut command = self.command();
        command
            .arg("run")
            .arg("--rm")
            .arg("--name")
            .arg(&spec.name)
            // The caller made sure the image is here; a pull in the middle of
            // a step would hide behind the step's own output.
            .arg("--pull=never");
        if self.kind == EngineKind::Podman {
            // The container's own process is the step; podman's default
            // log driver would keep a second copy of everything it prints.
            command.arg("--log-driver=none");
        }
        for (key, value) in &spec.labels {
            command.arg("--label").arg(format!("{key}={value}"));
        }
        for volume in &spec.volumes {
            let mount = match volume {
                VolumeMount::Named { name, path } => format!("{name}:{path}"),
                VolumeMount::Bind { host, path } => format!("{}:{path}", host.display()),
            };
            command.arg("--volume").arg(mount);
        }
        if spec.preserve_fds > 0 && self.preserves_fds() {
            command.arg(format!("--preserve-fds={}", spec.preserve_fds));
        }
        if let Some(workdir) = &spec.workdir {
            command.arg("--workdir").arg(workdir);
        }
        for (name, value) in &spec.env {
            command.arg("--env").arg(format!("{name}={value}"));
        }
        for name in &spec.env_names {
            command.arg("--env").arg(name);
        }
        if let Some(entrypoint) = &spec.entrypoint {
            command.arg("--entrypoint").arg(entrypoint);
        }
        command.arg(&spec.image).args(&spec.args);
        command
    }
}
