//! Step output on its way to the store: masked, batched, persisted, then
//! broadcast.
//!
//! One writer task owns the path to the store so that lines get their `seq`
//! in the order they were produced. The channel into it is bounded: a step
//! printing faster than the database can take it is slowed down (its pipe
//! fills), which keeps the server's memory flat whatever a step prints.

use std::sync::Arc;
use std::time::Duration;

use gantry_store::{LogLine, LogStream, NewLogLine, Store};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::clock;
use crate::event::Event;

/// Lines are stored in batches of at most this many.
const BATCH: usize = 1000;
/// How long the writer waits for a batch to fill before storing what it has.
const LINGER: Duration = Duration::from_millis(15);
/// Lines longer than this are cut, with a marker.
pub(crate) const MAX_LINE: usize = 16 * 1024;

enum Message {
    Line(NewLogLine),
    Flush(oneshot::Sender<()>),
}

/// Where stages send their log lines. Cheap to clone.
#[derive(Clone)]
pub(crate) struct LogSink {
    tx: mpsc::Sender<Message>,
}

impl LogSink {
    pub(crate) fn start(store: Store, events: broadcast::Sender<Event>) -> LogSink {
        let (tx, rx) = mpsc::channel(8 * BATCH);
        tokio::spawn(write_loop(store, events, rx));
        LogSink { tx }
    }

    pub(crate) async fn write(&self, line: NewLogLine) {
        // The writer only stops when the engine is dropped; nothing to do then.
        let _ = self.tx.send(Message::Line(line)).await;
    }

    /// Returns once every line sent before it is stored.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(
    store: Store,
    events: broadcast::Sender<Event>,
    mut rx: mpsc::Receiver<Message>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    while let Some(first) = rx.recv().await {
        take(first, &mut batch, &mut flushes);
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH && flushes.is_empty() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(message)) => take(message, &mut batch, &mut flushes),
                Ok(None) | Err(_) => break,
            }
        }
        if !batch.is_empty() {
            store_batch(&store, &events, &mut batch).await;
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

fn take(message: Message, batch: &mut Vec<NewLogLine>, flushes: &mut Vec<oneshot::Sender<()>>) {
    match message {
        Message::Line(line) => batch.push(line),
        Message::Flush(done) => flushes.push(done),
    }
}

async fn store_batch(
    store: &Store,
    events: &broadcast::Sender<Event>,
    batch: &mut Vec<NewLogLine>,
) {
    let mut result = store.append_logs(batch).await;
    if result.is_err() {
        // One retry covers a passing lock or a dropped connection.
        tokio::time::sleep(Duration::from_millis(200)).await;
        result = store.append_logs(batch).await;
    }
    match result {
        Ok(seqs) => {
            for (line, seq) in batch.drain(..).zip(seqs) {
                let _ = events.send(Event::Log(LogLine {
                    seq,
                    execution_id: line.execution_id,
                    stage_id: line.stage_id,
                    step: line.step,
                    ts: line.ts,
                    stream: line.stream,
                    line: line.line,
                }));
            }
        }
        Err(error) => {
            tracing::error!(%error, lines = batch.len(), "log lines could not be stored");
            batch.clear();
        }
    }
}

/// Replaces secret values with `***` in everything a stage logs. Clones
/// share their values: one execution's stages all hold its masker, so a
/// value one stage learns of ([`Masker::add`]) is masked in every stage's
/// log from then on.
#[derive(Clone, Debug, Default)]
pub struct Masker {
    secrets: Arc<std::sync::RwLock<Arc<Vec<String>>>>,
}

impl Masker {
    /// Very short values would mask half of every log; they are not masked
    /// (and a secret that short is not a secret worth the name).
    const MIN_SECRET_LEN: usize = 3;

    #[cfg(test)]
    pub(crate) fn new(secrets: impl IntoIterator<Item = String>) -> Masker {
        let masker = Masker::default();
        masker.add(secrets);
        masker
    }

    /// Masks `more` too, in this masker and every clone of it.
    pub fn add(&self, more: impl IntoIterator<Item = String>) {
        let more: Vec<String> = more
            .into_iter()
            .filter(|s| s.len() >= Self::MIN_SECRET_LEN)
            .collect();
        let mut secrets = self.secrets.write().unwrap_or_else(|e| e.into_inner());
        if more.iter().all(|s| secrets.contains(s)) {
            return;
        }
        let mut all: Vec<String> = secrets.iter().cloned().chain(more).collect();
        // Longest first, so that a secret containing another is masked whole.
        all.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        all.dedup();
        *secrets = Arc::new(all);
    }

    pub fn mask(&self, text: &str) -> String {
        // A snapshot: the lock is not held while replacing.
        let secrets = self
            .secrets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut text = text.to_owned();
        for secret in secrets.iter() {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "***");
            }
        }
        text
    }

    /// Whether `text` holds any of the secrets (a step output that must be
    /// sealed before it is stored).
    pub fn reveals(&self, text: &str) -> bool {
        let secrets = self
            .secrets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        secrets.iter().any(|secret| text.contains(secret.as_str()))
    }
}

/// A stage's writer: tags lines with the execution, stage and step.
#[derive(Clone)]
pub struct StageLog {
    pub(crate) sink: LogSink,
    pub masker: Masker,
    pub(crate) execution_id: String,
    pub(crate) stage_id: String,
}

impl StageLog {
    pub async fn line(&self, step: i64, stream: LogStream, text: &str) {
        let mut text = self.masker.mask(text);
        if text.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str(" [line truncated]");
        }
        self.sink
            .write(NewLogLine {
                execution_id: self.execution_id.clone(),
                stage_id: self.stage_id.clone(),
                step,
                ts: clock::now(),
                stream,
                line: text,
            })
            .await;
    }

    /// A line from Gantry itself (retries, interruptions, timeouts).
    pub async fn system(&self, text: &str) {
        self.line(-1, LogStream::System, text).await;
    }

    pub async fn flush(&self) {
        self.sink.flush().await;
    }
}

#[cfg(test)]
mod tests;
