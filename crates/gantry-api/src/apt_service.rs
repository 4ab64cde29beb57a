//! The APT operations in the wire model's shapes, over a `gantry_apt::Apt`:
//! what the API's APT routes answer and what `gantry apt --local` prints
//! come from these methods, so the two cannot spell a shape differently.

use std::path::PathBuf;

use gantry_apt::{
    Apt, AptError, CleanupOptions, CleanupReport, Diff, KeyInfo, PackageView, PublicationSpec,
    PublicationView, RepoView, SnapshotView,
};
use gantry_wire::apt as wire;

/// The APT use cases over one store of repositories.
#[derive(Clone, Copy)]
pub struct AptService<'a> {
    apt: &'a Apt,
}

impl<'a> AptService<'a> {
    pub fn new(apt: &'a Apt) -> AptService<'a> {
        AptService { apt }
    }

    pub fn apt(&self) -> &'a Apt {
        self.apt
    }

    pub async fn create_repo(&self, body: &wire::CreateRepo) -> Result<wire::Repo, AptError> {
        let repo = self
            .apt
            .create_repo(
                &body.name,
                body.distribution.as_deref(),
                body.component.as_deref(),
                body.comment.as_deref(),
            )
            .await?;
        Ok(repo_of(repo))
    }

    pub async fn repos(&self) -> Result<wire::RepoList, AptError> {
        let repos = self.apt.repos().await?;
        Ok(wire::RepoList {
            repos: repos.into_iter().map(repo_of).collect(),
        })
    }

    pub async fn repo(&self, name: &str) -> Result<wire::RepoWithPackages, AptError> {
        let (repo, packages) = self.apt.repo(name).await?;
        Ok(wire::RepoWithPackages {
            repo: repo_of(repo),
            packages: packages_of(packages),
        })
    }

    pub async fn repo_packages(
        &self,
        name: &str,
        query: Option<&str>,
    ) -> Result<wire::PackageList, AptError> {
        let packages = self.apt.repo_packages(name, query).await?;
        Ok(wire::PackageList {
            packages: packages_of(packages),
        })
    }

    pub async fn drop_repo(&self, name: &str) -> Result<gantry_wire::Dropped, AptError> {
        self.apt.drop_repo(name).await?;
        Ok(gantry_wire::Dropped {
            dropped: name.to_owned(),
        })
    }

    /// Adds package files read from this machine's disk (`--local`).
    pub async fn add_files(
        &self,
        repo: &str,
        paths: Vec<PathBuf>,
        force_replace: bool,
    ) -> Result<wire::AddReport, AptError> {
        let report = self.apt.add_files(repo, paths, force_replace).await?;
        Ok(add_report_of(report))
    }

    /// The answer to an add: its report, and the publications of `repo`
    /// published again when `update` is asked for.
    pub async fn add_answer(
        &self,
        repo: &str,
        report: gantry_apt::AddReport,
        update: bool,
    ) -> Result<wire::AddAnswer, AptError> {
        let updated = if update {
            self.apt.update_publications_of(repo).await?
        } else {
            Vec::new()
        };
        Ok(wire::AddAnswer {
            report: add_report_of(report),
            updated: updated.into_iter().map(publication_of).collect(),
        })
    }

    pub async fn remove(&self, repo: &str, query: &str) -> Result<wire::Removed, AptError> {
        let removed = self.apt.remove(repo, query).await?;
        Ok(wire::Removed {
            removed: packages_of(removed),
        })
    }

    pub async fn copy(
        &self,
        source: &str,
        body: &wire::CopyBody,
    ) -> Result<wire::PackageList, AptError> {
        let packages = self
            .apt
            .copy(source, &body.to, &body.query, body.move_them)
            .await?;
        Ok(wire::PackageList {
            packages: packages_of(packages),
        })
    }

