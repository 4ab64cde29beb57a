//! `gantry runner`: without a subcommand, the runner agent (it connects out
//! to the server at `--url`, registers once with `--token`, then leases and
//! runs jobs); with one, the admin's commands (`token create`, `list`,
//! `disable`, `enable`, `remove`), which are HTTP clients like the rest.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use gantry_engine::{StepJobRunner, StepRunnerConfig};
use gantry_runners::agent::{AgentConfig, JobDir, JobOutcome, JobRunner, RunningJob};
use gantry_runners::protocol::LeasedJob;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::client::{Client, segment};
use gantry_wire::runners as wire;

use crate::output::{print_json, short, table};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RunnerArgs {
    #[command(subcommand)]
    pub command: Option<RunnerCommand>,
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// A registration token from `gantry runner token create`; needed only
    /// the first time (the credential it is exchanged for is kept in the
    /// work directory).
    #[arg(long, env = "GANTRY_RUNNER_TOKEN", value_name = "TOKEN")]
    pub token: Option<String>,
    /// The runner's name (default: this host's name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Labels jobs can ask for, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub labels: Vec<String>,
    /// How many jobs run at once.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub capacity: u32,
    /// Where the credential and the jobs' directories are kept.
    #[arg(long, default_value = "gantry-runner", value_name = "DIR")]
    pub work_dir: PathBuf,
    /// The container engine for steps with an image: podman, docker, or
    /// none (such steps then fail, saying so); default: whichever is installed.
    #[arg(long, value_name = "podman|docker|none")]
    pub container_engine: Option<String>,
    /// How host steps are confined (as `gantry serve`'s, with the work
    /// directory as the directory steps must not reach).
    #[command(flatten)]
    pub steps: crate::args::StepIsolationArgs,
    /// Exit when the process with this id is no longer this runner's
    /// parent: `gantry serve`'s local runner dies with it, leaving its
    /// steps to the server's next start, as a server killed mid-step does.
    #[arg(long, value_name = "PID", hide = true)]
    pub parent_pid: Option<u32>,
    /// A directory host steps must not reach besides the work directory
    /// (repeatable): `gantry serve`'s local runner protects the server's
    /// data directory.
    #[arg(long = "protect", value_name = "DIR", hide = true)]
    pub protect: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum RunnerCommand {
    /// Registration tokens for new runners.
    #[command(subcommand)]
    Token(RunnerTokenCommand),
    /// Every runner's state, labels, load and last contact.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Refuse a runner's credential and take its jobs back.
    Disable { name: String },
    /// Accept a disabled runner again.
    Enable { name: String },
    /// Forget a runner and its credential; its jobs are taken back.
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum RunnerTokenCommand {
    /// Create a registration token and print it (shown only once).
    Create {
        /// How long it may be used, e.g. 1h or 7d (default: no expiry).
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// How many runners may register with it (default: any number).
        #[arg(long, value_name = "N")]
        uses: Option<i64>,
    },
}

/// Runs the agent until SIGTERM or SIGINT.
pub async fn agent(args: AgentArgs, url: &str) -> anyhow::Result<ExitCode> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let name = match args.name {
        Some(name) => name,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .context("cannot read this host's name: pass --name")?,
    };
    let containers = match args.container_engine.as_deref() {
        Some("none") => None,
        choice => crate::commands::build::container_engine(choice)?,
    };
    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("cannot create {}", args.work_dir.display()))?;
    let work_dir = args
        .work_dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", args.work_dir.display()))?;
    // Host steps must not reach the work directory (its credential, other
    // jobs' directories) beyond their own, nor a rootless engine's state
    // (through which they could enter other jobs' containers).
    let mut protected = args.protect.clone();
    if let Some(engine) = &containers {
        protected.extend(
            engine
                .rootless_state_dirs()
                .await
                .context("cannot ask the container engine where it keeps its state")?,
        );
    }
    let (sandbox, host_steps) = crate::step_isolation::prepare(&args.steps, &work_dir, &protected)?;
    let steps = StepJobRunner::new(StepRunnerConfig {
        work_dir: work_dir.clone(),
        containers,
        sandbox,
        host_steps,
    });
    let config = AgentConfig {
        url: url.trim_end_matches('/').to_owned(),
        token: args.token,
        name,
        labels: args.labels,
        capacity: args.capacity,
        work_dir,
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    if let Some(parent) = args.parent_pid {
        tokio::spawn(exit_with_parent(parent));
    }
    gantry_runners::agent::run(config, Jobs { steps }, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

/// What this runner runs: steps; in debug builds also the raw
/// `{"argv": …}` jobs the test-only debug routes queue.
struct Jobs {
    steps: StepJobRunner,
}

enum Running {
    // Boxed: one per job, and a running step is large.
    Step(Box<<StepJobRunner as JobRunner>::Running>),
    #[cfg(debug_assertions)]
    Process(Box<<gantry_runners::agent::HostProcessRunner as JobRunner>::Running>),
}

impl JobRunner for Jobs {
    type Running = Running;

    async fn start(&self, job: &LeasedJob, dir: &JobDir) -> Result<Running, String> {
        #[cfg(debug_assertions)]
        if job.payload.get("argv").is_some() {
            return gantry_runners::agent::HostProcessRunner
                .start(job, dir)
                .await
                .map(|process| Running::Process(Box::new(process)));
        }
        self.steps
            .start(job, dir)
            .await
            .map(|step| Running::Step(Box::new(step)))
    }

    async fn reattach(&self, dir: &JobDir) -> Option<Running> {
        #[cfg(debug_assertions)]
        if let Some(running) = gantry_runners::agent::HostProcessRunner.reattach(dir).await {
            return Some(Running::Process(Box::new(running)));
        }
        self.steps
            .reattach(dir)
            .await
            .map(|step| Running::Step(Box::new(step)))
    }
}

impl RunningJob for Running {
    async fn finish(self, cancel: CancellationToken) -> JobOutcome {
        match self {
            Running::Step(step) => (*step).finish(cancel).await,
            #[cfg(debug_assertions)]
            Running::Process(process) => (*process).finish(cancel).await,
        }
    }
}

/// The local runner goes with its server. It leaves its steps running, as
/// a server killed mid-step left its own: the server's next start marks
/// their leases lost, its new local runner kills the process groups this
/// one recorded, and the server removes their containers before the steps
/// run again, saying so in the stage's log. Stopping them here instead
/// would race that report and lose what the steps were doing for nothing.
async fn exit_with_parent(parent: u32) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        tick.tick().await;
        if nix::unistd::getppid().as_raw() as u32 != parent {
            tracing::warn!(
                parent,
                "the server that started this runner is gone; exiting, its steps are left to the server's next start"
            );
            std::process::exit(0);
        }
    }
}

async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stopping: killing running jobs");
    shutdown.cancel();
}

