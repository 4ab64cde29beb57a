//! The key file: 32 random bytes, created once, readable by the owner only.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit};

use crate::store::SecretError;

pub(crate) const KEY_FILE: &str = "secrets.key";
const KEY_LEN: usize = 32;

/// Reads the key in `dir`, creating it when there is none.
pub(crate) fn load_or_create(dir: &Path) -> Result<ChaCha20Poly1305, SecretError> {
    load(dir, true)
}

/// Reads the key in `dir`, which must exist (for a reader of another
/// process's store, such as `gantry build`, which must never make a key).
pub(crate) fn load_existing(dir: &Path) -> Result<ChaCha20Poly1305, SecretError> {
    load(dir, false)
}

fn load(dir: &Path, create: bool) -> Result<ChaCha20Poly1305, SecretError> {
    let path = dir.join(KEY_FILE);
    let key_error = |message: String| SecretError::Key {
        path: path.display().to_string(),
        message,
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let mode = std::fs::metadata(&path)
                .map_err(|e| key_error(e.to_string()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(key_error(format!(
                    "is readable by others (mode {:o}); run chmod 600 on it",
                    mode & 0o777
                )));
            }
            if bytes.len() != KEY_LEN {
                return Err(key_error(format!(
                    "holds {} bytes, not a {KEY_LEN}-byte key",
                    bytes.len()
                )));
            }
            Ok(ChaCha20Poly1305::new(Key::from_slice(&bytes)))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !create => Err(key_error(
            "does not exist (is this a server's data directory?)".to_owned(),
        )),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = ChaCha20Poly1305::generate_key(&mut rand::rngs::OsRng);
            // create_new: two servers starting on one data dir must not
            // each write a key and lose the other's secrets.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| key_error(format!("cannot create: {e}")))?;
            file.write_all(&key)
                .and_then(|()| file.sync_all())
                .map_err(|e| key_error(format!("cannot write: {e}")))?;
            Ok(ChaCha20Poly1305::new(&key))
        }
        Err(error) => Err(key_error(error.to_string())),
    }
}