    pub async fn create_snapshot(
        &self,
        body: &wire::CreateSnapshot,
    ) -> Result<wire::CreatedSnapshot, AptError> {
        let packages = match (&body.repo, &body.merge) {
            (Some(repo), None) => self.apt.snapshot_from_repo(&body.name, repo).await?,
            (None, Some(sources)) => self.apt.merge(&body.name, sources, body.latest).await?,
            _ => {
                return Err(AptError::Invalid(
                    "give exactly one of repo or merge".into(),
                ));
            }
        };
        Ok(wire::CreatedSnapshot {
            name: body.name.clone(),
            packages,
        })
    }

    pub async fn snapshots(&self) -> Result<wire::SnapshotList, AptError> {
        let snapshots = self.apt.snapshots().await?;
        Ok(wire::SnapshotList {
            snapshots: snapshots.into_iter().map(snapshot_of).collect(),
        })
    }

    pub async fn snapshot(&self, name: &str) -> Result<wire::Snapshot, AptError> {
        Ok(snapshot_of(self.apt.snapshot(name).await?))
    }

    pub async fn drop_snapshot(&self, name: &str) -> Result<gantry_wire::Dropped, AptError> {
        self.apt.drop_snapshot(name).await?;
        Ok(gantry_wire::Dropped {
            dropped: name.to_owned(),
        })
    }

    pub async fn diff(&self, left: &str, right: &str) -> Result<wire::Diff, AptError> {
        Ok(diff_of(self.apt.diff(left, right).await?))
    }

    pub async fn publish(&self, body: wire::PublishBody) -> Result<wire::Publication, AptError> {
        let spec = PublicationSpec {
            source_kind: match body.source_kind {
                wire::SourceKind::Repo => gantry_apt::SourceKind::Repo,
                wire::SourceKind::Snapshot => gantry_apt::SourceKind::Snapshot,
            },
            sources: body
                .sources
                .into_iter()
                .map(|s| gantry_apt::Source {
                    component: s.component,
                    name: s.name,
                })
                .collect(),
            architectures: body.architectures,
            skip_signing: body.skip_signing,
            key: body.key,
            acquire_by_hash: body.acquire_by_hash.unwrap_or(true),
            xz: body.xz,
            origin: body.origin,
            label: body.label,
        };
        let view = self
            .apt
            .publish(body.prefix.as_deref(), &body.distribution, spec)
            .await?;
        Ok(publication_of(view))
    }

    pub async fn publications(&self) -> Result<wire::PublicationList, AptError> {
        let publications = self.apt.publications().await?;
        Ok(wire::PublicationList {
            publications: publications.into_iter().map(publication_of).collect(),
        })
    }

    /// Publishes again: `update` without snapshots, `switch` with them.
    pub async fn republish(
        &self,
        prefix: Option<&str>,
        distribution: &str,
        body: &wire::UpdatePublication,
    ) -> Result<wire::Publication, AptError> {
        let view = match &body.snapshots {
            Some(snapshots) => self.apt.switch(distribution, prefix, snapshots).await?,
            None => self.apt.update(distribution, prefix).await?,
        };
        Ok(publication_of(view))
    }

    pub async fn drop_publication(
        &self,
        prefix: Option<&str>,
        distribution: &str,
    ) -> Result<gantry_wire::Dropped, AptError> {
        self.apt.drop_publication(distribution, prefix).await?;
        Ok(gantry_wire::Dropped {
            dropped: format!("{} {distribution}", prefix.unwrap_or(".")),
        })
    }

    pub async fn cleanup(&self, body: &wire::CleanupBody) -> Result<wire::CleanupReport, AptError> {
        let report = self
            .apt
            .cleanup(CleanupOptions {
                dry_run: body.dry_run,
            })
            .await?;
        Ok(cleanup_of(report))
    }

    /// Generates or imports keys, on a blocking thread (gpg runs).
    pub async fn create_key(&self, body: wire::KeyBody) -> Result<wire::KeyList, AptError> {
        let keyring = self.apt.keyring().clone();
        let keys = blocking(move || match (body.user_id, body.armored) {
            (Some(user_id), None) => keyring.generate(&user_id).map(|k| vec![k]),
            (None, Some(armored)) => keyring.import(armored.as_bytes()),
            _ => Err(AptError::Invalid(
                "give exactly one of userId or armored".into(),
            )),
        })
        .await?;
        Ok(keys_of(keys))
    }

