//! `gantry serve --local-runner on`: the server runs no step itself but
//! starts one runner beside it, the same binary as a child process
//! (`gantry runner`), and starts it again when it dies. It registers with a
//! single-use token the server mints for it (handed over in its
//! environment, never on its command line) and keeps its credential in its
//! own work directory, `DATA_DIR/local-runner`, whose steps are confined
//! like the server's were (the step user, Landlock). It shares the
//! server's disk, so the steps without `runsOn` it takes run in place, in
//! the server's own workspaces (`--in-place-data-dir`): no snapshot goes
//! either way, a follower of the workspace sees what the step writes, and a
//! step run again after a crash finds what its first run left, as in the
//! server's own executor. It stops with the server; if the server dies it
//! exits at once (`--parent-pid`), leaving its steps to the server's next
//! start as the server's own executor did.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use gantry_runners::server::RunnerRegistry;
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
    /// The server's data directory: the runner runs steps in its
    /// workspaces, in place.
    pub data_dir: PathBuf,
    pub work_dir: PathBuf,
    pub registry: RunnerRegistry,
    pub step_user: Option<String>,
    pub host_steps: String,
    pub container_engine: Option<String>,
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
        std::fs::create_dir_all(&self.work_dir)
            .with_context(|| format!("cannot create {}", self.work_dir.display()))?;
        let mut command = tokio::process::Command::new(
            std::env::current_exe().context("cannot find this binary to start the local runner")?,
        );
        command
            .args([
                "runner", "--url", &self.url, "--name", NAME, "--labels", NAME,
            ])
            .args(["--capacity", &CAPACITY.to_string(), "--work-dir"])
            .arg(&self.work_dir)
            .args(["--parent-pid", &std::process::id().to_string()])
            .args(["--host-steps", &self.host_steps])
            .arg("--in-place-data-dir")
            .arg(&self.data_dir)
            .env_remove("GANTRY_RUNNER_TOKEN")
            .kill_on_drop(true);
        if let Some(user) = &self.step_user {
            command.args(["--step-user", user]);
        }
        if let Some(engine) = &self.container_engine {
            command.args(["--container-engine", engine]);
        }
        // A token only to register; once registered, the runner uses the
        // credential in its work directory.
        let credential = gantry_runners::agent::credential_path(&self.work_dir);
        if !credential.exists() {
            let now = gantry_api::now_millis();
            let created = self
                .registry
                .create_token(now, Some(Duration::from_secs(600)), Some(1))
                .await
                .context("cannot mint a registration token for the local runner")?;
            command.env("GANTRY_RUNNER_TOKEN", created.token);
        }
        let mut child = command.spawn().context("cannot start the local runner")?;
        info!(pid = child.id(), work_dir = %self.work_dir.display(), "local runner started");
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
