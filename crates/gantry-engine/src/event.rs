//! What the engine broadcasts as executions progress.

use gantry_store::{LogLine, Status};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Event {
    #[serde(rename_all = "camelCase")]
    Execution {
        execution_id: String,
        pipeline: String,
        status: Status,
        at: i64,
    },
    #[serde(rename_all = "camelCase")]
    Stage {
        execution_id: String,
        stage_id: String,
        status: Status,
        attempt: i64,
        at: i64,
    },
    Log(LogLine),
}

impl Event {
    pub fn execution_id(&self) -> &str {
        match self {
            Event::Execution { execution_id, .. } | Event::Stage { execution_id, .. } => {
                execution_id
            }
            Event::Log(line) => &line.execution_id,
        }
    }
}
