//! Reading one secret a stage names from the server's secret store, and the typed errors of
//! the two places that read credentials that way (git remotes, registry accounts). Their
//! messages differ by a word, and tests and people rely on each, so each error keeps its own.

use gantry_secrets::{SecretError, SecretStore};

/// Why a named secret has no usable value here. Its message follows the secret's name
/// (`credentials secret "x" does not exist`), hence the leading space or colon.
#[derive(Debug, thiserror::Error)]
pub enum SecretLookupError {
    #[error(" needs a secret store, which this server lacks")]
    NoSecretStore,
    #[error(" does not exist")]
    Missing,
    #[error(": {0}")]
    Unreadable(SecretError),
}

/// The credentials a git trigger or stage names (`credentials:`) cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("credentials secret {name:?}{reason}")]
pub struct GitCredentialsError {
    pub name: String,
    pub reason: SecretLookupError,
}

/// The registry account a bake, `findImage` or a Cloud Build push names cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryCredentialsError {
    #[error("credentials: secret {name:?}{reason}")]
    Lookup {
        name: String,
        reason: SecretLookupError,
    },
    #[error("credentials: secret {name:?} must hold user:password")]
    NotUserPassword { name: String },
}

/// The value of secret `name`, when the server has a secret store that holds it.
pub async fn lookup(store: Option<&SecretStore>, name: &str) -> Result<String, SecretLookupError> {
    let store = store.ok_or(SecretLookupError::NoSecretStore)?;
    match store.get(name).await {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(SecretLookupError::Missing),
        Err(error) => Err(SecretLookupError::Unreadable(error)),
    }
}
