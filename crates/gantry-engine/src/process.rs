//! Processes of host steps: each runs in its own process group so that
//! cancel, timeout and crash recovery can stop everything it started. The
//! calls themselves are `gantry-unix`'s; this module holds the engine's
//! choice of grace.

use std::time::Duration;

use gantry_unix::ProcessGroup;
pub(crate) use gantry_unix::ProcessId;

/// How long a process group gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_millis(1000);

/// Sends SIGTERM to the group, then SIGKILL after `grace` if anything in it
/// is still alive.
pub async fn terminate_group(pgid: i32, grace: Duration) {
    ProcessGroup(pgid).terminate(grace).await;
}

/// SIGKILL to every process of the group (they are stragglers: the step's
/// main process has ended, or is being stopped).
pub(crate) fn kill_group(pgid: i32) {
    ProcessGroup(pgid).kill();
}

/// Kills what a previous Gantry process left of a step: the processes
/// still in the group `leader` started that started after it did.
pub(crate) fn kill_orphans(leader: ProcessId) -> usize {
    ProcessGroup::kill_leftovers_of(leader)
}
