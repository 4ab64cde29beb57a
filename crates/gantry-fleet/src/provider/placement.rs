//! Where a group's instances go: the hosts that carry every label of the
//! placement, are not drained and answer, each taking the next instance
//! while it runs the fewest of the group (so instances spread evenly),
//! never more than `maxPerHost`.

use std::collections::BTreeMap;

use gantry_deploy::model::Placement;

use crate::fleet::FleetHost;

/// Whether `host` may run instances placed by `placement`.
pub fn eligible(host: &FleetHost, placement: &Placement) -> bool {
    !host.drained
        && placement
            .labels
            .iter()
            .all(|label| host.spec.labels.contains(label))
}

/// Picks a host for each of `count` new instances, given how many of the
/// group each usable host runs already; fewer than `count` when the hosts
/// are full.
pub fn choose(
    running: &BTreeMap<String, u32>,
    count: usize,
    max_per_host: Option<u32>,
) -> Vec<String> {
    let mut load = running.clone();
    let mut chosen = Vec::new();
    for _ in 0..count {
        let least = load
            .iter()
            .filter(|(_, n)| max_per_host.is_none_or(|max| **n < max))
            .min_by_key(|(name, n)| (**n, (*name).clone()))
            .map(|(name, _)| name.clone());
        let Some(host) = least else { break };
        *load.entry(host.clone()).or_default() += 1;
        chosen.push(host);
    }
    chosen
}

/// The instances to stop when a group shrinks: from the hosts that run
/// the most of it. `placed` is `(instance, host)`.
pub fn surplus(placed: &[(String, String)], keep: usize) -> Vec<String> {
    let mut load: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (instance, host) in placed {
        load.entry(host).or_default().push(instance);
    }
    let mut removed = Vec::new();
    while placed.len() - removed.len() > keep {
        let Some((_, instances)) = load.iter_mut().max_by_key(|(host, v)| (v.len(), *host)) else {
            break;
        };
        match instances.pop() {
            Some(instance) => removed.push(instance.to_owned()),
            None => break,
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    fn running(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(h, n)| (h.to_string(), *n)).collect()
    }

    #[test]
    fn new_instances_spread_evenly_over_hosts() {
        let chosen = super::choose(&running(&[("a", 0), ("b", 0), ("c", 0)]), 5, None);
        assert_eq!(chosen, ["a", "b", "c", "a", "b"]);
        let chosen = super::choose(&running(&[("a", 2), ("b", 0), ("c", 1)]), 2, None);
        assert_eq!(chosen, ["b", "b"]);
    }

    #[test]
    fn max_per_host_caps_each_host() {
        let chosen = super::choose(&running(&[("a", 1), ("b", 0)]), 4, Some(1));
        assert_eq!(chosen, ["b"]);
    }

    #[test]
    fn a_shrinking_group_leaves_the_most_loaded_hosts_first() {
        let placed: Vec<(String, String)> = [("i0", "a"), ("i1", "a"), ("i2", "b"), ("i3", "c")]
            .iter()
            .map(|(i, h)| (i.to_string(), h.to_string()))
            .collect();
        assert_eq!(super::surplus(&placed, 3), ["i1"]);
        assert_eq!(super::surplus(&placed, 1).len(), 3);
    }
}
