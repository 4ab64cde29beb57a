//! The `local` provider: instances on this machine, run by the data-plane
//! process (host processes, or containers through the podman CLI), reached
//! through its control socket. The server watches the data plane and
//! starts it again the moment it dies (`watch.rs`).

mod client;
#[cfg(test)]
mod tests;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::{BoxFuture, FutureExt};
use serde_json::Value;

pub use client::DataplaneClient;

use crate::protocol::{BAD_REQUEST, RemoteTarget, Request};
use gantry_deploy::DeployError;
use gantry_deploy::analysis::Measurement;
use gantry_deploy::model::{
    Application, ApplicationIndex, ClusterPage, ClusterQuery, GroupFigures, LoadBalancer,
    ServerGroup, ServerGroupStatus, Snapshot,
};
use gantry_deploy::providers::{CreateServerGroup, Instances, Provider, Traffic, TrafficUpdate};

/// How to reach (and if needed start) the data plane.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    pub data_dir: PathBuf,
    /// The program and arguments that run the data plane for `data_dir`
    /// (`gantry dataplane --data-dir DIR`).
    pub dataplane_command: Vec<String>,
}

pub struct LocalProvider {
    client: Arc<DataplaneClient>,
}

impl LocalProvider {
    /// The name `gantry.yaml` gives it (`provider: local`, the default).
    pub const NAME: &'static str = "local";

    pub fn new(config: LocalConfig) -> LocalProvider {
        LocalProvider {
            client: Arc::new(DataplaneClient::new(config)),
        }
    }

    /// This provider as the registry holds it: the data plane answers for
    /// both its instances and its traffic.
    pub fn into_provider(self) -> Provider {
        Provider::from_both(Self::NAME, Arc::new(self))
    }

    /// Watches the data plane for the life of the process (call it from
    /// the server, within its tokio runtime): it is started again within
    /// milliseconds of its death, and at once when none runs although the
    /// desired state has something for it to serve.
    pub fn watch_dataplane(&self) {
        tokio::spawn(watch::watch(self.client.clone()));
    }

    pub fn client(&self) -> &DataplaneClient {
        &self.client
    }
}

fn decode<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, DeployError> {
    serde_json::from_value(value).map_err(|e| DeployError::Dataplane(format!("bad answer: {e}")))
}

impl Instances for LocalProvider {
    fn snapshot(&self) -> BoxFuture<'_, Result<Snapshot, DeployError>> {
        // Groups the data plane only routes to belong to their provider.
        self.routed_groups(None, None).boxed()
    }

    fn clusters<'a>(
        &'a self,
        query: &'a ClusterQuery,
    ) -> BoxFuture<'a, Result<ClusterPage, DeployError>> {
        self.routed_clusters(None, query).boxed()
    }

    fn cluster<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Snapshot, DeployError>> {
        self.routed_groups(None, Some(name)).boxed()
    }

    fn applications(&self) -> BoxFuture<'_, Result<ApplicationIndex, DeployError>> {
        self.application_index(None).boxed()
    }

    fn group<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ServerGroupStatus>, DeployError>> {
        async move {
            let snapshot = self.groups_where(None, None, Some(name), false).await?;
            Ok(snapshot.server_groups.into_iter().next())
        }
        .boxed()
    }

    fn routed(&self) -> BoxFuture<'_, Result<Snapshot, DeployError>> {
        self.groups_where(None, None, None, true).boxed()
    }

    fn figures(&self) -> BoxFuture<'_, Result<Vec<GroupFigures>, DeployError>> {
        self.group_figures(None).boxed()
    }

    fn create_server_group(
        &self,
        request: CreateServerGroup,
    ) -> BoxFuture<'_, Result<ServerGroup, DeployError>> {
        async move {
            if let Some(image) = &request.spec.image {
                check_image(image).await?;
            }
            self.create(request, None).await
        }
        .boxed()
    }

    fn resize_server_group(
        &self,
        name: String,
        size: u32,
    ) -> BoxFuture<'_, Result<ServerGroup, DeployError>> {
        self.update(name, Some(size), TrafficUpdate::default())
    }

    fn destroy_server_group(
        &self,
        name: String,
    ) -> BoxFuture<'_, Result<ServerGroup, DeployError>> {
        async move { decode(self.client.request(&Request::Destroy { name }).await?) }.boxed()
    }

    fn instance_output_hint(&self, group: &str) -> String {
        // The supervisor's log files, relative to the data plane's directory.
        format!("output in server-groups/{group}/instance-N.log")
    }
}

