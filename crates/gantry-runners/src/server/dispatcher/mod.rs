//! The queue of jobs for runners, and the leases on them.
//!
//! A job is queued by its owner (after the merge: the engine's remote step
//! executor), which gets a channel of [`JobEvent`]s back: leased, log
//! lines, finished, lost, canceled. A runner's lease request waits on a
//! `Notify` that every enqueue wakes, so a job reaches an idle runner in
//! the time of one store write, not of a polling interval.
//!
//! Placement: a runner takes the oldest queued job whose labels are all
//! among its own, while it holds fewer leases than its capacity. A job no
//! enabled runner has the labels for stays queued and [`QueuedJob`] says so.

mod lease_clock;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gantry_store::{JobState, Millis, RunnerJobRecord, RunnerRecord, Store};
use tokio::sync::{Notify, mpsc};

use super::error::RunnerError;
use super::job::{JobEvent, JobHandle, JobSpec, QueuedJob};
use super::placement::{fits, fits_runner};
use crate::protocol::{
    FinishRequest, FinishResponse, HeartbeatRequest, HeartbeatResponse, JobSecrets, LeasedJob,
    LogAck, LogBatch, RenewedLease, Timing,
};

/// The owner's side of a job's events; a full channel slows the runner's
/// log stream down rather than dropping lines.
const OWNER_CHANNEL: usize = 256;

/// The dispatcher; cheap to clone.
#[derive(Clone)]
pub struct Dispatcher(pub(super) Arc<Inner>);

pub(super) struct Inner {
    store: Store,
    timing: Timing,
    state: Mutex<State>,
    job_queued: Notify,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Waiting>,
    /// Live leases by lease id.
    leases: HashMap<String, Live>,
    /// Owners by job id, until the job finishes, is canceled or given up.
    owners: HashMap<String, mpsc::Sender<JobEvent>>,
    /// The secrets of jobs that name some, for as long as they have owners.
    secrets: HashMap<String, JobSecrets>,
    /// The snapshot directories of jobs that have one.
    workspaces: HashMap<String, std::path::PathBuf>,
    /// Runners that lost a lease for want of heartbeats and have not sent
    /// one since: a lease request they sent before going silent may still
    /// be waiting here, and a job handed to it would never arrive.
    silent: std::collections::HashSet<String>,
}

#[derive(Clone)]
struct Waiting {
    job_id: String,
    labels: Vec<String>,
    queued_at: Millis,
}

pub(super) struct Live {
    runner_id: String,
    runner_name: String,
    pub(super) expires_at: Millis,
}

impl Dispatcher {
    /// Starts the dispatcher and its lease clock. Jobs a previous process
    /// left queued or leased are marked lost first: their owners were in
    /// that process and decide again from their own durable state.
    pub async fn start(store: Store, timing: Timing) -> Result<Dispatcher, RunnerError> {
        let lost = store
            .lose_unfinished_jobs(now_millis(), "the server restarted")
            .await?;
        if !lost.is_empty() {
            tracing::info!(
                jobs = lost.len(),
                "runner jobs of the previous server process marked lost"
            );
        }
        let dispatcher = Dispatcher(Arc::new(Inner {
            store,
            timing,
            state: Mutex::default(),
            job_queued: Notify::new(),
        }));
        lease_clock::start(&dispatcher);
        Ok(dispatcher)
    }

    pub fn timing(&self) -> Timing {
        self.0.timing
    }

    /// Persists a job as queued, then wakes the runners waiting for work.
    pub async fn enqueue(&self, spec: JobSpec) -> Result<JobHandle, RunnerError> {
        let mut labels = spec.labels;
        labels.sort();
        labels.dedup();
        let record = RunnerJobRecord {
            id: uuid::Uuid::now_v7().to_string(),
            payload: spec.payload,
            labels: labels.clone(),
            state: JobState::Queued,
            runner_id: None,
            lease_id: None,
            lease_expires_at: None,
            attempt: 0,
            result: None,
            log_acked: 0,
            queued_at: now_millis(),
            ended_at: None,
            reason: None,
        };
        self.0.store.enqueue_job(&record).await?;
        let (sender, events) = mpsc::channel(OWNER_CHANNEL);
        {
            let mut state = self.state();
            state.owners.insert(record.id.clone(), sender);
            if !spec.secrets.is_empty() {
                state.secrets.insert(record.id.clone(), spec.secrets);
            }
            if let Some(workspace) = spec.workspace {
                state.workspaces.insert(record.id.clone(), workspace);
            }
            state.queue.push_back(Waiting {
                job_id: record.id.clone(),
                labels,
                queued_at: record.queued_at,
            });
        }
        self.0.job_queued.notify_waiters();
        Ok(JobHandle {
            id: record.id,
            events,
        })
    }

