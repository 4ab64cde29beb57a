//! The `ssh` provider: server groups whose instances run on fleet hosts,
//! under each host's agent, behind Gantry's own load balancer.
//!
//! [`Instances`] is this crate's: a group's instances are placed over the
//! hosts its placement selects (`placement.rs`), each host getting the
//! release once (`release.rs`) and its agent starting the instance on a
//! free port of the host's address. [`Traffic`] is the data plane's: the
//! group lives in the data plane's desired state as a group it only routes
//! to, its instances given as targets (`host:port`), health-checked,
//! weighted and drained exactly as local instances are.
//!
//! One routine, [`SshProvider::converge`], makes a group's instances match
//! its size on the hosts that answer: creating, resizing, destroying and
//! the host watch all call it. The watch runs it for every live group each
//! interval, so a host that stops answering has its instances replaced on
//! the others, and one that answers again is used again.

mod package;
mod placement;
mod release;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use gantry_dataplane::local::LocalProvider;
use gantry_dataplane::protocol::RemoteTarget;
use gantry_deploy::DeployError;
use gantry_deploy::analysis::Measurement;
use gantry_deploy::model::{
    Application, ClusterPage, ClusterQuery, LoadBalancer, ServerGroup, ServerGroupStatus, Snapshot,
};
use gantry_deploy::providers::{CreateServerGroup, Instances, Provider, Traffic, TrafficUpdate};

use crate::agent::protocol::{AgentRequest, AgentStatus, InstanceSpec, Started};
use crate::error::FleetError;
use crate::fleet::{Fleet, FleetHost};

/// How often the host watch looks at every group.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

pub struct SshProvider {
    fleet: Arc<Fleet>,
    routing: Arc<LocalProvider>,
    /// One change of instances at a time: deploys, resizes and the watch
    /// never place the same instance twice.
    changes: tokio::sync::Mutex<()>,
    /// Where hosts reach the server's published APT trees (through their
    /// SSH connection), once the server listens.
    apt_server: std::sync::OnceLock<SocketAddr>,
}

impl SshProvider {
    /// The name `gantry.yaml` gives it (`provider: ssh`).
    pub const NAME: &'static str = "ssh";

    pub fn new(fleet: Arc<Fleet>, routing: Arc<LocalProvider>) -> Arc<SshProvider> {
        Arc::new(SshProvider {
            fleet,
            routing,
            changes: tokio::sync::Mutex::new(()),
            apt_server: std::sync::OnceLock::new(),
        })
    }

