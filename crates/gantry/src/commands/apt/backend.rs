//! Where `gantry apt` sends its operations: a server over the HTTP API, or
//! (`--local`) the data directory itself, through the same `gantry_apt::Apt`
//! service the server runs. Both answer in the API's JSON shapes, so the
//! printing code does not know which one it talked to.

use std::path::{Path, PathBuf};

use anyhow::Context;
use gantry_apt::{Apt, AptError, CleanupOptions, PublicationSpec};
use serde_json::{Value, json};

use crate::client::{Client, segment};

pub enum Backend {
    Remote(Client),
    Local(Apt),
}

/// What an add reports, as the CLI prints it.
#[derive(serde::Deserialize)]
pub struct Added {
    pub added: Vec<Keyed>,
    pub unchanged: Vec<Keyed>,
}

#[derive(serde::Deserialize)]
pub struct Keyed {
    pub key: String,
}

impl Backend {
    /// Opens the APT repositories of `data_dir` in this process, creating
    /// what is missing, as `gantry serve` would. Safe beside a server using
    /// the same directory: changes take a lock on a file both processes see,
    /// and SQLite (WAL) lets each read what the other committed.
    pub async fn local(data_dir: &Path, database: Option<&str>) -> anyhow::Result<Backend> {
        one_malloc_arena();
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let database = database.map_or_else(
            || format!("sqlite://{}", data_dir.join("gantry.db").display()),
            str::to_owned,
        );
        let store = gantry_store::Store::open_for_command(&database)
            .await
            .with_context(|| format!("cannot open the database of {}", data_dir.display()))?;
        let secrets = gantry_secrets::SecretStore::open(store.clone(), data_dir)
            .context("cannot open the secret store")?;
        let apt = Apt::open(store, &data_dir.join("apt"), &secrets)
            .await
            .context("cannot open the APT repositories")?;
        Ok(Backend::Local(apt))
    }

    pub async fn create_repo(
        &self,
        name: &str,
        distribution: Option<&str>,
        component: Option<&str>,
        comment: Option<&str>,
    ) -> anyhow::Result<()> {
        match self {
            Backend::Remote(client) => {
                client
                    .post(
                        "/api/v1/apt/repos",
                        &json!({ "name": name, "distribution": distribution, "component": component, "comment": comment }),
                    )
                    .await?;
            }
            Backend::Local(apt) => {
                apt.create_repo(name, distribution, component, comment)
                    .await?;
            }
        }
        Ok(())
    }

    /// Every repository: `[{name, packages, …}]`.
    pub async fn repos(&self) -> anyhow::Result<Value> {
        Ok(match self {
            Backend::Remote(client) => client.get("/api/v1/apt/repos").await?["repos"].take(),
            Backend::Local(apt) => json!(apt.repos().await?),
        })
    }

    /// `{repo, packages}`.
    pub async fn repo(&self, name: &str) -> anyhow::Result<Value> {
        Ok(match self {
            Backend::Remote(client) => {
                client
                    .get(&format!("/api/v1/apt/repos/{}", segment(name)))
                    .await?
            }
            Backend::Local(apt) => {
                let (repo, packages) = apt.repo(name).await?;
                json!({ "repo": repo, "packages": packages })
            }
        })
    }

    /// Adds package files: a server gets them as one tar stream, a local
    /// add reads them a batch at a time.
    pub async fn add(
        &self,
        repo: &str,
        paths: &[PathBuf],
        force_replace: bool,
    ) -> anyhow::Result<Added> {
        match self {
            Backend::Remote(client) => super::upload(client, repo, paths, force_replace).await,
            Backend::Local(apt) => {
                let report = apt.add_files(repo, paths.to_vec(), force_replace).await?;
                let keyed = |views: Vec<gantry_apt::PackageView>| {
                    views.into_iter().map(|v| Keyed { key: v.key }).collect()
                };
                Ok(Added {
                    added: keyed(report.added),
                    unchanged: keyed(report.unchanged),
                })
            }
        }
    }

    /// The packages removed: `[{key, …}]`.
    pub async fn remove(&self, repo: &str, query: &str) -> anyhow::Result<Value> {
        Ok(match self {
            Backend::Remote(client) => client
                .delete(&format!(
                    "/api/v1/apt/repos/{}/packages?q={}",
                    segment(repo),
                    segment(query)
                ))
                .await?["removed"]
                .take(),
            Backend::Local(apt) => json!(apt.remove(repo, query).await?),
        })
    }

