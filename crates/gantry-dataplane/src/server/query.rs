//! The reading requests that answer part of the state: a page of clusters
//! (`Request::Clusters`), one provider's, one cluster's or one group's
//! groups (`Request::Groups`), the applications list
//! (`Request::Applications`) and the live groups' figures
//! (`Request::Figures`). Unlike
//! `Status` they copy no group they do not answer with, and ask the
//! instances and the load balancer's figures only of the groups they show.

use std::collections::HashSet;

use gantry_deploy::model::{
    ApplicationIndex, ClusterPage, ClusterQuery, GroupFigures, InstanceCounts, LoadBalancerStatus,
    ServerGroup, ServerGroupStatus, Snapshot,
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

/// Which of an owner's groups `Request::Groups` answers with.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Only<'a> {
    /// Of this cluster only (the load balancers then those routing to it).
    pub cluster: Option<&'a str>,
    /// This group only.
    pub name: Option<&'a str>,
    /// The live groups of the clusters a load balancer routes to.
    pub routed: bool,
}

/// The groups of `owner` that `only` keeps, with their instances and
/// figures; for the data plane's own groups also the applications and the
/// load balancers (those routing to the cluster when one is asked for).
pub(super) async fn groups(dp: &Dataplane, owner: Owner<'_>, only: &Only<'_>) -> Snapshot {
    let state = dp.state.lock().await;
    let stats = dp.proxy.stats();
    let cluster = only.cluster;
    let in_cluster = |name: &str| cluster.is_none_or(|cluster| cluster == name);
    let routed: Option<HashSet<&str>> = only.routed.then(|| {
        state
            .load_balancers
            .iter()
            .flat_map(|lb| lb.rules.iter().map(|r| r.cluster.as_str()))
            .collect()
    });
    let kept = |g: &ServerGroup| {
        in_cluster(&g.cluster)
            && only.name.is_none_or(|name| name == g.name)
            && routed
                .as_ref()
                .is_none_or(|routed| g.is_live() && routed.contains(g.cluster.as_str()))
            && owner.owns(g)
    };
    let server_groups = {
        let running = dp.instances.lock().unwrap_or_else(|e| e.into_inner());
        state
            .server_groups
            .iter()
            .filter(|g| kept(g))
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
    // One group's answer needs nothing else; another provider's has none.
    if only.name.is_some() || matches!(owner, Owner::Provider(Some(_))) {
        return Snapshot {
            server_groups,
            ..Snapshot::default()
        };
    }
    let listening = dp.proxy.listening();
    Snapshot {
        applications: if only.routed {
            Vec::new()
        } else {
            state.applications.clone()
        },
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

/// The applications list: the declared applications (the data plane's
/// own) and the application and cluster of each of `provider`'s groups.
pub(super) async fn applications(dp: &Dataplane, provider: Option<&str>) -> ApplicationIndex {
    let state = dp.state.lock().await;
    let declared = if provider.is_none() {
        state.applications.clone()
    } else {
        Vec::new()
    };
    ApplicationIndex::of(
        declared,
        state.server_groups.iter().filter(|g| belongs(g, provider)),
    )
}

/// The figures of `provider`'s live groups: counts of instances, not the
/// instances.
pub(super) async fn figures(dp: &Dataplane, provider: Option<&str>) -> Vec<GroupFigures> {
    let state = dp.state.lock().await;
    let stats = dp.proxy.stats();
    let running = dp.instances.lock().unwrap_or_else(|e| e.into_inner());
    state
        .server_groups
        .iter()
        .filter(|g| g.is_live() && belongs(g, provider))
        .map(|group| {
            let handles = running.get(&group.name).map(Vec::as_slice).unwrap_or(&[]);
            GroupFigures {
                name: group.name.clone(),
                cluster: group.cluster.clone(),
                stats: stats
                    .snapshot_of(&group.name)
                    .map(crate::convert::group_stats),
                instances: handles.len(),
                healthy: handles.iter().filter(|h| h.snapshot().healthy).count(),
            }
        })
        .collect()
}
