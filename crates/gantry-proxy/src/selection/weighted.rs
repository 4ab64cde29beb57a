//! Weighted selection: a group by its traffic weight among the groups that
//! have a routable instance, then an instance of it round-robin. A cursor
//! per worker (`per_worker`) makes the split exact over any window of
//! `sum(weights)` requests a worker carries.
//! It runs on every request, so it walks the groups instead of collecting
//! the candidates.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::discovery::{GroupBackend, Upstream};
use crate::per_worker::Counter;

/// Picks an upstream not in `tried` and counts it in flight before returning,
/// so that a drain that sees zero after a table swap cannot miss it.
pub(crate) fn pick<'g>(
    groups: &'g [GroupBackend],
    cursor: &Counter,
    tried: &[Arc<Upstream>],
) -> Option<(&'g GroupBackend, Arc<Upstream>)> {
    let usable = |upstream: &Arc<Upstream>| {
        upstream.health.is_routable() && !tried.iter().any(|t| Arc::ptr_eq(t, upstream))
    };
    let candidate = |g: &&GroupBackend| g.weight > 0 && g.upstreams.iter().any(usable);
    let total: u64 = groups
        .iter()
        .filter(candidate)
        .map(|g| u64::from(g.weight))
        .sum();
    if total == 0 {
        return None;
    }
    let tick = cursor.next() as usize;
    // Spread the ticks: a plain modulo would send runs of requests to one
    // group; multiplying by a large odd number interleaves them.
    let mut point = (tick as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % total;
    let group = groups.iter().filter(candidate).find(|g| {
        let w = u64::from(g.weight);
        if point < w {
            true
        } else {
            point -= w;
            false
        }
    })?;
    let usable_count = group.upstreams.iter().filter(|u| usable(u)).count();
    let upstream = group
        .upstreams
        .iter()
        .filter(|u| usable(u))
        .nth(tick % usable_count)?
        .clone();
    upstream.in_flight.add(1, Ordering::SeqCst);
    Some((group, upstream))
}