    pub async fn keys(&self) -> Result<wire::KeyList, AptError> {
        let keyring = self.apt.keyring().clone();
        Ok(keys_of(blocking(move || keyring.list()).await?))
    }

    /// The armored public key of `id`, or of the default key.
    pub async fn public_key(&self, id: Option<String>) -> Result<String, AptError> {
        let keyring = self.apt.keyring().clone();
        let armored = blocking(move || keyring.export_public(id.as_deref())).await?;
        Ok(String::from_utf8_lossy(&armored).into_owned())
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AptError> + Send + 'static,
) -> Result<T, AptError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AptError::Io {
            path: "the keyring task".to_owned(),
            source: std::io::Error::other(e),
        })?
}

// The domain's views, in the wire model's types. `gantry-apt` keeps its own
// views so that it does not depend on the API's crates.

pub(crate) fn package_of(view: PackageView) -> wire::Package {
    wire::Package {
        name: view.name,
        version: view.version,
        architecture: view.architecture,
        sha256: view.sha256,
        size: view.size,
        key: view.key,
    }
}

fn packages_of(views: Vec<PackageView>) -> Vec<wire::Package> {
    views.into_iter().map(package_of).collect()
}

fn repo_of(view: RepoView) -> wire::Repo {
    wire::Repo {
        name: view.name,
        distribution: view.distribution,
        component: view.component,
        comment: view.comment,
        packages: view.packages,
    }
}

pub(crate) fn add_report_of(report: gantry_apt::AddReport) -> wire::AddReport {
    wire::AddReport {
        added: packages_of(report.added),
        replaced: packages_of(report.replaced),
        unchanged: packages_of(report.unchanged),
    }
}

fn snapshot_of(view: SnapshotView) -> wire::Snapshot {
    wire::Snapshot {
        name: view.name,
        description: view.description,
        created_at: view.created_at,
        packages: view.packages.map(packages_of),
    }
}

fn diff_of(diff: Diff) -> wire::Diff {
    wire::Diff {
        only_left: packages_of(diff.only_left),
        only_right: packages_of(diff.only_right),
        changed: diff
            .changed
            .into_iter()
            .map(|(left, right)| (package_of(left), package_of(right)))
            .collect(),
    }
}

pub(crate) fn publication_of(view: PublicationView) -> wire::Publication {
    let spec = view.spec;
    wire::Publication {
        prefix: view.prefix,
        distribution: view.distribution,
        source_kind: match spec.source_kind {
            gantry_apt::SourceKind::Repo => wire::SourceKind::Repo,
            gantry_apt::SourceKind::Snapshot => wire::SourceKind::Snapshot,
        },
        sources: spec
            .sources
            .into_iter()
            .map(|s| wire::Source {
                component: s.component,
                name: s.name,
            })
            .collect(),
        architectures: spec.architectures,
        skip_signing: spec.skip_signing,
        key: spec.key,
        acquire_by_hash: spec.acquire_by_hash,
        xz: spec.xz,
        origin: spec.origin,
        label: spec.label,
        updated_at: view.updated_at,
    }
}

fn cleanup_of(report: CleanupReport) -> wire::CleanupReport {
    wire::CleanupReport {
        dry_run: report.dry_run,
        packages_deleted: packages_of(report.packages_deleted),
        pool_files_deleted: report.pool_files_deleted,
        packs_deleted: report.packs_deleted,
        packs_rewritten: report.packs_rewritten,
        abandoned_packs_deleted: report.abandoned_packs_deleted,
        packs_kept_with_dead_bytes: report.packs_kept_with_dead_bytes,
        dead_bytes_left: report.dead_bytes_left,
        bytes_freed: report.bytes_freed,
    }
}

fn keys_of(keys: Vec<KeyInfo>) -> wire::KeyList {
    wire::KeyList {
        keys: keys
            .into_iter()
            .map(|k| wire::Key {
                fingerprint: k.fingerprint,
                user_id: k.user_id,
            })
            .collect(),
    }
}