    /// Hosts install groups' packages from the APT trees the server
    /// serves at `address` (its API listener; an unspecified address is
    /// reached on loopback).
    pub fn install_packages_from(&self, address: SocketAddr) {
        let mut address = address;
        if address.ip().is_unspecified() {
            address.set_ip(if address.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let _ = self.apt_server.set(address);
    }

    /// This provider as the registry holds it.
    pub fn provider(self: &Arc<Self>) -> Provider {
        Provider {
            name: Self::NAME,
            instances: self.clone(),
            traffic: self.clone(),
        }
    }

    /// Watches the hosts for the life of the process (call it within the
    /// server's runtime).
    pub fn watch_hosts(self: &Arc<Self>) {
        let provider = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(WATCH_INTERVAL).await;
                provider.watch_once().await;
            }
        });
    }

    async fn watch_once(&self) {
        // No data plane, no group of ours to look after (and polling must
        // not start one: a server with no deploy runs none).
        if !self.routing.answers().await {
            return;
        }
        let Ok(snapshot) = self.routing.routed_snapshot(Self::NAME).await else {
            return;
        };
        for group in snapshot.server_groups {
            let wanted = if group.group.is_live() {
                group.group.size
            } else {
                0
            };
            let settled = group.instances.len() == wanted as usize
                && group.instances.iter().all(|i| i.state == "running");
            // A destroyed group's instances were stopped when it was
            // destroyed; a live one is looked at every time, since only the
            // hosts know whether its instances still run.
            if !group.group.is_live() && settled {
                continue;
            }
            if let Err(error) = self.converge(&group.group.name).await {
                tracing::warn!(group = %group.group.name, %error, "fleet group below its size");
            }
        }
    }

    async fn group(&self, name: &str) -> Result<ServerGroupStatus, DeployError> {
        self.routing
            .routed_snapshot(Self::NAME)
            .await?
            .server_groups
            .into_iter()
            .find(|g| g.group.name == name)
            .ok_or_else(|| DeployError::NotFound(format!("server group {name:?} does not exist")))
    }

    /// Makes the group's instances match its size on the hosts that
    /// answer, then gives the data plane the resulting targets (removed
    /// ones drain before their processes are stopped).
    pub async fn converge(&self, name: &str) -> Result<ServerGroup, DeployError> {
        let _one_at_a_time = self.changes.lock().await;
        let status = self.group(name).await?;
        let group = status.group.clone();
        let size = if group.is_live() {
            group.size as usize
        } else {
            0
        };
        let placement = group.spec.placement.clone().unwrap_or_default();
        let current: Vec<RemoteTarget> = status.instances.iter().filter_map(target_of).collect();
        let hosts = self.fleet.hosts().await.map_err(deploy_error)?;
        let relevant: Vec<&FleetHost> = hosts
            .iter()
            .filter(|h| {
                placement::eligible(h, &placement) || current.iter().any(|t| t.host == h.spec.name)
            })
            .collect();
        let statuses: HashMap<String, Result<AgentStatus, FleetError>> = futures::future::join_all(
            relevant
                .iter()
                .map(|h| async { (h.spec.name.clone(), self.fleet.agent_status(&h.spec).await) }),
        )
        .await
        .into_iter()
        .collect();
        let usable = |host: &str| {
            relevant
                .iter()
                .any(|h| h.spec.name == host && placement::eligible(h, &placement))
                && statuses.get(host).is_some_and(Result::is_ok)
        };
        let runs = |host: &str, id: &str| {
            statuses.get(host).is_some_and(|s| {
                s.as_ref().is_ok_and(|s| {
                    s.instances
                        .iter()
                        .any(|i| i.id == id && i.state != "stopped")
                })
            })
        };
        let (mut keep, mut leave): (Vec<RemoteTarget>, Vec<RemoteTarget>) = current
            .iter()
            .cloned()
            .partition(|t| usable(&t.host) && runs(&t.host, &t.id));
        if keep.len() > size {
            let placed: Vec<(String, String)> = keep
                .iter()
                .map(|t| (t.id.clone(), t.host.clone()))
                .collect();
            let extra = placement::surplus(&placed, size);
            let (stay, go): (Vec<_>, Vec<_>) =
                keep.into_iter().partition(|t| !extra.contains(&t.id));
            keep = stay;
            leave.extend(go);
        }
        let mut problems: Vec<String> = statuses
            .values()
            .filter_map(|s| s.as_ref().err().map(ToString::to_string))
            .collect();
        if keep.len() < size {
            let mut load: BTreeMap<String, u32> = relevant
                .iter()
                .filter(|h| usable(&h.spec.name))
                .map(|h| (h.spec.name.clone(), 0))
                .collect();
            for target in &keep {
                *load.entry(target.host.clone()).or_default() += 1;
            }
            let chosen = placement::choose(&load, size - keep.len(), placement.max_per_host);
            if chosen.len() < size - keep.len() {
                problems.push(format!(
                    "{} usable host(s) with labels {:?}{} cannot take {} more instance(s)",
                    load.len(),
                    placement.labels,
                    placement
                        .max_per_host
                        .map(|m| format!(" and at most {m} per host"))
                        .unwrap_or_default(),
                    size - keep.len()
                ));
            }
            let mut next_index = current
                .iter()
                .filter_map(|t| t.id.rsplit_once("-i")?.1.parse::<u32>().ok())
                .max()
                .map_or(0, |n| n + 1);
            let mut releases: HashMap<String, String> = HashMap::new();
            for host_name in chosen {
                let Some(host) = hosts.iter().find(|h| h.spec.name == host_name) else {
                    continue;
                };
                let id = format!("{}-i{next_index}", group.name);
                next_index += 1;
                match self.start(host, &group, &id, &mut releases).await {
                    Ok(target) => keep.push(target),
                    Err(error) => problems.push(error.to_string()),
                }
            }
        }
        if keep != current {
            self.routing
                .set_targets(name.to_owned(), keep.clone())
                .await?;
            tracing::info!(group = %name, instances = keep.len(), "fleet group placed");
        }
        for target in &leave {
            self.stop(&hosts, target).await;
        }
        self.stop_strays(&hosts, &statuses, &group.name, &keep)
            .await;
        if keep.len() < size {
            problems.sort();
            return Err(DeployError::Failed(format!(
                "server group {name:?}: {} of {size} instance(s) placed on fleet hosts: {}",
                keep.len(),
                problems.join("; ")
            )));
        }
        Ok(group)
    }

    /// Prepares the release on the host (once per converge) and has its
    /// agent start the instance.
    async fn start(
        &self,
        host: &FleetHost,
        group: &ServerGroup,
        id: &str,
        releases: &mut HashMap<String, String>,
    ) -> Result<RemoteTarget, FleetError> {
        let spec = &group.spec;
        let Some(command) = spec.command.clone() else {
            return Err(FleetError::Invalid(format!(
                "server group {:?}: the ssh provider runs a command; images are not supported on hosts yet",
                group.name
            )));
        };
        let release = match releases.get(&host.spec.name) {
            Some(release) => release.clone(),
            None => {
                let connection = self.fleet.connection(&host.spec).await?;
                if let Some(package) = &spec.package {
                    let server = self.apt_server.get().copied().ok_or_else(|| {
                        FleetError::Invalid("this server serves no APT repository to hosts".into())
                    })?;
                    package::install(&connection, server, package).await?;
                }
                let artifact = spec.artifact.as_deref().map(Path::new);
                let release = release::prepare(&connection, &group.name, artifact).await?;
                releases.insert(host.spec.name.clone(), release.clone());
                release
            }
        };
        let instance = InstanceSpec {
            id: id.to_owned(),
            group: group.name.clone(),
            address: host.spec.address.clone(),
            port: 0,
            command,
            env: spec.env.clone(),
            release,
            grace_seconds: spec.grace_seconds,
        };
        let started: Started = self
            .fleet
            .agent(&host.spec, &AgentRequest::Start { instance })
            .await?;
        let address = resolve(&host.spec.address, started.port).await?;
        Ok(RemoteTarget {
            id: id.to_owned(),
            host: host.spec.name.clone(),
            address,
        })
    }

    /// Stops an instance on its host; a host that does not answer keeps it
    /// until the watch finds it there again (`stop_strays`).
    async fn stop(&self, hosts: &[FleetHost], target: &RemoteTarget) {
        let Some(host) = hosts.iter().find(|h| h.spec.name == target.host) else {
            return;
        };
        let request = AgentRequest::Stop {
            id: target.id.clone(),
        };
        if let Err(error) = self
            .fleet
            .agent::<serde_json::Value>(&host.spec, &request)
            .await
        {
            tracing::warn!(instance = %target.id, %error, "cannot stop a fleet instance yet");
        }
    }

    /// Stops instances of the group that hosts run but the data plane does
    /// not route to (left by a host that was unreachable when they were
    /// replaced, or by a server that died between starting and recording
    /// them).
    async fn stop_strays(
        &self,
        hosts: &[FleetHost],
        statuses: &HashMap<String, Result<AgentStatus, FleetError>>,
        group: &str,
        keep: &[RemoteTarget],
    ) {
        for (host, status) in statuses {
            let Ok(status) = status else { continue };
            for instance in status.instances.iter().filter(|i| i.group == group) {
                if !keep.iter().any(|t| t.id == instance.id && &t.host == host) {
                    let stray = RemoteTarget {
                        id: instance.id.clone(),
                        host: host.clone(),
                        address: SocketAddr::from(([0, 0, 0, 0], instance.port)),
                    };
                    self.stop(hosts, &stray).await;
                }
            }
        }
    }
}

