//! A step's output: its pipes copied line by line, and the
//! `key=value` lines it leaves in `$GANTRY_OUTPUT`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gantry_store::LogStream;
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

use crate::logs::{MAX_LINE, StageLog};

/// Output beyond this many bytes per step is dropped, with a notice.
pub const MAX_STEP_LOG: u64 = 256 * 1024 * 1024;

/// Where [`pump`] sends lines: the stage log itself (a bake's build), or a
/// step handle's channel (see `crate::executor`).
pub trait LineSink: Send + Sync + 'static {
    fn line(
        &self,
        step: i64,
        stream: LogStream,
        text: &str,
    ) -> impl std::future::Future<Output = ()> + Send;
}

impl LineSink for StageLog {
    async fn line(&self, step: i64, stream: LogStream, text: &str) {
        StageLog::line(self, step, stream, text).await
    }
}

impl LineSink for tokio::sync::mpsc::Sender<crate::executor::LogLine> {
    async fn line(&self, _step: i64, stream: LogStream, text: &str) {
        let line = crate::executor::LogLine {
            stream,
            text: text.to_owned(),
        };
        // A receiver gone means nobody reads the step's output any more.
        let _ = self.send(line).await;
    }
}

/// Copies a pipe into `log` line by line, cutting over-long lines, and
/// dropping output once the step's budget is spent.
pub async fn pump(
    pipe: impl AsyncRead + Unpin,
    log: impl LineSink,
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
            limited
                .read_until(b'\n', &mut line)
                .await
                .unwrap_or_default()
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
///
/// The file is in the stage's run directory, which the step can write: it is read beneath
/// that directory (`crate::workspace_files`), so a step that replaced it with a link to one
/// of the server's files gets an error naming the link, never the file's content.
pub async fn read_outputs(path: &Path) -> Result<Map<String, Value>, OutputsError> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(OutputsError::NotAFileName(path.to_owned()));
    };
    let (dir, name) = (dir.to_owned(), name.to_string_lossy().into_owned());
    let text = tokio::task::spawn_blocking(move || {
        crate::workspace_files::Beneath::run_dir(&dir)?.read_to_string(&name, MAX_OUTPUTS)
    })
    .await
    .map_err(OutputsError::Task)?
    .map_err(OutputsError::Read)?;
    parse_outputs(&text)
}

/// A `$GANTRY_OUTPUT` file larger than this is refused.
const MAX_OUTPUTS: u64 = 64 << 20;

/// Why a step's `$GANTRY_OUTPUT` file gave no outputs; `line` counts from 1.
#[derive(Debug, thiserror::Error)]
pub enum OutputsError {
    #[error("{} is not a file name", .0.display())]
    NotAFileName(std::path::PathBuf),
    /// The blocking read was aborted or panicked.
    #[error("{0}")]
    Task(tokio::task::JoinError),
    #[error("{0}")]
    Read(crate::workspace_files::WorkspaceFileError),
    /// What a runner said of the step's outputs.
    #[error("{0}")]
    Remote(String),
    #[error("line {line}: no closing {delimiter:?} for {key:?}")]
    Unclosed {
        line: usize,
        delimiter: String,
        key: String,
    },
    #[error("line {line}: expected key=value, got {text:?}")]
    NotKeyValue { line: usize, text: String },
}

pub fn parse_outputs(text: &str) -> Result<Map<String, Value>, OutputsError> {
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
                        return Err(OutputsError::Unclosed {
                            line: number + 1,
                            delimiter: delimiter.to_owned(),
                            key: key.to_owned(),
                        });
                    }
                }
            }
            outputs.insert(key.trim().to_owned(), Value::String(value.join("\n")));
        } else if let Some((key, value)) = line.split_once('=') {
            outputs.insert(key.trim().to_owned(), Value::String(value.to_owned()));
        } else {
            return Err(OutputsError::NotKeyValue {
                line: number + 1,
                text: line.to_owned(),
            });
        }
    }
    Ok(outputs)
}
