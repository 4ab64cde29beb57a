//! The agent's main loop: identity, then leases while slots are free, a
//! heartbeat beside them, until a shutdown or a refused credential.

use std::collections::HashMap;
use std::os::unix::fs::DirBuilderExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::connection::{CallError, Connection};
use super::credential_file::{self, Identity};
use super::job::{self, Slot};
use super::job_dir::JobDir;
use super::job_runner::JobRunner;
use super::transfer::WorkspaceTransfer;
use super::{AgentConfig, AgentError};
use crate::protocol::{
    HeartbeatRequest, HeldLease, LeasedJob, PROTOCOL_VERSION, RegisterRequest, Timing,
};

/// How long a stopping agent waits for its killed jobs to be cleaned up.
const STOP_WAIT: Duration = Duration::from_secs(5);

pub(crate) struct Agent<R: JobRunner> {
    pub(crate) connection: Arc<Connection>,
    pub(crate) runner: R,
    config: AgentConfig,
    timing: Timing,
    slots: Mutex<HashMap<String, Slot>>,
    slot_freed: Notify,
    /// Fired when the server refuses the credential: everything stops.
    refused: CancellationToken,
    refusal: Mutex<Option<String>>,
}

/// Runs the agent until `shutdown` (its jobs are then killed) or until the
/// server refuses its credential (an error saying what to do).
pub async fn run<R: JobRunner>(
    config: AgentConfig,
    runner: R,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    let jobs_dir = config.work_dir.join("jobs");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&jobs_dir)
        .map_err(|source| AgentError::Io {
            path: jobs_dir.clone(),
            source,
        })?;
    let identity = identity(&config, &shutdown).await?;
    tracing::info!(runner = %identity.name, server = %config.url, labels = ?config.labels, capacity = config.capacity, "runner started");
    let agent = Arc::new(Agent {
        connection: Arc::new(Connection::new(&config.url, Some(identity.credential))),
        runner,
        timing: crate::protocol::timing(),
        config,
        slots: Mutex::default(),
        slot_freed: Notify::new(),
        refused: CancellationToken::new(),
        refusal: Mutex::default(),
    });
    // A refused credential or a server that speaks another protocol is
    // told at once, before anything is taken over.
    match agent
        .connection
        .heartbeat(&HeartbeatRequest { leases: Vec::new() })
        .await
    {
        Err(CallError::Refused(reason)) => return Err(agent.refusal_error(reason)),
        Err(CallError::Rejected(message)) => {
            return Err(AgentError::Protocol {
                url: agent.config.url.clone(),
                message,
            });
        }
        // Unreachable: the loops below keep trying.
        _ => {}
    }
    let mut tasks = JoinSet::new();
    agent.take_over_jobs(&mut tasks).await;
    tasks.spawn(heartbeats(agent.clone(), shutdown.clone()));
    tasks.spawn(watchdog(agent.clone(), shutdown.clone()));
    agent.lease_loop(&mut tasks, &shutdown).await;

    // Stopping: kill what runs, give the jobs a moment to clean up.
    for slot in agent.slots().values() {
        slot.cancel.cancel();
    }
    let _ = tokio::time::timeout(STOP_WAIT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    match agent
        .refusal
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        Some(reason) => Err(agent.refusal_error(reason)),
        None => Ok(()),
    }
}

