//! The engine program and the one-shot commands run through it.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::auth::{AuthDir, Credentials};
use crate::error::ContainerError;

/// What rootless podman's error says to run when its state names a pause
/// process that no longer exists.
const RESET_ROOTLESS_STATE: &str = "podman system migrate";

/// Which command-line dialect the engine speaks; podman and docker differ in
/// a few flags (podman's `rm -t`, `image exists`, `push --digestfile`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    Podman,
    Docker,
}

/// A container engine found on this machine.
#[derive(Clone, Debug)]
pub struct ContainerEngine {
    pub kind: EngineKind,
    pub program: PathBuf,
    /// Run through `sudo -n`: an engine this user may only use as root (a
    /// fleet host's deploy user, as with its `apt-get`).
    pub sudo: bool,
}

impl ContainerEngine {
    /// The engine named by `choice` (`podman`, `docker`, or a path to either),
    /// or podman, then docker, when none is chosen.
    pub fn detect(choice: Option<&str>) -> Result<ContainerEngine, ContainerError> {
        let Some(choice) = choice else {
            return ["podman", "docker"]
                .iter()
                .find_map(|name| ContainerEngine::detect(Some(name)).ok())
                .ok_or(ContainerError::NoneInstalled);
        };
        let file = Path::new(choice)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(choice);
        let kind = match file {
            "podman" => EngineKind::Podman,
            "docker" => EngineKind::Docker,
            _ => return Err(ContainerError::Unknown(choice.to_owned())),
        };
        let program = if choice.contains('/') {
            Some(PathBuf::from(choice)).filter(|p| p.is_file())
        } else {
            find_on_path(choice)
        };
        let program = program.ok_or_else(|| ContainerError::NotInstalled(choice.to_owned()))?;
        Ok(ContainerEngine {
            kind,
            program,
            sudo: false,
        })
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            EngineKind::Podman => "podman",
            EngineKind::Docker => "docker",
        }
    }

    /// The engine run as root through `sudo -n` unless this process is
    /// root already.
    pub fn as_root(self) -> ContainerEngine {
        ContainerEngine {
            sudo: !this_process_is_root(),
            ..self
        }
    }

    /// Where a rootless podman keeps its state (its storage's directory and
    /// its run directory): a same-user process that reaches them can drive
    /// the engine's containers (`podman exec` into another job's), so
    /// confined steps are kept out of them. Empty for docker, whose daemon
    /// is reached through its socket, and for podman run as root (its
    /// state is root's).
    ///
    /// Asked once when a runner starts, it also recovers a rootless podman
    /// whose pause process is gone while its state says it runs (the
    /// machine's processes were killed but its temporary directory kept):
    /// every podman command of that user then fails with "invalid internal
    /// status" until `podman system migrate` resets it, as podman's own
    /// message says. That only happens when no container of the user is
    /// left running (podman would join one's namespace), so the reset stops
    /// nothing alive.
    pub async fn rootless_state_dirs(&self) -> Result<Vec<std::path::PathBuf>, ContainerError> {
        if self.kind != EngineKind::Podman || self.sudo || this_process_is_root() {
            return Ok(Vec::new());
        }
        let info = [
            "info",
            "--format",
            "{{.Store.GraphRoot}}\n{{.Store.RunRoot}}",
        ];
        let text = match self.output("info", &info).await {
            Err(ContainerError::Command { message, .. })
                if message.contains(RESET_ROOTLESS_STATE) =>
            {
                tracing::warn!(
                    %message,
                    "rootless podman's pause process is gone: resetting it (podman system migrate)"
                );
                self.output("system migrate", &["system", "migrate"])
                    .await?;
                self.output("info", &info).await?
            }
            other => other?,
        };
        // The directories above the store and the run root hold the rest
        // (libpod's database, its temporary files, the API socket).
        Ok(text
            .lines()
            .filter(|line| line.starts_with('/'))
            .filter_map(|line| {
                std::path::Path::new(line)
                    .parent()
                    .map(std::path::Path::to_owned)
            })
            .collect())
    }

    /// A command for this engine with its output piped and no stdin.
    pub fn command(&self) -> tokio::process::Command {
        let mut command = if self.sudo {
            let mut sudo = tokio::process::Command::new("sudo");
            sudo.arg("-n").arg(&self.program);
            sudo
        } else {
            tokio::process::Command::new(&self.program)
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs `args` to completion; its stdout, or an error carrying the end of
    /// its stderr.
    pub async fn output(&self, action: &str, args: &[&str]) -> Result<String, ContainerError> {
        let mut command = self.command();
        command.args(args);
        self.finish(action, command).await
    }

    /// Runs a prepared command to completion (see [`ContainerEngine::output`]).
    pub async fn finish(
        &self,
        action: &str,
        mut command: tokio::process::Command,
    ) -> Result<String, ContainerError> {
        let output = command.output().await.map_err(|e| self.error(action, e))?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().trim_start_matches("Error: ").to_owned())
            .unwrap_or_else(|| format!("failed with {}", output.status));
        Err(self.error(action, message))
    }

    pub(crate) fn error(&self, action: &str, message: impl ToString) -> ContainerError {
        ContainerError::Command {
            program: self.name().to_owned(),
            action: action.to_owned(),
            message: message.to_string(),
        }
    }

    /// Whether `image` is in the engine's local storage.
    pub async fn image_exists(&self, image: &str) -> Result<bool, ContainerError> {
        let mut command = self.command();
        match self.kind {
            EngineKind::Podman => command.args(["image", "exists", image]),
            EngineKind::Docker => command.args(["image", "inspect", "--format", "{{.Id}}", image]),
        };
        // `output`, not `status`: docker prints the id, and a pipe nobody
        // reads would fail it with EPIPE.
        let output = command
            .output()
            .await
            .map_err(|e| self.error("image exists", e))?;
        Ok(output.status.success())
    }

    /// Pulls `image`; `tls_verify: false` allows a plain-HTTP or self-signed
    /// registry (podman only; docker decides per daemon configuration).
    pub async fn pull(&self, image: &str, tls_verify: bool) -> Result<(), ContainerError> {
        let tls = format!("--tls-verify={tls_verify}");
        let mut args = vec!["pull", "--quiet"];
        if self.kind == EngineKind::Podman {
            args.push(&tls);
        }
        args.push(image);
        self.output(&format!("pull {image}"), &args).await.map(drop)
    }

    /// Pulls `image` with `credentials` for its registry when given (through
    /// a private auth file, never the command line), as [`Self::push`]
    /// pushes. A registry refusing the pull for want of credentials is
    /// [`ContainerError::Unauthorized`].
    pub async fn pull_with(
        &self,
        image: &str,
        tls_verify: bool,
        credentials: Option<&Credentials>,
    ) -> Result<(), ContainerError> {
        let action = format!("pull {image}");
        let host = crate::registry::registry_host(image);
        let auth = credentials.map(|c| AuthDir::create(&host, c)).transpose()?;
        let mut command = self.command();
        match self.kind {
            EngineKind::Podman => {
                command.arg("pull").arg("--quiet");
                command.arg(format!("--tls-verify={tls_verify}"));
                if let Some(auth) = &auth {
                    command.arg("--authfile").arg(auth.file());
                }
            }
            EngineKind::Docker => {
                // A flag, not `DOCKER_CONFIG`: sudo would not pass that on.
                if let Some(auth) = &auth {
                    command.arg("--config").arg(auth.dir());
                }
                command.arg("pull").arg("--quiet");
            }
        }
        command.arg(image);
        match self.finish(&action, command).await {
            Ok(_) => Ok(()),
            Err(ContainerError::Command { message, .. }) if is_unauthorized(&message) => {
                Err(ContainerError::Unauthorized {
                    registry: host,
                    action: format!("the pull of {image}"),
                })
            }
            Err(error) => Err(error),
        }
    }

    /// Makes sure `image` is available locally, pulling it when it is not
    /// (from a loopback registry without TLS verification, as Docker does).
    pub async fn ensure_image(&self, image: &str) -> Result<(), ContainerError> {
        if self.image_exists(image).await? {
            return Ok(());
        }
        let tls_verify = !crate::registry::is_loopback_registry(image);
        self.pull(image, tls_verify).await.map_err(|error| {
            self.error(
                &format!("image {image}"),
                format!("not found locally and cannot be pulled ({error})"),
            )
        })
    }

    /// The entrypoint and command `image` runs when a container names
    /// neither (`.Config.Entrypoint`, `.Config.Cmd`; empty when unset).
    pub async fn image_command(
        &self,
        image: &str,
    ) -> Result<(Vec<String>, Vec<String>), ContainerError> {
        let text = self
            .output(
                &format!("inspect {image}"),
                &[
                    "image",
                    "inspect",
                    "--format",
                    "{{json .Config.Entrypoint}}\n{{json .Config.Cmd}}",
                    image,
                ],
            )
            .await?;
        let mut lines = text.lines();
        let mut field = || -> Vec<String> {
            lines
                .next()
                .and_then(|line| serde_json::from_str::<Option<Vec<String>>>(line).ok())
                .flatten()
                .unwrap_or_default()
        };
        let entrypoint = field();
        Ok((entrypoint, field()))
    }

    /// Removes a container by name, whether running or not; a container that
    /// does not exist is not an error.
    pub async fn remove_container(&self, name: &str) -> Result<(), ContainerError> {
        let ids = self
            .output("ps", &["ps", "-aq", "--filter", &format!("name=^{name}$")])
            .await?;
        self.remove_ids(ids.split_whitespace().collect())
            .await
            .map(drop)
    }

    /// Removes every container carrying all `labels` (running ones are
    /// killed); returns how many were removed.
    pub async fn remove_labelled(&self, labels: &[(&str, &str)]) -> Result<usize, ContainerError> {
        let mut args = vec!["ps".to_owned(), "-aq".to_owned()];
        for (key, value) in labels {
            args.push("--filter".to_owned());
            args.push(format!("label={key}={value}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ids = self.output("ps", &args).await?;
        self.remove_ids(ids.split_whitespace().collect()).await
    }

    async fn remove_ids(&self, ids: Vec<&str>) -> Result<usize, ContainerError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut args = vec!["rm", "-f"];
        if self.kind == EngineKind::Podman {
            // No grace period: the caller already decided the container goes.
            args.extend(["-t", "0"]);
        }
        args.extend(&ids);
        self.output("rm", &args).await?;
        Ok(ids.len())
    }

    /// Creates a named volume with labels, unless it exists.
    pub async fn create_volume(
        &self,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Result<(), ContainerError> {
        let existing = self
            .output(
                "volume ls",
                &["volume", "ls", "-q", "--filter", &format!("name={name}")],
            )
            .await?;
        if existing.lines().any(|l| l.trim() == name) {
            return Ok(());
        }
        let mut args = vec!["volume".to_owned(), "create".to_owned()];
        for (key, value) in labels {
            args.push("--label".to_owned());
            args.push(format!("{key}={value}"));
        }
        args.push(name.to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.output(&format!("volume create {name}"), &args)
            .await
            .map(drop)
    }

    /// Removes every volume carrying all `labels`.
    pub async fn remove_volumes(&self, labels: &[(&str, &str)]) -> Result<usize, ContainerError> {
        let Some(((key, value), rest)) = labels.split_first() else {
            return Ok(0);
        };
        // `volume ls` ORs several label filters (podman 4), where `ps` ANDs
        // them: filter by one label there and check the others here.
        let names = self
            .output(
                "volume ls",
                &[
                    "volume",
                    "ls",
                    "-q",
                    "--filter",
                    &format!("label={key}={value}"),
                ],
            )
            .await?;
        let mut chosen = Vec::new();
        for name in names.split_whitespace() {
            let found = self
                .output(
                    "volume inspect",
                    &["volume", "inspect", "--format", "{{json .Labels}}", name],
                )
                .await?;
            let found: std::collections::BTreeMap<String, String> =
                serde_json::from_str(found.trim()).unwrap_or_default();
            if rest
                .iter()
                .all(|(k, v)| found.get(*k).map(String::as_str) == Some(*v))
            {
                chosen.push(name);
            }
        }
        if chosen.is_empty() {
            return Ok(0);
        }
        let mut args = vec!["volume", "rm", "-f"];
        args.extend(&chosen);
        self.output("volume rm", &args).await?;
        Ok(chosen.len())
    }

    /// Tags `source` as `target`.
    pub async fn tag(&self, source: &str, target: &str) -> Result<(), ContainerError> {
        self.output(&format!("tag {target}"), &["tag", source, target])
            .await
            .map(drop)
    }

    /// The local image id of `image`.
    pub async fn image_id(&self, image: &str) -> Result<String, ContainerError> {
        let id = self
            .output(
                &format!("image inspect {image}"),
                &["image", "inspect", "--format", "{{.Id}}", image],
            )
            .await?;
        Ok(id.trim().to_owned())
    }

    /// Pushes `image` and returns its manifest digest (`sha256:…`), with
    /// `credentials` for its registry when given (through a private auth
    /// file, never the command line). A registry refusing the push for
    /// want of credentials is [`ContainerError::Unauthorized`].
    pub async fn push(
        &self,
        image: &str,
        tls_verify: bool,
        credentials: Option<&Credentials>,
    ) -> Result<String, ContainerError> {
        let action = format!("push {image}");
        let host = crate::registry::registry_host(image);
        let auth = credentials.map(|c| AuthDir::create(&host, c)).transpose()?;
        let digest_file = tempfile_path("gantry-digest");
        let mut command = self.command();
        match self.kind {
            EngineKind::Podman => {
                command
                    .arg("push")
                    .arg("--quiet")
                    .arg(format!("--tls-verify={tls_verify}"))
                    .arg("--digestfile")
                    .arg(&digest_file);
                if let Some(auth) = &auth {
                    command.arg("--authfile").arg(auth.file());
                }
            }
            EngineKind::Docker => {
                command.arg("push");
                if let Some(auth) = &auth {
                    command.env("DOCKER_CONFIG", auth.dir());
                }
            }
        }
        command.arg(image);
        let result = self.finish(&action, command).await;
        let written = std::fs::read_to_string(&digest_file).unwrap_or_default();
        let _ = std::fs::remove_file(&digest_file);
        let out = match result {
            Ok(out) => out,
            Err(ContainerError::Command { message, .. }) if is_unauthorized(&message) => {
                return Err(ContainerError::Unauthorized {
                    registry: host,
                    action: format!("the push of {image}"),
                });
            }
            Err(error) => return Err(error),
        };
        match self.kind {
            EngineKind::Podman => Ok(written.trim().to_owned()),
            EngineKind::Docker => out
                .split_whitespace()
                .find(|w| w.starts_with("sha256:"))
                .map(str::to_owned)
                .ok_or_else(|| self.error(&action, "no digest in its output")),
        }
    }
}

/// How podman and docker report a registry's 401.
fn is_unauthorized(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("unauthorized") || message.contains("authentication required")
}

pub(crate) fn tempfile_path(prefix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether this process runs as root (`/proc/self` is owned by its user).
fn this_process_is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
