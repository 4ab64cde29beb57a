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

#[derive(Debug, Error)]
pub enum SecretError {
    #[error("secret key file {path}: {message}")]
    Key { path: String, message: String },
    #[error(
        "invalid secret name {0:?}: use letters, digits, '_', '-' and '.', starting with a letter or '_' (at most 128)"
    )]
    BadName(String),
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

    pub async fn set(&self, name: &str, value: &str, now: i64) -> Result<(), SecretError> {
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

    /// The value, or `None` if there is no such secret.
    pub async fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        let Some(record) = self.store.secret(name).await? else {
            return Ok(None);
        };
        self.open_value(name, &record.sealed).map(Some)
    }

    pub async fn list(&self) -> Result<Vec<SecretInfo>, SecretError> {
        Ok(self
            .store
            .secrets()
            .await?
            .into_iter()
            .map(|r| SecretInfo {
                name: r.name,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
            .collect())
    }

    /// false if there was no such secret.
    pub async fn delete(&self, name: &str) -> Result<bool, SecretError> {
        Ok(self.store.delete_secret(name).await?)
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
