//! Request bodies from clients that have not proven who they are yet
//! (webhook deliveries, checked by their signature only once read): each
//! must arrive whole within a time limit, and all of them in flight share
//! one memory budget, so that slow or many senders cannot grow the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Limits on request bodies, set at start (`gantry serve` flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimits {
    /// How long an unauthenticated client may take to send its whole body.
    pub unauthenticated_timeout: Duration,
    /// Bytes all unauthenticated bodies in flight may hold together.
    pub unauthenticated_budget: usize,
    /// The largest upload (a package file or a tar of them).
    pub upload_limit: u64,
}

impl Default for BodyLimits {
    /// 10 s and 16 MiB for unauthenticated bodies (eight largest webhook
    /// deliveries at once); 4 GiB per upload.
    fn default() -> BodyLimits {
        BodyLimits {
            unauthenticated_timeout: Duration::from_secs(10),
            unauthenticated_budget: 16 << 20,
            upload_limit: 4 << 30,
        }
    }
}

/// The shared budget of unauthenticated bodies.
pub(crate) struct UnauthenticatedBodies {
    budget: Arc<Semaphore>,
    capacity: usize,
    timeout: Duration,
    /// The most bytes held at once since memory was last given back.
    peak: AtomicUsize,
}

/// Bodies larger than webhooks send: GitHub caps a delivery at 25 MB but
/// push events with many commits stay far below 2 MiB.
pub(crate) const WEBHOOK_BODY_LIMIT: usize = 2 << 20;

/// After a burst that held at least this much, freed memory is handed back
/// to the system once the budget is whole again.
const TRIM_AFTER: usize = 4 << 20;

impl UnauthenticatedBodies {
    pub fn new(limits: &BodyLimits) -> UnauthenticatedBodies {
        let capacity = limits
            .unauthenticated_budget
            .clamp(1, Semaphore::MAX_PERMITS);
        UnauthenticatedBodies {
            budget: Arc::new(Semaphore::new(capacity)),
            capacity,
            timeout: limits.unauthenticated_timeout,
            peak: AtomicUsize::new(0),
        }
    }

    /// Reads `body` whole (at most `limit` bytes) within the time limit,
    /// holding its bytes against the shared budget until it is read; the
    /// bytes are then the caller's, for as short a time as it can.
    pub async fn read(&self, body: Body, limit: usize) -> Result<Bytes, BodyError> {
        let read = self.read_within_budget(body, limit);
        let result = match tokio::time::timeout(self.timeout, read).await {
            Ok(result) => result,
            Err(_) => Err(BodyError::Timeout(self.timeout)),
        };
        if let Err(error) = &result {
            metrics::counter!("gantry_unauthenticated_bodies_refused_total", "reason" => error.reason())
                .increment(1);
        }
        result
    }

    async fn read_within_budget(&self, body: Body, limit: usize) -> Result<Bytes, BodyError> {
        let mut held = Held {
            bodies: self,
            bytes: 0,
        };
        let mut collected: Vec<u8> = Vec::new();
        let mut stream = body.into_data_stream();
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| BodyError::Client(e.to_string()))?;
            let needed = collected.len() + piece.len();
            if needed > limit {
                return Err(BodyError::TooLarge(limit));
            }
            if needed > collected.capacity() {
                // Grow by doubling, as a vector would, but count the
                // capacity against the budget before taking it: that is
                // the memory the body holds.
                let capacity = needed
                    .max((collected.capacity() * 2).min(limit))
                    .max(8 << 10);
                held.take(capacity.saturating_sub(held.bytes))?;
                collected.reserve_exact(capacity - collected.len());
            }
            collected.extend_from_slice(&piece);
        }
        Ok(Bytes::from(collected))
    }

    fn give_back(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        self.budget.add_permits(bytes);
        if self.budget.available_permits() == self.capacity
            && self.peak.swap(0, Ordering::AcqRel) >= TRIM_AFTER
        {
            give_memory_back();
        }
    }
}

/// Why an unauthenticated body was not read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("the request body did not arrive whole within {0:?}")]
    Timeout(Duration),
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error(
        "the server holds its budget of {0} bytes for request bodies of unauthenticated clients; retry later"
    )]
    Budget(usize),
    #[error("cannot read the request body: {0}")]
    Client(String),
}

impl BodyError {
    fn reason(&self) -> &'static str {
        match self {
            BodyError::Timeout(_) => "timeout",
            BodyError::TooLarge(_) => "too_large",
            BodyError::Budget(_) => "budget",
            BodyError::Client(_) => "client",
        }
    }
}

impl axum::response::IntoResponse for BodyError {
    fn into_response(self) -> axum::response::Response {
        use axum::http::{StatusCode, header};
        let message = self.to_string();
        match self {
            BodyError::Timeout(_) => ApiError::invalid(message)
                .with_status(StatusCode::REQUEST_TIMEOUT)
                .into_response(),
            BodyError::TooLarge(_) => ApiError::invalid(message)
                .with_status(StatusCode::PAYLOAD_TOO_LARGE)
                .into_response(),
            BodyError::Client(_) => ApiError::invalid(message).into_response(),
            BodyError::Budget(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                axum::Json(Unavailable {
                    error: &message,
                    code: "unavailable",
                }),
            )
                .into_response(),
        }
    }
}

/// The API's error shape (`error.rs`) with the code of a refusal for lack
/// of capacity.
#[derive(serde::Serialize)]
struct Unavailable<'a> {
    error: &'a str,
    code: &'static str,
}

/// The budget one body holds; given back when it is dropped (read, failed
/// or abandoned by a client that went away).
struct Held<'a> {
    bodies: &'a UnauthenticatedBodies,
    bytes: usize,
}

impl Held<'_> {
    fn take(&mut self, more: usize) -> Result<(), BodyError> {
        let exhausted = BodyError::Budget(self.bodies.capacity);
        let Ok(permits) = u32::try_from(more) else {
            return Err(exhausted);
        };
        match self.bodies.budget.try_acquire_many(permits) {
            Ok(permit) => {
                permit.forget();
                self.bytes += more;
                let in_use = self.bodies.capacity - self.bodies.budget.available_permits();
                self.bodies.peak.fetch_max(in_use, Ordering::AcqRel);
                Ok(())
            }
            Err(_) => Err(exhausted),
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.bodies.give_back(self.bytes);
    }
}

/// glibc keeps freed memory in its arenas; after a burst of bodies, ask it
/// to return what it can, so that the process shrinks back.
pub(crate) fn give_memory_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only walks the allocator's own free lists.
        tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) });
    }
}