    /// A runner's lease request: a job at once if one fits, else the first
    /// that is queued (or the first room the runner gets) within `wait`,
    /// else `None`.
    pub async fn lease(
        &self,
        runner: &RunnerRecord,
        free_slots: u32,
        wait: Duration,
    ) -> Result<Option<LeasedJob>, RunnerError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so an enqueue between the look and
            // the wait still wakes this request.
            let queued = self.0.job_queued.notified();
            tokio::pin!(queued);
            queued.as_mut().enable();
            // A runner at its capacity (in the server's count, which may hold
            // leases a restarted runner has not taken over yet) waits like
            // an idle one: a lease ending wakes it too.
            let has_room = free_slots > 0
                && (self.load_of(&runner.id) as i64) < runner.capacity
                && !self.state().silent.contains(&runner.id);
            if has_room {
                // In a task of its own: a client that goes away while its job
                // is being leased must not drop it between queue and store.
                let dispatcher = self.clone();
                let taker = runner.clone();
                let taken = tokio::spawn(async move { dispatcher.take_for(&taker).await })
                    .await
                    .map_err(|e| RunnerError::Invalid(format!("the lease task failed: {e}")))??;
                if taken.is_some() {
                    return Ok(taken);
                }
            }
            if tokio::time::timeout_at(deadline, queued).await.is_err() {
                return Ok(None);
            }
        }
    }

    /// Renews the leases the runner holds; those it no longer holds come
    /// back under `cancel`.
    pub async fn heartbeat(
        &self,
        runner: &RunnerRecord,
        request: &HeartbeatRequest,
    ) -> Result<HeartbeatResponse, RunnerError> {
        let now = now_millis();
        self.0.store.touch_runner(&runner.id, now).await?;
        if self.state().silent.remove(&runner.id) {
            tracing::info!(runner = %runner.name, "runner heard from again after losing a lease");
            // Its lease requests waiting here may take work again.
            self.0.job_queued.notify_waiters();
        }
        let expires_at = now + self.0.timing.lease_ttl_ms as i64;
        let mut answer = HeartbeatResponse::default();
        for held in &request.leases {
            let renewed = self
                .0
                .store
                .renew_lease(&held.lease_id, &runner.id, now, expires_at)
                .await?;
            match renewed {
                Some(job) => {
                    // Upserted: a lease this process stopped watching (or
                    // never saw, behind another server) is watched again.
                    self.state()
                        .leases
                        .entry(held.lease_id.clone())
                        .or_insert_with(|| Live {
                            runner_id: runner.id.clone(),
                            runner_name: runner.name.clone(),
                            expires_at,
                        })
                        .expires_at = expires_at;
                    answer.renewed.push(RenewedLease {
                        lease_id: held.lease_id.clone(),
                        log_acked: job.log_acked as u64,
                    });
                }
                None => {
                    tracing::info!(runner = %runner.name, lease = %held.lease_id, "runner told to cancel a lease it no longer holds");
                    answer.cancel.push(held.lease_id.clone());
                }
            }
        }
        Ok(answer)
    }

    /// Takes the lines of a batch the server does not have yet, in order,
    /// and hands them to the job's owner. Runs to its end even when the
    /// runner goes away mid-request (see [`to_completion`]).
    pub async fn logs(
        &self,
        runner: &RunnerRecord,
        batch: LogBatch,
    ) -> Result<LogAck, RunnerError> {
        let (this, runner) = (self.clone(), runner.clone());
        to_completion(async move { this.take_logs(&runner, batch).await }).await
    }

    async fn take_logs(
        &self,
        runner: &RunnerRecord,
        batch: LogBatch,
    ) -> Result<LogAck, RunnerError> {
        let gone = || RunnerError::LeaseGone(batch.lease_id.clone());
        let job = self
            .0
            .store
            .job_of_lease(&batch.lease_id)
            .await?
            .filter(|job| {
                job.state == JobState::Leased && job.runner_id.as_deref() == Some(&runner.id)
            })
            .ok_or_else(gone)?;
        let acked = job.log_acked as u64;
        let end = batch.first + batch.lines.len() as u64;
        if batch.first > acked || end <= acked {
            // A gap (sent again from `acked`) or lines already taken.
            return Ok(LogAck { acked });
        }
        // The store takes the batch first (compare and set on the sequence),
        // so late lines of a lost lease never reach the owner, and no line
        // is handed over twice.
        let taken = self
            .0
            .store
            .ack_job_logs(
                &batch.lease_id,
                &runner.id,
                now_millis(),
                acked as i64,
                end as i64,
            )
            .await?;
        if taken.is_none() {
            let job = self.0.store.job_of_lease(&batch.lease_id).await?;
            return match job {
                Some(job) if job.state == JobState::Leased => Ok(LogAck {
                    acked: job.log_acked as u64,
                }),
                _ => Err(gone()),
            };
        }
        let skip = (acked - batch.first) as usize;
        let mut lines = batch.lines;
        lines.drain(..skip);
        self.send(
            &job.id,
            JobEvent::Log {
                first: acked,
                lines,
            },
        )
        .await;
        Ok(LogAck { acked: end })
    }

    /// Ends a live lease with its result; refused once the lease is gone.
    /// Runs to its end even when the runner goes away mid-request.
    pub async fn finish(
        &self,
        runner: &RunnerRecord,
        request: FinishRequest,
    ) -> Result<FinishResponse, RunnerError> {
        let (this, runner) = (self.clone(), runner.clone());
        to_completion(async move { this.take_finish(&runner, request).await }).await
    }

    async fn take_finish(
        &self,
        runner: &RunnerRecord,
        request: FinishRequest,
    ) -> Result<FinishResponse, RunnerError> {
        let job = self
            .0
            .store
            .finish_job(&request.lease_id, &runner.id, now_millis(), &request.result)
            .await?
            .ok_or_else(|| RunnerError::LeaseGone(request.lease_id.clone()))?;
        let owner = {
            let mut state = self.state();
            state.leases.remove(&request.lease_id);
            state.secrets.remove(&job.id);
            state.workspaces.remove(&job.id);
            state.owners.remove(&job.id)
        };
        self.0.job_queued.notify_waiters();
        tracing::info!(runner = %runner.name, job = %job.id, "runner job finished");
        if let Some(owner) = owner {
            let _ = owner
                .send(JobEvent::Finished {
                    result: request.result,
                    private: request.private,
                })
                .await;
        }
        Ok(FinishResponse { job_id: job.id })
    }

    /// Cancels a queued or leased job; its runner hears of it with its next
    /// heartbeat. False if the job had already ended.
    pub async fn cancel(&self, job_id: &str, reason: &str) -> Result<bool, RunnerError> {
        let Some(job) = self
            .0
            .store
            .cancel_job(job_id, now_millis(), reason)
            .await?
        else {
            return Ok(false);
        };
        let owner = {
            let mut state = self.state();
            state.queue.retain(|w| w.job_id != job.id);
            if let Some(lease) = &job.lease_id {
                state.leases.remove(lease);
            }
            state.secrets.remove(&job.id);
            state.workspaces.remove(&job.id);
            state.owners.remove(&job.id)
        };
        if let Some(owner) = owner {
            let _ = owner
                .send(JobEvent::Canceled {
                    reason: reason.into(),
                })
                .await;
        }
        Ok(true)
    }

    /// Queues a lost job again for another attempt (by any runner that
    /// fits, the lost one included once it is back).
    pub async fn retry(&self, job_id: &str) -> Result<bool, RunnerError> {
        if !self.0.store.requeue_lost_job(job_id).await? {
            return Ok(false);
        }
        let job = self
            .0
            .store
            .runner_job(job_id)
            .await?
            .ok_or_else(|| RunnerError::NoSuchJob(job_id.into()))?;
        self.state().queue.push_back(Waiting {
            job_id: job.id,
            labels: job.labels,
            queued_at: job.queued_at,
        });
        self.0.job_queued.notify_waiters();
        Ok(true)
    }

    /// Forgets the owner of a lost job that will not run again.
    pub fn give_up(&self, job_id: &str) {
        let mut state = self.state();
        state.owners.remove(job_id);
        state.secrets.remove(job_id);
        state.workspaces.remove(job_id);
    }

    /// The snapshot directory of the job `lease_id` is for, while `runner`
    /// holds that lease.
    pub async fn workspace_of(
        &self,
        runner: &RunnerRecord,
        lease_id: &str,
    ) -> Result<std::path::PathBuf, RunnerError> {
        let job = self
            .0
            .store
            .job_of_lease(lease_id)
            .await?
            .filter(|job| {
                job.state == JobState::Leased && job.runner_id.as_deref() == Some(&runner.id)
            })
            .ok_or_else(|| RunnerError::LeaseGone(lease_id.to_owned()))?;
        self.state()
            .workspaces
            .get(&job.id)
            .cloned()
            .ok_or_else(|| RunnerError::Invalid(format!("job {} has no workspace", job.id)))
    }

    /// How many leases the runner holds.
    pub fn load_of(&self, runner_id: &str) -> usize {
        self.state()
            .leases
            .values()
            .filter(|live| live.runner_id == runner_id)
            .count()
    }

    /// The queued jobs, oldest first, each saying whether a runner among
    /// `label_sets` (the enabled runners') could take it.
    pub fn queued(&self, label_sets: &[Vec<String>]) -> Vec<QueuedJob> {
        self.state()
            .queue
            .iter()
            .map(|w| QueuedJob {
                id: w.job_id.clone(),
                labels: w.labels.clone(),
                queued_at: w.queued_at,
                placeable: label_sets.iter().any(|set| fits(&w.labels, set)),
            })
            .collect()
    }

    /// Pops the oldest job that fits the runner and leases it in the store.
    async fn take_for(&self, runner: &RunnerRecord) -> Result<Option<LeasedJob>, RunnerError> {
        loop {
            let candidate = {
                let mut state = self.state();
                let Some(at) = state
                    .queue
                    .iter()
                    .position(|w| fits_runner(&w.labels, runner))
                else {
                    return Ok(None);
                };
                state.queue.remove(at).expect("the position was just found")
            };
            let lease_id = uuid::Uuid::now_v7().to_string();
            let expires_at = now_millis() + self.0.timing.lease_ttl_ms as i64;
            let leased = self
                .0
                .store
                .lease_job(&candidate.job_id, &runner.id, &lease_id, expires_at)
                .await;
            let job = match leased {
                Ok(Some(job)) => job,
                // Canceled while queued: look for another.
                Ok(None) => continue,
                Err(error) => {
                    self.state().queue.push_front(candidate);
                    return Err(error.into());
                }
            };
            self.state().leases.insert(
                lease_id.clone(),
                Live {
                    runner_id: runner.id.clone(),
                    runner_name: runner.name.clone(),
                    expires_at,
                },
            );
            tracing::info!(runner = %runner.name, job = %job.id, attempt = job.attempt, "runner job leased");
            self.send(
                &job.id,
                JobEvent::Leased {
                    runner: runner.name.clone(),
                    attempt: job.attempt,
                },
            )
            .await;
            let secrets = self
                .state()
                .secrets
                .get(&job.id)
                .cloned()
                .unwrap_or_default();
            return Ok(Some(LeasedJob {
                lease_id,
                job_id: job.id,
                payload: job.payload,
                attempt: job.attempt,
                timing: self.0.timing,
                secrets,
            }));
        }
    }

    async fn send(&self, job_id: &str, event: JobEvent) {
        let owner = self.state().owners.get(job_id).cloned();
        if let Some(owner) = owner
            && owner.send(event).await.is_err()
        {
            // The owner is gone; nobody will ask for this job again.
            let mut state = self.state();
            state.owners.remove(job_id);
            state.secrets.remove(job_id);
            state.workspaces.remove(job_id);
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain maps behind, still
        // consistent enough to go on with.
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs `work` on a task of its own and waits for it. What the store took
/// must reach the job's owner: a request handler is dropped where it stands
/// when its client goes away (a runner killed mid-request), and had it been
/// dropped between the store's compare-and-set and the hand-over, the lines
/// (or the result) would count as delivered and never arrive.
async fn to_completion<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    match tokio::spawn(work).await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// Milliseconds since the Unix epoch, the store's clock.
pub(crate) fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
