//! The providers a server can deploy to, by name.

use std::collections::BTreeMap;

use super::Provider;
use crate::error::DeployError;

/// What a cluster deploys to when `gantry.yaml` names no `provider:`.
pub use gantry_config::DEFAULT_PROVIDER;

/// The registered providers, one line each where the server is wired
/// (`gantry serve`).
#[derive(Clone, Debug, Default)]
pub struct ProviderRegistry {
    providers: BTreeMap<&'static str, Provider>,
}

impl ProviderRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `provider` under its name (a later one of the same name wins).
    pub fn register(mut self, provider: Provider) -> Self {
        self.providers.insert(provider.name, provider);
        self
    }

    /// The provider called `name`, or an error listing the registered ones.
    pub fn get(&self, name: &str) -> Result<&Provider, DeployError> {
        self.providers.get(name).ok_or_else(|| {
            DeployError::Invalid(format!(
                "unknown provider {name:?}; registered: {}",
                self.names().join(", ")
            ))
        })
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.providers.keys().copied().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }
}
