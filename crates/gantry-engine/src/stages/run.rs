//! `run`: executes steps on this host, one after another, in the execution's
//! workspace. Each step runs in its own process group; its lines go to the
//! stage log as they come; `key=value` lines it appends to `$GANTRY_OUTPUT`
//! become stage outputs.
//!
//! Durability: a step's record (with its process group) is written before the
//! engine waits for it. After a crash, finished steps are not run again; the
//! step that was running has its leftover processes killed and is run again
//! from its start, once (`onInterrupt: fail` opts out).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gantry_config::{OnInterrupt, RunStage, Step};
use gantry_store::{LogStream, Status, StepRecord};
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

use super::{Outcome, StageContext};
use crate::clock;
use crate::logs::{MAX_LINE, StageLog};
use crate::process::{self, ProcessId};

/// Output beyond this many bytes per step is dropped, with a notice.
const MAX_STEP_LOG: u64 = 256 * 1024 * 1024;

pub(crate) async fn run(ctx: &StageContext, spec: &RunStage) -> Outcome {
    let workspace = ctx.workspace();
    let run_dir = ctx.run_dir();
    for dir in [&workspace, &run_dir] {
        if let Err(error) = tokio::fs::create_dir_all(dir).await {
            return Outcome::Failed(format!("cannot create {}: {error}", dir.display()));
        }
    }
    let previous = match ctx.store().steps(&ctx.execution.id, &ctx.stage_id).await {
        Ok(steps) => steps,
        Err(error) => return Outcome::Failed(error.to_string()),
    };
    for (index, step) in spec.steps.iter().enumerate() {
        let index = index as i64;
        let mut interruptions = 0;
        if let Some(before) = previous.iter().find(|s| s.step == index) {
            match before.status {
                Status::Succeeded => continue,
                Status::Running => {
                    let policy = step.on_interrupt.unwrap_or(spec.on_interrupt);
                    match interrupted(ctx, before, policy, &describe(index, step)).await {
                        Ok(count) => interruptions = count,
                        Err(outcome) => return outcome,
                    }
                }
                _ => {}
            }
        }
        let step_run = StepRun {
            ctx,
            index,
            step,
            interruptions,
            workspace: &workspace,
            run_dir: &run_dir,
        };
        match step_run.execute(&spec.env).await {
            StepEnd::Succeeded(outputs) => {
                if let Err(error) = ctx.add_outputs(outputs).await {
                    return Outcome::Failed(error.to_string());
                }
            }
            StepEnd::Failed(error) => return Outcome::Failed(error),
            StepEnd::Canceled => return Outcome::Canceled(ctx.cancel_reason().await),
        }
    }
    Outcome::Succeeded(Map::new())
}

/// Handles a step that was running when the server stopped: kills what is
/// left of it, then decides whether it runs again. `Ok(n)` is the new
/// interruption count.
async fn interrupted(
    ctx: &StageContext,
    before: &StepRecord,
    policy: OnInterrupt,
    name: &str,
) -> Result<i64, Outcome> {
    if let (Some(pgid), Some(start)) = (before.pgid, before.proc_start) {
        let killed = process::kill_orphans(ProcessId {
            pid: pgid as i32,
            start,
        });
        if killed > 0 {
            ctx.log
                .system(&format!(
                    "{name}: killed {killed} leftover process(es) of the interrupted run"
                ))
                .await;
        }
    }
    let give_up = match policy {
        OnInterrupt::Fail => Some(format!(
            "{name} was interrupted by a server restart (onInterrupt: fail)"
        )),
        OnInterrupt::Rerun if before.interruptions >= 1 => Some(format!(
            "{name} was interrupted by a server restart again after being re-run once"
        )),
        OnInterrupt::Rerun => None,
    };
    if let Some(error) = give_up {
        let record = StepRecord {
            status: Status::Failed,
            ended_at: Some(clock::now()),
            error: Some(error.clone()),
            pgid: None,
            proc_start: None,
            ..before.clone()
        };
        let _ = ctx.store().put_step(&record).await;
        ctx.log.system(&error).await;
        return Err(Outcome::Failed(error));
    }
    ctx.log
        .system(&format!(
            "{name} was interrupted by a server restart: running it again from its start"
        ))
        .await;
    Ok(before.interruptions + 1)
}

enum StepEnd {
    Succeeded(Map<String, Value>),
    Failed(String),
    Canceled,
}

struct StepRun<'a> {
    ctx: &'a StageContext,
    index: i64,
    step: &'a Step,
    interruptions: i64,
    workspace: &'a Path,
    run_dir: &'a Path,
}

