//! A step running on a runner, as the stage sees it: a task follows the
//! job's events (leased, log lines, finished, lost, canceled) and turns
//! them into log lines and an outcome the handle waits for.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry_runners::server::{Dispatcher, JobEvent, JobHandle};
use gantry_store::LogStream;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Snapshots;
use super::wire::{StepJobPrivate, StepJobResult, decode_line};
use crate::clock;
use crate::executor::local::output::OutputsError;
use crate::executor::{ExecutorError, LeftBehind, LogLine, StepExit, StepHandle, StepSpec};

/// How long a step may sit in the queue before its log says what it waits
/// for: long enough that a free runner takes it unnoticed.
const WAIT_NOTICE: Duration = Duration::from_secs(1);

/// The step's lines wait here when the stage log is slow.
const LINES: usize = 1024;

pub struct RemoteHandle {
    dispatcher: Dispatcher,
    job_id: String,
    started_at: i64,
    outcome: watch::Receiver<Option<Outcome>>,
    waiting: watch::Receiver<Option<String>>,
    lost_runs: watch::Receiver<Vec<String>>,
    follower: Option<JoinHandle<()>>,
}

#[derive(Clone, Debug)]
pub(super) enum Outcome {
    Exited {
        exit: StepExit,
        outputs: Result<Map<String, Value>, String>,
    },
    /// The step could not run (or go on running) anywhere.
    Failed(String),
    /// The runner's own executor refused or could not start the step; its
    /// message names the step.
    FailedNamed(String),
    /// Stopped by the stage (its stop or its timeout).
    Killed,
}

/// Follows `job` until it ends.
pub(super) fn start(
    dispatcher: Dispatcher,
    job: JobHandle,
    step: &StepSpec,
    wait: Duration,
    snapshots: Snapshots,
    ran_on: Arc<Mutex<BTreeSet<String>>>,
    builder: Option<Builder>,
) -> (RemoteHandle, mpsc::Receiver<LogLine>) {
    let (lines, receiver) = mpsc::channel(LINES);
    let (outcome, watched) = watch::channel(None);
    let (waiting, waiting_for) = watch::channel(None);
    let (lost_runs, lost_runs_watched) = watch::channel(Vec::new());
    let job_id = job.id.clone();
    let follower = Follower {
        dispatcher: dispatcher.clone(),
        lines,
        waiting,
        lost_runs,
        step: step.name.clone(),
        labels: step.runs_on.clone(),
        rerun_if_lost: step.rerun_if_lost,
        wait,
        snapshots,
        ran_on,
        built_on: builder.as_ref().map(|b| b.built_on.clone()),
        kept: builder.as_ref().map(|b| b.kept.clone()),
        placing: Mutex::new(builder.and_then(|b| b.placing)),
    };
    let task = tokio::spawn(async move {
        let end = follower.follow(job).await;
        follower.waiting.send_replace(None);
        let _ = outcome.send(Some(end));
    });
    let handle = RemoteHandle {
        dispatcher,
        job_id,
        started_at: clock::now(),
        outcome: watched,
        waiting: waiting_for,
        lost_runs: lost_runs_watched,
        follower: Some(task),
    };
    (handle, receiver)
}

struct Follower {
    dispatcher: Dispatcher,
    lines: mpsc::Sender<LogLine>,
    /// What the step waits for while no runner holds it.
    waiting: watch::Sender<Option<String>>,
    /// Why each run a lost runner ended was lost, as the step runs again.
    lost_runs: watch::Sender<Vec<String>>,
    step: String,
    labels: Vec<String>,
    rerun_if_lost: bool,
    wait: Duration,
    snapshots: Snapshots,
    ran_on: Arc<Mutex<BTreeSet<String>>>,
    /// For a step that builds in its runner's engine: the stage's runners holding what
    /// it built.
    built_on: Option<Arc<Mutex<BTreeSet<String>>>>,
    /// Where `built_on` is kept across a server restart.
    kept: Option<KeptBuilders>,
    /// Released once a runner took the step, which then holds the stage's builds.
    placing: Mutex<Option<tokio::sync::OwnedMutexGuard<()>>>,
}

/// A step that builds in its runner's engine: where the stage's builds are, and, for the
/// first such step, the stage's lock on placing it, released once a runner took it.
pub(super) struct Builder {
    pub(super) built_on: Arc<Mutex<BTreeSet<String>>>,
    pub(super) placing: Option<tokio::sync::OwnedMutexGuard<()>>,
    pub(super) kept: KeptBuilders,
}

