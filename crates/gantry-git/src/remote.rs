//! Repositories git talks to over the network, and the credentials it answers with.
//!
//! A password never reaches git as an argument or inside a URL (both are visible to anyone
//! listing processes, and URLs end up in error messages and `.git/config`). git asks a
//! credential helper instead; ours is a shell function, passed with `-c`, that prints two
//! environment variables set on that one git process.

use std::fmt;

use tokio::process::Command;

/// The helper git runs for `credential fill`: it answers `get` from the environment and
/// ignores `store` and `erase`, so nothing is ever written anywhere.
const HELPER: &str = "!f() { test \"$1\" = get && \
printf 'username=%s\\npassword=%s\\n' \"$GANTRY_GIT_USERNAME\" \"$GANTRY_GIT_PASSWORD\"; }; f";

/// HTTP basic credentials for a remote.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    /// From a secret's value: `user:password`, or a bare token, sent as the password of the
    /// user `git` (Gantry, GitHub and GitLab accept a token as the password of any user).
    pub fn from_secret(value: &str) -> Credentials {
        let value = value.trim_end_matches(['\r', '\n']);
        match value.split_once(':') {
            Some((username, password)) if !username.is_empty() => Credentials {
                username: username.to_owned(),
                password: password.to_owned(),
            },
            _ => Credentials {
                username: "git".to_owned(),
                password: value.to_owned(),
            },
        }
    }

    /// Makes `command` (a `git` about to get its subcommand) answer with these credentials.
    pub(crate) fn apply(&self, command: &mut Command) {
        // The empty value first clears any helper git would otherwise consult.
        command
            .args(["-c", "credential.helper=", "-c"])
            .arg(format!("credential.helper={HELPER}"))
            .env("GANTRY_GIT_USERNAME", &self.username)
            .env("GANTRY_GIT_PASSWORD", &self.password);
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// A repository to clone, fetch, list or push: a hosted repository's path or an external URL,
/// with the credentials git should answer with when the remote asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    pub url: String,
    pub credentials: Option<Credentials>,
}

impl Remote {
    pub fn new(url: impl Into<String>) -> Remote {
        Remote {
            url: url.into(),
            credentials: None,
        }
    }

    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> Remote {
        self.credentials = credentials;
        self
    }
}

impl From<&str> for Remote {
    fn from(url: &str) -> Remote {
        Remote::new(url)
    }
}

/// Where the fetch cache under `root` keeps `url`'s objects: one bare repository per URL,
/// named by a hash of it (URLs hold characters no file name should).
pub fn cache_path(root: &std::path::Path, url: &str) -> std::path::PathBuf {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(url.trim().as_bytes());
    root.join(format!("{}.git", hex::encode(&digest[..16])))
}