/// The credential in the work directory, or a new one from registering.
async fn identity(
    config: &AgentConfig,
    shutdown: &CancellationToken,
) -> Result<Identity, AgentError> {
    if let Some(identity) = credential_file::load(&config.work_dir)? {
        tracing::info!(runner = %identity.name, "re-using the credential in the work directory");
        return Ok(identity);
    }
    let Some(token) = &config.token else {
        return Err(AgentError::NoToken(credential_file::path(&config.work_dir)));
    };
    let connection = Connection::new(&config.url, None);
    let request = RegisterRequest {
        protocol: PROTOCOL_VERSION,
        token: token.clone(),
        name: config.name.clone(),
        labels: config.labels.clone(),
        capacity: config.capacity,
        version: config.version.clone(),
    };
    let mut backoff = Backoff::new();
    loop {
        match connection.register(&request).await {
            Ok(registered) => {
                let identity = Identity {
                    runner_id: registered.runner_id,
                    name: registered.name,
                    credential: registered.credential,
                };
                credential_file::save(&config.work_dir, &identity)?;
                tracing::info!(runner = %identity.name, "registered");
                return Ok(identity);
            }
            Err(CallError::Unreachable(error)) => {
                let wait = backoff.next_wait();
                tracing::warn!(server = %connection.url(), %error, ?wait, "cannot reach the server to register; trying again");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.cancelled() => return Err(AgentError::RegistrationRefused("stopped before registering".into())),
                }
            }
            Err(error) => return Err(AgentError::RegistrationRefused(error.to_string())),
        }
    }
}