/// The stage's row of runners holding its builds, in the store.
#[derive(Clone)]
pub(super) struct KeptBuilders {
    pub(super) store: gantry_store::Store,
    pub(super) execution: String,
    pub(super) stage: String,
}

impl KeptBuilders {
    async fn add(&self, runner: &str) {
        if let Err(error) = self
            .store
            .add_stage_builder(&self.execution, &self.stage, runner)
            .await
        {
            tracing::warn!(execution = %self.execution, stage = %self.stage, runner, %error, "cannot record which runner holds the stage's builds");
        }
    }

    async fn remove(&self, runner: &str) {
        if let Err(error) = self
            .store
            .remove_stage_builder(&self.execution, &self.stage, runner)
            .await
        {
            tracing::warn!(execution = %self.execution, stage = %self.stage, runner, %error, "cannot forget a lost runner as holding the stage's builds");
        }
    }
}

impl Follower {
    async fn follow(&self, mut job: JobHandle) -> Outcome {
        let mut runner = String::new();
        let mut leased = false;
        let mut rerun = false;
        let mut queued_at = Instant::now();
        let mut noticed = false;
        loop {
            let event = if leased {
                job.events.recv().await
            } else {
                let notice = queued_at + WAIT_NOTICE;
                let deadline = queued_at + self.wait;
                tokio::select! {
                    event = job.events.recv() => event,
                    () = tokio::time::sleep_until(notice), if !noticed => {
                        noticed = true;
                        let note = format!("{}: waiting for {}", self.step, self.wanted());
                        self.waiting.send_replace(Some(note.clone()));
                        self.system(note).await;
                        continue;
                    }
                    () = tokio::time::sleep_until(deadline) => {
                        let _ = self.dispatcher.cancel(&job.id, "no runner took it in time").await;
                        return Outcome::Failed(format!(
                            "no {} took it within {}",
                            self.wanted().trim_start_matches("a "),
                            crate::clock::humanize(self.wait)
                        ));
                    }
                }
            };
            let Some(event) = event else {
                return Outcome::Failed("the runner dispatcher dropped the step's job".into());
            };
            match event {
                JobEvent::Leased {
                    runner: name,
                    attempt,
                } => {
                    leased = true;
                    self.waiting.send_replace(None);
                    self.ran_on
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(name.clone());
                    if let Some(built_on) = &self.built_on {
                        built_on
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(name.clone());
                    }
                    if let Some(kept) = &self.kept {
                        kept.add(&name).await;
                    }
                    drop(
                        self.placing
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .take(),
                    );
                    // Said when it tells something: which of the runners
                    // the step's labels allow took it, or where it runs again.
                    if !self.labels.is_empty() || attempt > 1 {
                        let again = if attempt > 1 { " again" } else { "" };
                        self.system(format!("{}: running{again} on runner {name}", self.step))
                            .await;
                    }
                    runner = name;
                }
                JobEvent::Log { lines, .. } => {
                    for line in &lines {
                        if self.lines.send(decode_line(line)).await.is_err() {
                            break;
                        }
                    }
                }
                JobEvent::Finished { result, private } => {
                    return self.finished(&runner, result, private).await;
                }
                JobEvent::Lost {
                    runner: name,
                    reason,
                } => {
                    // A lost runner is not asked to clean up: it may never
                    // answer, and it kills what it ran once it hears.
                    self.ran_on
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&name);
                    if let Some(built_on) = &self.built_on {
                        built_on
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&name);
                    }
                    if let Some(kept) = &self.kept {
                        kept.remove(&name).await;
                    }
                    let lost = if reason.starts_with("runner ") {
                        reason
                    } else {
                        format!("runner {name} lost ({reason})")
                    };
                    if self.rerun_if_lost && !rerun {
                        match self.dispatcher.retry(&job.id).await {
                            Ok(true) => {
                                rerun = true;
                                leased = false;
                                self.lost_runs.send_modify(|runs| {
                                    runs.push(format!("{lost}; the step runs again elsewhere"))
                                });
                                noticed = false;
                                queued_at = Instant::now();
                                self.system(format!(
                                    "{}: {lost}: running it again from its start on another runner",
                                    self.step
                                ))
                                .await;
                                continue;
                            }
                            Ok(false) => {}
                            Err(error) => {
                                tracing::warn!(job = %job.id, %error, "cannot queue a lost step again")
                            }
                        }
                    }
                    self.dispatcher.give_up(&job.id);
                    let again = if rerun {
                        " again after being re-run once"
                    } else {
                        ""
                    };
                    return Outcome::Failed(format!("{lost}{again}"));
                }
                JobEvent::Canceled { .. } => return Outcome::Killed,
            }
        }
    }

    fn wanted(&self) -> String {
        if self.labels.is_empty() {
            "a runner".to_owned()
        } else {
            format!("a runner with labels {}", self.labels.join(", "))
        }
    }

    async fn system(&self, text: String) {
        let _ = self
            .lines
            .send(LogLine {
                stream: LogStream::System,
                text,
            })
            .await;
    }
}

