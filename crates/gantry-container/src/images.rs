//! Local images by label: listing with creation times, whether a container uses one, and
//! removing a reference. What `pruneImages` needs, without deciding what to prune.

use std::time::SystemTime;

use serde::Deserialize;

use crate::engine::ContainerEngine;
use crate::error::ContainerError;

/// An image in the engine's local storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalImage {
    /// The full image id (`sha256:…` for docker, bare hex for podman).
    pub id: String,
    /// Its tagged references (`registry/repository:tag`).
    pub tags: Vec<String>,
    pub created: SystemTime,
}

/// The fields of `image inspect` this crate reads; podman and docker agree on them.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspected {
    id: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    created: String,
}

impl ContainerEngine {
    /// Every local image carrying the label `key` (whatever its value), with its tags and
    /// creation time.
    pub async fn images_labelled(&self, key: &str) -> Result<Vec<LocalImage>, ContainerError> {
        let action = format!("images --filter label={key}");
        let filter = format!("label={key}");
        let listed = self
            .output(
                &action,
                &["images", "--quiet", "--no-trunc", "--filter", &filter],
            )
            .await?;
        let mut ids: Vec<&str> = listed
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec!["image", "inspect"];
        args.extend(&ids);
        let json = self.output("image inspect", &args).await?;
        let inspected: Vec<Inspected> =
            serde_json::from_str(&json).map_err(|e| self.error("image inspect", e))?;
        inspected
            .into_iter()
            .map(|image| {
                let created =
                    chrono::DateTime::parse_from_rfc3339(&image.created).map_err(|e| {
                        self.error(
                            "image inspect",
                            format!("image {} was created at {:?}: {e}", image.id, image.created),
                        )
                    })?;
                Ok(LocalImage {
                    id: image.id,
                    tags: image.repo_tags.unwrap_or_default(),
                    created: created.into(),
                })
            })
            .collect()
    }

    /// Whether any container, running or stopped, was created from image `id`.
    pub async fn image_in_use(&self, id: &str) -> Result<bool, ContainerError> {
        let filter = format!("ancestor={id}");
        let containers = self
            .output(
                &format!("ps --filter {filter}"),
                &["ps", "--all", "--quiet", "--filter", &filter],
            )
            .await?;
        Ok(containers.lines().any(|l| !l.trim().is_empty()))
    }

    /// Removes the reference `image` (`repository:tag`), never forcing: the image itself
    /// goes with its last reference, and an image a container uses stays (an error).
    pub async fn remove_image(&self, image: &str) -> Result<(), ContainerError> {
        self.output(&format!("rmi {image}"), &["rmi", image])
            .await
            .map(drop)
    }
}
