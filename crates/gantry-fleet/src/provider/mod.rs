//! The `ssh` provider: server groups whose instances run on fleet hosts,
//! under each host's agent, behind Gantry's own load balancer.
//!
//! [`Instances`] is this crate's: a group's instances are placed over the
//! hosts its placement selects (`placement.rs`), each host getting the
//! release once (`release.rs`) and its agent starting the instance on a
//! free port of the host's address; a group of an image has each host's
//! engine pull it once (`image.rs`) and runs its instances as containers
//! on the host's network. [`Traffic`] is the data plane's: the
//! group lives in the data plane's desired state as a group it only routes
//! to, its instances given as targets (`host:port`), health-checked,
//! weighted and drained exactly as local instances are.
//!
//! One routine, [`SshProvider::converge`], makes a group's instances match
//! its size on the hosts that answer: creating, resizing, destroying and
//! the host watch all call it. The watch runs it for every live group each
//! interval, so a host that stops answering has its instances replaced on
//! the others, and one that answers again is used again.
//!
//! Record before act: every instance is written to the journal
//! (`journal.rs`) before its host's agent is asked to start or stop it, and
//! settled once the data plane's targets agree; what a killed server left
//! pending is settled with the hosts (`settle.rs`) before anything else.

mod apt_gate;
mod converge;
mod image;
mod journal;
mod package;
mod placement;
mod release;
mod settle;

use std::collections::HashMap;
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

use crate::agent::protocol::{AgentRequest, InstanceSpec, Started};
use crate::error::FleetError;
use crate::fleet::{Fleet, FleetHost};
use journal::{Action, Intent, Journal};

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
    /// The APT gate in front of it (`apt_gate.rs`), started on first use:
    /// what hosts' forwards reach.
    apt_gate: tokio::sync::OnceCell<SocketAddr>,
    /// What the provider is about to do on hosts, recorded before it acts.
    journal: Journal,
    /// The digest each host pulled of an image, by host and image.
    digests: std::sync::Mutex<HashMap<(String, String), String>>,
}

impl SshProvider {
    /// The name `gantry.yaml` gives it (`provider: ssh`).
    pub const NAME: &'static str = "ssh";