fn target_of(instance: &gantry_deploy::model::Instance) -> Option<RemoteTarget> {
    Some(RemoteTarget {
        id: instance.id.clone(),
        host: instance.host.clone()?,
        address: instance.address.as_deref()?.parse().ok()?,
    })
}

async fn resolve(address: &str, port: u16) -> Result<SocketAddr, FleetError> {
    tokio::net::lookup_host((address, port))
        .await
        .ok()
        .and_then(|mut found| found.next())
        .ok_or_else(|| FleetError::Invalid(format!("cannot resolve host address {address:?}")))
}

/// Each instance runs the package version its group installed on its host
/// before starting it.
fn with_package_versions(mut snapshot: Snapshot) -> Snapshot {
    for group in &mut snapshot.server_groups {
        if let Some(package) = &group.group.spec.package {
            for instance in &mut group.instances {
                instance.version = Some(package.version.clone());
            }
        }
    }
    snapshot
}

fn deploy_error(error: FleetError) -> DeployError {
    DeployError::Invalid(error.to_string())
}

impl Instances for SshProvider {
    fn snapshot(&self) -> BoxFuture<'_, Result<Snapshot, DeployError>> {
        async move {
            let snapshot = self.routing.routed_snapshot(Self::NAME).await?;
            Ok(with_package_versions(snapshot))
        }
        .boxed()
    }

    fn clusters<'a>(
        &'a self,
        query: &'a ClusterQuery,
    ) -> BoxFuture<'a, Result<ClusterPage, DeployError>> {
        self.routing
            .routed_clusters(Some(Self::NAME), query)
            .boxed()
    }

    fn cluster<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Snapshot, DeployError>> {
        async move {
            let snapshot = self
                .routing
                .routed_groups(Some(Self::NAME), Some(name))
                .await?;
            Ok(with_package_versions(snapshot))
        }
        .boxed()
    }

    fn create_server_group(
        &self,
        request: CreateServerGroup,
    ) -> BoxFuture<'_, Result<ServerGroup, DeployError>> {
        async move {
            if request.spec.command.is_none() {
                return Err(DeployError::Invalid(format!(
                    "cluster {:?}: the ssh provider runs a command on each host; give \"command\"",
                    request.cluster
                )));
            }
            let group = self.routing.create_routed(request, Self::NAME).await?;
            self.converge(&group.name).await
        }
        .boxed()
    }

    fn resize_server_group(
        &self,
        name: String,
        size: u32,
    ) -> BoxFuture<'_, Result<ServerGroup, DeployError>> {
        async move {
            self.routing.resize_server_group(name.clone(), size).await?;
            self.converge(&name).await
        }
        .boxed()
    }

    fn destroy_server_group(
        &self,
        name: String,
    ) -> BoxFuture<'_, Result<ServerGroup, DeployError>> {
        async move {
            let destroyed = self.routing.destroy_server_group(name.clone()).await?;
            // Out of rotation and drained by the data plane first; then the
            // processes go (a host that does not answer: by the watch).
            if let Err(error) = self.converge(&name).await {
                tracing::warn!(group = %name, %error, "fleet instances left to the watch");
            }
            Ok(destroyed)
        }
        .boxed()
    }

    fn instance_output_hint(&self, group: &str) -> String {
        format!("output on each host in ~/.gantry/logs/{group}-iN.log")
    }
}

impl Traffic for SshProvider {
    /// The data plane's load balancers are the local provider's to
    /// configure; the groups of this provider only join their clusters.
    fn configure(
        &self,
        _applications: Vec<Application>,
        _load_balancers: Vec<LoadBalancer>,
    ) -> BoxFuture<'_, Result<(), DeployError>> {
        async { Ok(()) }.boxed()
    }

    fn set_traffic(
        &self,
        name: String,
        traffic: TrafficUpdate,
    ) -> BoxFuture<'_, Result<ServerGroup, DeployError>> {
        self.routing.set_traffic(name, traffic)
    }

    fn samples(
        &self,
        name: String,
        window: Duration,
    ) -> BoxFuture<'_, Result<Vec<Measurement>, DeployError>> {
        self.routing.samples(name, window)
    }
}
