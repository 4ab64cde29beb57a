//! Requests counted per second, per worker: true rates at any load, and the
//! stride at which requests are sampled for analysis.
//!
//! The sample ring holds a fixed number of samples, so at a high rate it
//! covers only the last moments: 20,000 samples are 10 s at 2,000
//! requests per second and 1 s at 20,000. Rates therefore come from these
//! counters, not from the ring, and the ring takes every `stride`-th
//! request, the stride following last second's rate so that it keeps
//! about [`TARGET_SAMPLES_PER_SECOND`]: a canary analysis window sees
//! samples from all of its span, baseline and canary alike, at any rate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::per_worker::{self, Padded};

/// Seconds each worker remembers: the 10 s rate window, the second under
/// way, and slack.
const SECONDS: usize = 16;
/// Samples per second the ring aims at once the rate exceeds it.
pub(crate) const TARGET_SAMPLES_PER_SECOND: u64 = 250;

/// Per worker, a ring of seconds, each slot one word: the second's number
/// (since `base`, plus one, so 0 is an empty slot) in the high 32 bits and
/// its request count in the low 32.
#[derive(Debug)]
pub(crate) struct PerSecond {
    base: Instant,
    slots: Box<[Padded<[AtomicU64; SECONDS]>]>,
    /// Every how many requests a worker takes a sample; set from the rate
    /// of the last complete second whenever a second begins.
    stride: AtomicU64,
}

impl Default for PerSecond {
    fn default() -> Self {
        PerSecond {
            base: Instant::now(),
            slots: (0..per_worker::slots())
                .map(|_| Padded::default())
                .collect(),
            stride: AtomicU64::new(1),
        }
    }
}

impl PerSecond {
    /// Counts a request answered at `at`; says whether it is one the
    /// sample ring should take.
    pub(crate) fn count(&self, at: Instant) -> bool {
        let second = self.second(at);
        let cell = &self.slots[per_worker::slot()].0[second as usize % SECONDS];
        let mut word = cell.load(Ordering::Relaxed);
        let number = loop {
            let next = if word >> 32 == second {
                word + 1
            } else {
                (second << 32) | 1
            };
            match cell.compare_exchange_weak(word, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break next & 0xffff_ffff,
                Err(seen) => word = seen,
            }
        };
        if number == 1 {
            // This worker's first request of a new second: the stride
            // follows the whole last second.
            let last = self.in_second(second.saturating_sub(1));
            self.stride
                .store((last / TARGET_SAMPLES_PER_SECOND).max(1), Ordering::Relaxed);
        }
        (number - 1) % self.stride.load(Ordering::Relaxed) == 0
    }

    /// Requests per second over the `seconds` complete seconds before `now`.
    pub(crate) fn rate(&self, now: Instant, seconds: u64) -> f64 {
        let current = self.second(now);
        let total: u64 = (1..=seconds.min(SECONDS as u64 - 2))
            .filter_map(|back| current.checked_sub(back))
            .map(|second| self.in_second(second))
            .sum();
        total as f64 / seconds as f64
    }

    fn second(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_secs() + 1
    }

    /// Requests in `second` over all workers.
    fn in_second(&self, second: u64) -> u64 {
        self.slots
            .iter()
            .map(|worker| worker.0[second as usize % SECONDS].load(Ordering::Relaxed))
            .filter(|word| word >> 32 == second)
            .map(|word| word & 0xffff_ffff)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rates_far_above_the_sample_ring_are_counted_true() {
        let counts = PerSecond::default();
        let start = counts.base;
        // 12 seconds at 5,000 requests per second.
        for second in 0..12u64 {
            for i in 0..5_000u64 {
                counts.count(start + Duration::from_micros(second * 1_000_000 + i * 200));
            }
        }
        let rate = counts.rate(start + Duration::from_secs(12), 10);
        assert_eq!(rate, 5_000.0);
    }

    #[test]
    fn the_sample_stride_keeps_about_the_target_rate_once_the_load_is_known() {
        let counts = PerSecond::default();
        let start = counts.base;
        let mut sampled = [0u64; 3];
        for (second, taken) in sampled.iter_mut().enumerate() {
            for i in 0..10_000u64 {
                let at = start + Duration::from_micros(second as u64 * 1_000_000 + i * 100);
                *taken += u64::from(counts.count(at));
            }
        }
        // The first second knows no rate yet and samples everything.
        assert_eq!(sampled[0], 10_000);
        assert_eq!(sampled[1], 10_000 / (10_000 / TARGET_SAMPLES_PER_SECOND));
        assert_eq!(sampled[2], sampled[1]);
    }
}