impl StepRun<'_> {
    async fn execute(&self, stage_env: &BTreeMap<String, String>) -> StepEnd {
        let name = describe(self.index, self.step);
        let output_file = self.run_dir.join(format!("step-{}.outputs", self.index));
        if let Err(error) = tokio::fs::write(&output_file, b"").await {
            return self
                .fail(
                    format!("{name}: cannot create its output file: {error}"),
                    None,
                )
                .await;
        }
        let dir = match working_dir(self.workspace, self.step.dir.as_deref()) {
            Ok(dir) => dir,
            Err(error) => return self.fail(format!("{name}: {error}"), None).await,
        };
        let mut command = match (&self.step.script, &self.step.command) {
            (Some(script), _) => {
                let mut command = tokio::process::Command::new("sh");
                command.arg("-e").arg("-c").arg(script);
                command
            }
            (None, Some(argv)) if !argv.is_empty() => {
                let mut command = tokio::process::Command::new(&argv[0]);
                command.args(&argv[1..]);
                command
            }
            _ => {
                return self
                    .fail(format!("{name}: has neither a script nor a command"), None)
                    .await;
            }
        };
        let trigger_env = {
            let state = self.ctx.execution.read().await;
            crate::trigger_env::step_env(&state.exec.trigger)
        };
        command
            .current_dir(&dir)
            .env_remove("GANTRY_TOKEN")
            .envs(trigger_env)
            .envs(stage_env)
            .envs(&self.step.env)
            .env("GANTRY_OUTPUT", &output_file)
            .env("GANTRY_WORKSPACE", self.workspace)
            .env("GANTRY_EXECUTION_ID", &self.ctx.execution.id)
            .env("GANTRY_STAGE_ID", &self.ctx.stage_id)
            .env("GANTRY_STEP", self.index.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);

        let started_at = clock::now();
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                return self
                    .fail(format!("{name}: cannot start: {error}"), Some(started_at))
                    .await;
            }
        };
        let pid = child.id().unwrap_or_default() as i32;
        let leader = ProcessId::of(pid);
        self.ctx
            .engine
            .inner
            .process_groups
            .lock()
            .unwrap()
            .insert(pid);
        let mut record = StepRecord {
            execution_id: self.ctx.execution.id.clone(),
            stage_id: self.ctx.stage_id.clone(),
            step: self.index,
            status: Status::Running,
            started_at: Some(started_at),
            ended_at: None,
            exit_code: None,
            pgid: Some(i64::from(pid)),
            proc_start: leader.map(|p| p.start),
            interruptions: self.interruptions,
            error: None,
        };
        if let Err(error) = self.ctx.store().put_step(&record).await {
            process::kill_group(pid);
            let _ = child.wait().await;
            self.ctx
                .engine
                .inner
                .process_groups
                .lock()
                .unwrap()
                .remove(&pid);
            return StepEnd::Failed(format!("{name}: {error}"));
        }

        let budget = Arc::new(AtomicU64::new(MAX_STEP_LOG));
        let readers = [
            child.stdout.take().map(|out| {
                tokio::spawn(pump(
                    out,
                    self.ctx.log.clone(),
                    self.index,
                    LogStream::Stdout,
                    budget.clone(),
                ))
            }),
            child.stderr.take().map(|err| {
                tokio::spawn(pump(
                    err,
                    self.ctx.log.clone(),
                    self.index,
                    LogStream::Stderr,
                    budget.clone(),
                ))
            }),
        ];

        let timeout = async {
            match self.step.timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        };
        let exited = tokio::select! {
            status = child.wait() => Some(status),
            _ = self.ctx.cancel.cancelled() => None,
            _ = timeout => None,
        };
        let (ended, status) = match exited {
            Some(status) => (Ended::Exited, status),
            None => {
                let ended = if self.ctx.cancel.is_cancelled() {
                    Ended::Canceled
                } else {
                    Ended::TimedOut
                };
                process::terminate_group(pid, process::GRACE).await;
                (ended, child.wait().await)
            }
        };
        // Whatever the step left behind in its group goes with it; this also
        // closes pipes a background process would otherwise hold open.
        process::kill_group(pid);
        self.ctx
            .engine
            .inner
            .process_groups
            .lock()
            .unwrap()
            .remove(&pid);
        for reader in readers.into_iter().flatten() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), reader).await;
        }

        record.pgid = None;
        record.proc_start = None;
        record.ended_at = Some(clock::now());
        let exit_code = status.as_ref().ok().and_then(|s| s.code());
        record.exit_code = exit_code.map(i64::from);
        let end = match (ended, status) {
            (Ended::Canceled, _) => {
                record.status = Status::Canceled;
                StepEnd::Canceled
            }
            (Ended::TimedOut, _) => {
                let timeout = super::humanize(self.step.timeout.unwrap_or_default());
                StepEnd::Failed(format!("{name} timed out after {timeout}"))
            }
            (Ended::Exited, Err(error)) => {
                StepEnd::Failed(format!("{name}: cannot wait for it: {error}"))
            }
            (Ended::Exited, Ok(status)) if status.success() => {
                match read_outputs(&output_file).await {
                    Ok(outputs) => StepEnd::Succeeded(outputs),
                    Err(error) => StepEnd::Failed(format!("{name}: $GANTRY_OUTPUT: {error}")),
                }
            }
            (Ended::Exited, Ok(status)) => StepEnd::Failed(match status.code() {
                Some(code) => format!("{name} exited with code {code}"),
                None => {
                    use std::os::unix::process::ExitStatusExt;
                    format!(
                        "{name} was killed by signal {}",
                        status.signal().unwrap_or_default()
                    )
                }
            }),
        };
        match &end {
            StepEnd::Succeeded(_) => record.status = Status::Succeeded,
            StepEnd::Failed(error) => {
                record.status = Status::Failed;
                record.error = Some(error.clone());
                self.ctx.log.system(error).await;
            }
            StepEnd::Canceled => {}
        }
        self.ctx.log.flush().await;
        if let Err(error) = self.ctx.store().put_step(&record).await {
            return StepEnd::Failed(format!("{name}: {error}"));
        }
        end
    }

    async fn fail(&self, error: String, started_at: Option<i64>) -> StepEnd {
        self.ctx.log.system(&error).await;
        let record = StepRecord {
            execution_id: self.ctx.execution.id.clone(),
            stage_id: self.ctx.stage_id.clone(),
            step: self.index,
            status: Status::Failed,
            started_at,
            ended_at: Some(clock::now()),
            exit_code: None,
            pgid: None,
            proc_start: None,
            interruptions: self.interruptions,
            error: Some(error.clone()),
        };
        let _ = self.ctx.store().put_step(&record).await;
        StepEnd::Failed(error)
    }
}