impl Traffic for LocalProvider {
    fn configure(
        &self,
        applications: Vec<Application>,
        load_balancers: Vec<LoadBalancer>,
    ) -> BoxFuture<'_, Result<(), DeployError>> {
        async move {
            self.client
                .request(&Request::Configure {
                    applications,
                    load_balancers,
                })
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn set_traffic(
        &self,
        name: String,
        traffic: TrafficUpdate,
    ) -> BoxFuture<'_, Result<ServerGroup, DeployError>> {
        self.update(name, None, traffic)
    }

    fn samples(
        &self,
        name: String,
        window: std::time::Duration,
    ) -> BoxFuture<'_, Result<Vec<Measurement>, DeployError>> {
        async move {
            decode(
                self.client
                    .request(&Request::Samples {
                        name,
                        window_ms: window.as_millis() as u64,
                    })
                    .await?,
            )
        }
        .boxed()
    }
}

impl LocalProvider {
    /// The data plane changes size and traffic in one request.
    fn update(
        &self,
        name: String,
        size: Option<u32>,
        traffic: TrafficUpdate,
    ) -> BoxFuture<'_, Result<ServerGroup, DeployError>> {
        async move {
            decode(
                self.client
                    .request(&Request::Update {
                        name,
                        size,
                        enabled: traffic.enabled,
                        weight: traffic.weight,
                    })
                    .await?,
            )
        }
        .boxed()
    }
}

/// What another provider (`ssh`) asks of the data plane: groups it routes
/// to without running their instances.
impl LocalProvider {
    /// Creates `provider`'s group, disabled and with no target yet.
    pub async fn create_routed(
        &self,
        request: CreateServerGroup,
        provider: &str,
    ) -> Result<ServerGroup, DeployError> {
        self.create(request, Some(provider.to_owned())).await
    }

    async fn create(
        &self,
        request: CreateServerGroup,
        provider: Option<String>,
    ) -> Result<ServerGroup, DeployError> {
        decode(
            self.client
                .request(&Request::Create {
                    request_id: request.request_id,
                    application: request.application,
                    cluster: request.cluster,
                    spec: request.spec,
                    size: request.size,
                    provider,
                })
                .await?,
        )
    }

    /// Replaces where the group's instances listen; returns once the
    /// removed ones drained.
    pub async fn set_targets(
        &self,
        name: String,
        targets: Vec<RemoteTarget>,
    ) -> Result<ServerGroup, DeployError> {
        decode(
            self.client
                .request(&Request::Targets { name, targets })
                .await?,
        )
    }

    /// Whether a data plane answers now; unlike every request, asking
    /// this never starts one (a watch that polls must not).
    pub async fn answers(&self) -> bool {
        let socket = crate::socket_path(&self.client.config().data_dir);
        tokio::net::UnixStream::connect(socket).await.is_ok()
    }

    /// A page of the clusters of `provider`'s groups (`None`: the data
    /// plane's own), summarised by the data plane.
    pub async fn routed_clusters(
        &self,
        provider: Option<&str>,
        query: &ClusterQuery,
    ) -> Result<ClusterPage, DeployError> {
        let request = Request::Clusters {
            provider: provider.map(str::to_owned),
            query: query.clone(),
        };
        match self.client.request_as(&request).await {
            Err(error) if older_dataplane(&error) => Ok(self
                .routed_groups(provider, None)
                .await?
                .cluster_page(query)),
            answer => answer,
        }
    }

