//! [`Fleet`]: the hosts of `hosts:` as the server uses them. It keeps one
//! SSH connection per host (opened on first use, opened again when the
//! host's spec changes or the connection dies) and answers the use cases
//! of `gantry host …` and of the `ssh` provider.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use gantry_config::Host;
use gantry_secrets::SecretStore;
use gantry_store::{Millis, Store, Upsert};
use gantry_wire::hosts as wire;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use crate::agent::client;
use crate::agent::protocol::{AgentRequest, AgentStatus};
use crate::error::FleetError;
use crate::ssh::SshConnection;

/// A host as stored: its spec, and whether it is drained.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetHost {
    pub spec: Host,
    pub drained: bool,
}

pub struct Fleet {
    store: Store,
    secrets: SecretStore,
    /// The binary bootstrap installs on hosts (the running one).
    binary: PathBuf,
    binary_sha256: tokio::sync::OnceCell<String>,
    /// One lock per host: connecting happens once at a time per host.
    connections: Mutex<HashMap<String, Arc<Mutex<Option<Cached>>>>>,
}

struct Cached {
    spec: Host,
    connection: Arc<SshConnection>,
}

impl Fleet {
    pub fn new(store: Store, secrets: SecretStore, binary: PathBuf) -> Fleet {
        Fleet {
            store,
            secrets,
            binary,
            binary_sha256: tokio::sync::OnceCell::new(),
            connections: Mutex::new(HashMap::new()),
        }
    }

    /// Stores the hosts of an applied file, and says what became of each.
    pub async fn apply(
        &self,
        hosts: &[Host],
        now: Millis,
    ) -> Result<Vec<(String, Upsert)>, FleetError> {
        let mut applied = Vec::new();
        for host in hosts {
            let spec = serde_json::to_value(host).map_err(|e| {
                FleetError::Invalid(format!("cannot encode host {:?}: {e}", host.name))
            })?;
            let result = self.store.upsert_host(&host.name, &spec, now).await?;
            applied.push((host.name.clone(), result));
        }
        Ok(applied)
    }

    pub async fn hosts(&self) -> Result<Vec<FleetHost>, FleetError> {
        self.store
            .hosts()
            .await?
            .into_iter()
            .map(|record| {
                let spec: Host = serde_json::from_value(record.spec).map_err(|e| {
                    FleetError::Invalid(format!("stored host {:?} is unreadable: {e}", record.name))
                })?;
                Ok(FleetHost {
                    spec,
                    drained: record.drained_at.is_some(),
                })
            })
            .collect()
    }

    pub async fn host(&self, name: &str) -> Result<FleetHost, FleetError> {
        self.hosts()
            .await?
            .into_iter()
            .find(|h| h.spec.name == name)
            .ok_or_else(|| FleetError::UnknownHost(name.to_owned()))
    }

    /// Marks a host unschedulable (or schedulable again).
    pub async fn set_drained(
        &self,
        name: &str,
        drained: bool,
        now: Millis,
    ) -> Result<(), FleetError> {
        let drained_at = drained.then_some(now);
        if !self.store.set_host_drained(name, drained_at).await? {
            return Err(FleetError::UnknownHost(name.to_owned()));
        }
        Ok(())
    }

    /// The value of secret `name` of the server's store.
    pub(crate) async fn secret(&self, name: &str) -> Result<Option<String>, FleetError> {
        Ok(self.secrets.get(name).await?)
    }

    /// The host's SSH connection, opened if needed.
    pub async fn connection(&self, host: &Host) -> Result<Arc<SshConnection>, FleetError> {
        let slot = self
            .connections
            .lock()
            .await
            .entry(host.name.clone())
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some(cached) = slot.as_ref()
            && cached.spec == *host
        {
            return Ok(cached.connection.clone());
        }
        let key = self
            .secrets
            .get(&host.key)
            .await?
            .ok_or_else(|| FleetError::MissingKey {
                host: host.name.clone(),
                secret: host.key.clone(),
            })?;
        let connection = Arc::new(SshConnection::connect(host, &key).await?);
        *slot = Some(Cached {
            spec: host.clone(),
            connection: connection.clone(),
        });
        Ok(connection)
    }

    /// Forgets the host's connection (it failed); the next use opens one.
    async fn forget(&self, host: &str) {
        let slot = self.connections.lock().await.get(host).cloned();
        if let Some(slot) = slot {
            slot.lock().await.take();
        }
    }

    /// Sends a request to the host's agent. A connection that turns out
    /// dead is opened again once before the host is called unreachable.
    pub async fn agent<T: DeserializeOwned>(
        &self,
        host: &Host,
        request: &AgentRequest,
    ) -> Result<T, FleetError> {
        let connection = self.connection(host).await?;
        match client::call(&connection, request).await {
            Err(error) if error.is_unreachable() => {
                self.forget(&host.name).await;
                let connection = self.connection(host).await?;
                let answer = client::call(&connection, request).await;
                if answer.as_ref().is_err_and(FleetError::is_unreachable) {
                    self.forget(&host.name).await;
                }
                answer
            }
            answer => answer,
        }
    }

    pub async fn agent_status(&self, host: &Host) -> Result<AgentStatus, FleetError> {
        self.agent(host, &AgentRequest::Status).await
    }

    /// The host as `gantry host show` prints it: asked now.
    pub async fn view(&self, host: &FleetHost) -> wire::Host {
        let status = self.agent_status(&host.spec).await;
        let spec = &host.spec;
        let (reachable, error, agent) = match status {
            Ok(status) => (true, None, Some(agent_view(status))),
            Err(error) => (false, Some(error.to_string()), None),
        };
        wire::Host {
            name: spec.name.clone(),
            address: spec.address.clone(),
            port: spec.port,
            user: spec.user.clone(),
            labels: spec.labels.clone(),
            drained: host.drained,
            reachable,
            error,
            agent,
        }
    }

    /// Every host's view, asked in parallel.
    pub async fn views(&self) -> Result<Vec<wire::Host>, FleetError> {
        let hosts = self.hosts().await?;
        Ok(futures::future::join_all(hosts.iter().map(|h| self.view(h))).await)
    }

    /// Installs this binary as the host's agent and starts it.
    pub async fn bootstrap(&self, name: &str) -> Result<wire::Bootstrapped, FleetError> {
        let host = self.host(name).await?;
        let sha256 = self
            .binary_sha256
            .get_or_try_init(|| async {
                let binary = self.binary.clone();
                tokio::task::spawn_blocking(move || crate::bootstrap::file_sha256(&binary))
                    .await
                    .map_err(|e| FleetError::Invalid(format!("hashing the binary: {e}")))?
            })
            .await?;
        let connection = self.connection(&host.spec).await?;
        crate::bootstrap::bootstrap(&connection, &self.binary, sha256).await
    }
}

fn agent_view(status: AgentStatus) -> wire::Agent {
    wire::Agent {
        version: status.version,
        pid: status.pid,
        rss_kib: status.rss_kib,
        private_kib: status.private_kib,
        load: status.load,
        instances: status
            .instances
            .into_iter()
            .map(|i| wire::HostInstance {
                id: i.id,
                group: i.group,
                port: i.port,
                pid: i.pid,
                state: i.state,
                restarts: i.restarts,
            })
            .collect(),
    }
}
