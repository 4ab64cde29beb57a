//! `gantry apt db cleanup` (aptly's `db cleanup`, reprepro's
//! `deleteunreferenced`): forgetting the packages nothing refers to any
//! more, and giving their bytes back to the disk.
//!
//! A package is referenced when a repository or a snapshot lists it, or
//! when the pool map of a kept generation of a publication names it (the
//! current one serves what was removed from a repository since its last
//! publish; the previous one serves clients in the middle of an `apt-get
//! update`). Everything else loses its `apt_packages` row and its bytes.
//!
//! Bytes: a package recorded before packs has a file of its own in the
//! content pool, which goes with it. A pack holds many packages and is
//! dealt with as a whole, by how much of it is dead (bytes of no
//! remaining package):
//! - nothing of it is alive: the pack is removed;
//! - half of it or more is dead: its live packages are copied to a new
//!   pack, which is synced before one transaction records their new
//!   locations (and forgets the dead packages), then the old pack is
//!   removed;
//! - less than half is dead: it is kept as it is, and the report says how
//!   many dead bytes are left.
//!
//! Rewriting costs a copy of the live bytes, so a pack is rewritten only
//! when that frees at least as many bytes as it copies: a CI that publishes
//! a build a day and keeps the last few rewrites each pack about once, and
//! the disk never holds more than twice the live bytes of a pack.
//!
//! Concurrency. The run holds the APT lock, which every change takes, so
//! no repository, snapshot or publication changes under it. An add reads
//! and writes its pack outside the lock and records under it, so:
//! - a pack the store does not name may belong to an add in progress: it
//!   is removed only when older than an hour (`ABANDONED_AFTER`, an add
//!   that crashed), and an add records only if its pack is still there;
//! - an add skips writing the packages the store knew when it checked
//!   them; if a cleanup forgot one of those before the add records, the add
//!   fails and says to retry (`guards.rs`: it no longer has their bytes);
//! - the server looks a package's location up, then opens its pack: if a
//!   rewrite removed the pack in between, it looks the location up again
//!   (`Apt::open_package`), so a live package is never answered 404.

mod guards;
mod plan;
mod run;

use serde::Serialize;

use crate::service::PackageView;

/// A pack no record names is taken for the leftover of an add that crashed
/// when it has not been written to for this long. An add in progress writes
/// its pack as files arrive and records it right after.
pub(crate) const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// How a cleanup runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct CleanupOptions {
    /// Change nothing; report what would go.
    pub dry_run: bool,
}

/// What a cleanup did (or, dry, would do).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupReport {
    pub dry_run: bool,
    /// The packages forgotten: no repository, snapshot or kept publication
    /// refers to them.
    pub packages_deleted: Vec<PackageView>,
    /// Content-pool files (packages recorded before packs) removed.
    pub pool_files_deleted: usize,
    /// Packs none of whose packages remain, removed.
    pub packs_deleted: usize,
    /// Packs half dead or more, whose live packages were copied to a new pack.
    pub packs_rewritten: usize,
    /// Packs no record names, older than an hour (adds that crashed), removed.
    pub abandoned_packs_deleted: usize,
    /// Packs less than half dead, kept as they are.
    pub packs_kept_with_dead_bytes: usize,
    /// The dead bytes those packs still hold.
    pub dead_bytes_left: u64,
    pub bytes_freed: u64,
}

#[cfg(test)]
mod tests;
