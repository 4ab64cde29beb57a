//! The control plane's façade: what engine stages and API handlers call.
//! It keeps nothing itself; each step reads the provider's state again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::error::DeployError;
use crate::model::{
    Application, ApplicationIndex, ClusterPage, ClusterQuery, GroupFigures, LoadBalancer,
    ServerGroup, ServerGroupSpec, ServerGroupStatus, Snapshot,
};
use crate::providers::{
    CreateServerGroup, Provider, ProviderRegistry, ServerGroupUpdate, TrafficUpdate,
};
use crate::strategies::{self, Journal, Rollout, Strategy};

/// Progress notes for the stage log.
pub type Progress<'a> = &'a (dyn Fn(String) + Send + Sync);

/// The ceiling of a server group's size when the server sets none.
pub const DEFAULT_MAX_SIZE: u32 = 100;

/// The weight of an enabled group that takes all of its share of traffic:
/// what "enable" means wherever a group is enabled.
pub const FULL_WEIGHT: u32 = 100;

#[derive(Clone)]
pub struct DeployController {
    providers: Arc<ProviderRegistry>,
    limits: Limits,
}

/// What this server allows a deploy or a resize to ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most instances a server group may have (`gantry serve
    /// --max-deploy-size`): a typo of a size must not start thousands of
    /// processes on the machine.
    pub max_size: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_size: DEFAULT_MAX_SIZE,
        }
    }
}

/// How a server group is disabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DisableConfig {
    /// Also when it is the last enabled group of its cluster, whose
    /// traffic then has nowhere to go.
    pub force: bool,
}

/// One deploy: a new server group of `cluster` and how it replaces the others.
#[derive(Clone, Debug)]
pub struct DeployRequest {
    /// The registered provider the cluster runs on (`provider:`).
    pub provider: String,
    /// Recorded by the caller before the first attempt; a resumed deploy
    /// passes the same id and finds the group it created.
    pub request_id: String,
    pub application: String,
    pub cluster: String,
    pub spec: ServerGroupSpec,
    pub size: u32,
    /// Built from the stage's spec by [`strategies::for_spec`].
    pub strategy: Arc<dyn Strategy>,
    /// How long the new group has to become healthy.
    pub health_timeout: Duration,
    /// The enabled groups of the cluster when the deploy started (recorded
    /// with the request id, so a resumed deploy acts on the same groups).
    pub previous: Vec<String>,
}

impl std::fmt::Debug for DeployController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployController")
            .field("providers", &self.providers.names())
            .field("limits", &self.limits)
            .finish()
    }
}

impl DeployController {
    pub fn new(providers: ProviderRegistry) -> DeployController {
        DeployController {
            providers: Arc::new(providers),
            limits: Limits::default(),
        }
    }

