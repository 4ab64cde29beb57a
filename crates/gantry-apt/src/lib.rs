//! APT repositories with aptly's model: local repositories of packages,
//! frozen snapshots of them, and publications (signed `dists/` trees with
//! a `pool/`) served over HTTP.
//!
//! - `service/`: `Apt`, the handle (`mod.rs`), its operations one group to a file:
//!   repositories and packages, snapshots, publications, unpacking.
//! - `publish.rs`: writing a publication's tree and swapping it in atomically.
//! - `query.rs`: aptly's package queries.
//! - `signing.rs`: signing keys and `InRelease`/`Release.gpg`.
//! - `intake.rs`: packages arriving: checked, then appended to the add's pack.
//! - `packs.rs`: package files, many to a file, and reading them back.
//! - `published_pool.rs`: a publication's `pool/` as a map to packages.
//! - `checked.rs`: what an add keeps of checked packages until it records them.
//! - `cleanup/`: forgetting unreferenced packages and freeing their bytes.
//! - `upload.rs`: an uploaded file on its way in, on disk.
//! - `lock.rs`: the cross-process lock around every change.
//! - `names.rs`: which names of repositories, distributions, prefixes are safe.
//!
//! Metadata lives in `gantry-store` (`apt_*` tables); package files live
//! once each in packs under `DATA_DIR/apt/packs/` (older ones in the
//! content pool, `DATA_DIR/apt/pool/`, by SHA-256). Published `dists/`
//! trees live under `DATA_DIR/apt/public/`; their `pool/` is a map the
//! server resolves to the packs.

#![forbid(unsafe_code)]

mod checked;
mod cleanup;
mod error;
mod index;
mod intake;
mod lock;
mod names;
mod packs;
mod publish;
mod published_pool;
mod query;
mod service;
mod signing;
mod upload;

pub use cleanup::{CleanupOptions, CleanupReport};
pub use error::AptError;
pub use names::{DEFAULT_PREFIX, normalize_prefix};
pub use packs::PackageBytes;
pub use publish::package_pool_path as pool_path;
pub use query::{Candidate, Query, Relation};
pub use service::{
    AddReport, Apt, Diff, HostInstall, PackageView, PublicationSpec, PublicationView,
    PublishedPackage, RepoView, SnapshotView, Source, SourceKind,
};
pub use signing::{KeyInfo, Keyring};
pub use upload::Upload;

#[cfg(test)]
mod tests;
