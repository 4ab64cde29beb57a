//! `gantry app|cluster|servergroup|lb …` and `gantry rollback`: the deploy
//! model through the API.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{Value, json};

use crate::client::{Client, segment};
use crate::output::{field, print_json, table};

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
    Enable {
        name: String,
    },
    /// Take out of rotation (in-flight requests finish).
    Disable {
        name: String,
        /// Also when it is the last enabled group of its cluster (its
        /// traffic then has nowhere to go).
        #[arg(long)]
        force: bool,
    },
    /// Stop its instances and remove it (kept in the cluster's history).
    Destroy {
        name: String,
    },
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
    let answer = client.get("/api/v1/applications").await?;
    if json {
        print_json(&answer);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = items(&answer, "applications")
        .map(|a| {
            vec![
                field(a, "name"),
                joined(a, "clusters"),
                field(a, "description"),
            ]
        })
        .collect();
    table(&["NAME", "CLUSTERS", "DESCRIPTION"], &rows);
    Ok(ExitCode::SUCCESS)
}

pub async fn cluster(client: &Client, command: ClusterCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClusterCommand::List { json } => {
            let answer = client.get("/api/v1/clusters").await?;
            if json {
                print_json(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = items(&answer, "clusters")
                .map(|c| {
                    vec![
                        field(c, "name"),
                        field(c, "application"),
                        joined(c, "serverGroups"),
                        joined(c, "enabled"),
                        format!("{}/{}", field(c, "healthy"), field(c, "instances")),
                    ]
                })
                .collect();
            table(
                &["NAME", "APPLICATION", "SERVER GROUPS", "ENABLED", "HEALTHY"],
                &rows,
            );
        }
        ClusterCommand::Show { name, json } => {
            let answer = client
                .get(&format!("/api/v1/clusters/{}", segment(&name)))
                .await?;
            if json {
                print_json(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "cluster {}  application {}",
                field(&answer, "name"),
                field(&answer, "application")
            );
            println!("load balancers: {}", joined(&answer, "loadBalancers"));
            group_table(items(&answer, "serverGroups"));
            let history: Vec<String> = items(&answer, "history")
                .map(|g| field(g, "name"))
                .collect();
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
            let answer = client.get("/api/v1/server-groups").await?;
            // The same groups in both forms: destroyed ones only with --all.
            let groups: Vec<&Value> = items(&answer, "serverGroups")
                .filter(|g| {
                    (all || g["destroyedAt"].is_null())
                        && cluster.as_deref().is_none_or(|c| g["cluster"] == c)
                })
                .collect();
            if json {
                print_json(&json!({ "serverGroups": groups }));
                return Ok(ExitCode::SUCCESS);
            }
            group_table(groups.into_iter());
        }
        ServerGroupCommand::Show { name, json } => {
            let answer = client.get(&path(&name)).await?;
            if json {
                print_json(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            group_table(std::iter::once(&answer));
            let rows: Vec<Vec<String>> = items(&answer, "instances")
                .map(|i| {
                    vec![
                        field(i, "id"),
                        field(i, "port"),
                        field(i, "pid"),
                        field(i, "state"),
                        health(i),
                        field(i, "restarts"),
                    ]
                })
                .collect();
            table(
                &["INSTANCE", "PORT", "PID", "STATE", "HEALTH", "RESTARTS"],
                &rows,
            );
        }
        ServerGroupCommand::Resize { name, size } => {
            let group = client
                .post(&format!("{}/resize", path(&name)), &json!({ "size": size }))
                .await?;
            println!(
                "{} resized to {}",
                field(&group, "name"),
                field(&group, "size")
            );
        }
        ServerGroupCommand::Enable { name } => {
            client
                .post(&format!("{}/enable", path(&name)), &json!({}))
                .await?;
            println!("{name} enabled");
        }
        ServerGroupCommand::Disable { name, force } => {
            client
                .post(
                    &format!("{}/disable", path(&name)),
                    &json!({ "force": force }),
                )
                .await?;
            println!("{name} disabled");
        }
        ServerGroupCommand::Destroy { name } => {
            client.delete(&path(&name)).await?;
            println!("{name} destroyed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn rollback(client: &Client, cluster: &str) -> anyhow::Result<ExitCode> {
    let answer = client
        .post(
            &format!("/api/v1/clusters/{}/rollback", segment(cluster)),
            &json!({}),
        )
        .await?;
    for note in items(&answer, "notes") {
        eprintln!("{}", note.as_str().unwrap_or_default());
    }
    println!("{cluster} rolled back to {}", field(&answer, "enabled"));
    Ok(ExitCode::SUCCESS)
}

pub async fn lb(client: &Client, command: LbCommand) -> anyhow::Result<ExitCode> {
    match command {
        LbCommand::List { json } => {
            let answer = client.get("/api/v1/load-balancers").await?;
            if json {
                print_json(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = items(&answer, "loadBalancers")
                .map(|lb| {
                    let clusters: Vec<String> =
                        items(lb, "clusters").map(|c| field(c, "cluster")).collect();
                    let rate: f64 = items(lb, "clusters")
                        .flat_map(|c| items(c, "serverGroups"))
                        .map(|g| g["stats"]["rate"].as_f64().unwrap_or(0.0))
                        .sum();
                    vec![
                        field(lb, "name"),
                        field(lb, "port"),
                        if lb["listening"] == true {
                            "yes".into()
                        } else {
                            "no".into()
                        },
                        clusters.join(", "),
                        format!("{rate:.1}"),
                    ]
                })
                .collect();
            table(&["NAME", "PORT", "LISTENING", "CLUSTERS", "REQ/S"], &rows);
        }
        LbCommand::Show { name, json } => {
            let answer = client
                .get(&format!("/api/v1/load-balancers/{}", segment(&name)))
                .await?;
            if json {
                print_json(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "load balancer {} on 127.0.0.1:{} ({}), health check {}",
                field(&answer, "name"),
                field(&answer, "port"),
                if answer["listening"] == true {
                    "listening"
                } else {
                    "not listening"
                },
                field(&answer["healthCheck"], "path"),
            );
            let mut rows = Vec::new();
            for cluster in items(&answer, "clusters") {
                for g in items(cluster, "serverGroups") {
                    let instances: Vec<&Value> = items(g, "instances").collect();
                    let healthy = instances.iter().filter(|i| i["healthy"] == true).count();
                    let stats = &g["stats"];
                    rows.push(vec![
                        field(cluster, "cluster"),
                        field(g, "name"),
                        if g["enabled"] == true {
                            "yes".into()
                        } else {
                            "no".into()
                        },
                        field(g, "weight"),
                        format!("{:.0}%", g["trafficPercent"].as_f64().unwrap_or(0.0)),
                        format!("{healthy}/{}", instances.len()),
                        format!("{:.1}", stats["rate"].as_f64().unwrap_or(0.0)),
                        field(stats, "requests"),
                        field(stats, "status5xx"),
                        format!("{}/{}", field(stats, "p50Ms"), field(stats, "p99Ms")),
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
            let instances: Vec<Vec<String>> = items(&answer, "clusters")
                .flat_map(|c| items(c, "serverGroups"))
                .flat_map(|g| items(g, "instances").map(move |i| (g, i)))
                .map(|(g, i)| {
                    vec![
                        field(i, "id"),
                        field(g, "name"),
                        format!("127.0.0.1:{}", field(i, "port")),
                        field(i, "state"),
                        health(i),
                        field(i, "inFlight"),
                        field(i, "restarts"),
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
    }
    Ok(ExitCode::SUCCESS)
}

fn items<'v>(value: &'v Value, name: &str) -> impl Iterator<Item = &'v Value> {
    value[name].as_array().into_iter().flatten()
}

fn joined(value: &Value, name: &str) -> String {
    items(value, name)
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn health(instance: &Value) -> String {
    let mut text = if instance["healthy"] == true {
        "healthy"
    } else {
        "unhealthy"
    }
    .to_owned();
    if instance["crashLooping"] == true {
        text.push_str(" (crash-looping)");
    }
    text
}

fn group_table<'v>(groups: impl Iterator<Item = &'v Value>) {
    let rows: Vec<Vec<String>> = groups
        .map(|g| {
            let instances: Vec<&Value> = items(g, "instances").collect();
            let healthy = instances.iter().filter(|i| i["healthy"] == true).count();
            let state = if !g["destroyedAt"].is_null() {
                "destroyed"
            } else if g["enabled"] == true {
                "enabled"
            } else {
                "disabled"
            };
            vec![
                field(g, "name"),
                state.to_owned(),
                field(g, "weight"),
                field(g, "size"),
                format!("{healthy}/{}", instances.len()),
                g["spec"]["command"]
                    .as_str()
                    .or(g["spec"]["image"].as_str())
                    .unwrap_or("")
                    .to_owned(),
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
