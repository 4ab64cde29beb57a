//! `gantry apt --local`: the data directory's APT store, opened in this
//! process.

use std::path::{Path, PathBuf};

use anyhow::Context;
use gantry_api::AptService;
use gantry_apt::Apt;
use gantry_wire::Dropped;
use gantry_wire::apt::{
    AddReport, CleanupBody, CleanupReport, CopyBody, CreateRepo, CreateSnapshot, CreatedSnapshot,
    Diff, KeyBody, KeyList, PackageList, Publication, PublicationList, PublishBody, Removed, Repo,
    RepoList, RepoWithPackages, Snapshot, SnapshotList, UpdatePublication,
};

use super::AptBackend;

pub struct LocalApt {
    apt: Apt,
}

impl LocalApt {
    /// Opens the APT repositories of `data_dir` in this process, creating
    /// what is missing, as `gantry serve` would. Safe beside a server using
    /// the same directory: changes take a lock on a file both processes see,
    /// and SQLite (WAL) lets each read what the other committed.
    pub async fn open(data_dir: &Path, database: Option<&str>) -> anyhow::Result<LocalApt> {
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
        Ok(LocalApt { apt })
    }

    fn service(&self) -> AptService<'_> {
        AptService::new(&self.apt)
    }
}

impl AptBackend for LocalApt {
    async fn create_repo(&self, body: &CreateRepo) -> anyhow::Result<Repo> {
        Ok(self.service().create_repo(body).await?)
    }

    async fn repos(&self) -> anyhow::Result<RepoList> {
        Ok(self.service().repos().await?)
    }

    async fn repo(&self, name: &str) -> anyhow::Result<RepoWithPackages> {
        Ok(self.service().repo(name).await?)
    }

    /// Reads the files a batch at a time, in this process.
    async fn add(
        &self,
        repo: &str,
        paths: &[PathBuf],
        force_replace: bool,
    ) -> anyhow::Result<AddReport> {
        Ok(self
            .service()
            .add_files(repo, paths.to_vec(), force_replace)
            .await?)
    }

    async fn remove(&self, repo: &str, query: &str) -> anyhow::Result<Removed> {
        Ok(self.service().remove(repo, query).await?)
    }

    async fn copy(&self, source: &str, body: &CopyBody) -> anyhow::Result<PackageList> {
        Ok(self.service().copy(source, body).await?)
    }

    async fn drop_repo(&self, name: &str) -> anyhow::Result<Dropped> {
        Ok(self.service().drop_repo(name).await?)
    }

    async fn create_snapshot(&self, body: &CreateSnapshot) -> anyhow::Result<CreatedSnapshot> {
        Ok(self.service().create_snapshot(body).await?)
    }

    async fn snapshots(&self) -> anyhow::Result<SnapshotList> {
        Ok(self.service().snapshots().await?)
    }

    async fn snapshot(&self, name: &str) -> anyhow::Result<Snapshot> {
        Ok(self.service().snapshot(name).await?)
    }

    async fn diff(&self, left: &str, right: &str) -> anyhow::Result<Diff> {
        Ok(self.service().diff(left, right).await?)
    }

    async fn drop_snapshot(&self, name: &str) -> anyhow::Result<Dropped> {
        Ok(self.service().drop_snapshot(name).await?)
    }

    async fn publish(&self, body: PublishBody) -> anyhow::Result<Publication> {
        Ok(self.service().publish(body).await?)
    }

    async fn publications(&self) -> anyhow::Result<PublicationList> {
        Ok(self.service().publications().await?)
    }

    async fn republish(
        &self,
        prefix: Option<&str>,
        distribution: &str,
        body: &UpdatePublication,
    ) -> anyhow::Result<Publication> {
        Ok(self.service().republish(prefix, distribution, body).await?)
    }

    async fn drop_publication(
        &self,
        prefix: Option<&str>,
        distribution: &str,
    ) -> anyhow::Result<Dropped> {
        Ok(self
            .service()
            .drop_publication(prefix, distribution)
            .await?)
    }

    async fn cleanup(&self, body: &CleanupBody) -> anyhow::Result<CleanupReport> {
        Ok(self.service().cleanup(body).await?)
    }

    async fn create_key(&self, body: KeyBody) -> anyhow::Result<KeyList> {
        Ok(self.service().create_key(body).await?)
    }

    async fn keys(&self) -> anyhow::Result<KeyList> {
        Ok(self.service().keys().await?)
    }

    async fn public_key(&self, id: Option<String>) -> anyhow::Result<String> {
        Ok(self.service().public_key(id).await?)
    }
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
