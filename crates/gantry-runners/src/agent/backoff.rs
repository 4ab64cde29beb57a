//! Waiting before trying again while the server is away: 100 ms, doubling,
//! at most 5 s, so a server that comes back is found within seconds.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(100);
const MOST: Duration = Duration::from_secs(5);

pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff { next: FIRST }
    }

    /// The wait before the next try; each is twice the last, up to 5 s.
    pub(crate) fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MOST);
        wait
    }

    pub(crate) fn reset(&mut self) {
        self.next = FIRST;
    }
}
