//! The other partial reads of the deploy model, beside the cluster list
//! (`clusters.rs`): what the applications list, the load balancers list and
//! `/metrics` show, each without every group's spec and instances. A
//! provider that holds many groups answers them itself; the `Snapshot`
//! methods here are the answers of one that has only a snapshot.

#[cfg(test)]
mod tests;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{Application, GroupStatsSnapshotView, ServerGroup, Snapshot};

/// The applications list: the declared applications, and which cluster
/// each group (live or destroyed) belongs to, once per pair, in the order
/// the groups were created.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationIndex {
    pub applications: Vec<Application>,
    pub clusters: Vec<ClusterOf>,
}

/// A cluster and the application it belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterOf {
    pub application: String,
    pub cluster: String,
}

/// A live group's figures as `/metrics` shows them: no spec, no instance
/// but their counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupFigures {
    pub name: String,
    pub cluster: String,
    #[serde(default)]
    pub stats: Option<GroupStatsSnapshotView>,
    pub instances: usize,
    pub healthy: usize,
}

impl ApplicationIndex {
    /// The index of `groups` (each pair once, first seen first).
    pub fn of<'a>(
        applications: Vec<Application>,
        groups: impl IntoIterator<Item = &'a ServerGroup>,
    ) -> ApplicationIndex {
        let mut seen = HashSet::new();
        let clusters = groups
            .into_iter()
            .filter(|g| seen.insert((g.application.as_str(), g.cluster.as_str())))
            .map(|g| ClusterOf {
                application: g.application.clone(),
                cluster: g.cluster.clone(),
            })
            .collect();
        ApplicationIndex {
            applications,
            clusters,
        }
    }

    /// Adds another provider's answer to this one.
    pub fn extend(&mut self, other: ApplicationIndex) {
        self.applications.extend(other.applications);
        self.clusters.extend(other.clusters);
    }
}

impl Snapshot {
    /// What the applications list shows of this snapshot.
    pub fn application_index(&self) -> ApplicationIndex {
        ApplicationIndex::of(
            self.applications.clone(),
            self.server_groups.iter().map(|g| &g.group),
        )
    }

    /// The figures of the live groups, in the snapshot's order.
    pub fn figures(&self) -> Vec<GroupFigures> {
        self.server_groups
            .iter()
            .filter(|g| g.group.is_live())
            .map(|g| GroupFigures {
                name: g.group.name.clone(),
                cluster: g.group.cluster.clone(),
                stats: g.stats.clone(),
                instances: g.instances.len(),
                healthy: g.healthy_instances(),
            })
            .collect()
    }

    /// Only what the load balancers list shows: the load balancers and the
    /// live groups of the clusters one of them routes to.
    pub fn only_routed(mut self) -> Snapshot {
        let routed = self.routed_clusters();
        self.server_groups
            .retain(|g| g.group.is_live() && routed.contains(g.group.cluster.as_str()));
        self.applications.clear();
        self
    }

    /// The clusters a rule of one of the load balancers routes to.
    pub fn routed_clusters(&self) -> HashSet<String> {
        self.load_balancers
            .iter()
            .flat_map(|lb| lb.load_balancer.rules.iter().map(|r| r.cluster.clone()))
            .collect()
    }
}