impl<R: JobRunner> Agent<R> {
    async fn lease_loop(self: &Arc<Self>, tasks: &mut JoinSet<()>, shutdown: &CancellationToken) {
        let mut backoff = Backoff::new();
        loop {
            let freed = self.slot_freed.notified();
            let free = self
                .config
                .capacity
                .saturating_sub(self.slots().len() as u32);
            if free == 0 {
                tokio::select! {
                    () = freed => continue,
                    () = shutdown.cancelled() => return,
                    () = self.refused.cancelled() => return,
                }
            }
            let answer = tokio::select! {
                answer = self.connection.lease(free, &self.timing) => answer,
                () = shutdown.cancelled() => return,
                () = self.refused.cancelled() => return,
            };
            match answer {
                Ok(answer) => {
                    backoff.reset();
                    if let Some(job) = answer.job {
                        self.start_job(tasks, job, None);
                    }
                }
                Err(CallError::Refused(reason)) => return self.refused(reason),
                Err(error) => {
                    let wait = backoff.next_wait();
                    tracing::warn!(%error, ?wait, "cannot lease; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    fn start_job(
        self: &Arc<Self>,
        tasks: &mut JoinSet<()>,
        job: LeasedJob,
        taken_over: Option<R::Running>,
    ) {
        let cancel = self.refused.child_token();
        let log_acked = Arc::new(AtomicU64::new(0));
        let now = tokio::time::Instant::now();
        // A job a previous agent process left was last renewed who knows
        // when: the next heartbeat (at once) must renew it within one
        // heartbeat's time, or it is killed.
        let renewed_at = if taken_over.is_some() {
            let heartbeat = Duration::from_millis(self.timing.heartbeat_ms);
            let grace = silence_limit(&self.timing).saturating_sub(heartbeat);
            now.checked_sub(grace).unwrap_or(now)
        } else {
            now
        };
        self.slots().insert(
            job.lease_id.clone(),
            Slot {
                cancel: cancel.clone(),
                log_acked: log_acked.clone(),
                renewed_at,
            },
        );
        tracing::info!(lease = %job.lease_id, job = %job.job_id, attempt = job.attempt, "job leased");
        let dir = JobDir::new(self.config.work_dir.join("jobs").join(&job.lease_id)).with_transfer(
            WorkspaceTransfer {
                connection: self.connection.clone(),
                lease_id: job.lease_id.clone(),
            },
        );
        tasks.spawn(job::run(
            self.clone(),
            job,
            dir,
            taken_over,
            cancel,
            log_acked,
        ));
    }

    /// Jobs a previous agent process left running: taken over if the
    /// runner can, their leases renewed (or cancelled) by the next heartbeat.
    async fn take_over_jobs(self: &Arc<Self>, tasks: &mut JoinSet<()>) {
        let Ok(entries) = std::fs::read_dir(self.config.work_dir.join("jobs")) else {
            return;
        };
        for entry in entries.flatten() {
            let dir = JobDir::new(entry.path());
            let job = dir.read_lease();
            match (job, self.runner.reattach(&dir).await) {
                (Some(job), Some(running)) => {
                    tracing::info!(lease = %job.lease_id, "taking over a job of the previous agent process");
                    self.start_job(tasks, job, Some(running));
                }
                _ => {
                    tracing::warn!(path = %entry.path().display(), "removing a job left behind that cannot be taken over");
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }

    pub(crate) fn release(&self, lease: &str) {
        self.slots().remove(lease);
        self.slot_freed.notify_one();
    }

    /// The server refused the credential: every job is killed and the
    /// agent stops with an error.
    pub(crate) fn refused(&self, reason: String) {
        tracing::error!(%reason, "the server refused this runner's credential; killing its jobs");
        self.refusal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(reason);
        self.refused.cancel();
    }

    fn refusal_error(&self, reason: String) -> AgentError {
        AgentError::CredentialRefused {
            reason,
            credential_file: credential_file::path(&self.config.work_dir),
        }
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Renews the leases every heartbeat interval; kills the jobs whose leases
/// the server says are gone. A lease the server renewed is stamped with the
/// time its heartbeat was sent, which [`watchdog`] measures silence from.
async fn heartbeats<R: JobRunner>(agent: Arc<Agent<R>>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(agent.timing.heartbeat_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
            () = agent.refused.cancelled() => return,
        }
        let leases: Vec<HeldLease> = agent
            .slots()
            .iter()
            .map(|(lease, slot)| HeldLease {
                lease_id: lease.clone(),
                log_lines: slot.log_acked.load(Ordering::Relaxed),
            })
            .collect();
        let request = HeartbeatRequest { leases };
        let sent_at = tokio::time::Instant::now();
        let answer = tokio::select! {
            answer = agent.connection.heartbeat(&request) => answer,
            () = shutdown.cancelled() => return,
            () = agent.refused.cancelled() => return,
        };
        match answer {
            Ok(answer) => {
                let mut slots = agent.slots();
                for renewed in answer.renewed {
                    if let Some(slot) = slots.get_mut(&renewed.lease_id) {
                        slot.renewed_at = slot.renewed_at.max(sent_at);
                    }
                }
                for lease in answer.cancel {
                    if let Some(slot) = slots.get(&lease) {
                        tracing::info!(lease = %lease, "the server took the lease back; killing the job");
                        slot.cancel.cancel();
                    }
                }
            }
            Err(CallError::Refused(reason)) => return agent.refused(reason),
            Err(error) => tracing::warn!(%error, "heartbeat failed"),
        }
    }
}

/// How often the watchdog looks at the leases' silence.
const WATCHDOG_TICK: Duration = Duration::from_millis(100);

/// How long a lease may go unrenewed before its runner kills the job: two
/// heartbeats less than the lease's lifetime. The server counts the lifetime
/// from its renewal, which comes after the heartbeat was sent; the second
/// heartbeat is the job's time to die (a step gets a second between its
/// SIGTERM and its SIGKILL). So the job is dead before the server may hand it
/// to another runner.
fn silence_limit(timing: &Timing) -> Duration {
    let heartbeat = Duration::from_millis(timing.heartbeat_ms);
    Duration::from_millis(timing.lease_ttl_ms)
        .saturating_sub(2 * heartbeat)
        .max(heartbeat)
}

/// Kills the jobs whose leases no heartbeat renewed within [`silence_limit`].
/// A task of its own rather than a check after each heartbeat: across a
/// partition that drops packets, a heartbeat hangs until its timeout, past
/// the lease's lifetime, while the server already gives the job to another
/// runner.
async fn watchdog<R: JobRunner>(agent: Arc<Agent<R>>, shutdown: CancellationToken) {
    let limit = silence_limit(&agent.timing);
    let mut tick = tokio::time::interval(WATCHDOG_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
            () = agent.refused.cancelled() => return,
        }
        for (lease, slot) in agent.slots().iter() {
            if !slot.cancel.is_cancelled() && slot.renewed_at.elapsed() > limit {
                tracing::warn!(lease = %lease, ?limit, "no heartbeat renewed the lease in time: the server will count it lost; killing the job");
                slot.cancel.cancel();
            }
        }
    }
}