    /// `provider`'s groups (`None`: the data plane's own, with the
    /// applications and load balancers), of one cluster when `cluster` is
    /// given (the load balancers then those routing to it).
    pub async fn routed_groups(
        &self,
        provider: Option<&str>,
        cluster: Option<&str>,
    ) -> Result<Snapshot, DeployError> {
        self.groups_where(provider, cluster, None, false).await
    }

    /// `routed_groups`, of one group only (`name`), or only the live groups
    /// of the clusters a load balancer routes to (`routed`).
    async fn groups_where(
        &self,
        provider: Option<&str>,
        cluster: Option<&str>,
        name: Option<&str>,
        routed: bool,
    ) -> Result<Snapshot, DeployError> {
        let request = Request::Groups {
            provider: provider.map(str::to_owned),
            cluster: cluster.map(str::to_owned),
            name: name.map(str::to_owned),
            routed,
        };
        let mut snapshot: Snapshot = match self.client.request_as(&request).await {
            Err(error) if older_dataplane(&error) => {
                let mut snapshot: Snapshot = self.client.request_as(&Request::Status).await?;
                snapshot
                    .server_groups
                    .retain(|g| g.group.provider.as_deref() == provider);
                if provider.is_some() {
                    snapshot.applications.clear();
                    snapshot.load_balancers.clear();
                }
                match cluster {
                    Some(cluster) => snapshot.only_cluster(cluster),
                    None => snapshot,
                }
            }
            answer => answer?,
        };
        // A data plane that predates `name` and `routed` ignores them.
        if let Some(name) = name {
            snapshot.server_groups.retain(|g| g.group.name == name);
        }
        if routed {
            snapshot = snapshot.only_routed();
        }
        Ok(snapshot)
    }

    /// The applications list of `provider`'s groups.
    async fn application_index(
        &self,
        provider: Option<&str>,
    ) -> Result<ApplicationIndex, DeployError> {
        let request = Request::Applications {
            provider: provider.map(str::to_owned),
        };
        match self.client.request_as(&request).await {
            Err(error) if older_dataplane(&error) => Ok(self
                .routed_groups(provider, None)
                .await?
                .application_index()),
            answer => answer,
        }
    }

    /// The figures of `provider`'s live groups.
    async fn group_figures(
        &self,
        provider: Option<&str>,
    ) -> Result<Vec<GroupFigures>, DeployError> {
        let request = Request::Figures {
            provider: provider.map(str::to_owned),
        };
        match self.client.request_as(&request).await {
            Err(error) if older_dataplane(&error) => {
                Ok(self.routed_groups(provider, None).await?.figures())
            }
            answer => answer,
        }
    }

    /// The groups of `provider`, with their targets as instances.
    pub async fn routed_snapshot(&self, provider: &str) -> Result<Snapshot, DeployError> {
        self.routed_groups(Some(provider), None).await
    }
}

/// Whether the data plane refused a request it does not know: one started
/// by an older binary, which outlives the server's upgrade, knows `Status`
/// but not the requests that read part of it.
fn older_dataplane(error: &DeployError) -> bool {
    matches!(error, DeployError::Invalid(message)
        if message.strip_prefix(BAD_REQUEST).is_some_and(|m| m.starts_with("unknown variant")))
}

/// An image must exist locally (no public registry is reachable).
async fn check_image(image: &str) -> Result<(), DeployError> {
    let status = tokio::process::Command::new("podman")
        .args(["image", "exists", image])
        .status()
        .await
        .map_err(|e| DeployError::Invalid(format!("image {image:?}: cannot run podman: {e}")))?;
    if !status.success() {
        return Err(DeployError::Invalid(format!(
            "image {image:?} does not exist"
        )));
    }
    Ok(())
}
