//! The image of a container deploy, pulled before its server group is created when this
//! machine lacks it, with the stage's registry access (`credentials`, `tlsVerify`) read as
//! `bake` reads it. The stage runs this once per server group: its instances never pull.

use gantry_config::DeployStage;

use super::super::StageContext;
use super::super::bake::{credentials, explain};

/// Pulls `spec.image` unless the machine holds it; a failed pull names the image and the
/// registry's answer.
pub(super) async fn ensure_image(ctx: &StageContext, spec: &DeployStage) -> Result<(), String> {
    let Some(image) = &spec.image else {
        return Ok(());
    };
    let Some(engine) = ctx.containers() else {
        // The provider refuses a missing image itself.
        return Ok(());
    };
    if engine.image_exists(image).await.unwrap_or(false) {
        return Ok(());
    }
    let access = spec.registry_access();
    let registry = gantry_container::registry_host(image);
    ctx.log
        .system(&format!("pulling image {image} from {registry}"))
        .await;
    let credentials = credentials(ctx, &access).await.map_err(|e| e.to_string())?;
    let tls_verify = access
        .tls_verify
        .unwrap_or_else(|| !gantry_container::is_loopback_registry(image));
    engine
        .pull_with(image, tls_verify, credentials.as_ref())
        .await
        .map_err(|error| {
            format!(
                "image {image:?} does not exist on this machine and cannot be pulled from {registry}: {}",
                explain(error, &access)
            )
        })?;
    ctx.log.system(&format!("pulled image {image}")).await;
    Ok(())
}
