//! Processes of host steps: each runs in its own process group so that
//! cancel, timeout and crash recovery can stop everything it started.

use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// How long a process group gets between SIGTERM and SIGKILL.
pub(crate) const GRACE: Duration = Duration::from_millis(1000);

/// Identifies a process across restarts of Gantry: a pid alone may be reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcessId {
    pub(crate) pid: i32,
    /// Start time in clock ticks since boot (field 22 of /proc/PID/stat).
    pub(crate) start: i64,
}

impl ProcessId {
    pub(crate) fn of(pid: i32) -> Option<ProcessId> {
        let stat = ProcStat::read(pid)?;
        Some(ProcessId {
            pid,
            start: stat.start,
        })
    }
}

/// Sends SIGTERM to the group, then SIGKILL after `grace` if anything in it
/// is still alive.
pub(crate) async fn terminate_group(pgid: i32, grace: Duration) {
    if killpg(Pid::from_raw(pgid), Signal::SIGTERM).is_err() {
        return; // No such group left.
    }
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        if !group_alive(pgid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill_group(pgid);
}

/// SIGKILL to every process of the group (they are stragglers: the step's
/// main process has ended, or is being stopped).
pub(crate) fn kill_group(pgid: i32) {
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
}

fn group_alive(pgid: i32) -> bool {
    // Signal 0 checks existence; a group of zombies still answers, so also
    // look for a member that is not a zombie.
    if killpg(Pid::from_raw(pgid), None).is_err() {
        return false;
    }
    members(pgid, 0)
        .into_iter()
        .any(|pid| ProcStat::read(pid).is_some_and(|s| s.state != 'Z'))
}

/// Kills what a previous Gantry process left of a step: the group `leader`
/// started, if the leader is still the same process, or else the processes
/// still in that group that started after it did.
pub(crate) fn kill_orphans(leader: ProcessId) -> usize {
    let victims = members(leader.pid, leader.start);
    for &pid in &victims {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    victims.len()
}

/// Processes in group `pgid` that started at or after `not_before` ticks.
fn members(pgid: i32, not_before: i64) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            ProcStat::read(pid).is_some_and(|stat| stat.pgrp == pgid && stat.start >= not_before)
        })
        .collect()
}

struct ProcStat {
    state: char,
    pgrp: i32,
    start: i64,
}

impl ProcStat {
    fn read(pid: i32) -> Option<ProcStat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) is in parentheses and may contain spaces
        // or parentheses itself: parse from the last ')'.
        let rest = &text[text.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3 (state): field N is at index N - 3.
        Some(ProcStat {
            state: fields.first()?.chars().next()?,
            pgrp: fields.get(5 - 3)?.parse().ok()?,
            start: fields.get(22 - 3)?.parse().ok()?,
        })
    }
}