enum Ended {
    Exited,
    Canceled,
    TimedOut,
}

fn describe(index: i64, step: &Step) -> String {
    match &step.name {
        Some(name) => format!("step {} ({name})", index + 1),
        None => format!("step {}", index + 1),
    }
}

/// The step's directory: the workspace, or `dir` inside it (never outside).
fn working_dir(workspace: &Path, dir: Option<&str>) -> Result<PathBuf, String> {
    let Some(dir) = dir else {
        return Ok(workspace.to_owned());
    };
    let relative = Path::new(dir);
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "dir {dir:?} must be a relative path inside the workspace"
        ));
    }
    let path = workspace.join(relative);
    std::fs::create_dir_all(&path).map_err(|e| format!("cannot create dir {dir:?}: {e}"))?;
    Ok(path)
}

/// Copies a pipe into the stage log line by line, cutting over-long lines,
/// and dropping output once the step's budget is spent.
async fn pump(
    pipe: impl AsyncRead + Unpin,
    log: StageLog,
    step: i64,
    stream: LogStream,
    budget: Arc<AtomicU64>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, pipe);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        // Read at most MAX_LINE bytes: a newline-free flood cannot grow memory.
        let read = {
            let mut limited = (&mut reader).take(MAX_LINE as u64);
            limited.read_until(b'\n', &mut line).await.unwrap_or_default()
        };
        if read == 0 {
            return;
        }
        let read = read as u64;
        let left = budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                Some(left.saturating_sub(read))
            })
            .unwrap_or_default();
        if left == 0 {
            continue;
        }
        if left <= read {
            let notice = format!(
                "[log truncated: the step printed more than {} MiB; the rest is discarded]",
                MAX_STEP_LOG >> 20
            );
            log.line(step, LogStream::System, &notice).await;
            continue;
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        log.line(step, stream, &String::from_utf8_lossy(&line))
            .await;
    }
}

/// Parses `key=value` lines, and `key<<DELIMITER` … `DELIMITER` blocks for
/// multi-line values (the format GitHub Actions uses for `$GITHUB_OUTPUT`).
async fn read_outputs(path: &Path) -> Result<Map<String, Value>, String> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| e.to_string())?;
    parse_outputs(&text)
}

pub(crate) fn parse_outputs(text: &str) -> Result<Map<String, Value>, String> {
    let mut outputs = Map::new();
    let mut lines = text.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some((key, delimiter)) = line.split_once("<<")
            && !key.contains('=')
        {
            let mut value = Vec::new();
            loop {
                match lines.next() {
                    Some((_, l)) if l == delimiter => break,
                    Some((_, l)) => value.push(l),
                    None => {
                        return Err(format!(
                            "line {}: no closing {delimiter:?} for {key:?}",
                            number + 1
                        ));
                    }
                }
            }
            outputs.insert(key.trim().to_owned(), Value::String(value.join("\n")));
        } else if let Some((key, value)) = line.split_once('=') {
            outputs.insert(key.trim().to_owned(), Value::String(value.to_owned()));
        } else {
            return Err(format!(
                "line {}: expected key=value, got {line:?}",
                number + 1
            ));
        }
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests;
