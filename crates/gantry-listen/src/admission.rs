//! One listener's admission: its caps, the connections it holds per client
//! address, and its share of the process's descriptor budget.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::FdBudget;

/// How many connections one listener accepts. nginx's `worker_connections`
/// and `limit_conn` per address, HAProxy's `maxconn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once on the listener.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_per_address: usize,
}

impl Default for Limits {
    /// 10,000 in all and 1,000 from one address: far above what a team's
    /// clients and load balancers open, far below what takes a process down.
    fn default() -> Limits {
        Limits {
            max_connections: 10_000,
            max_per_address: 1_000,
        }
    }
}

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the listener holds its maximum of {0} connections")]
    ListenerFull(usize),
    #[error("client address holds its maximum of {0} connections")]
    AddressFull(usize),
    #[error("the process keeps its remaining file descriptors for its own work")]
    ProcessFull,
}

/// The admission of one listener. Cheap to clone; every clone counts the
/// same connections.
#[derive(Clone, Debug)]
pub struct Admission {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limits: Mutex<Limits>,
    budget: FdBudget,
    /// Open connections per client address; the sum is the listener's
    /// total. One lock per accepted connection is negligible next to the
    /// accept system call itself.
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl Admission {
    pub fn new(limits: Limits, budget: FdBudget) -> Admission {
        Admission {
            inner: Arc::new(Inner {
                limits: Mutex::new(limits),
                budget,
                open: Mutex::new(Open::default()),
            }),
        }
    }

    /// Changes the caps; connections already admitted stay.
    pub fn set_limits(&self, limits: Limits) {
        *lock(&self.inner.limits) = limits;
    }

    pub fn limits(&self) -> Limits {
        *lock(&self.inner.limits)
    }

    /// Connections open on this listener now.
    pub fn open_connections(&self) -> usize {
        lock(&self.inner.open).total
    }

    /// Admits a connection from `peer`, or says which limit it would pass.
    /// The permit holds its place until dropped: keep it alive as long as
    /// the connection.
    pub fn admit(&self, peer: IpAddr) -> Result<Permit, Refused> {
        let limits = self.limits();
        let peer = canonical(peer);
        let mut open = lock(&self.inner.open);
        if open.total >= limits.max_connections {
            return Err(Refused::ListenerFull(limits.max_connections));
        }
        let from_peer = open.by_address.get(&peer).copied().unwrap_or(0);
        if from_peer >= limits.max_per_address {
            return Err(Refused::AddressFull(limits.max_per_address));
        }
        if !self.inner.budget.take() {
            return Err(Refused::ProcessFull);
        }
        open.total += 1;
        open.by_address.insert(peer, from_peer + 1);
        Ok(Permit {
            admission: self.clone(),
            peer,
        })
    }

    fn release(&self, peer: IpAddr) {
        let mut open = lock(&self.inner.open);
        open.total -= 1;
        if let Some(count) = open.by_address.get_mut(&peer) {
            *count -= 1;
            if *count == 0 {
                open.by_address.remove(&peer);
            }
        }
        // Shrink the map after a burst, so that memory held for 20,000
        // addresses is returned once they are gone.
        if open.by_address.capacity() > 64 && open.by_address.len() * 4 < open.by_address.capacity()
        {
            open.by_address.shrink_to_fit();
        }
        drop(open);
        self.inner.budget.give_back();
    }
}

/// One admitted connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct Permit {
    admission: Admission,
    peer: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.admission.release(self.peer);
    }
}

/// IPv4 clients seen through an IPv6 socket count as their IPv4 address.
fn canonical(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
        v4 => v4,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
