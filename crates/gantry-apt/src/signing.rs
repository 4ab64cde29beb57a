//! Signing keys and signatures, through the `gpg` command with a keyring of
//! our own (`DATA_DIR/apt/gnupg`, never the user's). Secret keys are kept
//! encrypted at rest by OpenPGP's own key protection, with a passphrase
//! generated once into `DATA_DIR/apt/gnupg-passphrase` (mode 0600). This
//! stands in for the secret store until one exists.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::AptError;

#[derive(Clone, Debug)]
pub struct Keyring {
    home: PathBuf,
    passphrase: PathBuf,
}

/// A key of the keyring.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyInfo {
    pub fingerprint: String,
    pub user_id: String,
}

impl Keyring {
    pub fn open(dir: &Path) -> Result<Keyring, AptError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let home = dir.join("gnupg");
        let passphrase = dir.join("gnupg-passphrase");
        if !home.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&home)
                .map_err(AptError::io(home.display()))?;
        }
        if !passphrase.exists() {
            let mut bytes = [0u8; 32];
            rand::Rng::fill(&mut rand::thread_rng(), &mut bytes);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&passphrase)
                .map_err(AptError::io(passphrase.display()))?;
            file.write_all(hex::encode(bytes).as_bytes())
                .map_err(AptError::io(passphrase.display()))?;
        }
        Ok(Keyring { home, passphrase })
    }

    fn gpg(&self) -> Command {
        let mut command = Command::new("gpg");
        command
            .env("GNUPGHOME", &self.home)
            .args([
                "--batch",
                "--yes",
                "--no-tty",
                "--pinentry-mode",
                "loopback",
            ])
            .arg("--passphrase-file")
            .arg(&self.passphrase);
        command
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
            stdin
                .write_all(input)
                .map_err(|e| AptError::Signing(format!("gpg: {e}")))?;
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
        let mut command = self.gpg();
        command.args(["--quick-generate-key", user_id, "ed25519", "sign", "never"]);
        self.run(command, None)?;
        self.list()?
            .into_iter()
            .rev()
            .find(|k| k.user_id == user_id)
            .ok_or_else(|| AptError::Signing("the new key is not in the keyring".to_owned()))
    }

    /// Imports an armored secret key and protects it with our passphrase.
    pub fn import(&self, armored: &[u8]) -> Result<Vec<KeyInfo>, AptError> {
        let before: Vec<String> = self.list()?.into_iter().map(|k| k.fingerprint).collect();
        let mut command = self.gpg();
        command.arg("--import");
        self.run(command, Some(armored))?;
        let added: Vec<KeyInfo> = self
            .list()?
            .into_iter()
            .filter(|k| !before.contains(&k.fingerprint))
            .collect();
        if added.is_empty() {
            return Err(AptError::Invalid(
                "the input holds no new secret key".to_owned(),
            ));
        }
        for key in &added {
            let mut command = self.gpg();
            command.args(["--passwd", &key.fingerprint]);
            self.run(command, None)?;
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
            let mut command = self.gpg();
            command
                .args(["--digest-algo", "SHA512", "--armor", "--local-user"])
                .arg(&key.fingerprint)
                .arg(flag)
                .arg("--output")
                .arg(dir.join(name))
                .arg(release);
            self.run(command, None)?;
        }
        Ok(())
    }
}