    /// The same controller with other limits.
    pub fn with_limits(self, limits: Limits) -> DeployController {
        DeployController { limits, ..self }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Refuses a size above the ceiling, naming it and where it is set.
    pub fn check_size(&self, what: &str, size: u32) -> Result<(), DeployError> {
        let max = self.limits.max_size;
        if size > max {
            return Err(DeployError::Invalid(format!(
                "{what}: size {size} is above this server's ceiling of {max} instances per server group \
                 (raise it with `gantry serve --max-deploy-size N` or GANTRY_MAX_DEPLOY_SIZE)"
            )));
        }
        Ok(())
    }

    pub fn providers(&self) -> &ProviderRegistry {
        &self.providers
    }

    /// What every provider knows, as one answer.
    pub async fn snapshot(&self) -> Result<Snapshot, DeployError> {
        let mut all = Snapshot::default();
        for provider in self.providers.iter() {
            all.extend(provider.instances.snapshot().await?);
        }
        Ok(all)
    }

    /// A page of the clusters every provider runs, without reading any
    /// provider's whole snapshot (the cluster list's cost with many groups).
    pub async fn clusters(&self, query: &ClusterQuery) -> Result<ClusterPage, DeployError> {
        let mut pages = Vec::new();
        for provider in self.providers.iter() {
            pages.push(provider.instances.clusters(query).await?);
        }
        Ok(ClusterPage::merge(query, pages))
    }

    /// What every provider knows of one cluster, as one snapshot holding
    /// only its groups and the load balancers routing to it.
    pub async fn cluster(&self, name: &str) -> Result<Snapshot, DeployError> {
        let mut all = Snapshot::default();
        for provider in self.providers.iter() {
            all.extend(provider.instances.cluster(name).await?);
        }
        Ok(all)
    }

    /// The applications list of every provider, without their groups.
    pub async fn applications(&self) -> Result<ApplicationIndex, DeployError> {
        let mut all = ApplicationIndex::default();
        for provider in self.providers.iter() {
            all.extend(provider.instances.applications().await?);
        }
        Ok(all)
    }

    /// One group with its instances and figures, asking only for it.
    pub async fn group(&self, name: &str) -> Result<Option<ServerGroupStatus>, DeployError> {
        for provider in self.providers.iter() {
            if let Some(group) = provider.instances.group(name).await? {
                return Ok(Some(group));
            }
        }
        Ok(None)
    }

    /// The load balancers and the live groups of the clusters they route
    /// to, whichever provider runs them.
    pub async fn load_balancers(&self) -> Result<Snapshot, DeployError> {
        let mut all = Snapshot::default();
        for provider in self.providers.iter() {
            all.extend(provider.instances.routed().await?);
        }
        Ok(all.only_routed())
    }

    /// The figures of every live group (`/metrics`).
    pub async fn figures(&self) -> Result<Vec<GroupFigures>, DeployError> {
        let mut all = Vec::new();
        for provider in self.providers.iter() {
            all.extend(provider.instances.figures().await?);
        }
        Ok(all)
    }

    /// Hands the applications and load balancers to every provider: each
    /// serves the rules of the clusters it runs.
    pub async fn configure(
        &self,
        applications: Vec<Application>,
        load_balancers: Vec<LoadBalancer>,
    ) -> Result<(), DeployError> {
        for provider in self.providers.iter() {
            provider
                .traffic
                .configure(applications.clone(), load_balancers.clone())
                .await?;
        }
        Ok(())
    }

    /// The provider that runs server group `name`. With one provider
    /// registered (the usual case) it is that one, without asking it.
    async fn provider_of(&self, name: &str) -> Result<&Provider, DeployError> {
        let mut providers = self.providers.iter();
        if let (Some(only), None) = (providers.next(), providers.next()) {
            return Ok(only);
        }
        for provider in self.providers.iter() {
            if provider.instances.group(name).await?.is_some() {
                return Ok(provider);
            }
        }
        Err(DeployError::NotFound(format!(
            "server group {name:?} does not exist"
        )))
    }

    /// The names of the enabled live groups of a cluster, oldest first.
    pub async fn enabled_groups(&self, cluster: &str) -> Result<Vec<String>, DeployError> {
        Ok(self
            .cluster(cluster)
            .await?
            .cluster(cluster)
            .iter()
            .filter(|g| g.group.enabled)
            .map(|g| g.group.name.clone())
            .collect())
    }

    /// Creates the new group and applies the strategy. On failure the new
    /// group is removed and the older groups are as they were.
    /// `people` promote or judge a rollout that waits for them; `journal`
    /// keeps how far the rollout got, so that a resumed deploy goes on from
    /// there.
    pub async fn deploy(
        &self,
        request: &DeployRequest,
        cancel: &CancellationToken,
        people: &dyn strategies::People,
        journal: &dyn Journal,
        progress: Progress<'_>,
    ) -> Result<ServerGroup, DeployError> {
        if request.spec.command.is_none() && request.spec.image.is_none() {
            return Err(DeployError::Invalid(format!(
                "cluster {:?}: give a command or an image",
                request.cluster
            )));
        }
        self.check_size(&format!("cluster {:?}", request.cluster), request.size)?;
        let record = journal.load().await?;
        let strategy = &request.strategy;
        let provider = self.providers.get(&request.provider)?;
        let group = provider
            .instances
            .create_server_group(CreateServerGroup {
                request_id: request.request_id.clone(),
                application: request.application.clone(),
                cluster: request.cluster.clone(),
                spec: request.spec.clone(),
                size: strategy.initial_size(request.size),
            })
            .await?;
        if record.step > 0 {
            progress(format!(
                "server group {} resumed at step {}",
                group.name,
                record.step + 1
            ));
        } else {
            progress(format!("server group {} created", group.name));
        }
        let rollout = Rollout {
            controller: self,
            request,
            group: group.name.clone(),
            cancel,
            people,
            journal,
            record: std::sync::Mutex::new(record),
            progress,
        };
        let result = async {
            strategy.deploy(&rollout).await?;
            strategy.clean_up(&rollout).await
        }
        .await;
        if let Err(error) = result {
            progress(format!("deploy failed: {error}; restoring the cluster"));
            strategy.abort(&rollout).await;
            return Err(error);
        }
        Ok(group)
    }

    /// Changes a server group; a size above the ceiling is refused. The
    /// size goes to the provider's instances, the rest to its traffic.
    pub async fn update(
        &self,
        name: &str,
        update: ServerGroupUpdate,
    ) -> Result<ServerGroup, DeployError> {
        if let Some(size) = update.size {
            self.check_size(&format!("server group {name:?}"), size)?;
        }
        let provider = self.provider_of(name).await?;
        let traffic = TrafficUpdate {
            enabled: update.enabled,
            weight: update.weight,
        };
        let resized = match update.size {
            Some(size) => Some(
                provider
                    .instances
                    .resize_server_group(name.to_owned(), size)
                    .await?,
            ),
            None => None,
        };
        match (resized, traffic == TrafficUpdate::default()) {
            (Some(group), true) => Ok(group),
            _ => provider.traffic.set_traffic(name.to_owned(), traffic).await,
        }
    }

    /// Puts a server group in its load balancers' rotation at full weight.
    pub async fn enable(&self, name: &str) -> Result<ServerGroup, DeployError> {
        self.set_weight(name, FULL_WEIGHT).await
    }

    /// Enables a server group at `weight` among the enabled groups of its
    /// cluster.
    pub async fn set_weight(&self, name: &str, weight: u32) -> Result<ServerGroup, DeployError> {
        let traffic = TrafficUpdate {
            enabled: Some(true),
            weight: Some(weight),
        };
        self.set_traffic(name, traffic).await
    }

    /// Changes the weight of a group and leaves whether it is enabled as it is.
    pub async fn reweigh(&self, name: &str, weight: u32) -> Result<ServerGroup, DeployError> {
        let traffic = TrafficUpdate {
            weight: Some(weight),
            ..Default::default()
        };
        self.set_traffic(name, traffic).await
    }

    async fn set_traffic(
        &self,
        name: &str,
        traffic: TrafficUpdate,
    ) -> Result<ServerGroup, DeployError> {
        let provider = self.provider_of(name).await?;
        provider.traffic.set_traffic(name.to_owned(), traffic).await
    }

    /// Takes a server group out of its load balancers' rotation. Unless
    /// `config.force`, refuses when it is the last enabled group of its
    /// cluster: that would send the cluster's traffic to nothing.
    pub async fn disable(
        &self,
        name: &str,
        config: DisableConfig,
    ) -> Result<ServerGroup, DeployError> {
        if !config.force {
            let snapshot = self.snapshot().await?;
            let group = snapshot
                .group(name)
                .filter(|g| g.group.is_live())
                .ok_or_else(|| {
                    DeployError::NotFound(format!("server group {name:?} does not exist"))
                })?;
            let cluster = &group.group.cluster;
            let others_enabled = snapshot
                .cluster(cluster)
                .iter()
                .any(|g| g.group.enabled && g.group.name != name);
            if group.group.enabled && !others_enabled {
                return Err(DeployError::Invalid(format!(
                    "server group {name:?} is the last enabled server group of cluster {cluster:?}: \
                     disabling it leaves the cluster's traffic nowhere to go; to disable it anyway, \
                     pass --force (gantry servergroup disable), \"force\": true (API) or force: true (disableServerGroup stage)"
                )));
            }
        }
        let traffic = TrafficUpdate {
            enabled: Some(false),
            ..Default::default()
        };
        self.set_traffic(name, traffic).await
    }

    pub async fn samples(
        &self,
        name: &str,
        window: Duration,
    ) -> Result<Vec<crate::analysis::Measurement>, DeployError> {
        let provider = self.provider_of(name).await?;
        provider.traffic.samples(name.to_owned(), window).await
    }

    pub async fn destroy(&self, name: &str) -> Result<ServerGroup, DeployError> {
        let provider = self.provider_of(name).await?;
        provider
            .instances
            .destroy_server_group(name.to_owned())
            .await
    }

    /// Waits until `count` instances of `group` are healthy.
    pub async fn wait_healthy(
        &self,
        group: &str,
        count: usize,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<(), DeployError> {
        let deadline = Instant::now() + timeout;
        loop {
            let snapshot = self.snapshot().await?;
            let status = snapshot.group(group).ok_or_else(|| {
                DeployError::NotFound(format!("server group {group:?} does not exist"))
            })?;
            if status.healthy_instances() >= count {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let crashed: u32 = status.instances.iter().map(|i| i.restarts).sum();
                let hint = if crashed > 0 {
                    let output = self
                        .provider_of(group)
                        .await?
                        .instances
                        .instance_output_hint(group);
                    format!("; its instances exited {crashed} times ({output})")
                } else {
                    String::new()
                };
                return Err(DeployError::Failed(format!(
                    "server group {group} did not become healthy within {}s ({} of {count} instances healthy){hint}",
                    timeout.as_secs(),
                    status.healthy_instances()
                )));
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(DeployError::Canceled),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// Re-enables the previous group of the cluster at the current group's
    /// capacity, waits for it to be healthy, then disables the current one.
    pub async fn rollback(
        &self,
        cluster: &str,
        timeout: Duration,
        cancel: &CancellationToken,
        progress: Progress<'_>,
    ) -> Result<String, DeployError> {
        let (current, previous) = self.rollback_plan(cluster).await?;
        self.rollback_to(&current, &previous, timeout, cancel, progress)
            .await?;
        Ok(previous)
    }

    /// The current (newest enabled) group and the one before it.
    pub async fn rollback_plan(&self, cluster: &str) -> Result<(String, String), DeployError> {
        let snapshot = self.cluster(cluster).await?;
        let groups = snapshot.cluster(cluster);
        let current = groups
            .iter()
            .rev()
            .find(|g| g.group.enabled)
            .ok_or_else(|| {
                DeployError::Invalid(format!("cluster {cluster:?} has no enabled server group"))
            })?;
        let previous = groups
            .iter()
            .rev()
            .find(|g| g.group.version < current.group.version)
            .ok_or_else(|| {
                DeployError::Invalid(format!(
                    "cluster {cluster:?} has no server group older than {} to roll back to",
                    current.group.name
                ))
            })?;
        Ok((current.group.name.clone(), previous.group.name.clone()))
    }

    /// Idempotent: running it again after a restart converges.
    pub async fn rollback_to(
        &self,
        current: &str,
        previous: &str,
        timeout: Duration,
        cancel: &CancellationToken,
        progress: Progress<'_>,
    ) -> Result<(), DeployError> {
        let snapshot = self.snapshot().await?;
        let find = |name: &str| {
            snapshot
                .group(name)
                .filter(|g| g.group.is_live())
                .map(|g| g.group.clone())
                .ok_or_else(|| {
                    DeployError::NotFound(format!("server group {name:?} does not exist"))
                })
        };
        let (current, previous) = (find(current)?, find(previous)?);
        let cluster = &current.cluster;
        let size = current.size.max(previous.size);
        progress(format!(
            "rolling back {cluster}: {} → {}",
            current.name, previous.name
        ));
        self.update(
            &previous.name,
            ServerGroupUpdate {
                size: Some(size),
                ..Default::default()
            },
        )
        .await?;
        self.wait_healthy(&previous.name, size as usize, timeout, cancel)
            .await?;
        self.enable(&previous.name).await?;
        self.disable(&current.name, DisableConfig { force: true })
            .await?;
        progress(format!(
            "{} enabled, {} disabled",
            previous.name, current.name
        ));
        Ok(())
    }
}
