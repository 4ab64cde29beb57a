//! The command line, as clap types.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "gantry",
    version,
    about = "Self-hosted continuous delivery: server and CLI"
)]
pub struct Cli {
    /// Data directory of the server (also where the CLI finds `admin-token`).
    #[arg(long, global = true, env = "GANTRY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The server the CLI talks to.
    #[arg(
        long,
        global = true,
        env = "GANTRY_URL",
        default_value = "http://127.0.0.1:7700",
        value_name = "URL"
    )]
    pub url: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Run the data plane (load balancers and instances); `serve` starts it
    /// and it outlives the server. `gantry dataplane stop` stops it gracefully.
    Dataplane {
        #[command(subcommand)]
        command: Option<crate::commands::dataplane::DataplaneCommand>,
    },
    /// List applications.
    #[command(subcommand)]
    App(crate::commands::deploy::AppCommand),
    /// List or show clusters.
    #[command(subcommand)]
    Cluster(crate::commands::deploy::ClusterCommand),
    /// List, show, resize, enable, disable or destroy server groups.
    #[command(subcommand, name = "servergroup", alias = "sg")]
    ServerGroup(crate::commands::deploy::ServerGroupCommand),
    /// Re-enable a cluster's previous server group, then disable the current one.
    Rollback { cluster: String },
    /// List or show load balancers.
    #[command(subcommand)]
    Lb(crate::commands::deploy::LbCommand),
    /// Create or update everything a pipeline file declares.
    Apply {
        /// The file, e.g. gantry.yaml.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
    /// Check a pipeline file offline and report every problem.
    Validate {
        /// The file, e.g. gantry.yaml.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// List, show or delete pipelines.
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// Start an execution of a pipeline; prints its id.
    Run {
        /// The pipeline's name.
        pipeline: String,
        /// A parameter, KEY=VALUE (repeatable).
        #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Show stage progress until the execution ends; exit 0 only if it succeeded.
        #[arg(long)]
        follow: bool,
        /// Run on this branch or tag of the repository the pipeline's git trigger watches
        /// (the workspace is a checkout of it, with the trigger's environment).
        #[arg(long = "ref", value_name = "BRANCH_OR_TAG")]
        reference: Option<String>,
    },
    /// List, show, cancel or restart executions.
    #[command(subcommand)]
    Execution(ExecutionCommand),
    /// Print the logs of an execution.
    Logs {
        /// The execution's id.
        id: String,
        /// Only this stage's lines.
        #[arg(long)]
        stage: Option<String>,
        /// Keep printing new lines until the execution ends.
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Continue a manual judgment (or a rolling deploy waiting for one
    /// between its steps).
    Approve {
        /// The execution's id.
        id: String,
        /// The stage to act on; needed only when several are waiting.
        #[arg(long)]
        stage: Option<String>,
        /// The option chosen (becomes the stage's outputs.judgment).
        #[arg(long)]
        option: Option<String>,
    },
    /// Stop a manual judgment (the stage fails; a rolling deploy waiting
    /// for one rolls back).
    Reject {
        /// The execution's id.
        id: String,
        /// The stage to act on; needed only when several are waiting.
        #[arg(long)]
        stage: Option<String>,
    },
    /// Promote a deploy waiting for a person: a canary paused until
    /// promoted (`pause: untilPromoted`), a rolling deploy with
    /// `waitForPromotion`.
    Promote {
        /// The execution's id.
        id: String,
        /// The deploy stage to promote; needed only when several are waiting.
        #[arg(long)]
        stage: Option<String>,
    },
    /// End a running wait stage now.
    Skip {
        /// The execution's id.
        id: String,
        /// The stage to act on; needed only when several are waiting.
        #[arg(long)]
        stage: Option<String>,
    },
    /// Create, list or revoke API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Build Debian packages (offline).
    #[command(subcommand)]
    Deb(crate::commands::deb::DebCommand),
    /// APT repositories, snapshots, publications and signing keys (aptly's commands).
    Apt(crate::commands::apt::AptArgs),
    /// Run a Cloud Build config (cloudbuild.yaml) locally, without a server.
    Build(crate::commands::build::BuildArgs),
    /// Run a runner that leases and runs jobs (`--token` the first time), or
    /// manage runners (`token create`, `list`, `disable`, `enable`, `remove`).
    Runner(crate::commands::runner::RunnerArgs),
    /// Set, list or delete server-side secrets.
    #[command(subcommand)]
    Secret(crate::commands::secrets::SecretCommand),
    /// Create, list or delete hosted git repositories.
    #[command(subcommand)]
    Repo(crate::commands::git::RepoCommand),
    /// List what watches what (pipeline triggers).
    #[command(subcommand)]
    Trigger(crate::commands::git::TriggerCommand),
    /// Build the local images that stand in for Cloud Build's docker, git and shell builders.
    #[command(subcommand)]
    Builders(crate::commands::builders::BuildersCommand),
    /// List or download the files an execution kept (a Cloud Build file's artifacts.objects).
    #[command(subcommand)]
    Artifact(crate::commands::artifacts::ArtifactCommand),
    /// List, show, bootstrap, drain or undrain fleet hosts.
    #[command(subcommand)]
    Host(crate::commands::host::HostCommand),
    /// The host agent that `gantry host bootstrap` installs on fleet hosts.
    #[command(hide = true)]
    Agent(crate::commands::host::AgentArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address the API, hosted git and published APT trees listen on.
    #[arg(long, default_value = "127.0.0.1:7700", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// sqlite://PATH or postgres://… (default sqlite://DATA_DIR/gantry.db).
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// The container engine for container steps and bakes: podman or docker
    /// (or a path to either); default podman, else docker, else none (host
    /// steps only).
    #[arg(long, env = "GANTRY_CONTAINER_ENGINE", value_name = "ENGINE")]
    pub container_engine: Option<String>,
    /// Replace a builder image that cannot be pulled here, FROM=TO
    /// (repeatable); TO may be host:PROGRAM to run the step's arguments on the host.
    #[arg(
        long = "image-map",
        env = "GANTRY_IMAGE_MAP",
        value_delimiter = ',',
        value_name = "FROM=TO"
    )]
    pub image_map: Vec<String>,
    /// Send images Cloud Build files name under FROM to TO instead (repeatable), e.g.
    /// gcr.io/PROJECT=127.0.0.1:5000/PROJECT: their `images:`, the docker builder's
    /// arguments and builder images, as `gantry build --registry-map`.
    #[arg(
        long = "registry-map",
        env = "GANTRY_REGISTRY_MAP",
        value_delimiter = ',',
        value_name = "FROM=TO"
    )]
    pub registry_map: Vec<String>,
    /// A registry Cloud Build files push to and pull from without TLS (repeatable;
    /// loopback registries always are), HOST[:PORT].
    #[arg(
        long = "insecure-registry",
        env = "GANTRY_INSECURE_REGISTRIES",
        value_delimiter = ',',
        value_name = "HOST[:PORT]"
    )]
    pub insecure_registries: Vec<String>,
    /// The most instances a server group may have: a deploy's `size` or a
    /// resize above it is refused.
    #[arg(
        long,
        env = "GANTRY_MAX_DEPLOY_SIZE",
        value_name = "N",
        default_value_t = gantry_deploy::DEFAULT_MAX_SIZE
    )]
    pub max_deploy_size: u32,
    /// Run no step in the server: start a local runner beside it (a child
    /// `gantry runner` under its own user) that runs the steps without
    /// `runsOn`. Off: start none; steps without `runsOn` then run in the
    /// server's own process tree.
    #[arg(long, env = "GANTRY_LOCAL_RUNNER", default_value = "on", value_parser = ["on", "off"], value_name = "on|off")]
    pub local_runner: String,
    /// The user the local runner runs as when the server runs as root
    /// (default gantry-runner, created at start with its home and
    /// subordinate ids if missing).
    #[arg(long, env = "GANTRY_LOCAL_RUNNER_USER", value_name = "USER")]
    pub local_runner_user: Option<String>,
    /// The local runner's work directory, outside the data directory
    /// (default: HOME/servers/HASH in the runner user's home).
    #[arg(long, env = "GANTRY_LOCAL_RUNNER_DIR", value_name = "DIR")]
    pub local_runner_dir: Option<PathBuf>,
    /// How long a step waits for a runner with its labels (`runsOn`) before
    /// its stage fails; a stage's `runnerWait` wins.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub runner_wait: std::time::Duration,
    #[command(flatten)]
    pub listener: ListenerArgs,
    #[command(flatten)]
    pub steps: StepIsolationArgs,
}