impl Follower {
    async fn finished(&self, runner: &str, result: Value, private: Value) -> Outcome {
        let result: StepJobResult = match serde_json::from_value(result) {
            Ok(result) => result,
            Err(error) => {
                return Outcome::Failed(format!(
                    "runner {runner} sent a result this server cannot read: {error}"
                ));
            }
        };
        // What the step wrote becomes the server's workspace before the
        // stage hears that the step ended.
        if let Some(sha256) = &result.workspace
            && let Err(error) = self.snapshots.bring_home(sha256).await
        {
            return Outcome::Failed(format!(
                "cannot bring the workspace back from runner {runner}: {error}"
            ));
        }
        outcome(&self.step, runner, result, private)
    }
}

fn outcome(step: &str, runner: &str, result: StepJobResult, private: Value) -> Outcome {
    if let Some(error) = result.error {
        return runner_error(step, runner, error);
    }
    let Some(exit) = result.exit else {
        return Outcome::Killed;
    };
    let private: StepJobPrivate = serde_json::from_value(private).unwrap_or_default();
    let outputs = match (private.outputs, private.outputs_error) {
        (_, Some(error)) => Err(error),
        (outputs, None) => Ok(outputs.unwrap_or_default()),
    };
    Outcome::Exited { exit, outputs }
}

/// Why the runner could not run the step. A runner's executor names the
/// step at the start of what it refuses (as the server's would), which the
/// stage then keeps as it is rather than naming the step twice.
pub(super) fn runner_error(step: &str, runner: &str, error: String) -> Outcome {
    let names_step = error
        .strip_prefix(step)
        .is_some_and(|rest| rest.starts_with(':') || rest.starts_with(' '));
    if names_step {
        Outcome::FailedNamed(format!("{error} (on runner {runner})"))
    } else {
        Outcome::Failed(format!("on runner {runner}: {error}"))
    }
}

impl StepHandle for RemoteHandle {
    fn started_at(&self) -> i64 {
        self.started_at
    }

    /// Nothing of a remote step is on this machine.
    fn left_behind(&self) -> Option<LeftBehind> {
        None
    }

    fn waiting_for(&self) -> Option<watch::Receiver<Option<String>>> {
        Some(self.waiting.clone())
    }

    fn lost_runs(&self) -> Option<watch::Receiver<Vec<String>>> {
        Some(self.lost_runs.clone())
    }

    async fn wait(&mut self) -> Result<StepExit, ExecutorError> {
        let outcome = match self.outcome.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            Err(_) => None,
        };
        match outcome {
            Some(Outcome::Exited { exit, .. }) => Ok(exit),
            Some(Outcome::Failed(error)) => Err(ExecutorError::Failed(error)),
            Some(Outcome::FailedNamed(error)) => Err(ExecutorError::Named(error)),
            Some(Outcome::Killed) | None => Ok(StepExit {
                code: None,
                signal: Some(libc::SIGKILL),
            }),
        }
    }

    async fn drain(&mut self) {
        if let Some(follower) = self.follower.take() {
            let _ = follower.await;
        }
    }

    /// Cancels the job: a queued job never starts, a leased one is killed
    /// by its runner at its next heartbeat (within 2 s).
    async fn kill(&mut self) {
        if self.outcome.borrow().is_some() {
            return;
        }
        if let Err(error) = self
            .dispatcher
            .cancel(&self.job_id, "the step was stopped")
            .await
        {
            tracing::warn!(job = %self.job_id, %error, "cannot cancel a runner job");
        }
    }

    async fn outputs(&mut self) -> Result<Map<String, Value>, OutputsError> {
        match &*self.outcome.borrow() {
            Some(Outcome::Exited { outputs, .. }) => outputs.clone().map_err(OutputsError::Remote),
            _ => Ok(Map::new()),
        }
    }

    async fn finish(self) -> Result<(), ExecutorError> {
        Ok(())
    }
}
