//! The runners holding what a stage's docker builder steps built, so that a
//! server restarted between the build and the push still knows where to push
//! the build's images from.

use crate::rows::read_error;
use crate::store::{Store, StoreError};

impl Store {
    /// Records that `runner`'s engine holds what the stage built (again: no-op).
    pub async fn add_stage_builder(
        &self,
        execution_id: &str,
        stage_id: &str,
        runner: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO stage_builders (execution_id, stage_id, runner) VALUES ($1, $2, $3)
             ON CONFLICT (execution_id, stage_id, runner) DO NOTHING",
        )
        .bind(execution_id)
        .bind(stage_id)
        .bind(runner)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Forgets `runner` as one holding the stage's builds (it was lost).
    pub async fn remove_stage_builder(
        &self,
        execution_id: &str,
        stage_id: &str,
        runner: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM stage_builders WHERE execution_id = $1 AND stage_id = $2 AND runner = $3",
        )
        .bind(execution_id)
        .bind(stage_id)
        .bind(runner)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The runners holding what the stage built, by name.
    pub async fn stage_builders(
        &self,
        execution_id: &str,
        stage_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT runner FROM stage_builders WHERE execution_id = $1 AND stage_id = $2
             ORDER BY runner",
        )
        .bind(execution_id)
        .bind(stage_id)
        .fetch_all(&self.reader)
        .await
        .map_err(read_error("stage_builders"))?;
        Ok(rows.into_iter().map(|(runner,)| runner).collect())
    }
}

impl Store {
    /// Forgets every runner holding the stage's builds (the stage ended: a
    /// stage run again starts with none).
    pub async fn forget_stage_builders(
        &self,
        execution_id: &str,
        stage_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM stage_builders WHERE execution_id = $1 AND stage_id = $2")
            .bind(execution_id)
            .bind(stage_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
