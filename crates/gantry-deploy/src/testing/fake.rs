//! `FakeProvider`: a provider that keeps server groups in memory and runs
//! nothing. Its instances are healthy as soon as they exist (unless a
//! cluster is marked as never healthy), its load balancer measures what a
//! test tells it to, and it records every call, so that a strategy's
//! phases can be checked in milliseconds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};

use crate::analysis::Measurement;
use crate::error::DeployError;
use crate::model::{
    Application, Instance, LoadBalancer, ServerGroup, ServerGroupStatus, Snapshot,
    server_group_name,
};
use crate::providers::{CreateServerGroup, Instances, Provider, Traffic, TrafficUpdate};
use crate::strategies::{Journal, People, RolloutRecord};

/// What was asked of the fake, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Create {
        name: String,
        size: u32,
    },
    Resize {
        name: String,
        size: u32,
    },
    Traffic {
        name: String,
        enabled: Option<bool>,
        weight: Option<u32>,
    },
    Destroy {
        name: String,
    },
}

#[derive(Default)]
struct State {
    groups: Vec<ServerGroup>,
    calls: Vec<Call>,
    never_healthy: BTreeSet<String>,
    samples: BTreeMap<String, Vec<Measurement>>,
}

/// An in-memory provider for tests; see the module's documentation.
#[derive(Clone, Default)]
pub struct FakeProvider {
    state: Arc<Mutex<State>>,
}

impl FakeProvider {
    pub const NAME: &'static str = "fake";

    pub fn new() -> Self {
        Self::default()
    }

    /// The fake as the registry holds it.
    pub fn provider(&self) -> Provider {
        Provider::from_both(Self::NAME, Arc::new(self.clone()))
    }

    /// A live group of `cluster` at `size`, enabled at full weight: what a
    /// cluster looks like before a deploy.
    pub fn running(&self, application: &str, cluster: &str, size: u32) -> String {
        let mut state = self.lock();
        let version = next_version(&state.groups, cluster);
        let name = server_group_name(cluster, version);
        state.groups.push(ServerGroup {
            name: name.clone(),
            application: application.to_owned(),
            cluster: cluster.to_owned(),
            version,
            request_id: format!("seed-{name}"),
            spec: Default::default(),
            size,
            enabled: true,
            weight: 100,
            created_at: 0,
            destroyed_at: None,
            provider: None,
        });
        name
    }

    /// New groups of `cluster` never get a healthy instance.
    pub fn never_healthy(&self, cluster: &str) {
        self.lock().never_healthy.insert(cluster.to_owned());
    }

    /// What the load balancer measured for `group`.
    pub fn set_samples(&self, group: &str, samples: Vec<Measurement>) {
        self.lock().samples.insert(group.to_owned(), samples);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// A group as it is now (live or destroyed).
    pub fn group(&self, name: &str) -> Option<ServerGroup> {
        self.lock().groups.iter().find(|g| g.name == name).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn change(
        &self,
        name: &str,
        call: Call,
        change: impl FnOnce(&mut ServerGroup),
    ) -> Result<ServerGroup, DeployError> {
        let mut state = self.lock();
        state.calls.push(call);
        let group = state
            .groups
            .iter_mut()
            .find(|g| g.name == name && g.is_live())
            .ok_or_else(|| {
                DeployError::NotFound(format!("server group {name:?} does not exist"))
            })?;
        change(group);
        Ok(group.clone())
    }
}

fn next_version(groups: &[ServerGroup], cluster: &str) -> u32 {
    groups
        .iter()
        .filter(|g| g.cluster == cluster)
        .map(|g| g.version + 1)
        .max()
        .unwrap_or(0)
}

impl Instances for FakeProvider {
    fn snapshot(&self) -> BoxFuture<'_, Result<Snapshot, DeployError>> {
        let state = self.lock();
        let server_groups = state
            .groups
            .iter()
            .map(|group| {
                let healthy = !state.never_healthy.contains(&group.cluster);
                let size = if group.is_live() { group.size } else { 0 };
                ServerGroupStatus {
                    group: group.clone(),
                    instances: (0..size)
                        .map(|i| Instance {
                            id: format!("{}-{i}", group.name),
                            state: "running".to_owned(),
                            healthy,
                            ..Default::default()
                        })
                        .collect(),
                    stats: None,
                }
            })
            .collect();
        let snapshot = Snapshot {
            server_groups,
            ..Default::default()
        };
        async move { Ok(snapshot) }.boxed()
    }

    fn create_server_group(
        &self,
        request: CreateServerGroup,
    ) -> BoxFuture<'_, Result<ServerGroup, DeployError>> {
        let mut state = self.lock();
        let group = match state
            .groups
            .iter()
            .find(|g| g.request_id == request.request_id)
        {
            // Idempotent, as the data plane: a resumed deploy finds its group.
            Some(existing) => existing.clone(),
            None => {
                let version = next_version(&state.groups, &request.cluster);
                let group = ServerGroup {
                    name: server_group_name(&request.cluster, version),
                    application: request.application,
                    cluster: request.cluster,
                    version,
                    request_id: request.request_id,
                    spec: request.spec,
                    size: request.size,
                    enabled: false,
                    weight: 0,
                    created_at: 0,
                    destroyed_at: None,
                    provider: None,
                };
                state.groups.push(group.clone());
                group
            }
        };
        state.calls.push(Call::Create {
            name: group.name.clone(),
            size: group.size,
        });
        async move { Ok(group) }.boxed()
    }

