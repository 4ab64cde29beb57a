//! Streams one job's `output.log` to the server, in order, from the last
//! line the server acknowledged.
//!
//! The file is the buffer: the agent holds one batch in memory at most
//! ([`MAX_BATCH_LINES`], [`MAX_BATCH_BYTES`]), a slow or absent server
//! costs disk rather than memory, and an agent restarted mid-job starts
//! again from wherever the server says it is (its answer to a batch that
//! starts before its acknowledged line carries that line's number).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::connection::{CallError, Connection};
use crate::protocol::{LogBatch, MAX_BATCH_BYTES, MAX_BATCH_LINES};

/// How often the file is looked at for new lines while the job runs.
const IDLE: Duration = Duration::from_millis(20);

/// Why a stream ended early.
#[derive(Debug)]
pub(crate) enum StreamEnd {
    /// Everything the job printed is the server's.
    Complete,
    /// The job was canceled or the agent is stopping.
    Stopped,
    /// The server does not count the lease as ours any more.
    LeaseGone,
    Refused(String),
}

pub(crate) struct LogStream {
    pub(crate) connection: Arc<Connection>,
    pub(crate) lease_id: String,
    pub(crate) path: PathBuf,
    /// Fired once the job will print nothing more.
    pub(crate) output_done: CancellationToken,
    pub(crate) stop: CancellationToken,
    /// The lines the server has, for heartbeats.
    pub(crate) acked: Arc<AtomicU64>,
}

/// One line read from the file, with the byte offset just past it.
pub(super) struct Line {
    pub(super) text: String,
    pub(super) end: u64,
}

impl LogStream {
    pub(crate) async fn run(self) -> StreamEnd {
        // Line `acked` starts at byte `offset`.
        let mut acked: u64 = 0;
        let mut offset: u64 = 0;
        let mut backoff = Backoff::new();
        loop {
            if self.stop.is_cancelled() {
                return StreamEnd::Stopped;
            }
            // Looked at before reading, so lines written before the job
            // ended are read in this round.
            let finished = self.output_done.is_cancelled();
            let lines = match read_batch(&self.path, offset, finished) {
                Ok(lines) => lines,
                Err(error) => {
                    tracing::error!(path = %self.path.display(), %error, "cannot read the job's output");
                    Vec::new()
                }
            };
            if lines.is_empty() {
                if finished {
                    return StreamEnd::Complete;
                }
                tokio::select! {
                    () = tokio::time::sleep(IDLE) => {}
                    () = self.stop.cancelled() => return StreamEnd::Stopped,
                    () = self.output_done.cancelled() => {}
                }
                continue;
            }
            let batch = LogBatch {
                lease_id: self.lease_id.clone(),
                first: acked,
                lines: lines.iter().map(|l| l.text.clone()).collect(),
            };
            match self.connection.logs(&batch).await {
                Ok(answer) => {
                    backoff.reset();
                    let sent = lines.len() as u64;
                    if answer.acked > acked && answer.acked <= acked + sent {
                        offset = lines[(answer.acked - acked - 1) as usize].end;
                        acked = answer.acked;
                    } else if answer.acked > acked + sent {
                        // The server is further on (a restarted agent): skip.
                        offset = lines[lines.len() - 1].end;
                        acked += sent;
                    } else if answer.acked < acked {
                        // The server has less than it acknowledged before:
                        // read again from the top.
                        acked = 0;
                        offset = 0;
                    }
                    self.acked.store(acked, Ordering::Relaxed);
                }
                Err(CallError::Unreachable(error)) => {
                    let wait = backoff.next_wait();
                    tracing::warn!(lease = %self.lease_id, %error, ?wait, "cannot send log lines; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = self.stop.cancelled() => return StreamEnd::Stopped,
                    }
                }
                Err(CallError::LeaseGone(_)) => return StreamEnd::LeaseGone,
                Err(CallError::Refused(message)) => return StreamEnd::Refused(message),
                Err(CallError::Rejected(error)) => {
                    tracing::error!(lease = %self.lease_id, %error, "log lines rejected");
                    return StreamEnd::LeaseGone;
                }
            }
        }
    }
}

/// The whole lines from `offset` on, at most one batch; with `finished`, a
/// last line without its newline too. A line longer than a batch is cut.
pub(super) fn read_batch(path: &Path, offset: u64, finished: bool) -> std::io::Result<Vec<Line>> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(offset))?;
    let mut buffer = Vec::with_capacity(64 << 10);
    file.take(MAX_BATCH_BYTES as u64).read_to_end(&mut buffer)?;
    let mut lines = Vec::new();
    let mut start = 0;
    while lines.len() < MAX_BATCH_LINES {
        match buffer[start..].iter().position(|&b| b == b'\n') {
            Some(at) => {
                let end = start + at;
                lines.push(Line {
                    text: String::from_utf8_lossy(&buffer[start..end]).into_owned(),
                    end: offset + end as u64 + 1,
                });
                start = end + 1;
            }
            None => {
                let rest = &buffer[start..];
                let at_end_of_file = buffer.len() < MAX_BATCH_BYTES;
                let cut = rest.len() == MAX_BATCH_BYTES;
                if !rest.is_empty() && ((finished && at_end_of_file) || cut) {
                    lines.push(Line {
                        text: String::from_utf8_lossy(rest).into_owned(),
                        end: offset + buffer.len() as u64,
                    });
                }
                break;
            }
        }
    }
    Ok(lines)
}