    /// The packages copied or moved: `[{key, …}]`.
    pub async fn copy(
        &self,
        source: &str,
        destination: &str,
        query: &str,
        move_them: bool,
    ) -> anyhow::Result<Value> {
        Ok(match self {
            Backend::Remote(client) => client
                .post(
                    &format!("/api/v1/apt/repos/{}/copy", segment(source)),
                    &json!({ "to": destination, "query": query, "move": move_them }),
                )
                .await?["packages"]
                .take(),
            Backend::Local(apt) => json!(apt.copy(source, destination, query, move_them).await?),
        })
    }

    pub async fn drop_repo(&self, name: &str) -> anyhow::Result<()> {
        match self {
            Backend::Remote(client) => {
                client
                    .delete(&format!("/api/v1/apt/repos/{}", segment(name)))
                    .await?;
            }
            Backend::Local(apt) => apt.drop_repo(name).await?,
        }
        Ok(())
    }

    pub async fn snapshot_from_repo(&self, name: &str, repo: &str) -> anyhow::Result<()> {
        match self {
            Backend::Remote(client) => {
                client
                    .post(
                        "/api/v1/apt/snapshots",
                        &json!({ "name": name, "repo": repo }),
                    )
                    .await?;
            }
            Backend::Local(apt) => {
                apt.snapshot_from_repo(name, repo).await?;
            }
        }
        Ok(())
    }

    pub async fn merge(
        &self,
        destination: &str,
        sources: &[String],
        latest: bool,
    ) -> anyhow::Result<()> {
        match self {
            Backend::Remote(client) => {
                client
                    .post(
                        "/api/v1/apt/snapshots",
                        &json!({ "name": destination, "merge": sources, "latest": latest }),
                    )
                    .await?;
            }
            Backend::Local(apt) => {
                apt.merge(destination, sources, latest).await?;
            }
        }
        Ok(())
    }

    /// Every snapshot: `[{name, description, createdAt}]`.
    pub async fn snapshots(&self) -> anyhow::Result<Value> {
        Ok(match self {
            Backend::Remote(client) => {
                client.get("/api/v1/apt/snapshots").await?["snapshots"].take()
            }
            Backend::Local(apt) => json!(apt.snapshots().await?),
        })
    }

    /// `{name, description, createdAt, packages}`.
    pub async fn snapshot(&self, name: &str) -> anyhow::Result<Value> {
        Ok(match self {
            Backend::Remote(client) => {
                client
                    .get(&format!("/api/v1/apt/snapshots/{}", segment(name)))
                    .await?
            }
            Backend::Local(apt) => json!(apt.snapshot(name).await?),
        })
    }

    /// `{only_left, only_right, changed}`.
    pub async fn diff(&self, left: &str, right: &str) -> anyhow::Result<Value> {
        Ok(match self {
            Backend::Remote(client) => {
                client
                    .get(&format!(
                        "/api/v1/apt/snapshots/{}/diff/{}",
                        segment(left),
                        segment(right)
                    ))
                    .await?
            }
            Backend::Local(apt) => json!(apt.diff(left, right).await?),
        })
    }

    pub async fn drop_snapshot(&self, name: &str) -> anyhow::Result<()> {
        match self {
            Backend::Remote(client) => {
                client
                    .delete(&format!("/api/v1/apt/snapshots/{}", segment(name)))
                    .await?;
            }
            Backend::Local(apt) => apt.drop_snapshot(name).await?,
        }
        Ok(())
    }

    /// The publication made: `{prefix, distribution, …}`.
    pub async fn publish(
        &self,
        prefix: Option<&str>,
        distribution: &str,
        spec: PublicationSpec,
    ) -> anyhow::Result<Value> {
        Ok(match self {
            Backend::Remote(client) => {
                let mut body = json!(spec);
                body["prefix"] = json!(prefix);
                body["distribution"] = json!(distribution);
                client.post("/api/v1/apt/publish", &body).await?
            }
            Backend::Local(apt) => json!(apt.publish(prefix, distribution, spec).await?),
        })
    }

    /// Every publication: `[{prefix, distribution, sources, architectures, …}]`.
    pub async fn publications(&self) -> anyhow::Result<Value> {
        Ok(match self {
            Backend::Remote(client) => {
                client.get("/api/v1/apt/publish").await?["publications"].take()
            }
            Backend::Local(apt) => json!(apt.publications().await?),
        })
    }

