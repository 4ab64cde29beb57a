//! [`SshProvider::converge`]: the one routine that makes a group's
//! instances match its size on the hosts that answer, recording each start
//! and stop in the journal before the host's agent is asked.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use gantry_dataplane::protocol::RemoteTarget;
use gantry_deploy::DeployError;
use gantry_deploy::model::ServerGroup;

use super::journal::{Action, Intent};
use super::{SshProvider, deploy_error, intent, placement, target_of};
use crate::agent::protocol::AgentStatus;
use crate::error::FleetError;
use crate::fleet::FleetHost;

impl SshProvider {
    /// Makes the group's instances match its size on the hosts that
    /// answer, then gives the data plane the resulting targets (removed
    /// ones drain before their processes are stopped).
    pub async fn converge(&self, name: &str) -> Result<ServerGroup, DeployError> {
        let _one_at_a_time = self.changes.lock().await;
        self.settle_journal(Some(name)).await?;
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
        let (mut keep, rest): (Vec<RemoteTarget>, Vec<RemoteTarget>) = current
            .iter()
            .cloned()
            .partition(|t| usable(&t.host) && runs(&t.host, &t.id));
        // Still running on a host that answers but may no longer take the
        // group (drained, labels changed): it serves until its
        // replacements are healthy, so a drain never takes the group below
        // its size. What runs nowhere any more leaves at once.
        let (evicted, mut leave): (Vec<RemoteTarget>, Vec<RemoteTarget>) =
            rest.into_iter().partition(|t| runs(&t.host, &t.id));
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
            // Past every id routed or still pending on a host that did
            // not answer: an id names one instance on one host.
            let pending = self.journal.pending();
            let mut next_index = current
                .iter()
                .map(|t| &t.id)
                .chain(
                    pending
                        .iter()
                        .filter(|i| i.group == group.name)
                        .map(|i| &i.id),
                )
                .filter_map(|id| id.rsplit_once("-i")?.1.parse::<u32>().ok())
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
        let healthy = keep
            .iter()
            .filter(|t| {
                status
                    .instances
                    .iter()
                    .any(|i| i.id == t.id && i.host.as_deref() == Some(&t.host) && i.healthy)
            })
            .count();
        let mut routed = keep.clone();
        if healthy >= size {
            leave.extend(evicted);
        } else {
            if !evicted.is_empty() {
                tracing::info!(group = %name, healthy, size, evicted = evicted.len(),
                    "instances of hosts out of use serve until their replacements are healthy");
            }
            routed.extend(evicted);
        }
        let leaving: Vec<Intent> = leave
            .iter()
            .map(|t| intent(Action::Stop, t, &group.name))
            .collect();
        for stop in &leaving {
            self.journal.record(stop.clone()).map_err(deploy_error)?;
        }
        if routed != current {
            self.routing
                .set_targets(name.to_owned(), routed.clone())
                .await?;
            tracing::info!(group = %name, instances = routed.len(), "fleet group placed");
        }
        // Routed now: the starts are settled.
        for started in routed.iter().filter(|t| !current.contains(t)) {
            self.journal
                .settle(&intent(Action::Start, started, &group.name))
                .map_err(deploy_error)?;
        }
        for target in &leave {
            self.stop(&hosts, target, &group.name).await;
        }
        self.stop_strays(&hosts, &statuses, &group.name, &routed)
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

    /// Stops an instance on its host, recorded first; a host that does not
    /// answer keeps it until the watch settles the intent.
    async fn stop(&self, hosts: &[FleetHost], target: &RemoteTarget, group: &str) {
        let Some(host) = hosts.iter().find(|h| h.spec.name == target.host) else {
            return;
        };
        let stopping = intent(Action::Stop, target, group);
        if let Err(error) = self.journal.record(stopping.clone()) {
            tracing::error!(instance = %target.id, %error, "cannot record a fleet stop");
            return;
        }
        match self.stop_on_agent(host, &target.id).await {
            Ok(()) => {
                if let Err(error) = self.journal.settle(&stopping) {
                    tracing::error!(instance = %target.id, %error, "cannot settle a fleet stop");
                }
            }
            Err(error) => {
                tracing::warn!(instance = %target.id, %error, "cannot stop a fleet instance yet");
            }
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
                    self.stop(hosts, &stray, group).await;
                }
            }
        }
    }
}
