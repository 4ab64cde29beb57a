//! The memory all request bodies read whole may hold at once, shared by
//! every listener and worker of a proxy.
//!
//! A body read whole can be resent, but it sits in memory while its client
//! sends it: 300 clients sending 1 MiB bodies slowly held 300 MiB. Under the
//! budget, a request that finds it spent is streamed to its instance instead
//! (never refused for that alone), and a body that is not all there within
//! the buffer time gives its share back and is streamed from where it is.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// How much memory request bodies read whole may hold, all together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyBudgetConfig {
    /// Bytes of bodies held at once.
    pub memory: usize,
    /// The longest a body may take to arrive whole before it is streamed.
    pub buffer_time: Duration,
}

/// 32 MiB: 32 bodies of the largest size read whole, or thousands of the
/// usual small ones. 5 s: a client on any working network sends 1 MiB in
/// less; one that does not has its body streamed.
pub const DEFAULT_BODY_MEMORY: usize = 32 << 20;
pub const DEFAULT_BODY_BUFFER_TIME: Duration = Duration::from_secs(5);

impl Default for BodyBudgetConfig {
    fn default() -> BodyBudgetConfig {
        BodyBudgetConfig {
            memory: DEFAULT_BODY_MEMORY,
            buffer_time: DEFAULT_BODY_BUFFER_TIME,
        }
    }
}

/// The budget; cheap to clone, every clone counts the same bytes.
#[derive(Clone, Debug)]
pub(crate) struct BodyBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: BodyBudgetConfig,
    used: AtomicUsize,
    /// Requests streamed because the budget was spent or their body was
    /// slow to arrive.
    streamed: AtomicU64,
}

impl BodyBudget {
    pub(crate) fn new(config: BodyBudgetConfig) -> BodyBudget {
        BodyBudget {
            inner: Arc::new(Inner {
                config,
                used: AtomicUsize::new(0),
                streamed: AtomicU64::new(0),
            }),
        }
    }

    pub(crate) fn buffer_time(&self) -> Duration {
        self.inner.config.buffer_time
    }

    /// Bytes held by bodies now.
    pub(crate) fn in_use(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    pub(crate) fn streamed(&self) -> u64 {
        self.inner.streamed.load(Ordering::Relaxed)
    }

    pub(crate) fn count_streamed(&self) {
        self.inner.streamed.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes `bytes` from the budget until the reservation is dropped, or
    /// says there is not that much left.
    pub(crate) fn reserve(&self, bytes: usize) -> Option<Reservation> {
        let capacity = self.inner.config.memory;
        self.inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= capacity)
            })
            .ok()?;
        Some(Reservation {
            budget: self.clone(),
            bytes,
        })
    }
}

/// A body's share of the budget, given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: BodyBudget,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget
            .inner
            .used
            .fetch_sub(self.bytes, Ordering::AcqRel);
    }
}
