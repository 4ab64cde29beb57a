//! One leased job on the agent: start (or take over) its process, stream
//! its output, report its result, clean up.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::connection::CallError;
use super::job_dir::JobDir;
use super::job_runner::{JobRunner, RunningJob};
use super::lease_loop::Agent;
use super::log_stream::{LogStream, StreamEnd};
use crate::protocol::{FinishRequest, LeasedJob};

/// What the agent keeps of a job it runs.
pub(crate) struct Slot {
    /// Fired to kill the job: the lease is gone, or the agent stops.
    pub(crate) cancel: CancellationToken,
    pub(crate) log_acked: Arc<AtomicU64>,
    /// When the heartbeat that last renewed this lease was sent (the
    /// server's renewal came after it): the watchdog measures the lease's
    /// silence from here.
    pub(crate) renewed_at: tokio::time::Instant,
}

/// Runs `job` to its end (or to its cancel); `taken_over` is a job a
/// previous agent process started.
pub(crate) async fn run<R: JobRunner>(
    agent: Arc<Agent<R>>,
    job: LeasedJob,
    dir: JobDir,
    taken_over: Option<R::Running>,
    cancel: CancellationToken,
    log_acked: Arc<AtomicU64>,
) {
    let lease = job.lease_id.clone();
    let running = match taken_over {
        Some(running) => Ok(running),
        None => match dir.write_lease(&job) {
            Ok(()) => agent.runner.start(&job, &dir).await,
            Err(e) => Err(format!("cannot prepare {}: {e}", dir.root().display())),
        },
    };
    let output_done = CancellationToken::new();
    let stream = tokio::spawn(
        LogStream {
            connection: agent.connection.clone(),
            lease_id: lease.clone(),
            path: dir.output(),
            output_done: output_done.clone(),
            stop: cancel.clone(),
            acked: log_acked,
        }
        .run(),
    );
    let outcome = match running {
        Ok(running) => running.finish(cancel.clone()).await,
        Err(error) => {
            tracing::error!(lease = %lease, %error, "the job did not start");
            json!({ "error": error }).into()
        }
    };
    output_done.cancel();
    let streamed = stream.await.unwrap_or(StreamEnd::Stopped);
    match streamed {
        StreamEnd::Complete if !cancel.is_cancelled() => {
            report(
                &agent,
                FinishRequest {
                    lease_id: lease.clone(),
                    result: outcome.result,
                    private: outcome.private,
                },
                &cancel,
            )
            .await;
        }
        StreamEnd::Refused(reason) => agent.refused(reason),
        other => tracing::info!(lease = %lease, end = ?other, "job ended without reporting"),
    }
    if let Err(error) = std::fs::remove_dir_all(dir.root()) {
        tracing::warn!(path = %dir.root().display(), %error, "cannot remove the job's directory");
    }
    agent.release(&lease);
}

/// Sends the result, trying again while the server is away.
async fn report<R: JobRunner>(
    agent: &Agent<R>,
    request: FinishRequest,
    cancel: &CancellationToken,
) {
    let mut backoff = Backoff::new();
    loop {
        match agent.connection.finish(&request).await {
            Ok(_) => {
                tracing::info!(lease = %request.lease_id, "job finished and reported");
                return;
            }
            Err(CallError::Unreachable(error)) => {
                let wait = backoff.next_wait();
                tracing::warn!(lease = %request.lease_id, %error, ?wait, "cannot report the result; trying again");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = cancel.cancelled() => return,
                }
            }
            Err(CallError::Refused(reason)) => return agent.refused(reason),
            Err(error) => {
                tracing::warn!(lease = %request.lease_id, %error, "result refused: the lease is gone");
                return;
            }
        }
    }
}
