//! Setting, reading, listing and deleting secrets.

use std::path::Path;
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, AeadCore, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use gantry_store::{SecretRecord, Store, StoreError};
use thiserror::Error;

const NONCE_LEN: usize = 12;
/// Secrets are tokens, passwords and keys, not files.
const MAX_VALUE: usize = 64 * 1024;
/// Names the server keeps for itself (the APT signing key's passphrase, …):
/// not listed, and out of reach of people and pipelines, who could otherwise
/// read them through a step's `secretEnv` or break signing by deleting them.
pub const RESERVED_PREFIX: &str = "_gantry.";
/// The associated data of values sealed outside the secrets table: a
/// reserved name, so no secret of the table opens as one or the reverse.
const SEALED_VALUE: &str = "_gantry.sealed-value";

#[derive(Debug, Error)]
pub enum SecretError {
    #[error("secret key file {path}: {message}")]
    Key { path: String, message: String },
    #[error(
        "invalid secret name {0:?}: use letters, digits, '_', '-' and '.', starting with a letter or '_' (at most 128)"
    )]
    BadName(String),
    #[error("secret name {0:?} is reserved: names starting with \"_gantry.\" are the server's own")]
    Reserved(String),
    #[error("secret {0:?} is too large (more than 64 KiB)")]
    TooLarge(String),
    #[error("secret {0:?} is empty")]
    Empty(String),
    #[error("secret {0:?} cannot be decrypted (was the key file replaced?)")]
    Undecryptable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A secret's name and times; never its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretInfo {
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The secret store of one server. Cheap to clone.
#[derive(Clone)]
pub struct SecretStore {
    store: Store,
    cipher: Arc<ChaCha20Poly1305>,
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretStore { .. }")
    }
}

impl SecretStore {
    /// Opens the store with the key in `data_dir`, creating the key at the
    /// first start.
    pub fn open(store: Store, data_dir: &Path) -> Result<SecretStore, SecretError> {
        Ok(SecretStore {
            store,
            cipher: Arc::new(crate::key::load_or_create(data_dir)?),
        })
    }

    /// Opens the store of an existing server (its database and the key in
    /// its `data_dir`) without ever creating a key: a missing one is an
    /// error.
    pub fn open_existing(store: Store, data_dir: &Path) -> Result<SecretStore, SecretError> {
        Ok(SecretStore {
            store,
            cipher: Arc::new(crate::key::load_existing(data_dir)?),
        })
    }

    /// Sets a secret of a person or a pipeline; reserved names are refused.
    pub async fn set(&self, name: &str, value: &str, now: i64) -> Result<(), SecretError> {
        check_user_name(name)?;
        self.put(name, value, now).await
    }

    /// Sets one of the server's own secrets (a name under [`RESERVED_PREFIX`]).
    pub async fn set_own(&self, name: &str, value: &str, now: i64) -> Result<(), SecretError> {
        check_own_name(name)?;
        self.put(name, value, now).await
    }

    async fn put(&self, name: &str, value: &str, now: i64) -> Result<(), SecretError> {
        check_name(name)?;
        if value.is_empty() {
            return Err(SecretError::Empty(name.to_owned()));
        }
        if value.len() > MAX_VALUE {
            return Err(SecretError::TooLarge(name.to_owned()));
        }
        let created_at = match self.store.secret(name).await? {
            Some(existing) => existing.created_at,
            None => now,
        };
        let record = SecretRecord {
            name: name.to_owned(),
            sealed: self.seal(name, value),
            created_at,
            updated_at: now,
        };
        self.store.put_secret(&record).await?;
        Ok(())
    }

    /// The value, or `None` if there is no such secret; reserved names are
    /// refused.
    pub async fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        check_user_name(name)?;
        self.read(name).await
    }

    /// One of the server's own secrets (a name under [`RESERVED_PREFIX`]).
    pub async fn get_own(&self, name: &str) -> Result<Option<String>, SecretError> {
        check_own_name(name)?;
        self.read(name).await
    }

    async fn read(&self, name: &str) -> Result<Option<String>, SecretError> {
        let Some(record) = self.store.secret(name).await? else {
            return Ok(None);
        };
        self.open_value(name, &record.sealed).map(Some)
    }

    /// The secrets of people and pipelines (not the server's own).
    pub async fn list(&self) -> Result<Vec<SecretInfo>, SecretError> {
        Ok(self
            .store
            .secrets()
            .await?
            .into_iter()
            .filter(|r| !r.name.starts_with(RESERVED_PREFIX))
            .map(|r| SecretInfo {
                name: r.name,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
            .collect())
    }

    /// false if there was no such secret; reserved names are refused.
    pub async fn delete(&self, name: &str) -> Result<bool, SecretError> {
        check_user_name(name)?;
        Ok(self.store.delete_secret(name).await?)
    }

    /// Seals a value that is kept elsewhere than the secrets table (a secret
    /// parameter of an execution, a step output holding a secret), so that
    /// it is never on disk in the clear. Only [`SecretStore::open_sealed`]
    /// of a store with the same key opens it.
    pub fn seal_value(&self, value: &str) -> String {
        self.seal(SEALED_VALUE, value)
    }

    /// Opens what [`SecretStore::seal_value`] sealed.
    pub fn open_sealed(&self, sealed: &str) -> Result<String, SecretError> {
        self.open_value(SEALED_VALUE, sealed)
    }

    /// hex(nonce || ciphertext+tag). The name is the associated data, so a
    /// sealed value copied onto another name does not open.
    fn seal(&self, name: &str, value: &str) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut rand::rngs::OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value.as_bytes(),
                    aad: name.as_bytes(),
                },
            )
            // Encryption fails only for messages beyond 256 GiB.
            .expect("a secret within MAX_VALUE encrypts");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        hex::encode(out)
    }

    fn open_value(&self, name: &str, sealed: &str) -> Result<String, SecretError> {
        let undecryptable = || SecretError::Undecryptable(name.to_owned());
        let bytes = hex::decode(sealed).map_err(|_| undecryptable())?;
        if bytes.len() < NONCE_LEN {
            return Err(undecryptable());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| undecryptable())?;
        String::from_utf8(plain).map_err(|_| undecryptable())
    }
}

fn check_user_name(name: &str) -> Result<(), SecretError> {
    if name.starts_with(RESERVED_PREFIX) {
        return Err(SecretError::Reserved(name.to_owned()));
    }
    Ok(())
}

fn check_own_name(name: &str) -> Result<(), SecretError> {
    debug_assert!(
        name.starts_with(RESERVED_PREFIX),
        "the server's own secret {name:?} must start with {RESERVED_PREFIX:?}"
    );
    Ok(())
}

fn check_name(name: &str) -> Result<(), SecretError> {
    let mut chars = name.chars();
    let ok = name.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(SecretError::BadName(name.to_owned()))
    }
}
