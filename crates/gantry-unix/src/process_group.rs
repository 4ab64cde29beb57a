//! Process groups: a step or an instance runs in its own group so that
//! cancel, timeout and crash recovery stop everything it started, not only
//! its first process. A pid alone may be reused after a restart, so a
//! process is recognised by its pid and its start time together.

use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Identifies a process across restarts of Gantry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: i32,
    /// Start time in clock ticks since boot (field 22 of /proc/PID/stat).
    pub start: i64,
}

impl ProcessId {
    /// The process `pid` as it is now; `None` if there is none.
    pub fn of(pid: i32) -> Option<ProcessId> {
        let stat = ProcStat::read(pid)?;
        Some(ProcessId {
            pid,
            start: stat.start,
        })
    }
}

/// The process group led by a process we started with its own group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessGroup(pub i32);

impl ProcessGroup {
    /// Sends `signal` to every process of the group; false if the group is
    /// gone.
    pub fn signal(self, signal: Signal) -> bool {
        killpg(Pid::from_raw(self.0), signal).is_ok()
    }

    /// SIGKILL to every process of the group (stragglers: the main process
    /// has ended, or is being stopped).
    pub fn kill(self) {
        self.signal(Signal::SIGKILL);
    }

    /// SIGTERM, then SIGKILL after `grace` if anything in the group is
    /// still alive.
    pub async fn terminate(self, grace: Duration) {
        if !self.signal(Signal::SIGTERM) {
            return; // No such group left.
        }
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline {
            if !self.alive() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill();
    }

    /// Whether a process of the group is alive: signal 0 checks existence,
    /// but a group of zombies still answers, so a member that is not a
    /// zombie is looked for too.
    pub fn alive(self) -> bool {
        if killpg(Pid::from_raw(self.0), None).is_err() {
            return false;
        }
        members(self.0, 0)
            .into_iter()
            .any(|pid| ProcStat::read(pid).is_some_and(|s| s.state != 'Z'))
    }

    /// Kills what a previous Gantry process left of the group `leader`
    /// started: the processes still in that group that started at or after
    /// the leader did (so a reused pid's unrelated group is never touched).
    /// Returns how many were killed.
    pub fn kill_leftovers_of(leader: ProcessId) -> usize {
        let victims = members(leader.pid, leader.start);
        for &pid in &victims {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        victims.len()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[tokio::test]
    async fn terminating_a_group_stops_the_children_its_leader_started() {
        let mut leader = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let group = ProcessGroup(leader.id() as i32);
        let started = std::time::Instant::now();
        while members(group.0, 0).len() < 3 && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(members(group.0, 0).len(), 3, "the shell and its two sleeps");
        group.terminate(Duration::from_secs(2)).await;
        let _ = leader.wait();
        assert!(!group.alive());
    }

    #[test]
    fn a_process_is_known_by_its_pid_and_start_time() {
        let me = ProcessId::of(std::process::id() as i32).unwrap();
        assert_eq!(ProcessId::of(me.pid), Some(me));
        assert!(me.start > 0);
    }
}
