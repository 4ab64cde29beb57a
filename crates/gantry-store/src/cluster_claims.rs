//! Cluster claims: a deploy stage takes its cluster before it reads it and gives it back when
//! it ends, so two rollouts never share one cluster's traffic. The claim is a row, not a lock
//! in one process: it holds across a restart and across servers sharing a database.

use crate::concurrency::terminal_statuses_sql;
use crate::model::Millis;
use crate::store::{Store, StoreError};

/// What claiming a cluster gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterClaim {
    /// The stage took the cluster now, or held it already (before a restart).
    Taken,
    /// Another deploy, of a stage that has not ended, holds it.
    HeldBy { execution: String, stage: String },
}

impl Store {
    /// Claims `cluster` for the deploy stage `stage` of `execution`. Claims of executions that
    /// have ended are freed first, in the same transaction.
    pub async fn claim_cluster(
        &self,
        cluster: &str,
        execution: &str,
        stage: &str,
        now: Millis,
    ) -> Result<ClusterClaim, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(&format!(
            "DELETE FROM cluster_claims WHERE cluster = $1 AND execution_id NOT IN
                 (SELECT id FROM executions WHERE status NOT IN ({}))",
            terminal_statuses_sql()
        ))
        .bind(cluster)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO cluster_claims (cluster, execution_id, stage_id, claimed_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(cluster)
        .bind(execution)
        .bind(stage)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let (holder, holder_stage): (String, String) =
            sqlx::query_as("SELECT execution_id, stage_id FROM cluster_claims WHERE cluster = $1")
                .bind(cluster)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        if holder == execution && holder_stage == stage {
            Ok(ClusterClaim::Taken)
        } else {
            Ok(ClusterClaim::HeldBy {
                execution: holder,
                stage: holder_stage,
            })
        }
    }

    /// Gives `cluster` back, if the stage `stage` of `execution` holds it.
    pub async fn release_cluster(
        &self,
        cluster: &str,
        execution: &str,
        stage: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM cluster_claims WHERE cluster = $1 AND execution_id = $2 AND stage_id = $3",
        )
        .bind(cluster)
        .bind(execution)
        .bind(stage)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