pub async fn manage(client: &Client, command: RunnerCommand) -> anyhow::Result<ExitCode> {
    match command {
        RunnerCommand::Token(RunnerTokenCommand::Create { expires, uses }) => {
            let created: wire::CreatedRunnerToken = client
                .post_as(
                    "/api/v1/runners/tokens",
                    &wire::CreateRunnerToken { expires, uses },
                )
                .await?;
            println!("{}", created.token);
            eprintln!("runner registration token created; this is the only time it is shown");
        }
        RunnerCommand::List { json } => {
            let answer: wire::RunnerList = client.get_as("/api/v1/runners").await?;
            if json {
                print_json(&serde_json::to_value(&answer)?);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = answer
                .runners
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        r.state.clone(),
                        r.labels.join(","),
                        format!("{}/{}", r.load, r.capacity),
                        short(r.last_contact_at.as_deref()),
                        r.version.clone(),
                    ]
                })
                .collect();
            table(
                &["NAME", "STATE", "LABELS", "LOAD", "LAST CONTACT", "VERSION"],
                &rows,
            );
        }
        RunnerCommand::Disable { name } => set_state(client, &name, "disable").await?,
        RunnerCommand::Enable { name } => set_state(client, &name, "enable").await?,
        RunnerCommand::Remove { name } => {
            let _: wire::RemovedRunner = client
                .delete_as(&format!("/api/v1/runners/{}", segment(&name)))
                .await?;
            println!("runner {name} removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `action` is `disable` or `enable`.
async fn set_state(client: &Client, name: &str, action: &str) -> anyhow::Result<()> {
    let path = format!("/api/v1/runners/{}/{action}", segment(name));
    let _: wire::RunnerState = client.post_as(&path, &json!({})).await?;
    println!("runner {name} {action}d");
    Ok(())
}
