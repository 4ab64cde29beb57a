//! `gantry serve --local-runner on`: the server runs no step itself but
//! starts one runner beside it, the same binary as a child process
//! (`gantry runner`), and starts it again when it dies. It runs under an
//! identity that cannot read the data directory: a server running as root
//! starts it as the runner user (`--local-runner-user`, default
//! `gantry-runner`, created with its home and subordinate ids at the first
//! start), with a clean environment, in a work directory of its own
//! outside the data directory (`--local-runner-dir`, default
//! `HOME/servers/HASH-OF-THE-DATA-DIR`). It is a runner like any other:
//! the workspace goes to it and back in snapshots, its container steps run
//! in that user's rootless podman, and its host steps run as that user
//! under Landlock, kept out of its work directory's credential and of the
//! data directory. A server not running as root cannot change identity:
//! the runner then runs as the server's user, confined by Landlock alone,
//! and the server says so at start.
//!
//! It registers with a single-use token the server mints for it (handed
//! over in its environment, never on its command line) and keeps its
//! credential in its work directory. It stops with the server; if the
//! server dies it exits at once (`--parent-pid`), leaving its steps to the
//! server's next start as the server's own executor did.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use gantry_runners::server::RunnerRegistry;
use gantry_sandbox::Identity;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The local runner's name and label.
pub const NAME: &str = "local";

/// Steps at once: as many as the server ran before runners (parallel steps
/// of one stage run together).
const CAPACITY: u32 = 16;

/// A runner that ran this long before dying is started again at once.
const HEALTHY: Duration = Duration::from_secs(60);

pub struct LocalRunner {
    /// The server's own address, `http://127.0.0.1:PORT`.
    pub url: String,
    /// The server's data directory, which the runner's steps must not reach.
    pub data_dir: PathBuf,
    pub place: Place,
    pub registry: RunnerRegistry,
    pub host_steps: String,
    pub container_engine: Option<String>,
}

/// Who the local runner runs as, where it works and what it runs.
pub struct Place {
    /// `None`: the server's own user (a server not running as root).
    pub user: Option<Identity>,
    pub work_dir: PathBuf,
    /// This binary, or a copy its user can run (`HOME/bin/gantry`, root's
    /// and read-only to it) when this one is beyond its reach (say, built
    /// under `/root`).
    pub binary: PathBuf,
}

impl Place {
    /// The runner user (created if it is the default and missing) and its
    /// work directory, created and given to it; or, for a server not
    /// running as root, the server's own user and `DATA_DIR/local-runner`.
    pub fn prepare(
        user: Option<&str>,
        work_dir: Option<&Path>,
        data_dir: &Path,
    ) -> anyhow::Result<Place> {
        if !gantry_sandbox::running_as_root() {
            if let Some(user) = user {
                anyhow::bail!(
                    "--local-runner-user {user}: the server must run as root to start its runner as another user"
                );
            }
            warn!(
                "the server does not run as root: its local runner runs as the server's own user, kept out of the data directory by Landlock alone (run it as root to give the runner its own user)"
            );
            let work_dir = work_dir
                .map(Path::to_owned)
                .unwrap_or_else(|| data_dir.join("local-runner"));
            std::fs::create_dir_all(&work_dir)
                .with_context(|| format!("cannot create {}", work_dir.display()))?;
            return Ok(Place {
                user: None,
                work_dir,
                binary: this_binary()?,
            });
        }
        let name = user.unwrap_or(gantry_sandbox::DEFAULT_RUNNER_USER);
        let identity = Identity::runner(name)
            .with_context(|| format!("cannot find or create the local runner's user {name}"))?;
        let work_dir = match work_dir {
            Some(dir) => dir.to_owned(),
            None => identity.home.join("servers").join(data_dir_key(data_dir)),
        };
        make_work_dir(&work_dir, &identity, data_dir)?;
        let binary = binary_for(&identity)?;
        Ok(Place {
            user: Some(identity),
            work_dir,
            binary,
        })
    }
}

fn this_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find this binary to start the local runner")
}

/// This binary if `identity` can run it where it is, else a copy of it in
/// its home's `bin`, made again when this one changed.
fn binary_for(identity: &Identity) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let binary = this_binary()?;
    let meta =
        std::fs::metadata(&binary).with_context(|| format!("cannot read {}", binary.display()))?;
    let runnable = meta.mode() & 0o001 != 0
        && crate::step_isolation::closed_ancestor(&binary, identity.uid, identity.gid).is_none();
    if runnable {
        return Ok(binary);
    }
    let dir = identity.home.join("bin");
    let copy = dir.join("gantry");
    let same = std::fs::metadata(&copy).is_ok_and(|c| {
        c.len() == meta.len() && c.modified().ok() == meta.modified().ok() && c.uid() == 0
    });
    info!(
        binary = %binary.display(),
        copy = %copy.display(),
        copied = !same,
        "the local runner's user cannot reach this binary: it runs a copy"
    );
    if same {
        return Ok(copy);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Root's, so that the runner's user cannot change what it runs.
    std::os::unix::fs::chown(&dir, Some(0), Some(0))
        .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)))
        .with_context(|| format!("cannot make {} root's", dir.display()))?;
    let temporary = dir.join(format!(".gantry-{}", std::process::id()));
    std::fs::copy(&binary, &temporary).with_context(|| {
        format!(
            "cannot copy {} to {}",
            binary.display(),
            temporary.display()
        )
    })?;
    let file = std::fs::File::options().write(true).open(&temporary)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o755))?;
    if let Ok(modified) = meta.modified() {
        file.set_modified(modified)?;
    }
    std::fs::rename(&temporary, &copy)
        .with_context(|| format!("cannot put the local runner's binary at {}", copy.display()))?;
    Ok(copy)
}

