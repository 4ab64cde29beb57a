//! Counters split per worker thread, summed when read.
//!
//! Every request bumps a handful of counters (in flight per instance,
//! requests and latency buckets per group, the selection cursor). One atomic
//! word shared by all workers makes its cache line travel between cores on
//! every bump, which costs more than the bump itself; a slot per worker, on
//! a cache line of its own, stays in its core's cache. Reads (status pages,
//! draining) are rare and add the slots up.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Says which worker the calling thread is (see `workers`). Other threads
/// count as worker 0: correct, only slower when they are busy.
pub(crate) fn set_worker(index: usize) {
    WORKER.with(|w| w.set(index));
}

/// The calling thread's slot, below [`slots`].
pub(crate) fn slot() -> usize {
    WORKER.with(Cell::get) % slots()
}

/// How many slots each counter has: one per worker.
pub(crate) fn slots() -> usize {
    static SLOTS: OnceLock<usize> = OnceLock::new();
    *SLOTS.get_or_init(crate::workers::count)
}

/// Keeps a value on cache lines of its own (two: neighbouring lines are
/// fetched together).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub T);

/// A count that only ever goes up or down by steps, summed over workers.
/// Slots wrap, so that a step down on another worker than the step up
/// still sums right.
#[derive(Debug)]
pub(crate) struct Counter {
    slots: Box<[Padded<AtomicU64>]>,
}

impl Default for Counter {
    fn default() -> Self {
        Counter {
            slots: (0..slots()).map(|_| Padded::default()).collect(),
        }
    }
}

impl Counter {
    pub(crate) fn add(&self, n: u64, order: Ordering) {
        self.slots[slot()].0.fetch_add(n, order);
    }

    pub(crate) fn sub(&self, n: u64, order: Ordering) {
        self.slots[slot()].0.fetch_sub(n, order);
    }

    /// Steps this worker's slot up by one; returns its value before.
    pub(crate) fn next(&self) -> u64 {
        self.slots[slot()].0.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn sum(&self, order: Ordering) -> u64 {
        self.slots
            .iter()
            .fold(0u64, |sum, slot| sum.wrapping_add(slot.0.load(order)))
    }
}
