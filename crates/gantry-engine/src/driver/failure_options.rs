//! Spinnaker's failure options, read from the persisted records: which stages may start,
//! whether the execution stops early, and how it ends.

use gantry_store::Status;

use crate::state::ExecState;

/// Pending stages whose dependencies all finished without stopping their branch.
pub(super) fn ready_stages(state: &ExecState) -> Vec<usize> {
    (0..state.stages.len())
        .filter(|&i| state.stages[i].status == Status::Pending)
        .filter(|&i| {
            state.spec(i).depends_on.iter().all(|dep| {
                let Some(d) = state.index(dep) else {
                    return false;
                };
                let (spec, record) = (state.spec(d), &state.stages[d]);
                match record.status {
                    Status::Succeeded | Status::Skipped => true,
                    Status::Failed | Status::Canceled => spec.continue_pipeline,
                    Status::Pending | Status::Running | Status::Waiting => false,
                }
            })
        })
        .collect()
}

/// The execution stops early when a person canceled it, or when a stage
/// whose failure fails the pipeline failed (or was canceled on its own).
pub(super) fn halt(state: &ExecState) -> Option<(Status, String)> {
    if let Some(user) = &state.exec.canceled_by {
        return Some((Status::Canceled, format!("canceled by {user}")));
    }
    let stops_pipeline = |i: usize, status: Status| {
        let spec = state.spec(i);
        state.stages[i].status == status && spec.fail_pipeline && !spec.continue_pipeline
    };
    for (status, verb) in [
        (Status::Failed, "failed"),
        (Status::Canceled, "was canceled"),
    ] {
        if let Some(i) = (0..state.stages.len()).find(|&i| stops_pipeline(i, status)) {
            let error = state.stages[i]
                .error
                .as_deref()
                .unwrap_or("no reason given");
            return Some((
                status,
                format!("stage {} {verb}: {error}", state.stages[i].stage_id),
            ));
        }
    }
    None
}

pub(super) fn final_status(state: &ExecState) -> (Status, Option<String>) {
    if let Some((status, reason)) = halt(state) {
        return (status, Some(reason));
    }
    let deferred = (0..state.stages.len()).find(|&i| {
        let spec = state.spec(i);
        spec.complete_other_branches_then_fail
            && !spec.continue_pipeline
            && matches!(state.stages[i].status, Status::Failed | Status::Canceled)
    });
    match deferred {
        Some(i) => {
            let error = state.stages[i]
                .error
                .as_deref()
                .unwrap_or("no reason given");
            (
                Status::Failed,
                Some(format!(
                    "stage {} failed: {error}",
                    state.stages[i].stage_id
                )),
            )
        }
        None => (Status::Succeeded, None),
    }
}