    fn resize_server_group(
        &self,
        name: String,
        size: u32,
    ) -> BoxFuture<'_, Result<ServerGroup, DeployError>> {
        let call = Call::Resize {
            name: name.clone(),
            size,
        };
        let result = self.change(&name, call, |g| g.size = size);
        async move { result }.boxed()
    }

    fn destroy_server_group(
        &self,
        name: String,
    ) -> BoxFuture<'_, Result<ServerGroup, DeployError>> {
        let call = Call::Destroy { name: name.clone() };
        let result = self.change(&name, call, |g| {
            g.enabled = false;
            g.destroyed_at = Some(1);
        });
        async move { result }.boxed()
    }

    fn instance_output_hint(&self, group: &str) -> String {
        format!("the fake provider keeps no output of {group}")
    }
}

impl Traffic for FakeProvider {
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
        let call = Call::Traffic {
            name: name.clone(),
            enabled: traffic.enabled,
            weight: traffic.weight,
        };
        let result = self.change(&name, call, |g| {
            if let Some(enabled) = traffic.enabled {
                g.enabled = enabled;
            }
            if let Some(weight) = traffic.weight {
                g.weight = weight;
            }
        });
        async move { result }.boxed()
    }

    fn samples(
        &self,
        name: String,
        _window: Duration,
    ) -> BoxFuture<'_, Result<Vec<Measurement>, DeployError>> {
        let samples = self.lock().samples.get(&name).cloned().unwrap_or_default();
        async move { Ok(samples) }.boxed()
    }
}

/// A journal kept in memory; what it holds survives a "restart" when the
/// same value is passed to the next deploy.
#[derive(Default)]
pub struct MemoryJournal {
    record: Mutex<RolloutRecord>,
}

impl MemoryJournal {
    pub fn at(record: RolloutRecord) -> Self {
        MemoryJournal {
            record: Mutex::new(record),
        }
    }

    pub fn record(&self) -> RolloutRecord {
        self.record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Journal for MemoryJournal {
    fn load(&self) -> BoxFuture<'_, Result<RolloutRecord, DeployError>> {
        let record = self.record();
        async move { Ok(record) }.boxed()
    }

    fn save(&self, record: RolloutRecord) -> BoxFuture<'_, Result<(), DeployError>> {
        *self.record.lock().unwrap_or_else(|e| e.into_inner()) = record;
        async { Ok(()) }.boxed()
    }
}

/// People who promote at once and judge with a fixed answer.
pub struct NoPeople {
    /// The judgment at every step: approve (`true`) or reject.
    pub approve: bool,
}

impl People for NoPeople {
    fn promotion<'a>(&'a self, _why: &'a str) -> BoxFuture<'a, ()> {
        async {}.boxed()
    }

    fn judgment<'a>(
        &'a self,
        percent: u32,
        _why: &'a str,
    ) -> BoxFuture<'a, Result<(), DeployError>> {
        let approve = self.approve;
        async move {
            if approve {
                Ok(())
            } else {
                Err(DeployError::Rejected(format!("rejected at {percent}%")))
            }
        }
        .boxed()
    }
}
