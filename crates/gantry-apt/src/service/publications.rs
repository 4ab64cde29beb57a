//! Publications: the trees `/apt/` serves, written from repositories or
//! snapshots, updated, switched and dropped.

use std::collections::HashSet;

use gantry_store::{AptPublicationRecord, AptSource, Store};

use super::{Apt, PublicationSpec, PublicationView, SourceKind, now};
use crate::AptError;
use crate::names::{check_name, normalize_prefix};
use crate::publish::{self, IndexEntry, Tree};

impl Apt {
    pub async fn publications(&self) -> Result<Vec<PublicationView>, AptError> {
        let mut views = Vec::new();
        for record in self.store.apt_publications().await? {
            let spec: PublicationSpec = serde_json::from_value(record.spec.clone())
                .map_err(|e| AptError::Invalid(format!("stored publication spec: {e}")))?;
            views.push(PublicationView {
                prefix: record.prefix,
                distribution: record.distribution,
                spec,
                updated_at: record.updated_at,
            });
        }
        Ok(views)
    }

    async fn publication(
        &self,
        prefix: &str,
        distribution: &str,
    ) -> Result<PublicationView, AptError> {
        self.publications()
            .await?
            .into_iter()
            .find(|p| p.prefix == prefix && p.distribution == distribution)
            .ok_or_else(|| AptError::NotFound {
                kind: "publication",
                name: format!("{prefix} {distribution}"),
            })
    }

    /// Publishes `spec` at `prefix`/dists/`distribution`. The spot must be
    /// free; on any failure nothing is left behind.
    pub async fn publish(
        &self,
        prefix: Option<&str>,
        distribution: &str,
        mut spec: PublicationSpec,
    ) -> Result<PublicationView, AptError> {
        let _guard = self.lock.acquire().await?;
        let prefix = normalize_prefix(prefix)?;
        check_name("distribution", distribution)?;
        if spec.sources.is_empty() {
            return Err(AptError::Invalid(
                "a publication needs at least one source".into(),
            ));
        }
        let mut components = HashSet::new();
        for source in &spec.sources {
            check_name("component", &source.component)?;
            if !components.insert(source.component.clone()) {
                return Err(AptError::Invalid(format!(
                    "component {:?} is given twice",
                    source.component
                )));
            }
        }
        for arch in &spec.architectures {
            gantry_deb::validate_architecture(arch)?;
        }
        if !spec.skip_signing {
            spec.key = Some(self.keyring.resolve(spec.key.as_deref())?.fingerprint);
        }
        self.check_sources(&spec).await?;
        if spec.architectures.is_empty() {
            let mut archs = std::collections::BTreeSet::new();
            for source in &spec.sources {
                let source = store_source(spec.source_kind, &source.name);
                archs.extend(self.store.apt_source_architectures(source).await?);
            }
            archs.remove("all");
            let mut archs: Vec<String> = archs.into_iter().collect();
            if archs.is_empty() {
                archs.push("amd64".to_owned());
            }
            spec.architectures = archs;
        }
        let record = AptPublicationRecord {
            prefix: prefix.clone(),
            distribution: distribution.to_owned(),
            spec: serde_json::to_value(&spec).expect("a spec serializes"),
            updated_at: now(),
        };
        self.store
            .create_apt_publication(&record)
            .await
            .map_err(|e| match e {
                gantry_store::StoreError::Conflict { .. } => AptError::Conflict(format!(
                    "prefix {prefix:?} already has a publication of distribution {distribution:?}"
                )),
                other => other.into(),
            })?;
        if let Err(error) = self.write_tree(&prefix, distribution, &spec).await {
            self.store
                .delete_apt_publication(&prefix, distribution)
                .await?;
            return Err(error);
        }
        Ok(PublicationView {
            prefix,
            distribution: distribution.to_owned(),
            spec,
            updated_at: record.updated_at,
        })
    }

    /// Publishes again from the current contents of the sources (repos).
    pub async fn update(
        &self,
        distribution: &str,
        prefix: Option<&str>,
    ) -> Result<PublicationView, AptError> {
        self.republish(distribution, prefix, None).await
    }

    /// Points a snapshot publication at other snapshots (one per component,
    /// in the publication's component order).
    pub async fn switch(
        &self,
        distribution: &str,
        prefix: Option<&str>,
        snapshots: &[String],
    ) -> Result<PublicationView, AptError> {
        self.republish(distribution, prefix, Some(snapshots)).await
    }

