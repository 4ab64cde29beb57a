//! Package files: one unpacked for a deploy, and those a publication's
//! `pool/` names, served from the store.

use std::path::Path;

use super::{Apt, PackageView, cmp_versions};
use crate::AptError;
use crate::packs::PackageBytes;

/// A package file a publication's `pool/` names, ready to be served.
#[derive(Debug)]
pub struct PublishedPackage {
    pub sha256: String,
    /// When the package was first recorded: its bytes never change.
    pub recorded_at: std::time::SystemTime,
    pub bytes: PackageBytes,
}

impl Apt {
    /// The newest package of `repo` matching `query` (`hello (= 1.2.3)`),
    /// unpacked under `dest`: what a server group deploys.
    pub async fn unpack(
        &self,
        repo: &str,
        query: &str,
        dest: &Path,
    ) -> Result<PackageView, AptError> {
        let newest = self.newest_match(repo, query).await?;
        let bytes = self.package_bytes(&newest.sha256).await?;
        let dest = dest.to_path_buf();
        let what = newest.key.clone();
        tokio::task::spawn_blocking(move || {
            gantry_deb::extract_data(&what, &bytes, &dest).map_err(AptError::from)
        })
        .await
        .expect("unpack task")?;
        Ok(newest)
    }

    /// The newest package of `repo` matching `query`.
    pub(crate) async fn newest_match(
        &self,
        repo: &str,
        query: &str,
    ) -> Result<PackageView, AptError> {
        self.repo_packages(repo, Some(query))
            .await?
            .into_iter()
            .max_by(|a, b| cmp_versions(&a.version, &b.version))
            .ok_or_else(|| AptError::NotFound {
                kind: "package",
                name: format!("{query} in repository {repo}"),
            })
    }

    /// The whole file of a recorded package.
    pub(crate) async fn package_bytes(&self, sha256: &str) -> Result<Vec<u8>, AptError> {
        let file =
            self.store
                .apt_package_file(sha256)
                .await?
                .ok_or_else(|| AptError::NotFound {
                    kind: "package",
                    name: sha256.to_owned(),
                })?;
        let bytes = self
            .open_package(file)
            .await?
            .ok_or_else(|| AptError::NotFound {
                kind: "package",
                name: sha256.to_owned(),
            })?;
        tokio::task::spawn_blocking(move || bytes.read_all())
            .await
            .expect("package read task")
    }
}

impl Apt {
    /// The package file at `path` (decoded) of the published trees
    /// (`pool/main/h/hello/hello_1.0_amd64.deb`, or `PREFIX/pool/…`), if a kept generation of
    /// a publication names it. `None` also for paths outside any `pool/`
    /// and for trees published before pool maps (their files are on disk).
    pub async fn published_package(
        &self,
        path: &str,
    ) -> Result<Option<PublishedPackage>, AptError> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if segments.iter().any(|s| s.starts_with('.')) {
            return Ok(None);
        }
        // The prefix is what comes before a `pool` segment; a prefix may
        // itself hold one (`a/pool`), so each is tried.
        let mut found = None;
        for (at, _) in segments.iter().enumerate().filter(|(_, s)| **s == "pool") {
            let prefix = if at == 0 {
                crate::names::DEFAULT_PREFIX.to_owned()
            } else {
                segments[..at].join("/")
            };
            let root = self.prefix_root(&prefix);
            let pool_path = segments[at..].join("/");
            let maps = self.pool_maps.clone();
            let sha256 = tokio::task::spawn_blocking(move || maps.find(&root, &pool_path))
                .await
                .expect("pool map task");
            if sha256.is_some() {
                found = sha256;
                break;
            }
        }
        let Some(sha256) = found else {
            return Ok(None);
        };
        let Some(file) = self.store.apt_package_file(&sha256).await? else {
            return Ok(None);
        };
        let recorded_at =
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(file.created_at.max(0) as u64);
        let Some(bytes) = self.open_package(file).await? else {
            return Ok(None);
        };
        Ok(Some(PublishedPackage {
            sha256,
            recorded_at,
            bytes,
        }))
    }
}
