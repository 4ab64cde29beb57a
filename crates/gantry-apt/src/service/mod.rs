//! `Apt`, the handle the API and the engine use: repositories, snapshots,
//! publications and keys, with aptly's semantics. Every change goes
//! through one lock, so two publishes of the same tree never interleave.
//!
//! This file holds the handle, its opening and the views the API shows;
//! the operations live one group to a file:
//! - `repos.rs`: repositories and their packages (add, remove, copy).
//! - `snapshots.rs`: snapshots, merge and diff.
//! - `publications.rs`: publishing, updating, switching and dropping.
//! - `unpack.rs`: unpacking a package and serving published package files.

mod on_hosts;
mod publications;
mod repos;
mod snapshots;
mod unpack;

pub use on_hosts::HostInstall;
pub use unpack::PublishedPackage;

use std::path::{Path, PathBuf};

use gantry_deb::Version;
use gantry_secrets::SecretStore;
use gantry_store::{AptPackageKey, AptPackageRecord, AptSnapshotRecord, Store};
use serde::{Deserialize, Serialize};

use crate::AptError;
use crate::lock::AptLock;
use crate::publish;
use crate::published_pool::PoolMaps;
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
}

fn cmp_versions(a: &str, b: &str) -> std::cmp::Ordering {
    match (Version::parse(a), Version::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

impl std::fmt::Debug for Apt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apt")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}
