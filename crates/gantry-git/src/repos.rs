//! The repositories Gantry hosts: bare repositories in one directory, each `NAME.git`.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::command::{self, GitError};
use crate::smart_http::RefUpdate;

/// Installed in every hosted repository. `smart_http` points `GANTRY_PUSH_LOG` at a file of
/// its own for each push; the hook appends git's `OLD NEW REF` lines there, which is exactly
/// what the push changed, with no guessing from snapshots taken before and after.
const POST_RECEIVE: &str = "#!/bin/sh\n\
# Written by Gantry: tells the server which refs this push changed.\n\
if [ -n \"$GANTRY_PUSH_LOG\" ]; then cat >> \"$GANTRY_PUSH_LOG\"; fi\n\
exit 0\n";

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("repository {0:?} does not exist")]
    NotFound(String),
    #[error("repository {0:?} already exists")]
    AlreadyExists(String),
    #[error(
        "repository name {0:?} is not valid: use letters, digits, '.', '_' and '-', not starting with '.' or '-', at most 100 characters"
    )]
    BadName(String),
    #[error("repository {name:?}: {source}")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("repository {name:?}: {source}")]
    Git {
        name: String,
        #[source]
        source: GitError,
    },
}

/// What the API shows of a repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepoInfo {
    pub name: String,
    /// Anyone may clone and fetch; pushing always needs a token.
    pub public: bool,
}

/// A push Gantry made itself to a hosted repository (a release tag, a GitOps commit), announced
/// so that triggers see it as they see a client's push.
#[derive(Clone, Debug)]
pub struct LocalPush {
    pub repository: String,
    pub update: RefUpdate,
    /// Who made it (`gantry`, or the execution that did).
    pub pusher: String,
}

/// The directory of hosted repositories.
#[derive(Clone, Debug)]
pub struct Repositories {
    root: PathBuf,
    pushes: broadcast::Sender<LocalPush>,
}

impl Default for Repositories {
    fn default() -> Self {
        Repositories::new(PathBuf::new())
    }
}

impl Repositories {
    /// `root` is `DATA_DIR/repos`; it is created on the first `create`.
    pub fn new(root: impl Into<PathBuf>) -> Repositories {
        let (pushes, _) = broadcast::channel(256);
        Repositories {
            root: root.into(),
            pushes,
        }
    }

    /// Pushes Gantry itself makes to hosted repositories.
    pub fn subscribe(&self) -> broadcast::Receiver<LocalPush> {
        self.pushes.subscribe()
    }

    /// Pushes `refspec` from the clone `workdir` to the hosted repository `name`, and announces
    /// the refs it changed. A refused push fails with git's answer.
    pub async fn push_from(
        &self,
        workdir: &Path,
        name: &str,
        refspec: &str,
        pusher: &str,
    ) -> Result<Vec<RefUpdate>, RepoError> {
        let path = self.existing(name)?;
        let log = self.root.join(format!(".push-{}", uuid::Uuid::now_v7()));
        let mut push = command::git(Some(workdir));
        push.args(["push", "--quiet", "--porcelain", "--"])
            .arg(&path)
            .arg(refspec)
            .env("GANTRY_PUSH_LOG", &log);
        let result =
            command::output(push, &format!("pushing {refspec} to repository {name:?}")).await;
        let lines = tokio::fs::read_to_string(&log).await.unwrap_or_default();
        let _ = tokio::fs::remove_file(&log).await;
        result.map_err(|source| RepoError::Git {
            name: name.to_owned(),
            source,
        })?;
        let updates = RefUpdate::parse_lines(&lines);
        self.announce(name, &updates, pusher);
        Ok(updates)
    }

