//! Giving memory back after a burst of client connections.
//!
//! Each connection's buffers are freed when it closes, but glibc's malloc
//! keeps freed memory in its arenas (one per worker thread) for reuse: after
//! 20,000 connections came and went the process stayed hundreds of
//! megabytes larger. When the number of open connections has fallen to half
//! of its peak, and by at least [`TRIM_AFTER`] (a few megabytes of
//! buffers), the free memory is handed
//! back with `malloc_trim` on a thread of its own (it walks every arena and
//! can take milliseconds, which a worker should not wait for).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The fewest connections gone since the peak that make a trim worth it.
const TRIM_AFTER: usize = 256;

/// Open client connections of the whole proxy and their peak since the
/// last trim.
#[derive(Debug, Default)]
pub(crate) struct ConnectionCount {
    open: AtomicUsize,
    peak: AtomicUsize,
    trimming: Arc<AtomicBool>,
}

impl ConnectionCount {
    pub(crate) fn opened(&self) {
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(open, Ordering::Relaxed);
    }

    pub(crate) fn closed(&self) {
        let open = self.open.fetch_sub(1, Ordering::Relaxed) - 1;
        let peak = self.peak.load(Ordering::Relaxed);
        if peak >= open + TRIM_AFTER
            && open * 2 <= peak
            && self
                .peak
                .compare_exchange(peak, open, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.trim();
        }
    }

    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    fn trim(&self) {
        if self.trimming.swap(true, Ordering::AcqRel) {
            return;
        }
        let trimming = self.trimming.clone();
        let spawned = std::thread::Builder::new()
            .name("gantry-proxy-trim".into())
            .spawn(move || {
                give_back_free_memory();
                trimming.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.trimming.store(false, Ordering::Release);
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn give_back_free_memory() {
    // SAFETY: malloc_trim takes no pointers and only touches the
    // allocator's own state, which it locks.
    let released = unsafe { libc::malloc_trim(0) };
    tracing::debug!(
        released = released != 0,
        "returned free memory after a burst of connections"
    );
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back_free_memory() {}
