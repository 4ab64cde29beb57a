//! Restarting a failed or canceled stage and what depends on it.

use gantry_store::{Status, Store};

use crate::error::EngineError;
use crate::state::{ExecState, Execution};

/// Resets a failed or canceled stage and everything downstream of it to
/// pending, and reopens the execution.
pub(crate) async fn restart(
    execution: &Execution,
    store: &Store,
    stage: &str,
) -> Result<(), EngineError> {
    let reset = {
        let state = execution.read().await;
        let index = state.index(stage).ok_or_else(|| EngineError::NotFound {
            kind: "stage",
            id: stage.to_owned(),
        })?;
        let status = state.stages[index].status;
        if !matches!(status, Status::Failed | Status::Canceled) {
            return Err(EngineError::Invalid(format!(
                "stage {stage} is {status}: only a failed or canceled stage can be restarted"
            )));
        }
        let reset = downstream(&state, index);
        if let Some(&busy) = reset
            .iter()
            .find(|&&i| matches!(state.stages[i].status, Status::Running | Status::Waiting))
        {
            return Err(EngineError::Invalid(format!(
                "stage {} downstream of {stage} is still {}",
                state.stages[busy].stage_id, state.stages[busy].status
            )));
        }
        reset
    };
    // Steps first: a crash between the two leaves terminal stages with no
    // steps, which is harmless; the reverse would skip steps on resume.
    for &i in &reset {
        let stage_id = execution.read().await.stages[i].stage_id.clone();
        store.clear_steps(&execution.id, &stage_id).await?;
    }
    execution
        .update(|c| {
            for &i in &reset {
                let record = c.stage(i);
                record.status = Status::Pending;
                record.started_at = None;
                record.ended_at = None;
                record.error = None;
                record.outputs = serde_json::json!({});
                record.state = serde_json::json!({});
            }
            let exec = &mut c.state.exec;
            exec.status = Status::Running;
            exec.ended_at = None;
            exec.error = None;
            exec.canceled_by = None;
        })
        .await
}

/// The stage and every stage that depends on it, directly or not.
pub(super) fn downstream(state: &ExecState, index: usize) -> Vec<usize> {
    let mut found = vec![index];
    let mut at = 0;
    while at < found.len() {
        let id = &state.stages[found[at]].stage_id;
        for i in 0..state.stages.len() {
            if !found.contains(&i) && state.spec(i).depends_on.contains(id) {
                found.push(i);
            }
        }
        at += 1;
    }
    found
}
