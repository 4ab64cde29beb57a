//! Snapshots: taken from a repository, merged, compared and dropped.

use std::collections::{BTreeMap, HashSet};

use gantry_store::{AptPackageRecord, AptSnapshotRecord};

use super::{Apt, Diff, SnapshotView, SourceKind, cmp_versions, now, view};
use crate::AptError;
use crate::names::check_name;

impl Apt {
    pub async fn snapshot_from_repo(&self, name: &str, repo: &str) -> Result<usize, AptError> {
        check_name("snapshot", name)?;
        self.repo_record(repo).await?;
        let packages = self.store.apt_repo_packages(repo).await?;
        let hashes: Vec<String> = packages.iter().map(|p| p.sha256.clone()).collect();
        let record = AptSnapshotRecord {
            name: name.to_owned(),
            description: format!("Snapshot from local repo [{repo}]"),
            created_at: now(),
        };
        self.store.create_apt_snapshot(&record, &hashes).await?;
        Ok(hashes.len())
    }

    pub async fn snapshots(&self) -> Result<Vec<SnapshotView>, AptError> {
        let records = self.store.apt_snapshots().await?;
        Ok(records.into_iter().map(SnapshotView::from).collect())
    }

    /// One snapshot, with its packages.
    pub async fn snapshot(&self, name: &str) -> Result<SnapshotView, AptError> {
        let record = self.snapshot_record(name).await?;
        let packages = self.store.apt_snapshot_packages(name).await?;
        Ok(SnapshotView {
            packages: Some(packages.iter().map(view).collect()),
            ..SnapshotView::from(record)
        })
    }

    pub(super) async fn snapshot_record(&self, name: &str) -> Result<AptSnapshotRecord, AptError> {
        self.store
            .apt_snapshot(name)
            .await?
            .ok_or_else(|| AptError::NotFound {
                kind: "snapshot",
                name: name.to_owned(),
            })
    }

    pub async fn drop_snapshot(&self, name: &str) -> Result<(), AptError> {
        let _guard = self.lock.acquire().await?;
        self.snapshot_record(name).await?;
        self.refuse_if_published(SourceKind::Snapshot, name).await?;
        self.store.delete_apt_snapshot(name).await?;
        Ok(())
    }

    /// aptly's merge: later sources replace packages (same name and
    /// architecture) of earlier ones; with `latest`, the highest version wins.
    pub async fn merge(
        &self,
        destination: &str,
        sources: &[String],
        latest: bool,
    ) -> Result<usize, AptError> {
        check_name("snapshot", destination)?;
        if sources.is_empty() {
            return Err(AptError::Invalid(
                "merge needs at least one source snapshot".into(),
            ));
        }
        let mut chosen: BTreeMap<(String, String), AptPackageRecord> = BTreeMap::new();
        for source in sources {
            self.snapshot_record(source).await?;
            for package in self.store.apt_snapshot_packages(source).await? {
                let key = (package.name.clone(), package.architecture.clone());
                let keep_old = latest
                    && chosen
                        .get(&key)
                        .is_some_and(|old| newer_or_equal(&old.version, &package.version));
                if !keep_old {
                    chosen.insert(key, package);
                }
            }
        }
        let hashes: Vec<String> = chosen.values().map(|p| p.sha256.clone()).collect();
        let record = AptSnapshotRecord {
            name: destination.to_owned(),
            description: format!("Merged from sources: {}", sources.join(", ")),
            created_at: now(),
        };
        self.store.create_apt_snapshot(&record, &hashes).await?;
        Ok(hashes.len())
    }

    pub async fn diff(&self, left: &str, right: &str) -> Result<Diff, AptError> {
        self.snapshot_record(left).await?;
        self.snapshot_record(right).await?;
        let index = |packages: Vec<AptPackageRecord>| {
            let mut map: BTreeMap<(String, String), Vec<AptPackageRecord>> = BTreeMap::new();
            for p in packages {
                map.entry((p.name.clone(), p.architecture.clone()))
                    .or_default()
                    .push(p);
            }
            map
        };
        let a = index(self.store.apt_snapshot_packages(left).await?);
        let b = index(self.store.apt_snapshot_packages(right).await?);
        let mut diff = Diff::default();
        for (key, left_packages) in &a {
            match b.get(key) {
                None => diff.only_left.extend(left_packages.iter().map(view)),
                Some(right_packages) => {
                    let l: HashSet<&str> =
                        left_packages.iter().map(|p| p.sha256.as_str()).collect();
                    let r: HashSet<&str> =
                        right_packages.iter().map(|p| p.sha256.as_str()).collect();
                    if l != r {
                        let newest = |v: &Vec<AptPackageRecord>| {
                            v.iter()
                                .max_by(|x, y| cmp_versions(&x.version, &y.version))
                                .map(view)
                                .expect("non-empty group")
                        };
                        diff.changed
                            .push((newest(left_packages), newest(right_packages)));
                    }
                }
            }
        }
        for (key, right_packages) in &b {
            if !a.contains_key(key) {
                diff.only_right.extend(right_packages.iter().map(view));
            }
        }
        Ok(diff)
    }
}

fn newer_or_equal(old: &str, new: &str) -> bool {
    cmp_versions(old, new) != std::cmp::Ordering::Less
}