    /// Creates every `(ref, commit)` in the hosted repository `name` in one transaction, or
    /// none of them: false, changing nothing, when one of the refs already exists. This is what
    /// keeps two racing releases from taking the same version.
    pub async fn create_refs(
        &self,
        name: &str,
        refs: &[(String, String)],
        pusher: &str,
    ) -> Result<bool, RepoError> {
        let path = self.existing(name)?;
        let mut input = String::new();
        for (reference, commit) in refs {
            input.push_str(&format!("create {reference} {commit}\n"));
        }
        let mut update = command::git(Some(&path));
        update
            .args(["update-ref", "--stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let io = |source| RepoError::Io {
            name: name.to_owned(),
            source,
        };
        let mut child = update.spawn().map_err(io)?;
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt;
            stdin.write_all(input.as_bytes()).await.map_err(io)?;
        }
        let out = child.wait_with_output().await.map_err(io)?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("already exists") || stderr.contains("reference already exists") {
                return Ok(false);
            }
            return Err(RepoError::Git {
                name: name.to_owned(),
                source: GitError::Failed {
                    what: "creating refs".to_owned(),
                    stderr: stderr.trim().to_owned(),
                },
            });
        }
        let zero = "0".repeat(40);
        let updates: Vec<RefUpdate> = refs
            .iter()
            .filter(|(reference, _)| {
                reference.starts_with("refs/heads/") || reference.starts_with("refs/tags/")
            })
            .map(|(reference, commit)| RefUpdate {
                old: zero.clone(),
                new: commit.clone(),
                name: reference.clone(),
            })
            .collect();
        self.announce(name, &updates, pusher);
        Ok(true)
    }

    fn announce(&self, name: &str, updates: &[RefUpdate], pusher: &str) {
        for update in updates {
            // Nobody listening (a test engine) is fine.
            let _ = self.pushes.send(LocalPush {
                repository: name.to_owned(),
                update: update.clone(),
                pusher: pusher.to_owned(),
            });
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `name` lives (whether or not it exists); refuses names that could escape the root.
    pub fn path(&self, name: &str) -> Result<PathBuf, RepoError> {
        if !valid_name(name) {
            return Err(RepoError::BadName(name.to_owned()));
        }
        Ok(self.root.join(format!("{name}.git")))
    }

    /// The path of an existing repository.
    pub fn existing(&self, name: &str) -> Result<PathBuf, RepoError> {
        let path = self.path(name)?;
        if path.join("HEAD").is_file() {
            Ok(path)
        } else {
            Err(RepoError::NotFound(name.to_owned()))
        }
    }

    pub fn exists(&self, name: &str) -> bool {
        self.existing(name).is_ok()
    }

    /// Creates an empty repository whose default branch is `main`. It appears whole or not at
    /// all: it is built under a temporary name and renamed into place.
    pub async fn create(&self, name: &str, public: bool) -> Result<RepoInfo, RepoError> {
        let path = self.path(name)?;
        if path.exists() {
            return Err(RepoError::AlreadyExists(name.to_owned()));
        }
        let io = |source| RepoError::Io {
            name: name.to_owned(),
            source,
        };
        let git_error = |source| RepoError::Git {
            name: name.to_owned(),
            source,
        };
        tokio::fs::create_dir_all(&self.root).await.map_err(io)?;
        let building = self
            .root
            .join(format!(".creating-{}-{}", name, uuid::Uuid::now_v7()));
        let result = async {
            command::run(
                None,
                [
                    "init".as_ref(),
                    "--quiet".as_ref(),
                    "--bare".as_ref(),
                    "--initial-branch=main".as_ref(),
                    building.as_os_str(),
                ],
                "git init",
            )
            .await
            .map_err(git_error)?;
            for (key, value) in [
                ("http.receivepack", "true"),
                ("gantry.public", if public { "true" } else { "false" }),
                // Releases and GitOps commits race; a lost race must fail, not rewrite history.
                ("receive.denyNonFastForwards", "true"),
            ] {
                command::run(Some(&building), ["config", key, value], "git config")
                    .await
                    .map_err(git_error)?;
            }
            install_hook(&building).await.map_err(io)?;
            match tokio::fs::rename(&building, &path).await {
                Ok(()) => Ok(()),
                Err(_) if path.exists() => Err(RepoError::AlreadyExists(name.to_owned())),
                Err(e) => Err(io(e)),
            }
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_dir_all(&building).await;
        }
        result?;
        tracing::info!(repository = %name, public, "repository created");
        Ok(RepoInfo {
            name: name.to_owned(),
            public,
        })
    }

    /// Creates the repository if it does not exist, else sets its visibility; true if created.
    pub async fn ensure(&self, name: &str, public: bool) -> Result<bool, RepoError> {
        match self.create(name, public).await {
            Ok(_) => Ok(true),
            Err(RepoError::AlreadyExists(_)) => {
                self.set_public(name, public).await?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    pub async fn set_public(&self, name: &str, public: bool) -> Result<(), RepoError> {
        let path = self.existing(name)?;
        let value = if public { "true" } else { "false" };
        command::run(
            Some(&path),
            ["config", "gantry.public", value],
            "git config",
        )
        .await
        .map_err(|source| RepoError::Git {
            name: name.to_owned(),
            source,
        })?;
        Ok(())
    }

    pub async fn info(&self, name: &str) -> Result<RepoInfo, RepoError> {
        let path = self.existing(name)?;
        // `git config --get` fails when the key is unset: such a repository is private.
        let public = command::run(
            Some(&path),
            ["config", "--bool", "--get", "gantry.public"],
            "git config",
        )
        .await
        .map(|value| value.trim() == "true")
        .unwrap_or(false);
        Ok(RepoInfo {
            name: name.to_owned(),
            public,
        })
    }

    /// Every hosted repository, by name.
    pub async fn list(&self) -> Result<Vec<RepoInfo>, RepoError> {
        let mut names = Vec::new();
        let mut entries = match tokio::fs::read_dir(&self.root).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(RepoError::Io {
                    name: String::new(),
                    source,
                });
            }
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".git")) else {
                continue;
            };
            if valid_name(name) && self.exists(name) {
                names.push(name.to_owned());
            }
        }
        names.sort();
        let mut infos = Vec::with_capacity(names.len());
        for name in names {
            infos.push(self.info(&name).await?);
        }
        Ok(infos)
    }

    /// Deletes the repository and its history; false if there was none.
    pub async fn delete(&self, name: &str) -> Result<bool, RepoError> {
        let path = match self.existing(name) {
            Ok(path) => path,
            Err(RepoError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        // Renamed away first, so that the name is free (and no clone sees half a repository)
        // before the slow removal.
        let doomed = self
            .root
            .join(format!(".deleting-{}-{}", name, uuid::Uuid::now_v7()));
        let io = |source| RepoError::Io {
            name: name.to_owned(),
            source,
        };
        tokio::fs::rename(&path, &doomed).await.map_err(io)?;
        tokio::fs::remove_dir_all(&doomed).await.map_err(io)?;
        tracing::info!(repository = %name, "repository deleted");
        Ok(true)
    }
}

async fn install_hook(repo: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let hook = repo.join("hooks").join("post-receive");
    tokio::fs::create_dir_all(repo.join("hooks")).await?;
    tokio::fs::write(&hook, POST_RECEIVE).await?;
    tokio::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).await
}

/// Names are one path segment of the URL and of the file system.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with(['.', '-'])
        && !name.ends_with(".git")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}
