//! Where instances run. One trait; one folder per provider (`local` today;
//! `ssh` and `kubernetes` later) so strategies never change for a new one.

pub mod local;

use futures::future::BoxFuture;

use crate::error::DeployError;
use crate::model::{Application, LoadBalancer, ServerGroup, ServerGroupSpec, Snapshot};

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

/// Changes to a server group; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ServerGroupUpdate {
    pub size: Option<u32>,
    pub enabled: Option<bool>,
    pub weight: Option<u32>,
}

pub trait Provider: Send + Sync {
    fn name(&self) -> &'static str;
    /// Everything: applications, load balancers, server groups with instances and traffic.
    fn snapshot(&self) -> BoxFuture<'_, Result<Snapshot, DeployError>>;
    fn configure(
        &self,
        applications: Vec<Application>,
        load_balancers: Vec<LoadBalancer>,
    ) -> BoxFuture<'_, Result<(), DeployError>>;
    fn create_server_group(
        &self,
        request: CreateServerGroup,
    ) -> BoxFuture<'_, Result<ServerGroup, DeployError>>;
    fn update_server_group(
        &self,
        name: String,
        update: ServerGroupUpdate,
    ) -> BoxFuture<'_, Result<ServerGroup, DeployError>>;
    /// The group's requests measured by the load balancer within `window`.
    fn samples(
        &self,
        name: String,
        window: std::time::Duration,
    ) -> BoxFuture<'_, Result<Vec<crate::analysis::Measurement>, DeployError>>;
    /// Out of rotation, drained and stopped; kept in the history.
    fn destroy_server_group(&self, name: String)
    -> BoxFuture<'_, Result<ServerGroup, DeployError>>;
}
