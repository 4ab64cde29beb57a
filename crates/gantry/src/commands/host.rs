//! `gantry host list|show|bootstrap|drain|undrain` (through the API) and
//! `gantry agent` (the host agent, run on fleet hosts over SSH).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use gantry_wire::hosts::{Bootstrapped, Host, HostList};

use crate::client::{Client, segment};
use crate::output::{print_wire, table};

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// List hosts: reachable, agent version, instances, load.
    List {
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one host and the instances its agent runs.
    Show {
        name: String,
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Install this server's gantry binary on the host (checked by SHA-256)
    /// and start its agent; running it again changes nothing.
    Bootstrap { name: String },
    /// Mark the host unschedulable: the ssh provider starts replacements of
    /// its instances on other hosts and stops them there once the
    /// replacements are healthy (a group never goes below its size). Waits,
    /// printing progress, until the host holds no instance of any group.
    Drain {
        name: String,
        /// Return once the host is marked, without waiting.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for the host to hold no instance.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration, value_name = "DURATION")]
        timeout: std::time::Duration,
    },
    /// Make a drained host schedulable again.
    Undrain { name: String },
}

pub async fn run(client: &Client, command: HostCommand) -> anyhow::Result<ExitCode> {
    match command {
        HostCommand::List { json } => {
            let answer: HostList = client.get_as("/api/v1/hosts").await?;
            if json {
                print_wire(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = answer.hosts.iter().map(row).collect();
            table(
                &[
                    "NAME",
                    "ADDRESS",
                    "STATE",
                    "AGENT",
                    "INSTANCES",
                    "LOAD",
                    "LABELS",
                ],
                &rows,
            );
        }
        HostCommand::Show { name, json } => {
            let host: Host = client
                .get_as(&format!("/api/v1/hosts/{}", segment(&name)))
                .await?;
            if json {
                print_wire(&host);
                return Ok(ExitCode::SUCCESS);
            }
            show(&host);
        }
        HostCommand::Bootstrap { name } => {
            let done: Bootstrapped = client
                .post_as(
                    &format!("/api/v1/hosts/{}/bootstrap", segment(&name)),
                    &serde_json::json!({}),
                )
                .await?;
            let what = if done.copied {
                "installed"
            } else {
                "already installed"
            };
            println!(
                "host {}: agent {} {what} (sha256 {})",
                done.host, done.agent_version, done.sha256
            );
        }
        HostCommand::Drain {
            name,
            no_wait,
            timeout,
        } => {
            let host: Host = client
                .post_as(
                    &format!("/api/v1/hosts/{}/drain", segment(&name)),
                    &serde_json::json!({}),
                )
                .await?;
            println!(
                "host {} drained: no new instances go there; its instances stop once their replacements elsewhere are healthy",
                host.name
            );
            if !no_wait {
                return wait_drained(client, &host.name, timeout).await;
            }
        }
        HostCommand::Undrain { name } => {
            let host: Host = client
                .post_as(
                    &format!("/api/v1/hosts/{}/undrain", segment(&name)),
                    &serde_json::json!({}),
                )
                .await?;
            println!("host {} schedulable again", host.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Polls the host until its agent runs no instance, printing each change
/// of what is left; fails once `timeout` has passed.
async fn wait_drained(
    client: &Client,
    name: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let mut shown = String::new();
    loop {
        let host: Host = client
            .get_as(&format!("/api/v1/hosts/{}", segment(name)))
            .await?;
        let left = match &host.agent {
            Some(agent) if agent.instances.is_empty() => {
                println!(
                    "host {name} holds no instance ({}s)",
                    started.elapsed().as_secs()
                );
                return Ok(ExitCode::SUCCESS);
            }
            Some(agent) => {
                let ids: Vec<String> = agent
                    .instances
                    .iter()
                    .map(|i| format!("{} ({})", i.id, i.state))
                    .collect();
                format!("{} instance(s) left: {}", ids.len(), ids.join(", "))
            }
            // Its instances are replaced elsewhere as for any host that
            // stops answering, and whatever still runs there is stopped once
            // it answers again: nothing to wait for here.
            None => {
                println!(
                    "host {name} does not answer ({}): its instances are replaced on the other hosts and stopped there when it answers again",
                    host.error.as_deref().unwrap_or("no answer")
                );
                return Ok(ExitCode::SUCCESS);
            }
        };
        if left != shown {
            println!("host {name}: {left}");
            shown = left;
        }
        if started.elapsed() >= timeout {
            eprintln!(
                "host {name}: drained, but after {} {shown}: their groups have no healthy replacement elsewhere yet (see gantry host show {name}; --timeout waits longer)",
                humantime::format_duration(timeout)
            );
            return Ok(ExitCode::FAILURE);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

fn state(host: &Host) -> &'static str {
    match (host.reachable, host.drained) {
        (true, false) => "ready",
        (true, true) => "drained",
        (false, false) => "unreachable",
        (false, true) => "unreachable,drained",
    }
}

fn row(host: &Host) -> Vec<String> {
    let agent = host.agent.as_ref();
    vec![
        host.name.clone(),
        format!("{}:{}", host.address, host.port),
        state(host).into(),
        agent.map_or("-".into(), |a| a.version.clone()),
        agent.map_or("-".into(), |a| a.instances.len().to_string()),
        agent.map_or("-".into(), |a| format!("{:.2}", a.load)),
        host.labels.join(","),
    ]
}

fn show(host: &Host) {
    println!(
        "host {} ({}@{}:{})",
        host.name, host.user, host.address, host.port
    );
    println!("state: {}", state(host));
    if !host.labels.is_empty() {
        println!("labels: {}", host.labels.join(", "));
    }
    if let Some(error) = &host.error {
        println!("error: {error}");
    }
    if let Some(agent) = &host.agent {
        println!(
            "agent: {} (pid {}, {} KiB resident of which {} KiB its own), load {:.2}",
            agent.version, agent.pid, agent.rss_kib, agent.private_kib, agent.load
        );
        let rows: Vec<Vec<String>> = agent
            .instances
            .iter()
            .map(|i| {
                vec![
                    i.id.clone(),
                    i.group.clone(),
                    i.port.to_string(),
                    i.state.clone(),
                    i.restarts.to_string(),
                ]
            })
            .collect();
        table(
            &["INSTANCE", "SERVER GROUP", "PORT", "STATE", "RESTARTS"],
            &rows,
        );
    }
}

/// `gantry agent`: the host agent. Run by `gantry host bootstrap` and by
/// the control plane over SSH, never by a person on the server.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Relay stdin and stdout to the agent's socket (starting the agent if
    /// none runs): what an SSH channel runs.
    #[arg(long)]
    stdio: bool,
    /// The agent's directory (default: ~/.gantry).
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<AgentCommand>,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Run the agent in the foreground (its own session when started by
    /// `--stdio`).
    Serve,
}

pub async fn agent(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let dir = match args.dir {
        Some(dir) => dir,
        None => std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(gantry_fleet::agent::AGENT_DIR))
            .ok_or_else(|| anyhow::anyhow!("HOME is not set; pass --dir"))?,
    };
    match (args.command, args.stdio) {
        (Some(AgentCommand::Serve), _) => {
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(std::io::stderr)
                .init();
            gantry_fleet::agent::serve(&dir, env!("CARGO_PKG_VERSION").to_owned()).await?;
        }
        (None, true) => {
            let program = std::env::current_exe()?;
            gantry_fleet::agent::relay(&dir, &program).await?;
        }
        (None, false) => anyhow::bail!("gantry agent: give --stdio or serve"),
    }
    Ok(ExitCode::SUCCESS)
}
