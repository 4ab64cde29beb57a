//! Per-server-group counters and latency: totals for `/metrics`, a
//! histogram for percentiles, and a window of recent samples that canary
//! analysis compares between groups. Recording a request takes no lock:
//! on a machine with more runnable threads than cores, a worker preempted
//! while holding a lock would stall every other worker recording a request
//! for a whole time slice, which shows as a latency tail. The counters have
//! a slot per worker (`per_worker`), so that recording touches no cache line
//! another core writes; the sample ring is spread so that consecutive
//! samples land on different cache lines.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::per_second::PerSecond;
use crate::per_worker::{self, Counter, Padded};

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_MICROS: [u64; BUCKETS] = [
    100,
    200,
    300,
    500,
    750,
    1_000,
    1_500,
    2_000,
    3_000,
    5_000,
    7_500,
    10_000,
    15_000,
    20_000,
    30_000,
    50_000,
    75_000,
    100_000,
    150_000,
    200_000,
    300_000,
    500_000,
    750_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    u64::MAX,
];
const BUCKETS: usize = 28;
/// Samples kept per group for analysis (at most about
/// `per_second::TARGET_SAMPLES_PER_SECOND` a second are taken, so the ring
/// spans at least 80 s at any rate).
const MAX_SAMPLES: usize = 20_000;
/// Consecutive samples are this many slots apart in the ring: one slot per
/// 16-word stretch (two cache lines), so that two workers recording at the
/// same time do not write the same line. `MAX_SAMPLES` is a multiple.
const SAMPLE_SPREAD: usize = 16;

/// One answered (or failed) request.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub at: Instant,
    pub micros: u64,
    /// A 5xx answer or a failure to reach the upstream.
    pub error: bool,
}

#[derive(Debug)]
pub struct GroupStats {
    requests: Counter,
    status_5xx: Counter,
    connect_errors: Counter,
    /// Per worker: requests by latency bucket.
    buckets: Box<[Padded<[AtomicU64; BUCKETS]>]>,
    per_second: PerSecond,
    samples: SampleRing,
}

impl Default for GroupStats {
    fn default() -> Self {
        GroupStats {
            requests: Counter::default(),
            status_5xx: Counter::default(),
            connect_errors: Counter::default(),
            buckets: (0..per_worker::slots())
                .map(|_| Padded::default())
                .collect(),
            per_second: PerSecond::default(),
            samples: SampleRing::new(MAX_SAMPLES),
        }
    }
}

/// The last samples, each packed in one atomic word and written in turn
/// without a lock: milliseconds since `base` plus one (0 marks an empty
/// slot) in the high 36 bits, the latency in microseconds (at most about
/// 134 s) in the next 27, and the error flag in the lowest bit.
#[derive(Debug)]
struct SampleRing {
    base: Instant,
    next: AtomicUsize,
    slots: Box<[AtomicU64]>,
}

const MICROS_BITS: u32 = 27;

impl SampleRing {
    fn new(size: usize) -> SampleRing {
        SampleRing {
            base: Instant::now(),
            next: AtomicUsize::new(0),
            slots: (0..size).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn push(&self, at: Instant, micros: u64, error: bool) {
        let millis = at.saturating_duration_since(self.base).as_millis() as u64 + 1;
        let micros = micros.min((1 << MICROS_BITS) - 1);
        let word = (millis << (MICROS_BITS + 1)) | (micros << 1) | u64::from(error);
        // A bijection of `n % len`: the ring still holds exactly the
        // last `len` samples.
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let stretch = self.slots.len() / SAMPLE_SPREAD;
        let index = (n % SAMPLE_SPREAD) * stretch + (n / SAMPLE_SPREAD) % stretch;
        self.slots[index].store(word, Ordering::Relaxed);
    }

    /// The samples taken at or after `since` (in no particular order).
    fn since(&self, since: Option<Instant>) -> Vec<Sample> {
        let from = since.map_or(0, |s| {
            s.saturating_duration_since(self.base).as_millis() as u64
        });
        self.slots
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .filter(|word| *word != 0)
            .filter_map(|word| {
                let millis = (word >> (MICROS_BITS + 1)) - 1;
                (millis >= from).then(|| Sample {
                    at: self.base + Duration::from_millis(millis),
                    micros: (word >> 1) & ((1 << MICROS_BITS) - 1),
                    error: word & 1 == 1,
                })
            })
            .collect()
    }
}

/// What `status` and `/metrics` show of a group.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupStatsSnapshot {
    pub requests: u64,
    pub status_5xx: u64,
    pub connect_errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Requests per second over the last 10 complete seconds.
    pub rate: f64,
}

impl GroupStats {
    pub(crate) fn record(&self, latency: Duration, error: bool) {
        let micros = latency.as_micros() as u64;
        self.requests.add(1, Ordering::Relaxed);
        if error {
            self.status_5xx.add(1, Ordering::Relaxed);
        }
        let bucket = BUCKETS_MICROS
            .iter()
            .position(|b| micros <= *b)
            .unwrap_or(0);
        self.buckets[per_worker::slot()].0[bucket].fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        if self.per_second.count(now) {
            self.samples.push(now, micros, error);
        }
    }

    pub(crate) fn record_connect_error(&self) {
        self.connect_errors.add(1, Ordering::Relaxed);
    }

    /// Samples taken within the last `window`, in no particular order: all
    /// requests at low rates, an even share of each second's above
    /// `per_second::TARGET_SAMPLES_PER_SECOND`.
    pub fn samples_since(&self, window: Duration) -> Vec<Sample> {
        self.samples.since(Instant::now().checked_sub(window))
    }

    pub fn snapshot(&self) -> GroupStatsSnapshot {
        let counts: Vec<u64> = (0..BUCKETS)
            .map(|bucket| {
                self.buckets
                    .iter()
                    .map(|worker| worker.0[bucket].load(Ordering::Relaxed))
                    .sum()
            })
            .collect();
        GroupStatsSnapshot {
            requests: self.requests.sum(Ordering::Relaxed),
            status_5xx: self.status_5xx.sum(Ordering::Relaxed),
            connect_errors: self.connect_errors.sum(Ordering::Relaxed),
            p50_ms: percentile(&counts, 0.50),
            p95_ms: percentile(&counts, 0.95),
            p99_ms: percentile(&counts, 0.99),
            rate: self.per_second.rate(Instant::now(), 10),
        }
    }
}

/// The bucket bound at quantile `q`, in milliseconds.
fn percentile(counts: &[u64], q: f64) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (count, bound) in counts.iter().zip(BUCKETS_MICROS) {
        seen += count;
        if seen >= rank {
            let bound = if bound == u64::MAX { 20_000_000 } else { bound };
            return bound as f64 / 1000.0;
        }
    }
    0.0
}

/// Every group's stats, by server group name; kept across table swaps so
/// that counters survive enable/disable.
#[derive(Debug, Default)]
pub struct Stats {
    groups: Mutex<HashMap<String, Arc<GroupStats>>>,
}

impl Stats {
    pub fn group(&self, name: &str) -> Arc<GroupStats> {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups.entry(name.to_owned()).or_default().clone()
    }

    /// One group's figures, without recording a group it has never seen.
    pub fn snapshot_of(&self, name: &str) -> Option<GroupStatsSnapshot> {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups.get(name).map(|stats| stats.snapshot())
    }

    pub fn snapshot(&self) -> HashMap<String, GroupStatsSnapshot> {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups
            .iter()
            .map(|(name, stats)| (name.clone(), stats.snapshot()))
            .collect()
    }
}