    /// Publishes again: `update` without snapshots, `switch` with them.
    pub async fn republish(
        &self,
        prefix: Option<&str>,
        distribution: &str,
        snapshots: Option<Vec<String>>,
    ) -> anyhow::Result<()> {
        match self {
            Backend::Remote(client) => {
                let body = match snapshots {
                    Some(snapshots) => json!({ "snapshots": snapshots }),
                    None => json!({}),
                };
                client
                    .put(
                        &format!(
                            "/api/v1/apt/publish/{}/{}",
                            prefix_segment(prefix),
                            segment(distribution)
                        ),
                        &body,
                    )
                    .await?;
            }
            Backend::Local(apt) => {
                match snapshots {
                    Some(snapshots) => apt.switch(distribution, prefix, &snapshots).await?,
                    None => apt.update(distribution, prefix).await?,
                };
            }
        }
        Ok(())
    }

    pub async fn drop_publication(
        &self,
        prefix: Option<&str>,
        distribution: &str,
    ) -> anyhow::Result<()> {
        match self {
            Backend::Remote(client) => {
                client
                    .delete(&format!(
                        "/api/v1/apt/publish/{}/{}",
                        prefix_segment(prefix),
                        segment(distribution)
                    ))
                    .await?;
            }
            Backend::Local(apt) => apt.drop_publication(distribution, prefix).await?,
        }
        Ok(())
    }

    /// Deletes what nothing refers to (`dry_run`: says what would go): the
    /// API's cleanup report, `{dryRun, packagesDeleted, bytesFreed, …}`.
    pub async fn cleanup(&self, dry_run: bool) -> anyhow::Result<Value> {
        Ok(match self {
            Backend::Remote(client) => {
                client
                    .post("/api/v1/apt/db/cleanup", &json!({ "dryRun": dry_run }))
                    .await?
            }
            Backend::Local(apt) => json!(apt.cleanup(CleanupOptions { dry_run }).await?),
        })
    }

    /// Generates (`user_id`) or imports (`armored`) keys: `[{fingerprint, user_id}]`.
    pub async fn create_key(
        &self,
        user_id: Option<String>,
        armored: Option<String>,
    ) -> anyhow::Result<Value> {
        Ok(match self {
            Backend::Remote(client) => client
                .post(
                    "/api/v1/apt/keys",
                    &json!({ "userId": user_id, "armored": armored }),
                )
                .await?["keys"]
                .take(),
            Backend::Local(apt) => {
                let keyring = apt.keyring().clone();
                let keys = blocking(move || match (user_id, armored) {
                    (Some(user_id), None) => keyring.generate(&user_id).map(|k| vec![k]),
                    (None, Some(armored)) => keyring.import(armored.as_bytes()),
                    _ => Err(AptError::Invalid(
                        "give exactly one of userId or armored".into(),
                    )),
                })
                .await?;
                json!(keys)
            }
        })
    }

    /// `[{fingerprint, user_id}]`.
    pub async fn keys(&self) -> anyhow::Result<Value> {
        Ok(match self {
            Backend::Remote(client) => client.get("/api/v1/apt/keys").await?["keys"].take(),
            Backend::Local(apt) => {
                let keyring = apt.keyring().clone();
                json!(blocking(move || keyring.list()).await?)
            }
        })
    }

    /// The armored public key of `id`, or of the default key.
    pub async fn public_key(&self, id: Option<String>) -> anyhow::Result<String> {
        match self {
            Backend::Remote(client) => {
                let path = match id {
                    Some(id) => format!("/api/v1/apt/keys/public?id={}", segment(&id)),
                    None => "/api/v1/apt/keys/public".to_owned(),
                };
                client.get_text(&path).await
            }
            Backend::Local(apt) => {
                let keyring = apt.keyring().clone();
                let armored = blocking(move || keyring.export_public(id.as_deref())).await?;
                Ok(String::from_utf8_lossy(&armored).into_owned())
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AptError> + Send + 'static,
) -> anyhow::Result<T> {
    Ok(tokio::task::spawn_blocking(work)
        .await
        .context("the keyring task failed")??)
}

/// A prefix as the API's path segment.
fn prefix_segment(prefix: Option<&str>) -> String {
    let prefix = prefix.unwrap_or(".").trim_matches('/');
    let prefix = if prefix.is_empty() { "." } else { prefix };
    // `:.` and not `.`, which URL normalisation would remove (aptly does the same).
    let encoded = prefix.replace('_', "__").replace('/', "_");
    segment(&format!(":{encoded}"))
}

/// Makes the threads this command starts from now on (SQLite's connection
/// threads, the blocking pool) share glibc's main malloc arena. By default
/// each thread gets an arena of its own, which a long-running server may
/// want and a command that runs once does not: measured, 1.4 to 3.1 MiB of
/// a `--local` add or publish.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes an allocator setting; called before this
    // command starts its other threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
