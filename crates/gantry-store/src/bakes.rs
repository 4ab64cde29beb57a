//! Images `bake` stages built, by the hash of their inputs.

use crate::model::Millis;
use crate::rows::{Row, read_error};
use crate::store::{Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BakeRecord {
    pub key: String,
    pub image: String,
    pub digest: String,
    pub created_at: Millis,
}

impl Store {
    /// Records a bake; a later bake of the same key replaces it.
    pub async fn put_bake(&self, bake: &BakeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO bakes (key, image, digest, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (key) DO UPDATE SET image = excluded.image, digest = excluded.digest,
                 created_at = excluded.created_at",
        )
        .bind(&bake.key)
        .bind(&bake.image)
        .bind(&bake.digest)
        .bind(bake.created_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn bake(&self, key: &str) -> Result<Option<BakeRecord>, StoreError> {
        let row = sqlx::query("SELECT key, image, digest, created_at FROM bakes WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.reader)
            .await
            .map_err(read_error("bakes"))?;
        row.as_ref()
            .map(|row| {
                let row = Row::new(row, "bakes");
                Ok(BakeRecord {
                    key: row.get("key")?,
                    image: row.get("image")?,
                    digest: row.get("digest")?,
                    created_at: row.get("created_at")?,
                })
            })
            .transpose()
    }
}
