//! `pruneImages`: removes the images Gantry built (those `bake` labels with
//! `io.gantry.built`) of one repository, oldest first, until the newest `keep` are left.
//! Nothing else on the host is touched: an image without the label, or without a tag of
//! exactly this repository, is not looked at; an image a container uses is skipped, never
//! forced; and removing a reference only untags an image that other repositories still name.

use gantry_config::PruneImagesStage;
use gantry_config::stages::prune_images::PruneImages;
use gantry_container::{ContainerEngine, LocalImage, labels};
use serde_json::{Map, Value};

use super::{StageContext, StageFailure, StageResult, StageRunner};

impl StageRunner for PruneImages {
    async fn run(ctx: &StageContext, spec: &PruneImagesStage) -> StageResult {
        let Some(engine) = ctx.containers() else {
            return Err(failed(
                spec,
                "no container engine is installed (podman or docker)",
            ));
        };
        let images = engine
            .images_labelled(labels::BUILT)
            .await
            .map_err(|e| failed(spec, e))?;
        let mut removed = Vec::new();
        let mut removed_ids = Vec::new();
        for image in older_than_newest(images, &spec.repository, spec.keep as usize) {
            if ctx.cancel.is_cancelled() {
                return Err(StageFailure::Canceled(ctx.cancel_reason().await));
            }
            match remove(ctx, engine, &image).await {
                Ok(true) => {
                    removed.extend(image.tags.iter().cloned().map(Value::String));
                    removed_ids.push(Value::String(image.id));
                }
                Ok(false) => {}
                Err(error) => return Err(failed(spec, error)),
            }
        }
        ctx.log
            .system(&format!(
                "removed {} image(s) of {}, kept the newest {}",
                removed_ids.len(),
                spec.repository,
                spec.keep
            ))
            .await;
        let mut outputs = Map::new();
        outputs.insert("removed".into(), Value::Array(removed));
        outputs.insert("removedIds".into(), Value::Array(removed_ids));
        Ok(outputs)
    }
}

/// The images to remove: those with a tag of exactly `repository`, all but the newest `keep`,
/// each with only its tags of that repository.
fn older_than_newest(images: Vec<LocalImage>, repository: &str, keep: usize) -> Vec<LocalImage> {
    let mut ours: Vec<LocalImage> = images
        .into_iter()
        .filter_map(|mut image| {
            image.tags.retain(|tag| repository_of(tag) == repository);
            (!image.tags.is_empty()).then_some(image)
        })
        .collect();
    // Newest first; the id breaks ties so that the choice does not depend on listing order.
    ours.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    ours.into_iter().skip(keep).collect()
}

/// `registry/name` of `registry/name:tag` (a `:` after the last `/` starts the tag; a port
/// comes before it).
fn repository_of(reference: &str) -> &str {
    match reference.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository,
        _ => reference,
    }
}

/// Removes the image's tags of the repository; `Ok(false)` when a container uses it and it
/// was left alone.
async fn remove(
    ctx: &StageContext,
    engine: &ContainerEngine,
    image: &LocalImage,
) -> Result<bool, gantry_container::ContainerError> {
    if engine.image_in_use(&image.id).await? {
        ctx.log
            .system(&format!(
                "skipping {} ({}): a container uses it",
                image.tags.join(", "),
                image.id
            ))
            .await;
        return Ok(false);
    }
    for tag in &image.tags {
        engine.remove_image(tag).await?;
        ctx.log
            .system(&format!("removed {tag} ({})", image.id))
            .await;
    }
    Ok(true)
}

fn failed(spec: &PruneImagesStage, error: impl std::fmt::Display) -> StageFailure {
    StageFailure::Failed(format!("pruneImages {}: {error}", spec.repository))
}

#[cfg(test)]
mod tests;
