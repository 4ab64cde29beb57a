//! Signing keys and signatures, through the `gpg` command with a keyring of
//! our own (`DATA_DIR/apt/gnupg`, never the user's). Secret keys are kept
//! encrypted at rest by OpenPGP's own key protection, under a passphrase
//! generated once and kept in the secret store (sealed with the server's
//! `secrets.key`, like every secret): nothing in the data directory opens a
//! key without it. gpg gets the passphrase on its standard input, never in
//! a file or on its command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use gantry_secrets::SecretStore;

use crate::AptError;

/// The secret holding the keyring's passphrase.
pub const PASSPHRASE_SECRET: &str = "_gantry.apt.signing-passphrase";

#[derive(Clone)]
pub struct Keyring {
    home: PathBuf,
    passphrase: Arc<String>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

/// A key of the keyring.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyInfo {
    pub fingerprint: String,
    pub user_id: String,
}

impl Keyring {
    /// Opens the keyring under `dir`, its passphrase from `secrets`. A data
    /// directory from before the secret store kept the passphrase in
    /// `dir/gnupg-passphrase`: it is moved into the secret store, then the
    /// file is removed.
    pub async fn open(dir: &Path, secrets: &SecretStore) -> Result<Keyring, AptError> {
        use std::os::unix::fs::DirBuilderExt;
        let home = dir.join("gnupg");
        if !home.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&home)
                .map_err(AptError::io(home.display()))?;
        }
        let passphrase = passphrase(dir, secrets).await?;
        Ok(Keyring {
            home,
            passphrase: Arc::new(passphrase),
        })
    }

    fn gpg(&self) -> Command {
        let mut command = Command::new("gpg");
        command.env("GNUPGHOME", &self.home).args([
            "--batch",
            "--yes",
            "--no-tty",
            "--pinentry-mode",
            "loopback",
        ]);
        command
    }

    /// gpg for a command that unlocks or protects a secret key, to be run
    /// with [`Keyring::run_unlocked`]: the passphrase goes in on standard
    /// input.
    fn gpg_unlocked(&self) -> Command {
        let mut command = self.gpg();
        command.args(["--passphrase-fd", "0"]);
        command
    }

    fn run_unlocked(&self, command: Command) -> Result<Vec<u8>, AptError> {
        let input = format!("{}\n", self.passphrase);
        self.run(command, Some(input.as_bytes()))
    }

    fn run(&self, mut command: Command, input: Option<&[u8]>) -> Result<Vec<u8>, AptError> {
        command
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| AptError::Signing(format!("cannot run gpg: {e}")))?;
        if let Some(input) = input {
            let mut stdin = child.stdin.take().expect("piped stdin");
            // gpg may exit (on an error of its own) without reading all of
            // it; its status then says what went wrong.
            match stdin.write_all(input) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(AptError::Signing(format!("gpg: {e}")));
                }
                _ => {}
            }
        }
        let out = child
            .wait_with_output()
            .map_err(|e| AptError::Signing(format!("gpg: {e}")))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(AptError::Signing(format!("gpg: {}", stderr.trim())));
        }
        Ok(out.stdout)
    }

    /// Stops the `gpg-agent` that signing started for this keyring (it
    /// would otherwise outlive the server).
    pub fn stop_agent(&self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", &self.home)
            .args(["--kill", "gpg-agent"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Generates an Ed25519 signing key; returns it.
    pub fn generate(&self, user_id: &str) -> Result<KeyInfo, AptError> {
        if user_id.trim().is_empty() || user_id.chars().any(char::is_control) {
            return Err(AptError::Invalid(format!(
                "invalid key user id {user_id:?}"
            )));
        }
        let mut command = self.gpg_unlocked();
        command.args(["--quick-generate-key", user_id, "ed25519", "sign", "never"]);
        self.run_unlocked(command)?;
        self.list()?
            .into_iter()
            .rev()
            .find(|k| k.user_id == user_id)
            .ok_or_else(|| AptError::Signing("the new key is not in the keyring".to_owned()))
    }

    /// Imports an armored secret key and protects it with our passphrase.
    pub fn import(&self, armored: &[u8]) -> Result<Vec<KeyInfo>, AptError> {
        let text = String::from_utf8_lossy(armored);
        if !text.contains("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
            return Err(AptError::Invalid(
                "key file: not an armored OpenPGP secret key (no \"-----BEGIN PGP PRIVATE KEY BLOCK-----\" line; export one with `gpg --armor --export-secret-keys ID`)".to_owned(),
            ));
        }
        let before: Vec<String> = self.list()?.into_iter().map(|k| k.fingerprint).collect();
        let mut command = self.gpg();
        command.arg("--import");
        self.run(command, Some(armored))
            .map_err(|error| match error {
                AptError::Signing(reason) => {
                    AptError::Invalid(format!("key file: gpg cannot import it: {reason}"))
                }
                other => other,
            })?;
        let added: Vec<KeyInfo> = self
            .list()?
            .into_iter()
            .filter(|k| !before.contains(&k.fingerprint))
            .collect();
        if added.is_empty() {
            return Err(AptError::Invalid(
                "key file: holds no secret key that is not already in the keyring".to_owned(),
            ));
        }
        for key in &added {
            let mut command = self.gpg_unlocked();
            command.args(["--passwd", &key.fingerprint]);
            self.run_unlocked(command)?;
        }
        Ok(added)
    }

    /// The secret keys, oldest first.
    pub fn list(&self) -> Result<Vec<KeyInfo>, AptError> {
        let mut command = self.gpg();
        command.args(["--with-colons", "--list-secret-keys"]);
        let out = match self.run(command, None) {
            Ok(out) => out,
            // An empty keyring makes gpg fail on some versions.
            Err(_) => return Ok(Vec::new()),
        };
        let mut keys = Vec::new();
        let mut pending: Option<KeyInfo> = None;
        let mut in_primary = false;
        for line in String::from_utf8_lossy(&out).lines() {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.first().copied() {
                Some("sec") => {
                    keys.extend(pending.take());
                    pending = Some(KeyInfo {
                        fingerprint: String::new(),
                        user_id: String::new(),
                    });
                    in_primary = true;
                }
                Some("ssb") => in_primary = false,
                Some("fpr") if in_primary => {
                    if let Some(key) = &mut pending
                        && key.fingerprint.is_empty()
                    {
                        key.fingerprint = fields.get(9).unwrap_or(&"").to_string();
                    }
                }
                Some("uid") => {
                    if let Some(key) = &mut pending
                        && key.user_id.is_empty()
                    {
                        key.user_id = fields.get(9).unwrap_or(&"").to_string();
                    }
                }
                _ => {}
            }
        }
        keys.extend(pending);
        Ok(keys)
    }

    /// The key `id` names (fingerprint, its suffix, or user id), or the only
    /// or first key when `id` is `None`.
    pub fn resolve(&self, id: Option<&str>) -> Result<KeyInfo, AptError> {
        let keys = self.list()?;
        let found = match id {
            Some(id) => keys.into_iter().find(|k| {
                k.fingerprint.eq_ignore_ascii_case(id)
                    || (id.len() >= 8 && k.fingerprint.to_uppercase().ends_with(&id.to_uppercase()))
                    || k.user_id == id
                    || k.user_id.contains(&format!("<{id}>"))
            }),
            None => keys.into_iter().next(),
        };
        found.ok_or_else(|| match id {
            Some(id) => AptError::NotFound {
                kind: "signing key",
                name: id.to_owned(),
            },
            None => AptError::Invalid(
                "no signing key: create one with `gantry apt key generate` or publish with --skip-signing"
                    .to_owned(),
            ),
        })
    }

    /// The armored public key.
    pub fn export_public(&self, id: Option<&str>) -> Result<Vec<u8>, AptError> {
        let key = self.resolve(id)?;
        let mut command = self.gpg();
        command.args(["--armor", "--export", &key.fingerprint]);
        self.run(command, None)
    }

    /// Writes `InRelease` (clear-signed) and `Release.gpg` (detached) next
    /// to `release`.
    pub fn sign(&self, key: &KeyInfo, release: &Path) -> Result<(), AptError> {
        let dir = release.parent().expect("Release has a directory");
        for (flag, name) in [
            ("--clearsign", "InRelease"),
            ("--detach-sign", "Release.gpg"),
        ] {
            let mut command = self.gpg_unlocked();
            command
                .args(["--digest-algo", "SHA512", "--armor", "--local-user"])
                .arg(&key.fingerprint)
                .arg("--output")
                .arg(dir.join(name))
                .arg(flag)
                .arg(release);
            self.run_unlocked(command)?;
        }
        Ok(())
    }
}

/// The keyring's passphrase: from the secret store, else moved there from
/// the file of an older data directory, else generated and stored.
async fn passphrase(dir: &Path, secrets: &SecretStore) -> Result<String, AptError> {
    let file = dir.join("gnupg-passphrase");
    let secret_error = |e: gantry_secrets::SecretError| {
        AptError::Signing(format!("signing passphrase in the secret store: {e}"))
    };
    let from_file = match std::fs::read_to_string(&file) {
        Ok(text) => Some(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(AptError::io(file.display())(e)),
    };
    let stored = secrets
        .get_own(PASSPHRASE_SECRET)
        .await
        .map_err(secret_error)?;
    let passphrase = match (from_file, stored) {
        // The file is what the keys were protected with: it wins over a
        // stored value (which can only be from an interrupted move of it).
        (Some(from_file), stored) => {
            if stored.as_deref() != Some(from_file.as_str()) {
                secrets
                    .set_own(PASSPHRASE_SECRET, &from_file, crate::service::now())
                    .await
                    .map_err(secret_error)?;
            }
            std::fs::remove_file(&file).map_err(AptError::io(file.display()))?;
            from_file
        }
        (None, Some(stored)) => stored,
        (None, None) => {
            let mut bytes = [0u8; 32];
            rand::Rng::fill(&mut rand::thread_rng(), &mut bytes);
            let generated = hex::encode(bytes);
            secrets
                .set_own(PASSPHRASE_SECRET, &generated, crate::service::now())
                .await
                .map_err(secret_error)?;
            generated
        }
    };
    Ok(passphrase)
}