    /// The provider; its journal lives in `journal_dir` (created if
    /// needed; one that cannot be read is an error).
    pub fn new(
        fleet: Arc<Fleet>,
        routing: Arc<LocalProvider>,
        journal_dir: &Path,
    ) -> Result<Arc<SshProvider>, FleetError> {
        Ok(Arc::new(SshProvider {
            fleet,
            routing,
            changes: tokio::sync::Mutex::new(()),
            apt_server: std::sync::OnceLock::new(),
            apt_gate: tokio::sync::OnceCell::new(),
            journal: Journal::open(journal_dir)?,
            digests: std::sync::Mutex::new(HashMap::new()),
        }))
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
        // What a killed server left undecided comes first: adopted or
        // removed before any group is placed again.
        {
            let _one_at_a_time = self.changes.lock().await;
            if let Err(error) = self.settle_journal(None).await {
                tracing::warn!(%error, "fleet journal not settled");
            }
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
        // A command wins over an image, as with the local provider.
        let image = spec.image.clone().filter(|_| spec.command.is_none());
        let release = match releases.get(&host.spec.name) {
            Some(release) => release.clone(),
            None if image.is_some() => {
                let image = image.as_deref().unwrap_or_default();
                let access = spec.image_access.as_ref();
                let digest = image::pull(&self.fleet, host, image, access).await?;
                let key = (host.spec.name.clone(), image.to_owned());
                let mut digests = self.digests.lock().unwrap_or_else(|e| e.into_inner());
                match digest {
                    Some(digest) => digests.insert(key, digest),
                    None => digests.remove(&key),
                };
                // No release directory: the image is the release.
                releases.insert(host.spec.name.clone(), String::new());
                String::new()
            }
            None => {
                let connection = self.fleet.connection(&host.spec).await?;
                if let Some(package) = &spec.package {
                    let server = self.apt_server.get().copied().ok_or_else(|| {
                        FleetError::Invalid("this server serves no APT repository to hosts".into())
                    })?;
                    let gate = self
                        .apt_gate
                        .get_or_try_init(|| apt_gate::start(server))
                        .await?;
                    package::install(&connection, *gate, package).await?;
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
            command: spec.command.clone().unwrap_or_default(),
            image,
            env: spec.env.clone(),
            release,
            grace_seconds: spec.grace_seconds,
        };
        let starting = Intent {
            action: Action::Start,
            host: host.spec.name.clone(),
            group: group.name.clone(),
            id: id.to_owned(),
        };
        self.journal.record(starting.clone())?;
        let started: Started = match self
            .fleet
            .agent(&host.spec, &AgentRequest::Start { instance })
            .await
        {
            Ok(started) => started,
            // The agent answered with a refusal: it started nothing. A
            // connection lost on the way leaves the intent to settling.
            Err(error @ FleetError::Agent { .. }) => {
                self.journal.settle(&starting)?;
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        let address = resolve(&host.spec.address, started.port).await?;
        Ok(RemoteTarget {
            id: id.to_owned(),
            host: host.spec.name.clone(),
            address,
        })
    }
}

fn intent(action: Action, target: &RemoteTarget, group: &str) -> Intent {
    Intent {
        action,
        host: target.host.clone(),
        group: group.to_owned(),
        id: target.id.clone(),
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

impl SshProvider {
    /// Each instance runs the package version its group installed on its
    /// host before starting it, or its group's image, at the digest its
    /// host pulled (when this server saw the pull).
    fn with_versions(&self, mut snapshot: Snapshot) -> Snapshot {
        let digests = self.digests.lock().unwrap_or_else(|e| e.into_inner());
        for group in &mut snapshot.server_groups {
            let spec = &group.group.spec;
            if let Some(package) = &spec.package {
                for instance in &mut group.instances {
                    instance.version = Some(package.version.clone());
                }
            }
            if let (Some(image), None) = (&spec.image, &spec.command) {
                for instance in &mut group.instances {
                    instance.image = Some(image.clone());
                    instance.digest = instance
                        .host
                        .as_ref()
                        .and_then(|host| digests.get(&(host.clone(), image.clone())))
                        .cloned();
                }
            }
        }
        snapshot
    }
}

fn deploy_error(error: FleetError) -> DeployError {
    DeployError::Invalid(error.to_string())
}

impl Instances for SshProvider {
    fn snapshot(&self) -> BoxFuture<'_, Result<Snapshot, DeployError>> {
        async move {
            let snapshot = self.routing.routed_snapshot(Self::NAME).await?;
            Ok(self.with_versions(snapshot))
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
            Ok(self.with_versions(snapshot))
        }
        .boxed()
    }

    fn create_server_group(
        &self,
        request: CreateServerGroup,
    ) -> BoxFuture<'_, Result<ServerGroup, DeployError>> {
        async move {
            if request.spec.command.is_none() && request.spec.image.is_none() {
                return Err(DeployError::Invalid(format!(
                    "cluster {:?}: the ssh provider runs a command or an image on each host; give \"command\" or \"image\"",
                    request.cluster
                )));
            }
            let group = self.routing.create_routed(request, Self::NAME).await?;
            match self.converge(&group.name).await {
                Ok(group) => Ok(group),
                Err(error) => {
                    // The deploy fails with this error before any traffic
                    // reaches the group: it goes now, rather than have the
                    // host watch retry its pulls and installs every second.
                    if let Err(left) = self.destroy_server_group(group.name.clone()).await {
                        tracing::warn!(group = %group.name, error = %left,
                            "a server group that could not be placed is left to the watch");
                    }
                    Err(error)
                }
            }
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
            let destroyed = {
                let _one_at_a_time = self.changes.lock().await;
                // The data plane forgets the group's targets as it destroys
                // it: every instance's stop is recorded first.
                let status = self.group(&name).await?;
                for target in status.instances.iter().filter_map(target_of) {
                    self.journal
                        .record(intent(Action::Stop, &target, &name))
                        .map_err(deploy_error)?;
                }
                self.routing.destroy_server_group(name.clone()).await?
            };
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

    fn pulls_images(&self) -> bool {
        true
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