/// A short name for `data_dir`, so that servers on one machine (each with
/// its own data directory) give their runners apart work directories.
fn data_dir_key(data_dir: &Path) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..8])
}

/// Creates `work_dir` (its missing parents too) for `identity`, private to
/// it; refuses one inside the data directory, or one it cannot reach.
fn make_work_dir(work_dir: &Path, identity: &Identity, data_dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let absolute = std::path::absolute(work_dir)
        .with_context(|| format!("cannot resolve {}", work_dir.display()))?;
    if absolute.starts_with(data_dir) {
        anyhow::bail!(
            "the local runner's work directory {} is inside the data directory {}: its user must not reach the data directory; give it one outside (--local-runner-dir)",
            absolute.display(),
            data_dir.display()
        );
    }
    let missing: Vec<&Path> = absolute
        .ancestors()
        .take_while(|dir| !dir.exists())
        .collect();
    std::fs::create_dir_all(&absolute)
        .with_context(|| format!("cannot create {}", absolute.display()))?;
    for dir in missing.iter().chain(std::iter::once(&absolute.as_path())) {
        std::os::unix::fs::chown(dir, Some(identity.uid), Some(identity.gid))
            .with_context(|| format!("cannot give {} to {}", dir.display(), identity.name))?;
    }
    std::fs::set_permissions(&absolute, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private", absolute.display()))?;
    if let Some(closed) =
        crate::step_isolation::closed_ancestor(&absolute, identity.uid, identity.gid)
    {
        anyhow::bail!(
            "the local runner's user {} cannot reach its work directory {}: {} is not searchable by it",
            identity.name,
            absolute.display(),
            closed.display()
        );
    }
    Ok(())
}

/// Starts the local runner and keeps it running until `shutdown`.
pub fn start(runner: LocalRunner, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut wait = Duration::from_secs(1);
        loop {
            let started = std::time::Instant::now();
            match runner.run_once(&shutdown).await {
                Ok(()) => return,
                Err(error) => warn!(
                    error = format!("{error:#}"),
                    ?wait,
                    "the local runner stopped; starting it again"
                ),
            }
            if started.elapsed() > HEALTHY {
                wait = Duration::from_secs(1);
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => return,
            }
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    });
}

impl LocalRunner {
    /// Runs the child until it exits (an error) or `shutdown` (stopped).
    async fn run_once(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let work_dir = &self.place.work_dir;
        let binary = &self.place.binary;
        let mut command = std::process::Command::new(binary);
        command
            .args([
                "runner", "--url", &self.url, "--name", NAME, "--labels", NAME,
            ])
            .args(["--capacity", &CAPACITY.to_string(), "--work-dir"])
            .arg(work_dir)
            .args(["--parent-pid", &std::process::id().to_string()])
            .args(["--host-steps", &self.host_steps])
            .arg("--protect")
            .arg(&self.data_dir)
            .current_dir(work_dir);
        if let Some(engine) = &self.container_engine {
            command.args(["--container-engine", engine]);
        }
        // Nothing of the server's environment (its database URL, tokens)
        // but what any program needs, and the engine's address.
        let home = match &self.place.user {
            Some(user) => user.home.clone(),
            None => std::env::var_os("HOME").map_or_else(|| work_dir.clone(), PathBuf::from),
        };
        gantry_sandbox::clean_environment(&mut command, &home);
        for kept in ["RUST_LOG", "DOCKER_HOST"] {
            if let Some(value) = std::env::var_os(kept) {
                command.env(kept, value);
            }
        }
        if let Some(user) = &self.place.user {
            use std::os::unix::process::CommandExt;
            command.uid(user.uid).gid(user.gid);
            command.env("USER", &user.name).env("LOGNAME", &user.name);
        }
        let mut command = tokio::process::Command::from(command);
        command.kill_on_drop(true);
        // A token only to register; once registered, the runner uses the
        // credential in its work directory.
        let credential = gantry_runners::agent::credential_path(work_dir);
        if !credential.exists() {
            let now = gantry_api::now_millis();
            let created = self
                .registry
                .create_token(now, Some(Duration::from_secs(600)), Some(1))
                .await
                .context("cannot mint a registration token for the local runner")?;
            command.env("GANTRY_RUNNER_TOKEN", created.token);
        }
        let user = self.place.user.as_ref().map(|u| u.name.as_str());
        let mut child = command.spawn().with_context(|| match user {
            Some(user) => format!(
                "cannot start the local runner as {user}: it must be able to run {}",
                binary.display()
            ),
            None => "cannot start the local runner".to_owned(),
        })?;
        info!(
            pid = child.id(),
            user = user.unwrap_or("(the server's)"),
            work_dir = %work_dir.display(),
            "local runner started"
        );
        tokio::select! {
            status = child.wait() => {
                let status = status.context("cannot wait for the local runner")?;
                anyhow::bail!("the local runner exited ({status})")
            }
            () = shutdown.cancelled() => {
                if let Some(pid) = child.id() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                }
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                Ok(())
            }
        }
    }
}
