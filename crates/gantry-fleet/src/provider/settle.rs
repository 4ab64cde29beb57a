//! Settling the journal's intents with the hosts: what a server killed
//! between asking an agent and recording the answer left undecided.
//!
//! An instance the provider was about to start is adopted when its host
//! runs it, its group is live, below its size and may still use that host
//! (it joins the data plane's targets); otherwise it is stopped. An
//! instance it was about to stop leaves the targets (draining) and is
//! stopped. An intent whose host does not answer waits for the next watch.

use gantry_dataplane::protocol::RemoteTarget;
use gantry_deploy::DeployError;
use gantry_deploy::model::ServerGroupStatus;

use super::journal::{Action, Intent};
use super::{SshProvider, deploy_error, placement, resolve, target_of};
use crate::agent::protocol::AgentRequest;
use crate::fleet::FleetHost;

impl SshProvider {
    /// Settles the pending intents (those of `group` only, when given).
    /// The caller holds `changes`.
    pub(super) async fn settle_journal(&self, group: Option<&str>) -> Result<(), DeployError> {
        let pending: Vec<Intent> = self
            .journal
            .pending()
            .into_iter()
            .filter(|i| group.is_none_or(|g| i.group == g))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let hosts = self.fleet.hosts().await.map_err(deploy_error)?;
        for intent in pending {
            let Some(host) = hosts.iter().find(|h| h.spec.name == intent.host) else {
                // The host left `hosts:`: nothing can reach it any more.
                tracing::warn!(host = %intent.host, instance = %intent.id,
                    "fleet intent dropped: the host is no longer defined");
                self.journal.settle(&intent).map_err(deploy_error)?;
                continue;
            };
            match self.settle_one(host, &intent).await {
                Ok(outcome) => {
                    tracing::info!(host = %intent.host, instance = %intent.id,
                        action = ?intent.action, outcome, "fleet intent settled");
                    self.journal.settle(&intent).map_err(deploy_error)?;
                }
                Err(error) => {
                    tracing::debug!(host = %intent.host, instance = %intent.id, %error,
                        "fleet intent left for later");
                }
            }
        }
        Ok(())
    }

    async fn settle_one(&self, host: &FleetHost, intent: &Intent) -> Result<&'static str, String> {
        let status = self
            .fleet
            .agent_status(&host.spec)
            .await
            .map_err(|e| e.to_string())?;
        let group = self
            .routing
            .routed_snapshot(Self::NAME)
            .await
            .map_err(|e| e.to_string())?
            .server_groups
            .into_iter()
            .find(|g| g.group.name == intent.group);
        let targets: Vec<RemoteTarget> = group
            .as_ref()
            .map(|g| g.instances.iter().filter_map(target_of).collect())
            .unwrap_or_default();
        let routed = targets
            .iter()
            .any(|t| t.id == intent.id && t.host == intent.host);
        let running = status.instances.iter().find(|i| i.id == intent.id);
        match intent.action {
            Action::Start if routed => Ok("already routed"),
            Action::Start => {
                if let (Some(instance), Some(group)) = (running, &group)
                    && adoptable(group, host, &targets)
                {
                    let address = resolve(&host.spec.address, instance.port)
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut adopted = targets.clone();
                    adopted.push(RemoteTarget {
                        id: intent.id.clone(),
                        host: intent.host.clone(),
                        address,
                    });
                    self.routing
                        .set_targets(intent.group.clone(), adopted)
                        .await
                        .map_err(|e| e.to_string())?;
                    return Ok("adopted");
                }
                if running.is_some() {
                    self.stop_on_agent(host, &intent.id).await?;
                    return Ok("removed");
                }
                Ok("never started")
            }
            Action::Stop => {
                // A destroyed group is routed no more: only live ones have
                // targets to leave.
                if routed && group.as_ref().is_some_and(|g| g.group.is_live()) {
                    let rest = targets
                        .into_iter()
                        .filter(|t| !(t.id == intent.id && t.host == intent.host))
                        .collect();
                    self.routing
                        .set_targets(intent.group.clone(), rest)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                self.stop_on_agent(host, &intent.id).await?;
                Ok("stopped")
            }
        }
    }

    pub(super) async fn stop_on_agent(&self, host: &FleetHost, id: &str) -> Result<(), String> {
        let request = AgentRequest::Stop { id: id.to_owned() };
        self.fleet
            .agent::<serde_json::Value>(&host.spec, &request)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Whether an instance found running on `host` may join its group: the
/// group is live, below its size, and may still place on that host (its
/// labels, not drained, below `maxPerHost`).
fn adoptable(group: &ServerGroupStatus, host: &FleetHost, routed: &[RemoteTarget]) -> bool {
    let placement = group.group.spec.placement.clone().unwrap_or_default();
    let on_host = routed.iter().filter(|t| t.host == host.spec.name).count();
    group.group.is_live()
        && routed.len() < group.group.size as usize
        && placement::eligible(host, &placement)
        && placement
            .max_per_host
            .is_none_or(|max| on_host < max as usize)
}
