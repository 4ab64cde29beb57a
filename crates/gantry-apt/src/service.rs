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
use crate::intake::{Intake, KnownPackages};
use crate::lock::AptLock;
use crate::names::{check_name, normalize_prefix};
use crate::packs::{PackWriter, PackageBytes};
use crate::publish::{self, IndexEntry, Tree};
use crate::published_pool::PoolMaps;
use crate::query::{Candidate, Query};
use crate::signing::Keyring;

#[derive(Clone)]
pub struct Apt {
    pub(crate) store: Store,
    dir: PathBuf,
    keyring: Keyring,
    pub(crate) lock: AptLock,
    pool_maps: PoolMaps,
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
    /// Also write `Packages.xz` (off by default: see `index.rs`).
    #[serde(default)]
    pub xz: bool,
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

/// What became of each package an add checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Added,
    /// Already in the repository with the same contents.
    Unchanged,
    /// The same file earlier in the same add.
    Repeated,
}

pub(crate) fn owned_key_view(key: AptPackageKey) -> PackageView {
    let package_key = package_key(&key.name, &key.version, &key.architecture, &key.sha256);
    PackageView {
        name: key.name,
        version: key.version,
        architecture: key.architecture,
        sha256: key.sha256,
        size: key.size,
        key: package_key,
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
        for sub in ["packs", "pool", "public", "incoming", "uploads"] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path).map_err(AptError::io(path.display()))?;
        }
        // Another process (a server, a local command) may be opening the
        // same directory: the one-time moves happen under the lock.
        let lock = AptLock::new(dir);
        let guard = lock.acquire().await?;
        publish::migrate_pool_layout(&dir.join("pool"))?;
        crate::checked::remove_abandoned(&dir.join("incoming"));
        crate::upload::remove_leftovers(&dir.join("uploads"));
        let keyring = Keyring::open(dir, secrets).await?;
        drop(guard);
        Ok(Apt {
            keyring,
            store,
            dir: dir.to_path_buf(),
            lock,
            pool_maps: PoolMaps::default(),
        })
    }

    /// The directory `/apt/` serves.
    pub fn public_dir(&self) -> PathBuf {
        self.dir.join("public")
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The content pool: a file per package, for packages recorded
    /// before packs.
    pub(crate) fn pool(&self) -> PathBuf {
        self.dir.join("pool")
    }

    pub(crate) fn packs(&self) -> PathBuf {
        self.dir.join("packs")
    }

    pub(crate) fn prefix_root(&self, prefix: &str) -> PathBuf {
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

    /// A new file for an upload, under `DATA_DIR/apt/uploads/` (mode 0600),
    /// removed when the [`Upload`](crate::Upload) is dropped.
    pub fn new_upload(&self) -> Result<crate::Upload, AptError> {
        crate::Upload::create(&self.dir.join("uploads"))
    }

    /// [`Apt::add`] of one uploaded file (`what` names it); a large one is
    /// checked and stored from its file a buffer at a time, never read
    /// into memory whole.
    pub async fn add_upload(
        &self,
        repo: &str,
        what: String,
        upload: crate::Upload,
        force_replace: bool,
    ) -> Result<AddReport, AptError> {
        self.add_with(repo, force_replace, move |intake| {
            let result = intake.push_file(what, upload.file());
            drop(upload);
            result
        })
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
                let file = std::fs::File::open(&path).map_err(AptError::io(path.display()))?;
                intake.push_file(path.display().to_string(), &file)
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
        let packs = self.packs();
        let incoming = self.dir.join("incoming");
        let uploads = self.dir.join("uploads");
        let known = self.known_packages();
        let (checked, pack) = tokio::task::spawn_blocking(move || {
            let mut intake = Intake::new(&packs, &incoming, known).with_uploads(&uploads);
            match fill(&mut intake) {
                Ok(()) => intake.finish(),
                Err(error) => (Err(error), intake.abandon()),
            }
        })
        .await
        .expect("package intake task");
        let guard = self.lock.acquire().await?;
        let recorded = match checked {
            Ok(mut checked) => self.record_checked(repo, &mut checked, force_replace).await,
            Err(error) => Err(error),
        };
        if recorded.is_err()
            && let Err(error) = self.remove_unrecorded(pack).await
        {
            tracing::warn!(repository = repo, %error, "cannot remove the pack of a failed add");
        }
        drop(guard);
        recorded
    }

    /// Asks the store, from the intake's blocking thread, which packages it
    /// already has (their bytes are not written again).
    fn known_packages(&self) -> KnownPackages {
        let store = self.store.clone();
        let runtime = tokio::runtime::Handle::current();
        Box::new(move |hashes: &[String]| {
            runtime
                .block_on(store.known_apt_packages(hashes))
                .map_err(AptError::from)
        })
    }

    /// Records checked packages; called under the lock.
    pub(crate) async fn record_checked(
        &self,
        repo: &str,
        checked: &mut Checked,
        force_replace: bool,
    ) -> Result<AddReport, AptError> {
        // The repository may have been dropped while the files arrived, or
        // a cleanup may have deleted what the add counted on.
        self.repo_record(repo).await?;
        self.check_still_stored(checked).await?;
        self.record_added(repo, checked, force_replace).await
    }

    /// Removes the pack of a failed add, unless a package record points
    /// into it (an add that failed part way through recording). Runs under
    /// the lock, which every recording takes.
    pub(crate) async fn remove_unrecorded(&self, pack: PackWriter) -> Result<(), AptError> {
        if !self.store.apt_pack_in_use(pack.name()).await? {
            tokio::task::spawn_blocking(move || pack.remove())
                .await
                .expect("pack removal task");
        }
        Ok(())
    }

    /// Records what an add checked. Memory matters here: an add of tens of
    /// thousands of packages holds each one's key once (in `checked`), the
    /// decisions as one byte each, and the report is made last by moving
    /// the keys into it.
    async fn record_added(
        &self,
        repo: &str,
        checked: &mut Checked,
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
        let mut fates = Vec::with_capacity(checked.keys.len());
        let mut replaced = Vec::new();
        let mut remove = Vec::new();
        let mut seen = HashSet::new();
        for record in &checked.keys {
            if !seen.insert(record.sha256.as_str()) {
                fates.push(Fate::Repeated);
                continue;
            }
            let key = (
                record.name.clone(),
                record.version.clone(),
                record.architecture.clone(),
            );
            let fate = match existing.get(&key) {
                Some(old) if old.sha256 == record.sha256 => Fate::Unchanged,
                Some(_) if !force_replace => {
                    return Err(AptError::Conflict(format!(
                        "package {}_{}_{} is already in repository {repo:?} with different contents: use --force-replace to replace it",
                        record.name, record.version, record.architecture
                    )));
                }
                Some(old) => {
                    remove.push(old.sha256.clone());
                    replaced.push(key_view(old));
                    Fate::Added
                }
                None => Fate::Added,
            };
            fates.push(fate);
        }
        drop(seen);
        let added: Vec<usize> = (0..fates.len())
            .filter(|&index| fates[index] == Fate::Added)
            .collect();
        // The paragraphs come back from the intake's file a chunk at a time.
        // It was just written, so reading it is copying from the page cache:
        // short enough not to need a blocking thread.
        let mut reader = checked.reader()?;
        loop {
            let chunk =
                reader.next_records(|index| fates[index] == Fate::Added, RECORDS_PER_INSERT)?;
            if chunk.is_empty() {
                break;
            }
            let chunk: Vec<&AptPackageRecord> = chunk.iter().collect();
            self.store.add_apt_packages(&chunk).await?;
        }
        drop(reader);
        let hashes: Vec<&str> = added
            .iter()
            .map(|&index| checked.keys[index].sha256.as_str())
            .collect();
        self.store
            .change_apt_repo_packages(repo, &hashes, &remove)
            .await?;
        drop(hashes);
        // For `artifact` triggers, which a server fires from the store:
        // whichever process added them, the packages land the same way.
        let at = now();
        for chunk in added.chunks(RECORDS_PER_INSERT) {
            let chunk: Vec<AptLanded> = chunk
                .iter()
                .map(|&index| {
                    let key = &checked.keys[index];
                    AptLanded {
                        repo: repo.to_owned(),
                        name: key.name.clone(),
                        version: key.version.clone(),
                        architecture: key.architecture.clone(),
                    }
                })
                .collect();
            self.store.record_apt_landed(&chunk, at).await?;
        }
        let mut report = AddReport {
            replaced,
            ..AddReport::default()
        };
        for (key, fate) in std::mem::take(&mut checked.keys).into_iter().zip(fates) {
            match fate {
                Fate::Added => report.added.push(owned_key_view(key)),
                Fate::Unchanged => report.unchanged.push(owned_key_view(key)),
                Fate::Repeated => {}
            }
        }
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
        let added: Vec<&str> = hashes.iter().map(String::as_str).collect();
        self.store
            .change_apt_repo_packages(destination, &added, &[])
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

/// A package file a publication's `pool/` names, ready to be served.
#[derive(Debug)]
pub struct PublishedPackage {
    pub sha256: String,
    /// When the package was first recorded: its bytes never change.
    pub recorded_at: std::time::SystemTime,
    pub bytes: PackageBytes,
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