/// How host steps are kept away from the server's data directory.
#[derive(Debug, clap::Args)]
pub struct StepIsolationArgs {
    /// Whether steps without an image may run: `off` refuses them (for a
    /// machine that cannot confine them: not root and no Landlock).
    #[arg(
        long,
        env = "GANTRY_HOST_STEPS",
        value_name = "on|off",
        default_value = "on",
        value_parser = ["on", "off"]
    )]
    pub host_steps: String,
    /// The unprivileged user host steps run as when the server runs as root
    /// (default gantry-steps, created at start if missing).
    #[arg(long, env = "GANTRY_STEP_USER", value_name = "USER")]
    pub step_user: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Every applied pipeline.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One pipeline's spec and triggers.
    Show {
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete a pipeline (its executions are kept).
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum ExecutionCommand {
    /// The newest executions first.
    List {
        /// Only this pipeline's executions.
        #[arg(long)]
        pipeline: Option<String>,
        /// Only executions in this status: pending, running, waiting, succeeded, failed,
        /// canceled.
        #[arg(long)]
        status: Option<String>,
        /// Trigger type: manual, pipeline, …
        #[arg(long)]
        trigger: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// An execution's stages, outputs and trigger.
    Show {
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a running execution (its steps get SIGTERM, then SIGKILL).
    Cancel { id: String },
    /// Run a failed or canceled stage again, with everything after it.
    Restart {
        id: String,
        /// The id of the stage to run again (its downstream stages run again after it).
        #[arg(long)]
        stage: String,
    },
    /// Start a new execution with this one's pipeline spec, parameters and trigger
    /// (rollback: re-run an earlier deploy). Prints the new execution's id.
    Rerun { id: String },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret (shown only once).
    Create {
        name: String,
        /// What the token may do: `viewer` reads; `operator` also runs, approves, deploys,
        /// applies and pushes; `admin` also manages tokens and secrets.
        #[arg(long, default_value = "viewer", value_parser = ["admin", "operator", "viewer"])]
        role: String,
    },
    /// Every token's id, name and times (never its secret).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id or name.
    Revoke {
        #[arg(value_name = "ID_OR_NAME")]
        token: String,
    },
}

/// How the API's listener bounds its clients (`gantry serve`): how many
/// connections, for how long, and how much they may send.
#[derive(Debug, Args)]
pub struct ListenerArgs {
    /// Connections the API holds open at once; more are refused at accept.
    #[arg(
        long,
        env = "GANTRY_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub max_connections: usize,
    /// Connections one client address may hold open at once.
    #[arg(
        long,
        env = "GANTRY_MAX_CONNECTIONS_PER_ADDRESS",
        value_name = "N",
        default_value_t = 1_000
    )]
    pub max_connections_per_address: usize,
    /// Time from a request's first byte to the end of its head.
    #[arg(long, env = "GANTRY_HEADER_TIMEOUT", value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub header_timeout: std::time::Duration,
    /// An idle connection (no request in progress) is closed after this.
    #[arg(long, env = "GANTRY_KEEP_ALIVE_TIMEOUT", value_name = "DURATION", default_value = "75s", value_parser = humantime::parse_duration)]
    pub keep_alive_timeout: std::time::Duration,
    /// The longest pause between two reads of a request body.
    #[arg(long, env = "GANTRY_BODY_TIMEOUT", value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub body_timeout: std::time::Duration,
    /// Time an unauthenticated client (a webhook sender) has to send its
    /// whole body.
    #[arg(long, env = "GANTRY_UNAUTHENTICATED_BODY_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub unauthenticated_body_timeout: std::time::Duration,
    /// Memory all bodies of unauthenticated clients in flight may take
    /// together (bytes, or with KiB, MiB, GiB); past it they get 503.
    #[arg(long, env = "GANTRY_UNAUTHENTICATED_BODY_BUDGET", value_name = "SIZE", default_value = "16MiB", value_parser = parse_size)]
    pub unauthenticated_body_budget: u64,
    /// The largest upload (an APT package or a tar of them); larger get 413.
    #[arg(long, env = "GANTRY_UPLOAD_LIMIT", value_name = "SIZE", default_value = "4GiB", value_parser = parse_size)]
    pub upload_limit: u64,
}

/// A size in bytes: a number, optionally followed by KiB, MiB or GiB (or
/// K, M, G, with the same binary meaning).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 512MiB)"))?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB or GiB)")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
