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
    /// Create or update everything a pipeline file declares.
    Apply {
        /// The file, e.g. gantry.yaml.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
    /// Check a pipeline file offline and report every problem.
    Validate {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// List, show or delete pipelines.
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// Start an execution of a pipeline; prints its id.
    Run {
        pipeline: String,
        /// A parameter, KEY=VALUE (repeatable).
        #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Show stage progress until the execution ends; exit 0 only if it succeeded.
        #[arg(long)]
        follow: bool,
    },
    /// List, show, cancel or restart executions.
    #[command(subcommand)]
    Execution(ExecutionCommand),
    /// Print the logs of an execution.
    Logs {
        id: String,
        #[arg(long)]
        stage: Option<String>,
        /// Keep printing new lines until the execution ends.
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Continue a manual judgment.
    Approve {
        id: String,
        #[arg(long)]
        stage: Option<String>,
        /// The option chosen (becomes the stage's outputs.judgment).
        #[arg(long)]
        option: Option<String>,
    },
    /// Stop a manual judgment (the stage fails).
    Reject {
        id: String,
        #[arg(long)]
        stage: Option<String>,
    },
    /// End a running wait stage now.
    Skip {
        id: String,
        #[arg(long)]
        stage: Option<String>,
    },
    /// Create, list or revoke API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:7700", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// sqlite://PATH or postgres://… (default sqlite://DATA_DIR/gantry.db).
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    List {
        #[arg(long)]
        json: bool,
    },
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    Delete {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExecutionCommand {
    List {
        #[arg(long)]
        pipeline: Option<String>,
        #[arg(long)]
        status: Option<String>,
        /// Trigger type: manual, pipeline, …
        #[arg(long)]
        trigger: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    Cancel {
        id: String,
    },
    /// Run a failed or canceled stage again, with everything after it.
    Restart {
        id: String,
        #[arg(long)]
        stage: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret (shown only once).
    Create { name: String },
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id or name.
    Revoke {
        #[arg(value_name = "ID_OR_NAME")]
        token: String,
    },
}
