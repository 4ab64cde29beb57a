//! `gantry app|cluster|servergroup|lb …` and `gantry rollback`: the deploy
//! model through the API.

use std::process::ExitCode;

use clap::Subcommand;
use gantry_wire::deploy as wire;
use serde_json::{Value, json};

use crate::client::{Client, segment};
use crate::output::{dash, print_wire, table};

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Applications with their clusters and server groups.
    List {
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Clusters with their server groups and load balancers.
    List {
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Server groups, instances and history of a cluster.
    Show {
        name: String,
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServerGroupCommand {
    /// Server groups (without destroyed ones unless --all): version, size, health, weight.
    List {
        /// Only this cluster's groups.
        #[arg(long)]
        cluster: Option<String>,
        /// Include destroyed groups.
        #[arg(long)]
        all: bool,
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One server group with its instances: port, process, state, health, restarts.
    Show {
        name: String,
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Set the number of instances (0 stops them all).
    Resize {
        name: String,
        /// The number of instances wanted.
        #[arg(long, allow_negative_numbers = true)]
        size: i64,
    },
    /// Put back into rotation with full weight once its instances are healthy.
    Enable { name: String },
    /// Take out of rotation (in-flight requests finish).
    Disable {
        name: String,
        /// Also when it is the last enabled group of its cluster (its
        /// traffic then has nowhere to go).
        #[arg(long)]
        force: bool,
    },
    /// Stop its instances and remove it (kept in the cluster's history).
    Destroy { name: String },
}

#[derive(Debug, Subcommand)]
pub enum LbCommand {
    /// Load balancers with their listeners and clusters.
    List {
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Listeners, groups, weights, instance health and live request rates.
    Show {
        name: String,
        /// Print the API's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub async fn app(client: &Client, command: AppCommand) -> anyhow::Result<ExitCode> {
    let AppCommand::List { json } = command;
    let answer: wire::ApplicationList = client.get_as("/api/v1/applications").await?;
    if json {
        print_wire(&answer);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = answer
        .applications
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.clusters.join(", "),
                dash(a.description.as_deref()),
            ]
        })
        .collect();
    table(&["NAME", "CLUSTERS", "DESCRIPTION"], &rows);
    Ok(ExitCode::SUCCESS)
}

pub async fn cluster(client: &Client, command: ClusterCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClusterCommand::List { json } => {
            let answer: wire::ClusterList = client.get_as("/api/v1/clusters").await?;
            if json {
                print_wire(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = answer
                .clusters
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        dash(c.application.as_deref()),
                        c.server_groups.join(", "),
                        c.enabled.join(", "),
                        format!("{}/{}", c.healthy, c.instances),
                    ]
                })
                .collect();
            table(
                &["NAME", "APPLICATION", "SERVER GROUPS", "ENABLED", "HEALTHY"],
                &rows,
            );
        }
        ClusterCommand::Show { name, json } => {
            let answer: wire::Cluster = client
                .get_as(&format!("/api/v1/clusters/{}", segment(&name)))
                .await?;
            if json {
                print_wire(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "cluster {}  application {}",
                answer.name,
                dash(answer.application.as_deref())
            );
            println!("load balancers: {}", answer.load_balancers.join(", "));
            group_table(answer.server_groups.iter());
            let history: Vec<&str> = answer.history.iter().map(|g| g.name.as_str()).collect();
            if !history.is_empty() {
                println!("destroyed: {}", history.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn server_group(
    client: &Client,
    command: ServerGroupCommand,
) -> anyhow::Result<ExitCode> {
    let path = |name: &str| format!("/api/v1/server-groups/{}", segment(name));
    match command {
        ServerGroupCommand::List { cluster, all, json } => {
            let answer: wire::ServerGroupList = client.get_as("/api/v1/server-groups").await?;
            // The same groups in both forms: destroyed ones only with --all.
            let server_groups: Vec<wire::ServerGroupStatus> = answer
                .server_groups
                .into_iter()
                .filter(|g| {
                    (all || g.group.is_live())
                        && cluster.as_deref().is_none_or(|c| g.group.cluster == c)
                })
                .collect();
            if json {
                print_wire(&wire::ServerGroupList { server_groups });
                return Ok(ExitCode::SUCCESS);
            }
            group_table(server_groups.iter());
        }
        ServerGroupCommand::Show { name, json } => {
            let answer: wire::ServerGroupStatus = client.get_as(&path(&name)).await?;
            if json {
                print_wire(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            group_table(std::iter::once(&answer));
            // Instances on fleet hosts also say where they run and what (the
            // package version or the image, at the digest its host pulled).
            let fleet = answer.instances.iter().any(|i| i.host.is_some());
            let rows: Vec<Vec<String>> = answer
                .instances
                .iter()
                .map(|i| {
                    let mut row = vec![
                        i.id.clone(),
                        i.port.to_string(),
                        i.pid.map_or_else(|| "-".to_owned(), |pid| pid.to_string()),
                        i.state.clone(),
                        health(i),
                        i.restarts.to_string(),
                    ];
                    if fleet {
                        row.push(i.host.clone().unwrap_or_else(|| "-".to_owned()));
                        row.push(runs(i));
                    }
                    row
                })
                .collect();
            let mut header = vec!["INSTANCE", "PORT", "PID", "STATE", "HEALTH", "RESTARTS"];
            if fleet {
                header.extend(["HOST", "RUNS"]);
            }
            table(&header, &rows);
        }
        ServerGroupCommand::Resize { name, size } => {
            let group: wire::ServerGroup = client
                .post_as(
                    &format!("{}/resize", path(&name)),
                    &wire::ResizeRequest { size },
                )
                .await?;
            println!("{} resized to {}", group.name, group.size);
        }
        ServerGroupCommand::Enable { name } => {
            let _: wire::ServerGroup = client
                .post_as(&format!("{}/enable", path(&name)), &json!({}))
                .await?;
            println!("{name} enabled");
        }
        ServerGroupCommand::Disable { name, force } => {
            let _: wire::ServerGroup = client
                .post_as(
                    &format!("{}/disable", path(&name)),
                    &wire::DisableRequest { force },
                )
                .await?;
            println!("{name} disabled");
        }
        ServerGroupCommand::Destroy { name } => {
            let _: wire::ServerGroup = client.delete_as(&path(&name)).await?;
            println!("{name} destroyed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn rollback(client: &Client, cluster: &str) -> anyhow::Result<ExitCode> {
    let answer: wire::Rollback = client
        .post_as(
            &format!("/api/v1/clusters/{}/rollback", segment(cluster)),
            &json!({}),
        )
        .await?;
    for note in &answer.notes {
        eprintln!("{note}");
    }
    println!("{cluster} rolled back to {}", answer.enabled);
    Ok(ExitCode::SUCCESS)
}

pub async fn lb(client: &Client, command: LbCommand) -> anyhow::Result<ExitCode> {
    match command {
        LbCommand::List { json } => {
            let answer: wire::LoadBalancerList = client.get_as("/api/v1/load-balancers").await?;
            if json {
                print_wire(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = answer
                .load_balancers
                .iter()
                .map(|lb| {
                    let clusters: Vec<&str> =
                        lb.clusters.iter().map(|c| c.cluster.as_str()).collect();
                    let rate: f64 = lb
                        .clusters
                        .iter()
                        .flat_map(|c| &c.server_groups)
                        .map(|g| g.stats.as_ref().map_or(0.0, |s| s.rate))
                        .sum();
                    vec![
                        lb.name.clone(),
                        lb.port.to_string(),
                        yes_no(lb.listening),
                        clusters.join(", "),
                        format!("{rate:.1}"),
                    ]
                })
                .collect();
            table(&["NAME", "PORT", "LISTENING", "CLUSTERS", "REQ/S"], &rows);
        }
        LbCommand::Show { name, json } => {
            let answer: wire::LoadBalancer = client
                .get_as(&format!("/api/v1/load-balancers/{}", segment(&name)))
                .await?;
            if json {
                print_wire(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            print_load_balancer(&answer);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_load_balancer(answer: &wire::LoadBalancer) {
    println!(
        "load balancer {} on 127.0.0.1:{} ({}), health check {}",
        answer.name,
        answer.port,
        if answer.listening {
            "listening"
        } else {
            "not listening"
        },
        answer.health_check.path,
    );
    let mut rows = Vec::new();
    for cluster in &answer.clusters {
        for g in &cluster.server_groups {
            let healthy = g.instances.iter().filter(|i| i.healthy).count();
            let stat = |read: fn(&wire::GroupStats) -> Value| {
                g.stats
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |s| read(s).to_string())
            };
            rows.push(vec![
                cluster.cluster.clone(),
                g.name.clone(),
                yes_no(g.enabled),
                g.weight.to_string(),
                format!("{:.0}%", g.traffic_percent),
                format!("{healthy}/{}", g.instances.len()),
                format!("{:.1}", g.stats.as_ref().map_or(0.0, |s| s.rate)),
                stat(|s| json!(s.requests)),
                stat(|s| json!(s.status_5xx)),
                format!(
                    "{}/{}",
                    stat(|s| json!(s.p50_ms)),
                    stat(|s| json!(s.p99_ms))
                ),
            ]);
        }
    }
    table(
        &[
            "CLUSTER",
            "SERVER GROUP",
            "ENABLED",
            "WEIGHT",
            "TRAFFIC",
            "HEALTHY",
            "REQ/S",
            "REQUESTS",
            "5XX",
            "P50/P99 MS",
        ],
        &rows,
    );
    let instances: Vec<Vec<String>> = answer
        .clusters
        .iter()
        .flat_map(|c| &c.server_groups)
        .flat_map(|g| g.instances.iter().map(move |i| (g, i)))
        .map(|(g, i)| {
            vec![
                i.id.clone(),
                g.name.clone(),
                format!("127.0.0.1:{}", i.port),
                i.state.clone(),
                health(i),
                i.in_flight.to_string(),
                i.restarts.to_string(),
            ]
        })
        .collect();
    if !instances.is_empty() {
        println!();
        table(
            &[
                "INSTANCE",
                "SERVER GROUP",
                "ADDRESS",
                "STATE",
                "HEALTH",
                "IN FLIGHT",
                "RESTARTS",
            ],
            &instances,
        );
    }
}

fn yes_no(yes: bool) -> String {
    if yes { "yes" } else { "no" }.to_owned()
}

/// What a fleet instance runs: its package version, or its image with the
/// digest its host pulled.
fn runs(instance: &wire::Instance) -> String {
    match (&instance.image, &instance.digest, &instance.version) {
        (Some(image), Some(digest), _) => format!("{image}@{digest}"),
        (Some(image), None, _) => image.clone(),
        (None, _, Some(version)) => version.clone(),
        (None, _, None) => "-".to_owned(),
    }
}

fn health(instance: &wire::Instance) -> String {
    let mut text = if instance.healthy {
        "healthy"
    } else {
        "unhealthy"
    }
    .to_owned();
    if instance.crash_looping {
        text.push_str(" (crash-looping)");
    }
    text
}

fn group_table<'v>(groups: impl Iterator<Item = &'v wire::ServerGroupStatus>) {
    let rows: Vec<Vec<String>> = groups
        .map(|g| {
            let state = if !g.group.is_live() {
                "destroyed"
            } else if g.group.enabled {
                "enabled"
            } else {
                "disabled"
            };
            let spec = &g.group.spec;
            vec![
                g.group.name.clone(),
                state.to_owned(),
                g.group.weight.to_string(),
                g.group.size.to_string(),
                format!("{}/{}", g.healthy_instances(), g.instances.len()),
                spec.command
                    .clone()
                    .or_else(|| spec.image.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "SERVER GROUP",
            "STATE",
            "WEIGHT",
            "SIZE",
            "HEALTHY",
            "COMMAND/IMAGE",
        ],
        &rows,
    );
}
