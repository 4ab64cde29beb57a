//! The reading requests that answer part of the state: a page of clusters
//! (`Request::Clusters`) and one provider's or one cluster's groups
//! (`Request::Groups`). Unlike
//! `Status` they copy no group they do not answer with, and ask the
//! instances and the load balancer's figures only of the groups they show.

use gantry_deploy::model::{
    ClusterPage, ClusterQuery, InstanceCounts, LoadBalancerStatus, ServerGroup, ServerGroupStatus,
    Snapshot,
};

use super::Dataplane;

/// Whose groups an answer holds.
#[derive(Clone, Copy, Debug)]
pub(super) enum Owner<'a> {
    /// Every group, whoever runs it (`Status`).
    Anyone,
    /// One provider's: `None` is the data plane's own groups, as the
    /// `local` provider sees them.
    Provider(Option<&'a str>),
}

impl Owner<'_> {
    fn owns(self, group: &ServerGroup) -> bool {
        match self {
            Owner::Anyone => true,
            Owner::Provider(provider) => group.provider.as_deref() == provider,
        }
    }
}

fn belongs(group: &ServerGroup, provider: Option<&str>) -> bool {
    Owner::Provider(provider).owns(group)
}

pub(super) async fn clusters(
    dp: &Dataplane,
    provider: Option<&str>,
    query: &ClusterQuery,
) -> ClusterPage {
    let state = dp.state.lock().await;
    let running = dp.instances.lock().unwrap_or_else(|e| e.into_inner());
    let groups = state.server_groups.iter().filter(|g| belongs(g, provider));
    query.page(groups, |group| {
        let handles = running.get(&group.name).map(Vec::as_slice).unwrap_or(&[]);
        InstanceCounts {
            instances: handles.len(),
            healthy: handles.iter().filter(|h| h.snapshot().healthy).count(),
        }
    })
}

/// The groups of `owner` (of one cluster when `cluster` is given) with
/// their instances and figures; for the data plane's own groups also the
/// applications and the load balancers (those routing to the cluster).
pub(super) async fn groups(dp: &Dataplane, owner: Owner<'_>, cluster: Option<&str>) -> Snapshot {
    let state = dp.state.lock().await;
    let stats = dp.proxy.stats();
    let in_cluster = |name: &str| cluster.is_none_or(|cluster| cluster == name);
    let server_groups = {
        let running = dp.instances.lock().unwrap_or_else(|e| e.into_inner());
        state
            .server_groups
            .iter()
            .filter(|g| in_cluster(&g.cluster) && owner.owns(g))
            .map(|group| ServerGroupStatus {
                group: group.clone(),
                instances: running
                    .get(&group.name)
                    .map(|handles| handles.iter().map(|h| h.snapshot()).collect())
                    .unwrap_or_default(),
                stats: stats
                    .snapshot_of(&group.name)
                    .map(crate::convert::group_stats),
            })
            .collect()
    };
    if let Owner::Provider(Some(_)) = owner {
        return Snapshot {
            server_groups,
            ..Snapshot::default()
        };
    }
    let listening = dp.proxy.listening();
    Snapshot {
        applications: state.applications.clone(),
        load_balancers: state
            .load_balancers
            .iter()
            .filter(|lb| cluster.is_none() || lb.rules.iter().any(|r| in_cluster(&r.cluster)))
            .map(|lb| LoadBalancerStatus {
                load_balancer: lb.clone(),
                listening: listening.contains(&lb.name),
            })
            .collect(),
        server_groups,
    }
}
