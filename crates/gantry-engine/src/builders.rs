//! Cloud Build's builder images as this machine runs them.

use std::collections::BTreeMap;

use gantry_container::ContainerEngine;

/// What Cloud Build's common builders run as here: the local builder images of `gantry
/// builders build` where they exist (the docker CLI in a container, reaching the engine
/// through the Docker API gate; git; a Debian shell for `bash`, `ubuntu` and `debian`
/// when this machine has no image of that name), else, for the docker builder, the
/// engine's own CLI on the host, held to the allow-list of `engine_cli`.
pub async fn builder_images(engine: Option<&ContainerEngine>) -> BTreeMap<String, String> {
    use gantry_container::api_gate::{
        DOCKER_BUILDER_IMAGE, GIT_BUILDER_IMAGE, SHELL_BUILDER_IMAGE,
    };
    let mut map = BTreeMap::new();
    let Some(engine) = engine else {
        return map;
    };
    let docker = if engine
        .image_exists(DOCKER_BUILDER_IMAGE)
        .await
        .unwrap_or(false)
    {
        DOCKER_BUILDER_IMAGE.to_owned()
    } else {
        format!("host:{}", engine.program.display())
    };
    map.insert("gcr.io/cloud-builders/docker".to_owned(), docker);
    if engine
        .image_exists(GIT_BUILDER_IMAGE)
        .await
        .unwrap_or(false)
    {
        map.insert(
            "gcr.io/cloud-builders/git".to_owned(),
            GIT_BUILDER_IMAGE.to_owned(),
        );
    }
    if engine
        .image_exists(SHELL_BUILDER_IMAGE)
        .await
        .unwrap_or(false)
    {
        for name in ["bash", "ubuntu", "debian"] {
            // Looked for locally first: a real image of that name wins.
            if !engine.image_exists(name).await.unwrap_or(true) {
                map.insert(name.to_owned(), SHELL_BUILDER_IMAGE.to_owned());
            }
        }
    }
    map
}
