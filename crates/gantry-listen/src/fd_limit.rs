//! The process's file-descriptor limit and the share of it connections may
//! take.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the new
/// soft limit. Servers start with a soft limit of 1,024 on most systems while
/// the hard one is far higher; like nginx's `worker_rlimit_nofile`, the
/// process takes what it is allowed.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit.rlim_cur = limit.rlim_max;
    }
    Ok(limit.rlim_cur)
}

/// The number of descriptors all listeners of a process may hold open at
/// once: the soft limit less a reserve for everything else the process does.
/// Shared by every [`crate::Admission`] of the process.
#[derive(Clone, Debug)]
pub struct FdBudget {
    inner: Arc<Budget>,
}

#[derive(Debug)]
struct Budget {
    capacity: usize,
    used: AtomicUsize,
}

impl FdBudget {
    /// A budget of `soft_limit - reserve` connections (at least one).
    pub fn new(soft_limit: u64, reserve: u64) -> FdBudget {
        let capacity = soft_limit.saturating_sub(reserve).max(1);
        FdBudget::with_capacity(usize::try_from(capacity).unwrap_or(usize::MAX))
    }

    /// The budget of this process: its (raised) soft limit less a reserve of
    /// a quarter of it, at least 256 and at most 4,096 descriptors.
    pub fn for_process() -> std::io::Result<FdBudget> {
        let soft = raise_fd_limit()?;
        let reserve = (soft / 4).clamp(256, 4096);
        Ok(FdBudget::new(soft, reserve))
    }

    pub fn with_capacity(capacity: usize) -> FdBudget {
        FdBudget {
            inner: Arc::new(Budget {
                capacity,
                used: AtomicUsize::new(0),
            }),
        }
    }

    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    pub fn in_use(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// Takes one descriptor from the budget, or says there is none left.
    pub(crate) fn take(&self) -> bool {
        self.inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < self.inner.capacity).then_some(used + 1)
            })
            .is_ok()
    }

    pub(crate) fn give_back(&self) {
        self.inner.used.fetch_sub(1, Ordering::AcqRel);
    }
}
