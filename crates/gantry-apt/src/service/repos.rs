//! Repositories and their packages: create, list, drop, add (from files,
//! a tar stream or an upload), remove and copy.

use std::collections::HashSet;
use std::path::PathBuf;

use gantry_store::{AptLanded, AptPackageKey, AptPackageRecord, AptRepoRecord};

use super::{
    AddReport, Apt, PackageView, RepoView, SourceKind, key_view, now, owned_key_view, view,
};
use crate::AptError;
use crate::checked::Checked;
use crate::intake::{Intake, KnownPackages};
use crate::names::check_name;
use crate::packs::PackWriter;
use crate::query::{Candidate, Query};

impl Apt {
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

    pub(super) async fn repo_record(&self, name: &str) -> Result<AptRepoRecord, AptError> {
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

    pub(super) async fn refuse_if_published(
        &self,
        kind: SourceKind,
        name: &str,
    ) -> Result<(), AptError> {
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

/// Packages are recorded this many at a time: one chunk of paragraphs in
/// memory at once.
const RECORDS_PER_INSERT: usize = 500;

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
