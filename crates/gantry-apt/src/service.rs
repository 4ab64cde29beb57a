//! `Apt`, the handle the API and the engine use: repositories, snapshots,
//! publications and keys, with aptly's semantics. Every change goes
//! through one lock, so two publishes of the same tree never interleave.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use gantry_deb::Version;
use gantry_secrets::SecretStore;
use gantry_store::{
    AptLanded, AptPackageKey, AptPackageRecord, AptPublicationRecord, AptRepoRecord,
    AptSnapshotRecord, AptSource, Store,
};
use serde::{Deserialize, Serialize};

use crate::AptError;
use crate::checked::Checked;
use crate::intake::{Intake, Stored};
use crate::lock::AptLock;
use crate::names::{check_name, normalize_prefix};
use crate::publish::{self, IndexEntry, Tree};
use crate::query::{Candidate, Query};
use crate::signing::Keyring;

#[derive(Clone)]
pub struct Apt {
    store: Store,
    dir: PathBuf,
    keyring: Keyring,
    pub(crate) lock: AptLock,
}

/// A package as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PackageView {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub sha256: String,
    pub size: i64,
    /// aptly's package key: `P<arch> <name> <version> <short hash>`.
    pub key: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct RepoView {
    pub name: String,
    pub distribution: String,
    pub component: String,
    pub comment: String,
    pub packages: usize,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct AddReport {
    pub added: Vec<PackageView>,
    pub replaced: Vec<PackageView>,
    /// Already in the repository with the same contents.
    pub unchanged: Vec<PackageView>,
}

/// Where a publication takes its packages from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Repo,
    Snapshot,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Source {
    pub component: String,
    pub name: String,
}

/// What a publication is; stored as its spec.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicationSpec {
    pub source_kind: SourceKind,
    pub sources: Vec<Source>,
    pub architectures: Vec<String>,
    #[serde(default)]
    pub skip_signing: bool,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub acquire_by_hash: bool,
    #[serde(default)]
    pub origin: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
}

/// A snapshot as the API shows it; `packages` only when one is shown.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotView {
    pub name: String,
    pub description: String,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<Vec<PackageView>>,
}

