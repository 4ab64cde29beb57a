//! Where instances run and how traffic reaches them. A provider is two
//! concerns kept apart: [`Instances`] (server groups and their instances:
//! create, resize, destroy, observe) and [`Traffic`] (load balancers, which
//! groups take traffic at which weight, and the measurements an analysis
//! reads). The controller picks a [`Provider`] by name from the
//! [`ProviderRegistry`] (`provider:` in `gantry.yaml`, `local` by default),
//! so strategies never change for a new provider: adding one is its folder
//! (`providers/local/` lives in `gantry-dataplane`) and one registry line.

mod registry;

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::analysis::Measurement;
use crate::error::DeployError;
use crate::model::{
    Application, ApplicationIndex, ClusterPage, ClusterQuery, GroupFigures, LoadBalancer,
    ServerGroup, ServerGroupSpec, ServerGroupStatus, Snapshot,
};

pub use registry::{DEFAULT_PROVIDER, ProviderRegistry};

/// A new server group, created disabled.
#[derive(Clone, Debug)]
pub struct CreateServerGroup {
    /// Makes creation idempotent: a resumed deploy gets the same group.
    pub request_id: String,
    pub application: String,
    pub cluster: String,
    pub spec: ServerGroupSpec,
    pub size: u32,
}

/// Changes to a server group; `None` leaves a field as it is. The
/// controller sends `size` to the provider's [`Instances`] and the rest to
/// its [`Traffic`].
#[derive(Clone, Debug, Default)]
pub struct ServerGroupUpdate {
    pub size: Option<u32>,
    pub enabled: Option<bool>,
    pub weight: Option<u32>,
}

/// Whether a server group takes traffic, and how much of it; `None` leaves
/// a field as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrafficUpdate {
    pub enabled: Option<bool>,
    pub weight: Option<u32>,
}

/// The lifecycle of server groups and their instances.
pub trait Instances: Send + Sync {
    /// Everything the provider knows: applications, load balancers, server
    /// groups with their instances and traffic figures.
    fn snapshot(&self) -> BoxFuture<'_, Result<Snapshot, DeployError>>;

    /// A page of the clusters this provider runs. The default reads the
    /// whole snapshot; a provider holding many groups answers it without.
    fn clusters<'a>(
        &'a self,
        query: &'a ClusterQuery,
    ) -> BoxFuture<'a, Result<ClusterPage, DeployError>> {
        async move { Ok(self.snapshot().await?.cluster_page(query)) }.boxed()
    }

    /// What this provider knows of one cluster: its groups (live and
    /// destroyed) and the load balancers routing to it. The default reads
    /// the whole snapshot.
    fn cluster<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Snapshot, DeployError>> {
        async move { Ok(self.snapshot().await?.only_cluster(name)) }.boxed()
    }

    /// The applications this provider knows and the clusters of its
    /// groups (the applications list). The default reads the snapshot.
    fn applications(&self) -> BoxFuture<'_, Result<ApplicationIndex, DeployError>> {
        async move { Ok(self.snapshot().await?.application_index()) }.boxed()
    }

    /// One group with its instances and figures, if this provider runs it.
    /// The default reads the snapshot.
    fn group<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ServerGroupStatus>, DeployError>> {
        async move { Ok(self.snapshot().await?.group(name).cloned()) }.boxed()
    }

    /// The load balancers this provider serves and its live groups, of the
    /// clusters they route to when it knows (the load balancers list; the
    /// controller keeps only routed clusters). The default reads the
    /// snapshot.
    fn routed(&self) -> BoxFuture<'_, Result<Snapshot, DeployError>> {
        async move {
            let mut snapshot = self.snapshot().await?;
            snapshot.server_groups.retain(|g| g.group.is_live());
            Ok(snapshot)
        }
        .boxed()
    }

    /// The figures of its live groups (`/metrics`). The default reads the
    /// snapshot.
    fn figures(&self) -> BoxFuture<'_, Result<Vec<GroupFigures>, DeployError>> {
        async move { Ok(self.snapshot().await?.figures()) }.boxed()
    }

    fn create_server_group(
        &self,
        request: CreateServerGroup,
    ) -> BoxFuture<'_, Result<ServerGroup, DeployError>>;

    fn resize_server_group(
        &self,
        name: String,
        size: u32,
    ) -> BoxFuture<'_, Result<ServerGroup, DeployError>>;

    /// Out of rotation, drained and stopped; kept in the history.
    fn destroy_server_group(&self, name: String)
    -> BoxFuture<'_, Result<ServerGroup, DeployError>>;

    /// Where a person finds the output of a group whose instances keep
    /// exiting, for the message of a deploy that timed out.
    fn instance_output_hint(&self, group: &str) -> String;

    /// Whether the provider's hosts pull a group's image themselves (with
    /// the spec's `image_access`); otherwise the image must be on this
    /// machine before the group is created.
    fn pulls_images(&self) -> bool {
        false
    }
}

/// Load balancers and the traffic they send to server groups.
pub trait Traffic: Send + Sync {
    fn configure(
        &self,
        applications: Vec<Application>,
        load_balancers: Vec<LoadBalancer>,
    ) -> BoxFuture<'_, Result<(), DeployError>>;

    fn set_traffic(
        &self,
        name: String,
        traffic: TrafficUpdate,
    ) -> BoxFuture<'_, Result<ServerGroup, DeployError>>;

    /// The group's requests measured by the load balancer within `window`.
    fn samples(
        &self,
        name: String,
        window: Duration,
    ) -> BoxFuture<'_, Result<Vec<Measurement>, DeployError>>;
}

/// A named pair of [`Instances`] and [`Traffic`]: where a cluster runs.
#[derive(Clone)]
pub struct Provider {
    pub name: &'static str,
    pub instances: Arc<dyn Instances>,
    pub traffic: Arc<dyn Traffic>,
}

impl Provider {
    /// A provider whose one value answers for both concerns (the local
    /// data plane runs the instances and the load balancer).
    pub fn from_both<P: Instances + Traffic + 'static>(name: &'static str, both: Arc<P>) -> Self {
        Provider {
            name,
            instances: both.clone(),
            traffic: both,
        }
    }
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .finish()
    }
}
