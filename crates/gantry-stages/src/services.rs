//! The services only stages use, wired by whoever builds the engine (`gantry serve`,
//! `gantry build`) into [`BuiltInStages`](crate::BuiltInStages), and the context a stage
//! runs with: the engine's [`stage_kit::StageContext`] plus these services.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use gantry_engine::stage_kit;

/// What the stages of a server use besides the engine: each has a default, for engines
/// built without it (`gantry build`, tests), whose stages then say what is missing.
#[derive(Clone, Debug, Default)]
pub struct StageServices {
    /// APT repositories (`publishDeb`, deploys of a package).
    pub apt: Option<gantry_apt::Apt>,
    /// Server groups and load balancers (`deploy` and the server group stages).
    pub deploy: Option<gantry_deploy::DeployController>,
    /// Builder images that cannot exist here, replaced by local ones
    /// (`gcr.io/cloud-builders/docker` → `localhost/docker-cli`).
    pub image_map: BTreeMap<String, String>,
    /// Where images a Cloud Build file names really go (its `images:`, the docker
    /// builder's arguments, builder images): `gcr.io/PROJECT` → the team's registry.
    pub registry_map: gantry_cloudbuild::RegistryMap,
    /// Registries Cloud Build files push to and pull from without TLS.
    pub insecure_registries: gantry_cloudbuild::InsecureRegistries,
}

/// The HTTP client could not be built (the `webhook` stage's).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the stages' http client: {0}")]
pub struct ServicesError(#[from] reqwest::Error);

/// [`StageServices`] and the HTTP client of the `webhook` stage, shared by every stage.
#[derive(Debug)]
pub(crate) struct Services {
    wired: StageServices,
    http: reqwest::Client,
}

impl Services {
    pub(crate) fn new(wired: StageServices) -> Result<Services, ServicesError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Services { wired, http })
    }
}

/// What a running stage gets: the engine's context (its spec, state, log, signals, the
/// engine's capabilities, through `Deref`) and the services stages own.
pub struct StageContext {
    kit: Arc<stage_kit::StageContext>,
    services: Arc<Services>,
}

impl StageContext {
    pub(crate) fn new(kit: Arc<stage_kit::StageContext>, services: Arc<Services>) -> Self {
        StageContext { kit, services }
    }

    /// The server's APT repositories, when it has them.
    pub(crate) fn apt(&self) -> Option<&gantry_apt::Apt> {
        self.services.wired.apt.as_ref()
    }

    /// The deploy controller, when the server has one (`gantry serve`).
    pub(crate) fn deploy_controller(&self) -> Option<&gantry_deploy::DeployController> {
        self.services.wired.deploy.as_ref()
    }

    /// The stages' HTTP client (webhooks): no redirects, bounded connect and total time.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.services.http
    }

    /// Builder images that cannot exist here, and the local ones that replace them
    /// (Cloud Build files).
    pub(crate) fn image_map(&self) -> &BTreeMap<String, String> {
        &self.services.wired.image_map
    }

    /// Where Cloud Build files' images really go, and the registries reached without TLS.
    pub(crate) fn registries(
        &self,
    ) -> (
        &gantry_cloudbuild::RegistryMap,
        &gantry_cloudbuild::InsecureRegistries,
    ) {
        (
            &self.services.wired.registry_map,
            &self.services.wired.insecure_registries,
        )
    }
}

impl Deref for StageContext {
    type Target = stage_kit::StageContext;

    fn deref(&self) -> &stage_kit::StageContext {
        &self.kit
    }
}