impl From<AptSnapshotRecord> for SnapshotView {
    fn from(record: AptSnapshotRecord) -> SnapshotView {
        SnapshotView {
            name: record.name,
            description: record.description,
            created_at: record.created_at,
            packages: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicationView {
    pub prefix: String,
    pub distribution: String,
    #[serde(flatten)]
    pub spec: PublicationSpec,
    pub updated_at: i64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Diff {
    /// Only in the first (`-`), only in the second (`+`), or in both with
    /// other versions.
    pub only_left: Vec<PackageView>,
    pub only_right: Vec<PackageView>,
    pub changed: Vec<(PackageView, PackageView)>,
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Packages are recorded this many at a time: one chunk of paragraphs in
/// memory at once.
const RECORDS_PER_INSERT: usize = 500;

fn key_view(key: &AptPackageKey) -> PackageView {
    PackageView {
        name: key.name.clone(),
        version: key.version.clone(),
        architecture: key.architecture.clone(),
        sha256: key.sha256.clone(),
        size: key.size,
        key: package_key(&key.name, &key.version, &key.architecture, &key.sha256),
    }
}

fn view(record: &AptPackageRecord) -> PackageView {
    PackageView {
        name: record.name.clone(),
        version: record.version.clone(),
        architecture: record.architecture.clone(),
        sha256: record.sha256.clone(),
        size: record.size,
        key: package_key(
            &record.name,
            &record.version,
            &record.architecture,
            &record.sha256,
        ),
    }
}

/// aptly's package key: `P<arch> <name> <version> <short hash>`.
fn package_key(name: &str, version: &str, architecture: &str, sha256: &str) -> String {
    format!("P{architecture} {name} {version} {}", &sha256[..16])
}

fn matches(query: &Query, record: &AptPackageRecord) -> bool {
    let control = &record.control;
    let field = |name: &str| -> Option<String> {
        gantry_deb::parse_paragraphs(control)
            .ok()?
            .first()?
            .get(name)
            .map(str::to_owned)
    };
    query.matches(&Candidate {
        name: &record.name,
        version: &record.version,
        architecture: &record.architecture,
        field: &field,
    })
}

impl Apt {
    /// Opens the repository files under `dir` (DATA_DIR/apt); the signing
    /// keys' passphrase lives in `secrets`.
    pub async fn open(store: Store, dir: &Path, secrets: &SecretStore) -> Result<Apt, AptError> {
        for sub in ["pool", "public", "incoming"] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path).map_err(AptError::io(path.display()))?;
        }
        // Another process (a server, a local command) may be opening the
        // same directory: the one-time moves happen under the lock.
        let lock = AptLock::new(dir);
        let guard = lock.acquire().await?;
        publish::migrate_pool_layout(&dir.join("pool"))?;
        crate::checked::remove_abandoned(&dir.join("incoming"));
        let keyring = Keyring::open(dir, secrets).await?;
        drop(guard);
        Ok(Apt {
            keyring,
            store,
            dir: dir.to_path_buf(),
            lock,
        })
    }

    /// The directory `/apt/` serves.
    pub fn public_dir(&self) -> PathBuf {
        self.dir.join("public")
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    fn pool(&self) -> PathBuf {
        self.dir.join("pool")
    }

    fn prefix_root(&self, prefix: &str) -> PathBuf {
        if prefix == crate::names::DEFAULT_PREFIX {
            self.public_dir()
        } else {
            self.public_dir().join(prefix)
        }
    }

    // --- Repositories ----------------------------------------------------

    pub async fn create_repo(
        &self,
        name: &str,
        distribution: Option<&str>,
        component: Option<&str>,
        comment: Option<&str>,
    ) -> Result<RepoView, AptError> {
        check_name("repository", name)?;
        let distribution = distribution.unwrap_or("");
        if !distribution.is_empty() {
            check_name("distribution", distribution)?;
        }
        let component = component.unwrap_or("main");
        check_name("component", component)?;
        let record = AptRepoRecord {
            name: name.to_owned(),
            distribution: distribution.to_owned(),
            component: component.to_owned(),
            comment: comment.unwrap_or("").to_owned(),
            created_at: now(),
        };
        self.store.create_apt_repo(&record).await?;
        Ok(repo_view(&record, 0))
    }

    pub async fn repos(&self) -> Result<Vec<RepoView>, AptError> {
        let mut views = Vec::new();
        for repo in self.store.apt_repos().await? {
            let count = self.store.apt_repo_package_count(&repo.name).await?;
            views.push(repo_view(&repo, count as usize));
        }
        Ok(views)
    }

    async fn repo_record(&self, name: &str) -> Result<AptRepoRecord, AptError> {
        self.store
            .apt_repo(name)
            .await?
            .ok_or_else(|| AptError::NotFound {
                kind: "repository",
                name: name.to_owned(),
            })
    }

    pub async fn repo(&self, name: &str) -> Result<(RepoView, Vec<PackageView>), AptError> {
        let record = self.repo_record(name).await?;
        let packages = self.store.apt_repo_packages(name).await?;
        Ok((
            repo_view(&record, packages.len()),
            packages.iter().map(view).collect(),
        ))
    }

    /// Packages of a repository matching `query` (all without one).
    pub async fn repo_packages(
        &self,
        name: &str,
        query: Option<&str>,
    ) -> Result<Vec<PackageView>, AptError> {
        self.repo_record(name).await?;
        let query = query.map(Query::parse).transpose()?;
        let packages = self.store.apt_repo_packages(name).await?;
        Ok(packages
            .iter()
            .filter(|p| query.as_ref().is_none_or(|q| matches(q, p)))
            .map(view)
            .collect())
    }

    /// aptly refuses to drop a published repository; so do we.
    pub async fn drop_repo(&self, name: &str) -> Result<(), AptError> {
        let _guard = self.lock.acquire().await?;
        self.repo_record(name).await?;
        self.refuse_if_published(SourceKind::Repo, name).await?;
        self.store.delete_apt_repo(name).await?;
        Ok(())
    }

    async fn refuse_if_published(&self, kind: SourceKind, name: &str) -> Result<(), AptError> {
        for publication in self.publications().await? {
            if publication.spec.source_kind == kind
                && publication.spec.sources.iter().any(|s| s.name == name)
            {
                return Err(AptError::Conflict(format!(
                    "{} {name:?} is published at {} {}: drop the publication first",
                    kind_name(kind),
                    publication.prefix,
                    publication.distribution
                )));
            }
        }
        Ok(())
    }

    /// Adds package files (each `(file name, bytes)`). Every file is read and
    /// checked before anything is recorded: one bad file adds nothing. A
    /// package with the name, version and architecture of a different file
    /// already in the repository is a conflict unless `force_replace`.
    pub async fn add(
        &self,
        repo: &str,
        files: Vec<(String, Vec<u8>)>,
        force_replace: bool,
    ) -> Result<AddReport, AptError> {
        self.add_with(repo, force_replace, move |intake| {
            files
                .into_iter()
                .try_for_each(|(what, bytes)| intake.push(what, bytes))
        })
        .await
    }

    /// [`Apt::add`] of every file of a tar stream, read as it arrives (an
    /// upload of many packages is never held whole in memory).
    pub async fn add_tar(
        &self,
        repo: &str,
        tar: impl std::io::Read + Send + 'static,
        force_replace: bool,
    ) -> Result<AddReport, AptError> {
        self.add_with(repo, force_replace, move |intake| intake.push_tar(tar))
            .await
    }

    /// [`Apt::add`] of files on disk, read a batch at a time (`gantry apt
    /// --local repo add`).
    pub async fn add_files(
        &self,
        repo: &str,
        paths: Vec<PathBuf>,
        force_replace: bool,
    ) -> Result<AddReport, AptError> {
        self.add_with(repo, force_replace, move |intake| {
            paths.into_iter().try_for_each(|path| {
                let bytes = std::fs::read(&path).map_err(AptError::io(path.display()))?;
                intake.push(path.display().to_string(), bytes)
            })
        })
        .await
    }

    async fn add_with(
        &self,
        repo: &str,
        force_replace: bool,
        fill: impl FnOnce(&mut Intake) -> Result<(), AptError> + Send + 'static,
    ) -> Result<AddReport, AptError> {
        self.repo_record(repo).await?;
        // Reading, checking and storing the files happens without the lock:
        // a slow upload must not hold up other operations. Only recording
        // them is done under it.
        let pool = self.pool();
        let incoming = self.dir.join("incoming");
        let (checked, stored) = tokio::task::spawn_blocking(move || {
            let mut intake = Intake::new(&pool, &incoming);
            match fill(&mut intake) {
                Ok(()) => intake.finish(),
                Err(error) => (Err(error), intake.abandon()),
            }
        })
        .await
        .expect("package intake task");
        let guard = self.lock.acquire().await?;
        let recorded = match checked {
            Ok(checked) => {
                self.record_checked(repo, &checked, &stored, force_replace)
                    .await
            }
            Err(error) => Err(error),
        };
        if recorded.is_err()
            && let Err(error) = self.remove_unrecorded(stored).await
        {
            tracing::warn!(repository = repo, %error, "cannot remove the pool files of a failed add");
        }
        drop(guard);
        recorded
    }

    /// Records checked packages; called under the lock.
    async fn record_checked(
        &self,
        repo: &str,
        checked: &Checked,
        stored: &Stored,
        force_replace: bool,
    ) -> Result<AddReport, AptError> {
        // The repository may have been dropped while the files arrived.
        self.repo_record(repo).await?;
        stored.check_present()?;
        self.record_added(repo, checked, force_replace).await
    }

    /// Removes the pool files a failed add created, unless a package record
    /// (of a concurrent add that found them in place) now uses them. Runs
    /// under the lock, which every recording takes.
    pub(crate) async fn remove_unrecorded(&self, stored: Stored) -> Result<(), AptError> {
        let known = self
            .store
            .known_apt_packages(&stored.created_hashes())
            .await?;
        tokio::task::spawn_blocking(move || stored.remove_except(&known))
            .await
            .expect("pool cleanup task");
        Ok(())
    }

    async fn record_added(
        &self,
        repo: &str,
        checked: &Checked,
        force_replace: bool,
    ) -> Result<AddReport, AptError> {
        let existing: std::collections::HashMap<(String, String, String), AptPackageKey> = self
            .store
            .apt_repo_package_keys(repo)
            .await?
            .into_iter()
            .map(|key| {
                (
                    (
                        key.name.clone(),
                        key.version.clone(),
                        key.architecture.clone(),
                    ),
                    key,
                )
            })
            .collect();
        let mut report = AddReport::default();
        let mut add = Vec::new();
        let mut remove = Vec::new();
        let mut seen = HashSet::new();
        let mut new_records = Vec::new();
        for (index, record) in checked.keys.iter().enumerate() {
            if !seen.insert(record.sha256.as_str()) {
                continue;
            }
            let key = (
                record.name.clone(),
                record.version.clone(),
                record.architecture.clone(),
            );
            match existing.get(&key) {
                Some(old) if old.sha256 == record.sha256 => report.unchanged.push(key_view(record)),
                Some(_) if !force_replace => {
                    return Err(AptError::Conflict(format!(
                        "package {}_{}_{} is already in repository {repo:?} with different contents: use --force-replace to replace it",
                        record.name, record.version, record.architecture
                    )));
                }
                Some(old) => {
                    remove.push(old.sha256.clone());
                    report.replaced.push(key_view(old));
                    add.push(record.sha256.clone());
                    report.added.push(key_view(record));
                    new_records.push(index);
                }
                None => {
                    add.push(record.sha256.clone());
                    report.added.push(key_view(record));
                    new_records.push(index);
                }
            }
        }
        // The paragraphs come back from the intake's file a chunk at a time.
        // It was just written, so reading it is copying from the page cache:
        // short enough not to need a blocking thread.
        let wanted: HashSet<usize> = new_records.into_iter().collect();
        let mut reader = checked.reader()?;
        loop {
            let chunk = reader.next_records(|index| wanted.contains(&index), RECORDS_PER_INSERT)?;
            if chunk.is_empty() {
                break;
            }
            let chunk: Vec<&AptPackageRecord> = chunk.iter().collect();
            self.store.add_apt_packages(&chunk).await?;
        }
        self.store
            .change_apt_repo_packages(repo, &add, &remove)
            .await?;
        // For `artifact` triggers, which a server fires from the store:
        // whichever process added them, the packages land the same way.
        let landed: Vec<AptLanded> = report
            .added
            .iter()
            .map(|package| AptLanded {
                repo: repo.to_owned(),
                name: package.name.clone(),
                version: package.version.clone(),
                architecture: package.architecture.clone(),
            })
            .collect();
        self.store.record_apt_landed(&landed, now()).await?;
        Ok(report)
    }

    pub async fn remove(&self, repo: &str, query: &str) -> Result<Vec<PackageView>, AptError> {
        let _guard = self.lock.acquire().await?;
        let query = Query::parse(query)?;
        self.repo_record(repo).await?;
        let gone: Vec<AptPackageRecord> = self
            .store
            .apt_repo_packages(repo)
            .await?
            .into_iter()
            .filter(|p| matches(&query, p))
            .collect();
        let hashes: Vec<String> = gone.iter().map(|p| p.sha256.clone()).collect();
        self.store
            .change_apt_repo_packages(repo, &[], &hashes)
            .await?;
        Ok(gone.iter().map(view).collect())
    }

    /// Copies (or moves) the packages matching `query` from `source` to
    /// `destination`.
    pub async fn copy(
        &self,
        source: &str,
        destination: &str,
        query: &str,
        move_them: bool,
    ) -> Result<Vec<PackageView>, AptError> {
        let _guard = self.lock.acquire().await?;
        let query = Query::parse(query)?;
        self.repo_record(source).await?;
        self.repo_record(destination).await?;
        let chosen: Vec<AptPackageRecord> = self
            .store
            .apt_repo_packages(source)
            .await?
            .into_iter()
            .filter(|p| matches(&query, p))
            .collect();
        let hashes: Vec<String> = chosen.iter().map(|p| p.sha256.clone()).collect();
        self.store
            .change_apt_repo_packages(destination, &hashes, &[])
            .await?;
        if move_them {
            self.store
                .change_apt_repo_packages(source, &[], &hashes)
                .await?;
        }
        Ok(chosen.iter().map(view).collect())
    }

    // --- Snapshots --------------------------------------------------------

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

    async fn snapshot_record(&self, name: &str) -> Result<AptSnapshotRecord, AptError> {
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

    // --- Publications -----------------------------------------------------

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
        let sets = self.resolve_sources(&spec).await?;
        if spec.architectures.is_empty() {
            let mut archs: Vec<String> = sets
                .iter()
                .flat_map(|(_, packages)| packages.iter().map(|p| p.architecture.clone()))
                .filter(|a| a != "all")
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
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
        if let Err(error) = self.write_tree(&prefix, distribution, &spec, sets).await {
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
        let sets = self.resolve_sources(&publication.spec).await?;
        self.write_tree(&prefix, distribution, &publication.spec, sets)
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
        self.collect(&prefix).await?;
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
        self.collect(&prefix).await
    }

    /// The packages of each source, without their paragraphs (which are
    /// read from the store as the indexes are written).
    async fn resolve_sources(
        &self,
        spec: &PublicationSpec,
    ) -> Result<Vec<(String, Vec<AptPackageKey>)>, AptError> {
        let mut sets = Vec::new();
        for source in &spec.sources {
            match spec.source_kind {
                SourceKind::Repo => self.repo_record(&source.name).await.map(drop)?,
                SourceKind::Snapshot => self.snapshot_record(&source.name).await.map(drop)?,
            }
            let packages = self
                .store
                .apt_source_keys(store_source(spec.source_kind, &source.name))
                .await?;
            sets.push((source.component.clone(), packages));
        }
        Ok(sets)
    }

    async fn write_tree(
        &self,
        prefix: &str,
        distribution: &str,
        spec: &PublicationSpec,
        sets: Vec<(String, Vec<AptPackageKey>)>,
    ) -> Result<(), AptError> {
        let root = self.prefix_root(prefix);
        let signer = if spec.skip_signing {
            None
        } else {
            Some(self.keyring.resolve(spec.key.as_deref())?)
        };
        let keyring = self.keyring.clone();
        let pool = self.pool();
        let components = sets
            .into_iter()
            .map(|(component, packages)| (component, packages.into_iter().map(entry).collect()))
            .collect();
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
                content_pool: &pool,
                signer: signer.map(|key| (&keyring, key)),
            })
        })
        .await
        .expect("publish task")
    }

    /// Removes pool files of `prefix` that no publication there lists.
    async fn collect(&self, prefix: &str) -> Result<(), AptError> {
        let mut used = HashSet::new();
        for publication in self.publications().await? {
            if publication.prefix != prefix {
                continue;
            }
            for (component, packages) in self.resolve_sources(&publication.spec).await? {
                for package in packages {
                    used.insert(publish::pool_path(&component, &entry(package)));
                }
            }
        }
        let root = self.prefix_root(prefix);
        tokio::task::spawn_blocking(move || publish::collect_pool(&root, &used))
            .await
            .expect("pool collection task");
        Ok(())
    }
}

fn entry(key: AptPackageKey) -> IndexEntry {
    IndexEntry {
        sha256: key.sha256,
        name: key.name,
        version: key.version,
        architecture: key.architecture,
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

fn kind_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Repo => "repository",
        SourceKind::Snapshot => "snapshot",
    }
}

fn repo_view(record: &AptRepoRecord, packages: usize) -> RepoView {
    RepoView {
        name: record.name.clone(),
        distribution: record.distribution.clone(),
        component: record.component.clone(),
        comment: record.comment.clone(),
        packages,
    }
}

fn cmp_versions(a: &str, b: &str) -> std::cmp::Ordering {
    match (Version::parse(a), Version::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

fn newer_or_equal(old: &str, new: &str) -> bool {
    cmp_versions(old, new) != std::cmp::Ordering::Less
}

impl std::fmt::Debug for Apt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apt")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
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
        let matching = self.repo_packages(repo, Some(query)).await?;
        let newest = matching
            .into_iter()
            .max_by(|a, b| cmp_versions(&a.version, &b.version))
            .ok_or_else(|| AptError::NotFound {
                kind: "package",
                name: format!("{query} in repository {repo}"),
            })?;
        let path = publish::content_path(&self.pool(), &newest.sha256);
        let dest = dest.to_path_buf();
        let what = newest.key.clone();
        tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&path).map_err(AptError::io(path.display()))?;
            gantry_deb::extract_data(&what, &bytes, &dest).map_err(AptError::from)
        })
        .await
        .expect("unpack task")?;
        Ok(newest)
    }
}
