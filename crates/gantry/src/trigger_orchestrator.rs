//! The engine as the triggers see it ([`gantry_triggers::Orchestrator`]): the one place the
//! trigger service meets the engine, so that `gantry-triggers` depends on neither the engine
//! nor what the engine depends on.

use std::path::Path;

use futures::future::BoxFuture;
use gantry_engine::{Engine, Event, RunRequest};
use gantry_triggers::{Ended, Orchestrator, SecretError, StartError, StartRequest};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

/// How many endings may wait for the `pipeline` triggers before the engine's events queue.
const ENDINGS_QUEUE: usize = 1024;

pub struct EngineOrchestrator(pub Engine);

impl Orchestrator for EngineOrchestrator {
    fn start(&self, request: StartRequest) -> BoxFuture<'_, Result<String, StartError>> {
        Box::pin(async move {
            let request = RunRequest {
                pipeline: request.pipeline,
                parameters: request.parameters,
                trigger: request.trigger,
                spec: request.spec,
            };
            self.0
                .run(request)
                .await
                .map(|execution| execution.id)
                .map_err(|error| StartError(error.to_string()))
        })
    }

    fn endings(&self) -> mpsc::Receiver<Ended> {
        let (sender, receiver) = mpsc::channel(ENDINGS_QUEUE);
        let mut events = self.0.subscribe();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(Event::Execution {
                        execution_id,
                        pipeline,
                        status,
                        ..
                    }) if status.is_terminal() => {
                        let ended = Ended {
                            execution: execution_id,
                            pipeline,
                            status,
                        };
                        if sender.send(ended).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "pipeline triggers fell behind the engine's events")
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        receiver
    }

    fn secret<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<String>, SecretError>> {
        Box::pin(async move {
            let store = self.0.secrets().ok_or(SecretError::NoStore)?;
            store
                .get(name)
                .await
                .map_err(|error| SecretError::Unreadable(error.to_string()))
        })
    }

    fn data_dir(&self) -> &Path {
        self.0.data_dir()
    }
}