    async fn republish(
        &self,
        distribution: &str,
        prefix: Option<&str>,
        snapshots: Option<&[String]>,
    ) -> Result<PublicationView, AptError> {
        let _guard = self.lock.acquire().await?;
        let prefix = normalize_prefix(prefix)?;
        let mut publication = self.publication(&prefix, distribution).await?;
        if let Some(snapshots) = snapshots {
            if publication.spec.source_kind != SourceKind::Snapshot {
                return Err(AptError::Invalid(format!(
                    "publication {prefix} {distribution} is of a repository: use publish update"
                )));
            }
            if snapshots.len() != publication.spec.sources.len() {
                return Err(AptError::Invalid(format!(
                    "publication {prefix} {distribution} has {} components, {} snapshots given",
                    publication.spec.sources.len(),
                    snapshots.len()
                )));
            }
            for (source, snapshot) in publication.spec.sources.iter_mut().zip(snapshots) {
                source.name = snapshot.clone();
            }
        } else if publication.spec.source_kind != SourceKind::Repo {
            return Err(AptError::Invalid(format!(
                "publication {prefix} {distribution} is of snapshots: use publish switch"
            )));
        }
        if !publication.spec.skip_signing {
            self.keyring.resolve(publication.spec.key.as_deref())?;
        }
        self.check_sources(&publication.spec).await?;
        self.write_tree(&prefix, distribution, &publication.spec)
            .await?;
        publication.updated_at = now();
        self.store
            .update_apt_publication(&AptPublicationRecord {
                prefix: prefix.clone(),
                distribution: distribution.to_owned(),
                spec: serde_json::to_value(&publication.spec).expect("a spec serializes"),
                updated_at: publication.updated_at,
            })
            .await?;
        Ok(publication)
    }

    /// Updates every publication of repository `repo` (after an add).
    pub async fn update_publications_of(
        &self,
        repo: &str,
    ) -> Result<Vec<PublicationView>, AptError> {
        let mut updated = Vec::new();
        for publication in self.publications().await? {
            if publication.spec.source_kind == SourceKind::Repo
                && publication.spec.sources.iter().any(|s| s.name == repo)
            {
                updated.push(
                    self.update(&publication.distribution, Some(&publication.prefix))
                        .await?,
                );
            }
        }
        Ok(updated)
    }

    pub async fn drop_publication(
        &self,
        distribution: &str,
        prefix: Option<&str>,
    ) -> Result<(), AptError> {
        let _guard = self.lock.acquire().await?;
        let prefix = normalize_prefix(prefix)?;
        self.publication(&prefix, distribution).await?;
        publish::remove(&self.prefix_root(&prefix), distribution)?;
        self.store
            .delete_apt_publication(&prefix, distribution)
            .await?;
        Ok(())
    }

    /// That every source exists. Their packages are read from the store
    /// as the indexes are written, never all at once.
    async fn check_sources(&self, spec: &PublicationSpec) -> Result<(), AptError> {
        for source in &spec.sources {
            match spec.source_kind {
                SourceKind::Repo => self.repo_record(&source.name).await.map(drop)?,
                SourceKind::Snapshot => self.snapshot_record(&source.name).await.map(drop)?,
            }
        }
        Ok(())
    }

    async fn write_tree(
        &self,
        prefix: &str,
        distribution: &str,
        spec: &PublicationSpec,
    ) -> Result<(), AptError> {
        let root = self.prefix_root(prefix);
        let signer = if spec.skip_signing {
            None
        } else {
            Some(self.keyring.resolve(spec.key.as_deref())?)
        };
        let keyring = self.keyring.clone();
        let components = spec.sources.iter().map(|s| s.component.clone()).collect();
        let spec = spec.clone();
        let distribution = distribution.to_owned();
        let origin = if prefix == "." {
            "gantry".to_owned()
        } else {
            prefix.to_owned()
        };
        let paragraphs = StoreParagraphs {
            store: self.store.clone(),
            runtime: tokio::runtime::Handle::current(),
            sources: spec
                .sources
                .iter()
                .map(|source| (spec.source_kind, source.name.clone()))
                .collect(),
        };
        tokio::task::spawn_blocking(move || {
            publish::write(&Tree {
                root,
                distribution,
                components,
                paragraphs: &paragraphs,
                architectures: spec.architectures.clone(),
                origin: spec.origin.clone().unwrap_or_else(|| origin.clone()),
                label: spec.label.clone().unwrap_or(origin),
                acquire_by_hash: spec.acquire_by_hash,
                xz: spec.xz,
                signer: signer.map(|key| (&keyring, key)),
            })
        })
        .await
        .expect("publish task")
    }
}

fn store_source(kind: SourceKind, name: &str) -> AptSource<'_> {
    match kind {
        SourceKind::Repo => AptSource::Repo(name),
        SourceKind::Snapshot => AptSource::Snapshot(name),
    }
}

/// Index paragraphs straight from the store, a row at a time. Called on a
/// blocking thread (the publish's), it waits for the store's async reads
/// through the runtime's handle.
struct StoreParagraphs {
    store: Store,
    runtime: tokio::runtime::Handle,
    sources: Vec<(SourceKind, String)>,
}

impl publish::Paragraphs for StoreParagraphs {
    fn each(
        &self,
        component: usize,
        architecture: &str,
        sink: &mut dyn FnMut(&IndexEntry, &str) -> Result<(), AptError>,
    ) -> Result<(), AptError> {
        let (kind, name) = &self.sources[component];
        self.runtime.block_on(self.store.each_apt_paragraph(
            store_source(*kind, name),
            architecture,
            |paragraph| {
                let entry = IndexEntry {
                    sha256: paragraph.sha256,
                    name: paragraph.name,
                    version: paragraph.version,
                    architecture: paragraph.architecture,
                };
                sink(&entry, &paragraph.control)
            },
        ))
    }
}
