//! `pipeline` triggers: when an execution ends, start every pipeline that waits for its
//! pipeline to end with that status. The ended execution is claimed per downstream pipeline,
//! so an ending heard twice starts nothing twice.

use futures::future::BoxFuture;
use gantry_config::Trigger;
use gantry_store::{Cause, PipelineCause, TriggerData, Upstream, UpstreamEnded};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::push::now;
use crate::{Ended, Triggers};

pub(crate) struct PipelineKind;

impl crate::kinds::TriggerKind for PipelineKind {
    fn name(&self) -> &'static str {
        "pipeline"
    }

    fn describe(&self, trigger: &Trigger) -> String {
        let Trigger::Pipeline(p) = trigger else {
            return String::new();
        };
        format!("pipeline {} ({})", p.pipeline, p.status.join("|"))
    }

    fn follow(
        &self,
        triggers: Triggers,
        shutdown: CancellationToken,
    ) -> Option<BoxFuture<'static, ()>> {
        Some(Box::pin(follow(triggers, shutdown)))
    }
}

async fn follow(triggers: Triggers, shutdown: CancellationToken) {
    let mut endings = triggers.orchestrator.endings();
    loop {
        let ended = tokio::select! {
            _ = shutdown.cancelled() => return,
            ended = endings.recv() => ended,
        };
        match ended {
            Some(ended) => triggers.execution_ended(&ended).await,
            None => return,
        }
    }
}

impl Triggers {
    async fn execution_ended(&self, ended: &Ended) {
        let (execution, upstream) = (&ended.execution, &ended.pipeline);
        let status_name = ended.status.to_string();
        for pipeline in self.pipelines().await.iter() {
            let fires = pipeline.triggers.iter().any(|t| match t {
                Trigger::Pipeline(p) => p.pipeline == *upstream && p.status.contains(&status_name),
                _ => false,
            });
            if !fires {
                continue;
            }
            let key = format!("upstream:{}:{execution}", pipeline.name);
            if !matches!(
                self.store.claim_trigger(&key, &status_name, now()).await,
                Ok(true)
            ) {
                continue;
            }
            // The downstream execution sees what started the upstream one (its commit, …).
            let mut inherited = match self.store.execution(execution).await {
                Ok(Some(record)) => match record.trigger {
                    Value::Object(map) => map,
                    _ => Default::default(),
                },
                _ => Default::default(),
            };
            // Its own `type` and `upstream` give way to the downstream's; a re-run's marks
            // stay (they are read into the typed fields beside the cause).
            inherited.remove("type");
            inherited.remove("upstream");
            let rerun_of = take_text(&mut inherited, "rerunOf");
            let rerun_by = take_text(&mut inherited, "rerunBy");
            let trigger = TriggerData {
                cause: Cause::Pipeline(PipelineCause::Upstream(UpstreamEnded {
                    upstream: Upstream {
                        pipeline: upstream.clone(),
                        execution: execution.clone(),
                        status: status_name.clone(),
                    },
                    inherited,
                })),
                rerun_of,
                rerun_by,
            };
            match self.start_execution(&pipeline.name, trigger).await {
                Ok(started) => {
                    tracing::info!(pipeline = %pipeline.name, execution = %started, %upstream, "pipeline trigger started an execution")
                }
                Err(error) => {
                    tracing::error!(pipeline = %pipeline.name, %error, "pipeline trigger cannot start the pipeline")
                }
            }
        }
    }
}

fn take_text(map: &mut serde_json::Map<String, Value>, key: &str) -> Option<String> {
    match map.remove(key)? {
        Value::String(text) => Some(text),
        other => {
            map.insert(key.to_owned(), other);
            None
        }
    }
}
