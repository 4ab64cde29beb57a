//! APT repositories, snapshots, publications and signing keys, shaped like
//! aptly's REST API (hence a few snake_case fields: `only_left`, `user_id`).
//! Times here are milliseconds since the Unix epoch, as aptly clients expect
//! numbers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A package as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub sha256: String,
    pub size: i64,
    /// aptly's package key: `P<arch> <name> <version> <short hash>`.
    pub key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PackageList {
    pub packages: Vec<Package>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Repo {
    pub name: String,
    pub distribution: String,
    pub component: String,
    pub comment: String,
    /// How many packages it holds.
    pub packages: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RepoList {
    pub repos: Vec<Repo>,
}

/// One repository with its packages.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RepoWithPackages {
    pub repo: Repo,
    pub packages: Vec<Package>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateRepo {
    pub name: String,
    pub distribution: Option<String>,
    pub component: Option<String>,
    pub comment: Option<String>,
}

/// The query of the package routes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackagesQuery {
    /// A package query (`Name (>= 1.0)`, `$Architecture (amd64)`, …).
    pub q: Option<String>,
    #[serde(default)]
    pub force_replace: bool,
    /// The name of an uploaded single file.
    pub filename: Option<String>,
    /// Publish the repository's publications again after adding.
    #[serde(default)]
    pub update: bool,
}

/// What adding packages did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddReport {
    pub added: Vec<Package>,
    pub replaced: Vec<Package>,
    /// Already in the repository with the same contents.
    pub unchanged: Vec<Package>,
}

/// The answer to an upload: what was added, and the publications updated
/// (with `update=true`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AddAnswer {
    pub report: AddReport,
    pub updated: Vec<Publication>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Removed {
    pub removed: Vec<Package>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CopyBody {
    pub to: String,
    pub query: String,
    /// Move instead of copy.
    #[serde(default, rename = "move")]
    pub move_them: bool,
}

/// A snapshot; `packages` only when one is shown.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub name: String,
    pub description: String,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<Vec<Package>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SnapshotList {
    pub snapshots: Vec<Snapshot>,
}

/// `snapshot create NAME from repo REPO` or `snapshot merge NAME SOURCE…`:
/// exactly one of `repo` and `merge`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateSnapshot {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<Vec<String>>,
    #[serde(default)]
    pub latest: bool,
}

/// A snapshot made, and how many packages it holds.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedSnapshot {
    pub name: String,
    pub packages: usize,
}

/// Two snapshots compared: only in the first, only in the second, or in
/// both with other versions (`[left, right]` pairs).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Diff {
    pub only_left: Vec<Package>,
    pub only_right: Vec<Package>,
    #[schema(value_type = Vec<Vec<Package>>)]
    pub changed: Vec<(Package, Package)>,
}

/// Where a publication takes its packages from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Repo,
    Snapshot,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Source {
    pub component: String,
    pub name: String,
}

/// A publication: what it publishes and how.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Publication {
    pub prefix: String,
    pub distribution: String,
    pub source_kind: SourceKind,
    pub sources: Vec<Source>,
    pub architectures: Vec<String>,
    pub skip_signing: bool,
    pub key: Option<String>,
    pub acquire_by_hash: bool,
    pub xz: bool,
    pub origin: Option<String>,
    pub label: Option<String>,
    pub updated_at: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PublicationList {
    pub publications: Vec<Publication>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PublishBody {
    pub prefix: Option<String>,
    pub distribution: String,
    pub source_kind: SourceKind,
    pub sources: Vec<Source>,
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub skip_signing: bool,
    pub key: Option<String>,
    /// On unless turned off: with it, a client that read the old
    /// `InRelease` still finds the indexes it names after a publish.
    pub acquire_by_hash: Option<bool>,
    /// Also write `Packages.xz` (off by default).
    #[serde(default)]
    pub xz: bool,
    pub origin: Option<String>,
    pub label: Option<String>,
}

/// Publishes again: `update` without snapshots, `switch` (one snapshot per
/// component) with them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdatePublication {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CleanupBody {
    /// Change nothing; answer what would go.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a cleanup did (or, dry, would do).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CleanupReport {
    pub dry_run: bool,
    /// The packages forgotten: nothing refers to them.
    pub packages_deleted: Vec<Package>,
    pub pool_files_deleted: usize,
    pub packs_deleted: usize,
    pub packs_rewritten: usize,
    pub abandoned_packs_deleted: usize,
    pub packs_kept_with_dead_bytes: usize,
    pub dead_bytes_left: u64,
    pub bytes_freed: u64,
}

/// Generates a key (`userId`) or imports one (`armored`): exactly one.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KeyBody {
    pub user_id: Option<String>,
    pub armored: Option<String>,
}

/// A key of the signing keyring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Key {
    pub fingerprint: String,
    pub user_id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<Key>,
}
