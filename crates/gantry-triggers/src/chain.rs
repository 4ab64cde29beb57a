//! `pipeline` triggers: when an execution ends, start every pipeline that waits for its
//! pipeline to end with that status. The ended execution is claimed per downstream pipeline,
//! so an event seen twice starts nothing twice.

use gantry_config::Trigger;
use gantry_engine::{Event, RunRequest};
use gantry_store::Status;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::Triggers;
use crate::push::now;

pub(crate) async fn follow(triggers: Triggers, shutdown: CancellationToken) {
    let mut events = triggers.engine.subscribe();
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(Event::Execution {
                execution_id,
                pipeline,
                status,
                ..
            }) if status.is_terminal() => {
                triggers
                    .execution_ended(&execution_id, &pipeline, status)
                    .await;
            }
            Ok(_) => {}
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "pipeline triggers fell behind the engine's events")
            }
            Err(RecvError::Closed) => return,
        }
    }
}

impl Triggers {
    async fn execution_ended(&self, execution: &str, upstream: &str, status: Status) {
        let status_name = status.to_string();
        for pipeline in self.pipelines().await {
            let fires = pipeline.triggers.iter().any(|t| match t {
                Trigger::Pipeline(p) => p.pipeline == upstream && p.status.contains(&status_name),
                _ => false,
            });
            if !fires {
                continue;
            }
            let key = format!("upstream:{}:{execution}", pipeline.name);
            if !matches!(
                self.engine
                    .store()
                    .claim_trigger(&key, &status_name, now())
                    .await,
                Ok(true)
            ) {
                continue;
            }
            // The downstream execution sees what started the upstream one (its commit, …).
            let upstream_trigger = match self.engine.store().execution(execution).await {
                Ok(Some(record)) => record.trigger,
                _ => json!({}),
            };
            let mut trigger = match upstream_trigger {
                serde_json::Value::Object(map) => map,
                _ => Default::default(),
            };
            trigger.insert("type".into(), json!("pipeline"));
            trigger.insert(
                "upstream".into(),
                json!({"pipeline": upstream, "execution": execution, "status": status_name}),
            );
            let request = RunRequest {
                pipeline: pipeline.name.clone(),
                parameters: Default::default(),
                trigger: serde_json::Value::Object(trigger),
                spec: None,
            };
            match self.engine.run(request).await {
                Ok(exec) => {
                    tracing::info!(pipeline = %pipeline.name, execution = %exec.id, %upstream, "pipeline trigger started an execution")
                }
                Err(error) => {
                    tracing::error!(pipeline = %pipeline.name, %error, "pipeline trigger cannot start the pipeline")
                }
            }
        }
    }
}
