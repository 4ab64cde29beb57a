//! What the deploy stage types share: the controller from the engine's
//! configuration, and progress notes streamed into the stage log while a
//! deploy runs.

use std::future::Future;
use std::sync::Arc;

use gantry_deploy::DeployController;

use super::{StageContext, StageFailure};

pub(super) fn controller(ctx: &StageContext) -> Result<DeployController, StageFailure> {
    ctx.deploy_controller().cloned().ok_or_else(|| {
        StageFailure::Failed(
            "this server has no deploy controller (deploy stages need `gantry serve`)".into(),
        )
    })
}

pub(super) type ProgressFn = Arc<dyn Fn(String) + Send + Sync>;

/// Runs `work`, writing every progress note to the stage log as it comes.
pub(super) async fn run_with_progress<F, Fut, T>(ctx: &StageContext, work: F) -> T
where
    F: FnOnce(ProgressFn) -> Fut,
    Fut: Future<Output = T>,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let progress: ProgressFn = Arc::new(move |line: String| {
        let _ = tx.send(line);
    });
    let work = work(progress);
    tokio::pin!(work);
    loop {
        tokio::select! {
            result = &mut work => {
                while let Ok(line) = rx.try_recv() {
                    ctx.log.system(&line).await;
                }
                return result;
            }
            Some(line) = rx.recv() => ctx.log.system(&line).await,
        }
    }
}

/// The `clusterSize` precondition: the number of live server groups of a
/// cluster compared with the expected count.
pub(super) async fn check_cluster_size(
    ctx: &StageContext,
    spec: &gantry_config::ClusterSizePrecondition,
) -> Result<(), String> {
    let deploy =
        controller(ctx).map_err(|_| "clusterSize needs the deploy controller".to_owned())?;
    let snapshot = deploy.snapshot().await.map_err(|e| e.to_string())?;
    let actual = snapshot.cluster(&spec.cluster).len() as u32;
    let comparison = spec.comparison.unwrap_or_default();
    if comparison.holds(actual, spec.expected) {
        Ok(())
    } else {
        Err(format!(
            "cluster {:?} has {actual} server groups, expected {} {}",
            spec.cluster,
            comparison.symbol(),
            spec.expected
        ))
    }
}
