//! Reading part of the deploy model: a page of cluster summaries, and one
//! cluster's groups. With a thousand server groups a whole [`Snapshot`]
//! (every group with its instances and figures) is what costs, so the
//! cluster list and a cluster's page ask a provider for only what they show.
//! One algorithm builds a page, whoever holds the groups: the data plane
//! over its desired state, or [`Snapshot::cluster_page`] for a provider
//! that only has a snapshot.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ServerGroup, ServerGroupStatus, Snapshot};

/// Which clusters a listing holds: those with a server group (live or
/// destroyed), by name, `q` found in the cluster's or its application's
/// name (case-insensitive), after the cluster named `after`, at most `limit`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// A cluster in a list: its live groups by name (oldest first), the enabled
/// ones, and its instances' health.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSummary {
    pub name: String,
    pub application: Option<String>,
    pub server_groups: Vec<String>,
    pub enabled: Vec<String>,
    pub instances: usize,
    pub healthy: usize,
}

/// A page of clusters, `total` counting every cluster the query matched.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPage {
    pub clusters: Vec<ClusterSummary>,
    pub total: usize,
    /// The `after` that reads the next page, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The instances of a group and how many of them are healthy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstanceCounts {
    pub instances: usize,
    pub healthy: usize,
}

impl ClusterQuery {
    /// A page of the clusters of `groups`. `counts` is asked only for the
    /// live groups of the clusters on the page, so a provider computes
    /// instance health for what is shown, not for every group it holds.
    pub fn page<'a>(
        &self,
        groups: impl IntoIterator<Item = &'a ServerGroup>,
        mut counts: impl FnMut(&ServerGroup) -> InstanceCounts,
    ) -> ClusterPage {
        let mut clusters: BTreeMap<&str, Vec<&ServerGroup>> = BTreeMap::new();
        for group in groups {
            clusters.entry(&group.cluster).or_default().push(group);
        }
        let needle = self.q.as_deref().unwrap_or("").to_lowercase();
        let matching: Vec<(&str, Vec<&ServerGroup>)> = clusters
            .into_iter()
            .filter(|(name, groups)| {
                needle.is_empty()
                    || name.to_lowercase().contains(&needle)
                    || groups
                        .iter()
                        .any(|g| g.application.to_lowercase().contains(&needle))
            })
            .collect();
        let total = matching.len();
        let limit = self.limit.unwrap_or(usize::MAX);
        let mut after_page = matching
            .into_iter()
            .filter(|(name, _)| self.after.as_deref().is_none_or(|after| *name > after));
        let page: Vec<(&str, Vec<&ServerGroup>)> = after_page.by_ref().take(limit).collect();
        let next = (page.len() == limit && after_page.next().is_some())
            .then(|| page.last().map(|(name, _)| (*name).to_owned()))
            .flatten();
        let clusters = page
            .into_iter()
            .map(|(name, groups)| summary(name, groups, &mut counts))
            .collect();
        ClusterPage {
            clusters,
            total,
            next,
        }
    }
}

fn summary(
    name: &str,
    mut groups: Vec<&ServerGroup>,
    counts: &mut impl FnMut(&ServerGroup) -> InstanceCounts,
) -> ClusterSummary {
    groups.retain(|g| g.is_live());
    groups.sort_by_key(|g| g.version);
    let mut instances = 0;
    let mut healthy = 0;
    for group in &groups {
        let InstanceCounts {
            instances: all,
            healthy: up,
        } = counts(group);
        instances += all;
        healthy += up;
    }
    ClusterSummary {
        name: name.to_owned(),
        application: groups.first().map(|g| g.application.clone()),
        server_groups: groups.iter().map(|g| g.name.clone()).collect(),
        enabled: groups
            .iter()
            .filter(|g| g.enabled)
            .map(|g| g.name.clone())
            .collect(),
        instances,
        healthy,
    }
}

impl ClusterPage {
    /// Several providers' pages of one query as one page: the clusters in
    /// name order, one summary per name (a cluster whose groups two
    /// providers run is added up), cut at the query's limit.
    pub fn merge(query: &ClusterQuery, pages: Vec<ClusterPage>) -> ClusterPage {
        let mut more = false;
        let mut total = 0;
        let mut by_name: BTreeMap<String, ClusterSummary> = BTreeMap::new();
        for page in pages {
            more |= page.next.is_some();
            total += page.total;
            for cluster in page.clusters {
                match by_name.get_mut(&cluster.name) {
                    Some(seen) => {
                        total -= 1;
                        seen.application = seen.application.take().or(cluster.application);
                        seen.server_groups.extend(cluster.server_groups);
                        seen.enabled.extend(cluster.enabled);
                        seen.instances += cluster.instances;
                        seen.healthy += cluster.healthy;
                    }
                    None => {
                        by_name.insert(cluster.name.clone(), cluster);
                    }
                }
            }
        }
        let limit = query.limit.unwrap_or(usize::MAX);
        let overflow = by_name.len() > limit;
        let clusters: Vec<ClusterSummary> = by_name.into_values().take(limit).collect();
        let next = ((more || overflow) && clusters.len() == limit)
            .then(|| clusters.last().map(|c| c.name.clone()))
            .flatten();
        ClusterPage {
            clusters,
            total,
            next,
        }
    }
}

impl Snapshot {
    /// Adds another provider's answer to this one.
    pub fn extend(&mut self, other: Snapshot) {
        self.applications.extend(other.applications);
        self.load_balancers.extend(other.load_balancers);
        self.server_groups.extend(other.server_groups);
    }

    /// A page of this snapshot's clusters.
    pub fn cluster_page(&self, query: &ClusterQuery) -> ClusterPage {
        let statuses: BTreeMap<&str, &ServerGroupStatus> = self
            .server_groups
            .iter()
            .map(|g| (g.group.name.as_str(), g))
            .collect();
        query.page(self.server_groups.iter().map(|g| &g.group), |group| {
            statuses
                .get(group.name.as_str())
                .map(|status| InstanceCounts {
                    instances: status.instances.len(),
                    healthy: status.healthy_instances(),
                })
                .unwrap_or_default()
        })
    }

    /// Only what a cluster's page shows: the cluster's groups, live and
    /// destroyed, and the load balancers with a rule routing to it.
    pub fn only_cluster(mut self, cluster: &str) -> Snapshot {
        self.server_groups.retain(|g| g.group.cluster == cluster);
        self.load_balancers
            .retain(|lb| lb.load_balancer.rules.iter().any(|r| r.cluster == cluster));
        self
    }
}
