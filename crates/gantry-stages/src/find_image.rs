//! `findImage`: reads a repository's tags from its registry (the OCI
//! distribution API) and outputs the newest one matching `pattern`,
//! versions ordered semver-aware: `image`, `tag`, `version`.

use gantry_config::FindImageStage;
use gantry_container::{
    RegistryClient, is_loopback_registry, list_tags, newest_tag, split_reference,
};
use serde_json::{Map, Value};

use super::bake::RegistryRefusal;
use super::{StageContext, StageFailure, StageResult, StageRunner};
use crate::secret_lookup::RegistryCredentialsError;

/// Why `findImage` found no tag; shown after `findImage REPOSITORY: `.
#[derive(Debug, thiserror::Error)]
enum FindImageError {
    #[error("pattern is not a valid regular expression: {0}")]
    Pattern(regex::Error),
    #[error("{0}")]
    Reference(gantry_container::ContainerError),
    #[error(transparent)]
    Credentials(#[from] RegistryCredentialsError),
    #[error(transparent)]
    Registry(#[from] RegistryRefusal),
    #[error("none of its {count} tag(s) matches {pattern:?}")]
    NoMatch { count: usize, pattern: String },
}

impl StageRunner for gantry_config::stages::find_image::FindImage {
    async fn run(ctx: &StageContext, spec: &gantry_config::FindImageStage) -> StageResult {
        run(ctx, spec).await
    }
}

pub(crate) async fn run(ctx: &StageContext, spec: &FindImageStage) -> StageResult {
    match find(ctx, spec).await {
        Ok(outputs) => Ok(outputs),
        Err(error) => {
            let error = format!("findImage {}: {error}", spec.repository);
            ctx.log.system(&error).await;
            Err(StageFailure::Failed(error))
        }
    }
}

async fn find(
    ctx: &StageContext,
    spec: &FindImageStage,
) -> Result<Map<String, Value>, FindImageError> {
    let pattern = regex::Regex::new(&spec.pattern).map_err(FindImageError::Pattern)?;
    let (host, repository) =
        split_reference(&spec.repository).map_err(FindImageError::Reference)?;
    let client = RegistryClient {
        tls_verify: spec
            .registry
            .tls_verify
            .unwrap_or_else(|| !is_loopback_registry(&spec.repository)),
        host,
        credentials: super::bake::credentials(ctx, &spec.registry).await?,
    };
    let tags = list_tags(&client, &repository)
        .await
        .map_err(|e| super::bake::explain(e, &spec.registry))?;
    let Some((tag, version)) = newest_tag(tags.iter().map(String::as_str), &pattern) else {
        return Err(FindImageError::NoMatch {
            count: tags.len(),
            pattern: spec.pattern.clone(),
        });
    };
    ctx.log
        .system(&format!(
            "newest of {} tag(s) matching {:?}: {tag}",
            tags.len(),
            spec.pattern
        ))
        .await;
    let mut outputs = Map::new();
    outputs.insert(
        "image".into(),
        Value::String(format!("{}:{tag}", spec.repository)),
    );
    outputs.insert("tag".into(), Value::String(tag.to_owned()));
    outputs.insert("version".into(), Value::String(version));
    Ok(outputs)
}
