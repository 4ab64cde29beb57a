//! One deploy at a time per cluster. A deploy stage claims its cluster in the store
//! (`Store::claim_cluster`) before it reads the cluster's groups, and waits while another
//! execution's deploy holds it: two rollouts on one cluster would split its traffic between
//! two canaries. The claim is a row, so it holds across a restart of this server and across
//! servers sharing a database; a stage that says `overlap: true` does not claim.

use std::time::Duration;

use gantry_store::ClusterClaim;

use super::super::StageContext;

/// How often a waiting deploy tries the claim again.
const RETRY: Duration = Duration::from_millis(500);

/// Why a deploy could not take its cluster.
#[derive(Debug, thiserror::Error)]
pub(super) enum ClaimError {
    #[error("canceled while waiting for cluster {0}")]
    Canceled(String),
    #[error("cannot claim cluster {cluster}: {source}")]
    Store {
        cluster: String,
        source: gantry_store::StoreError,
    },
}

/// Waits until this stage holds `cluster`, saying once in the stage's log which deploy it
/// waits for.
pub(super) async fn take_cluster(ctx: &StageContext, cluster: &str) -> Result<(), ClaimError> {
    let mut told = None;
    loop {
        let claim = ctx
            .store()
            .claim_cluster(
                cluster,
                &ctx.execution_id,
                &ctx.stage_id,
                crate::clock::now(),
            )
            .await
            .map_err(|source| ClaimError::Store {
                cluster: cluster.to_owned(),
                source,
            })?;
        match claim {
            ClusterClaim::Taken => return Ok(()),
            ClusterClaim::HeldBy { execution, stage } => {
                let note = if execution == ctx.execution_id {
                    format!(
                        "waiting for the deploy of cluster {cluster} by stage {stage} of this execution to finish"
                    )
                } else {
                    format!(
                        "waiting for the deploy of cluster {cluster} by execution {execution} to finish"
                    )
                };
                if told.as_ref() != Some(&note) {
                    ctx.log.system(&note).await;
                    told = Some(note);
                }
            }
        }
        tokio::select! {
            _ = ctx.cancel.cancelled() => return Err(ClaimError::Canceled(cluster.to_owned())),
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

/// Gives the cluster back; a failure is only logged, as the claim is freed anyway once the
/// execution ends.
pub(super) async fn release_cluster(ctx: &StageContext, cluster: &str) {
    if let Err(error) = ctx
        .store()
        .release_cluster(cluster, &ctx.execution_id, &ctx.stage_id)
        .await
    {
        ctx.log
            .system(&format!("cannot release cluster {cluster}: {error}"))
            .await;
    }
}
