//! Registry credentials on their way to an engine command. They never go on
//! a command line (`--creds` would show the password in every process
//! list): they are written to a private auth file in the format podman
//! (`--authfile`) and docker (`DOCKER_CONFIG/config.json`) both read, which
//! is removed when the command is done.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::error::ContainerError;

/// A registry account.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    /// `user:password`, the form a secret holds them in.
    pub fn parse(text: &str) -> Option<Credentials> {
        let (user, password) = text.split_once(':')?;
        (!user.is_empty() && !password.is_empty()).then(|| Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ user: {:?}, password: *** }}", self.user)
    }
}

/// A directory only this user can read holding `config.json` with one
/// registry's credentials; removed on drop.
pub(crate) struct AuthDir {
    dir: PathBuf,
}

impl AuthDir {
    pub(crate) fn create(host: &str, credentials: &Credentials) -> Result<AuthDir, ContainerError> {
        let error = |e: std::io::Error| ContainerError::Registry {
            registry: host.to_owned(),
            message: format!("cannot write the credentials file: {e}"),
        };
        let dir = in_memory(crate::engine::tempfile_path("gantry-auth"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(error)?;
        let auth_dir = AuthDir { dir };
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", credentials.user, credentials.password));
        let config = serde_json::json!({ "auths": { host: { "auth": token } } });
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(auth_dir.file())
            .map_err(error)?;
        file.write_all(config.to_string().as_bytes())
            .map_err(error)?;
        Ok(auth_dir)
    }

    /// For `DOCKER_CONFIG`.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// For podman's `--authfile`.
    pub(crate) fn file(&self) -> PathBuf {
        self.dir.join("config.json")
    }
}

/// Where the machine has a memory file system for everyone (`/dev/shm`), the
/// credentials' directory goes there rather than into the temporary directory,
/// which may be a disk: a password never reaches a disk, even for the moment a
/// push takes (a runner's push job promises exactly that).
fn in_memory(temporary: PathBuf) -> PathBuf {
    const SHARED_MEMORY: &str = "/dev/shm";
    match temporary.file_name() {
        Some(name) if Path::new(SHARED_MEMORY).is_dir() => Path::new(SHARED_MEMORY).join(name),
        _ => temporary,
    }
}

impl Drop for AuthDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
