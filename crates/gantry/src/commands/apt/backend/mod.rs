//! Where `gantry apt` sends its operations: one trait, [`AptBackend`], with
//! two implementations that answer in the same wire types (`gantry_wire`),
//! so the printing code does not know which one it talked to:
//! - [`HttpApt`]: a server, through its HTTP API;
//! - [`LocalApt`] (`--local`): the data directory itself, through the same
//!   `gantry_api::AptService` the server's handlers call.

mod http;
mod local;

use std::path::PathBuf;

use gantry_wire::Dropped;
use gantry_wire::apt::{
    AddReport, CleanupBody, CleanupReport, CopyBody, CreateRepo, CreateSnapshot, CreatedSnapshot,
    Diff, KeyBody, KeyList, PackageList, Publication, PublicationList, PublishBody, Removed, Repo,
    RepoList, RepoWithPackages, Snapshot, SnapshotList, UpdatePublication,
};

pub use http::HttpApt;
pub use local::LocalApt;

/// The APT operations of the CLI. A prefix is the user's (`None`: the
/// default prefix); each implementation spells it for its side.
pub trait AptBackend {
    async fn create_repo(&self, body: &CreateRepo) -> anyhow::Result<Repo>;
    async fn repos(&self) -> anyhow::Result<RepoList>;
    async fn repo(&self, name: &str) -> anyhow::Result<RepoWithPackages>;
    /// Adds package files read from this machine's disk.
    async fn add(
        &self,
        repo: &str,
        paths: &[PathBuf],
        force_replace: bool,
    ) -> anyhow::Result<AddReport>;
    async fn remove(&self, repo: &str, query: &str) -> anyhow::Result<Removed>;
    async fn copy(&self, source: &str, body: &CopyBody) -> anyhow::Result<PackageList>;
    async fn drop_repo(&self, name: &str) -> anyhow::Result<Dropped>;

    async fn create_snapshot(&self, body: &CreateSnapshot) -> anyhow::Result<CreatedSnapshot>;
    async fn snapshots(&self) -> anyhow::Result<SnapshotList>;
    async fn snapshot(&self, name: &str) -> anyhow::Result<Snapshot>;
    async fn diff(&self, left: &str, right: &str) -> anyhow::Result<Diff>;
    async fn drop_snapshot(&self, name: &str) -> anyhow::Result<Dropped>;

    async fn publish(&self, body: PublishBody) -> anyhow::Result<Publication>;
    async fn publications(&self) -> anyhow::Result<PublicationList>;
    /// Publishes again: `update` without snapshots, `switch` with them.
    async fn republish(
        &self,
        prefix: Option<&str>,
        distribution: &str,
        body: &UpdatePublication,
    ) -> anyhow::Result<Publication>;
    async fn drop_publication(
        &self,
        prefix: Option<&str>,
        distribution: &str,
    ) -> anyhow::Result<Dropped>;

    async fn cleanup(&self, body: &CleanupBody) -> anyhow::Result<CleanupReport>;

    async fn create_key(&self, body: KeyBody) -> anyhow::Result<KeyList>;
    async fn keys(&self) -> anyhow::Result<KeyList>;
    /// The armored public key of `id`, or of the default key.
    async fn public_key(&self, id: Option<String>) -> anyhow::Result<String>;
}
