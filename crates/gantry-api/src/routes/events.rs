//! Live execution events as server-sent events.
//!
//! A stream sends, in order: the current execution (event `execution`), the
//! stored log lines after the resume point (event `log`, id = seq), then live
//! stage changes (`stage`), log lines (`log`) and execution changes
//! (`execution`), and finally `end` when the execution reaches a terminal
//! status. The engine's broadcast is subscribed to *before* anything is read
//! from the store, so nothing that happens while the backlog is read is
//! missed; [`Seen`] drops what was already sent.

use std::collections::BTreeSet;
use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use gantry_engine::Event;
use gantry_store::LogLine;
use gantry_wire::Status;
use gantry_wire::executions::{EndEvent, ErrorEvent, StageEvent};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{PathParams, QueryParams};
use crate::routes::executions::{ensure_exists, ensure_stage_exists, execution_view};
use crate::views::{self, timestamp};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only this stage's log lines and status changes.
    pub stage: Option<String>,
    /// Resume after this log seq (the `Last-Event-ID` header wins).
    pub after: Option<i64>,
}

pub async fn stream(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<EventsQuery>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let events = state.engine().subscribe();
    ensure_exists(&state, &id).await?;
    if let Some(stage) = &query.stage {
        ensure_stage_exists(&state, &id, stage).await?;
    }
    let after = match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .ok_or_else(|| ApiError::invalid("Last-Event-ID must be a log seq (an integer)"))?,
        None => query.after.unwrap_or(0),
    };
    let (tx, rx) = mpsc::channel(256);
    let follower = Follower {
        state,
        id,
        stage: query.stage,
        tx,
        seen: Seen::new(after),
    };
    tokio::spawn(follower.run(events));
    Ok(Sse::new(ReceiverStream::new(rx).map(Ok)).keep_alive(KeepAlive::default()))
}

struct Follower {
    state: AppState,
    id: String,
    stage: Option<String>,
    tx: mpsc::Sender<SseEvent>,
    seen: Seen,
}

/// Why a stream stopped early: the client went away, or the store failed
/// (reported to the client as an `error` event).
enum Stop {
    ClientGone,
    Failed(ApiError),
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Stop {
        Stop::Failed(e)
    }
}

impl From<gantry_store::StoreError> for Stop {
    fn from(e: gantry_store::StoreError) -> Stop {
        Stop::Failed(e.into())
    }
}

impl Follower {
    async fn run(mut self, events: broadcast::Receiver<Event>) {
        if let Err(Stop::Failed(error)) = self.follow(events).await {
            tracing::warn!(execution = %self.id, %error, "event stream failed");
            let _ = self
                .send(
                    "error",
                    None,
                    &ErrorEvent {
                        error: error.message,
                    },
                )
                .await;
        }
    }

    async fn follow(&mut self, mut events: broadcast::Receiver<Event>) -> Result<(), Stop> {
        let status = self.send_execution().await?;
        self.catch_up().await?;
        if status.is_terminal() {
            return self.end(status).await;
        }
        let shutdown = self.state.shutdown_token().clone();
        loop {
            let event = tokio::select! {
                () = self.tx.closed() => return Err(Stop::ClientGone),
                () = shutdown.cancelled() => return Ok(()),
                event = events.recv() => event,
            };
            match event {
                Ok(Event::Log(line)) => {
                    if line.execution_id == self.id
                        && self.wants(&line.stage_id)
                        && self.seen.admit(line.seq)
                    {
                        self.send_line(line).await?;
                    }
                }
                Ok(Event::Stage {
                    execution_id,
                    stage_id,
                    status,
                    attempt,
                    at,
                }) => {
                    if execution_id == self.id && self.wants(&stage_id) {
                        let data = StageEvent {
                            execution_id,
                            stage_id,
                            status: views::status(status),
                            attempt,
                            at: timestamp(at),
                        };
                        self.send("stage", None, &data).await?;
                    }
                }
                Ok(Event::Execution { execution_id, .. }) => {
                    if execution_id == self.id {
                        let status = self.send_execution().await?;
                        if status.is_terminal() {
                            self.catch_up().await?;
                            return self.end(status).await;
                        }
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    // Lines the broadcast dropped are in the store: read them
                    // again rather than leave a gap.
                    tracing::debug!(execution = %self.id, missed, "event stream lagged; catching up from the store");
                    self.catch_up().await?;
                    let status = self.send_execution().await?;
                    if status.is_terminal() {
                        return self.end(status).await;
                    }
                }
                Err(RecvError::Closed) => return Ok(()),
            }
        }
    }

    fn wants(&self, stage: &str) -> bool {
        self.stage.as_deref().is_none_or(|wanted| wanted == stage)
    }

    /// Sends the stored lines not sent yet.
    async fn catch_up(&mut self) -> Result<(), Stop> {
        const PAGE: i64 = 1000;
        let mut after = self.seen.floor;
        loop {
            let lines = self
                .state
                .store()
                .logs(&self.id, self.stage.as_deref(), after, PAGE)
                .await?;
            let full = lines.len() as i64 == PAGE;
            for line in lines {
                after = line.seq;
                if self.seen.admit(line.seq) {
                    self.send_line(line).await?;
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    async fn send_execution(&mut self) -> Result<Status, Stop> {
        let view = execution_view(&self.state, &self.id).await?;
        let status = view.status;
        self.send("execution", None, &view).await?;
        Ok(status)
    }

    async fn send_line(&mut self, line: LogLine) -> Result<(), Stop> {
        let seq = line.seq;
        self.send("log", Some(seq), &views::log_line(line)).await
    }

    async fn end(&mut self, status: Status) -> Result<(), Stop> {
        self.send(
            "end",
            None,
            &EndEvent {
                id: self.id.clone(),
                status,
            },
        )
        .await
    }

    async fn send(&self, name: &str, id: Option<i64>, data: &impl Serialize) -> Result<(), Stop> {
        let data = serde_json::to_string(data)
            .map_err(|e| ApiError::internal(format!("cannot encode event: {e}")))?;
        let mut event = SseEvent::default().event(name).data(data);
        if let Some(id) = id {
            event = event.id(id.to_string());
        }
        self.tx.send(event).await.map_err(|_| Stop::ClientGone)
    }
}

/// The log seqs already sent. Seqs are unique but need not arrive in order
/// (on PostgreSQL a line with a lower seq can commit after one with a higher
/// seq), so the most recent [`Seen::WINDOW`] seqs are remembered individually
/// and everything at or below `floor` counts as sent.
#[derive(Debug)]
pub struct Seen {
    floor: i64,
    recent: BTreeSet<i64>,
}

impl Seen {
    pub const WINDOW: usize = 4096;

    /// Everything up to and including `after` counts as already sent.
    pub fn new(after: i64) -> Seen {
        Seen {
            floor: after,
            recent: BTreeSet::new(),
        }
    }

    /// True (and remembered) if `seq` was not sent yet.
    pub fn admit(&mut self, seq: i64) -> bool {
        if seq <= self.floor || !self.recent.insert(seq) {
            return false;
        }
        if self.recent.len() > Self::WINDOW
            && let Some(oldest) = self.recent.pop_first()
        {
            self.floor = oldest;
        }
        true
    }
}
