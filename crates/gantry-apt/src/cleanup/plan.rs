//! Deciding what a cleanup removes, from the store's packages, the set of
//! referenced ones and the files on disk; nothing is changed here, so a dry
//! run and a real one make the same decisions.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use gantry_store::AptStoredPackage;

use super::{ABANDONED_AFTER, CleanupReport};
use crate::AptError;
use crate::publish::content_path;
use crate::service::owned_key_view;

/// What one cleanup removes and rewrites.
pub(super) struct Plan {
    /// Packages no repository, snapshot or kept publication refers to.
    pub forget: Vec<AptStoredPackage>,
    /// Content-pool files of forgotten packages.
    pub pool_files: Vec<Doomed>,
    /// Packs whose every package is forgotten.
    pub dead_packs: Vec<Doomed>,
    /// Packs no record names, not written to for `ABANDONED_AFTER`.
    pub abandoned_packs: Vec<Doomed>,
    pub rewrites: Vec<Rewrite>,
    pub kept_with_dead_bytes: usize,
    pub dead_bytes_left: u64,
}

/// A file to remove, and its size.
pub(super) struct Doomed {
    pub path: PathBuf,
    pub size: u64,
}

/// A pack half dead or more: its live packages move to a new pack.
pub(super) struct Rewrite {
    pub old: Doomed,
    /// In the order of their bytes in the old pack.
    pub live: Vec<AptStoredPackage>,
}

impl Rewrite {
    pub fn live_bytes(&self) -> u64 {
        self.live.iter().map(|p| p.key.size as u64).sum()
    }
}

/// A pack on disk.
pub(super) struct PackFile {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    pub modified: SystemTime,
}

/// Every `*.pack` of `dir`.
pub(super) fn list_packs(dir: &Path) -> Result<Vec<PackFile>, AptError> {
    let mut packs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(AptError::io(dir.display()))? {
        let entry = entry.map_err(AptError::io(dir.display()))?;
        let path = entry.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".pack"))
        else {
            continue;
        };
        let metadata = match entry.metadata() {
            Ok(metadata) => metadata,
            // Removed since the listing: by a failed add giving up its pack.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(AptError::io(path.display())(e)),
        };
        packs.push(PackFile {
            name: name.to_owned(),
            size: metadata.len(),
            modified: metadata.modified().map_err(AptError::io(path.display()))?,
            path,
        });
    }
    Ok(packs)
}

/// Decides, for every stored package and every pack on disk, what goes.
pub(super) fn plan(
    stored: Vec<AptStoredPackage>,
    referenced: &HashSet<String>,
    packs_on_disk: Vec<PackFile>,
    pool: &Path,
    now: SystemTime,
) -> Plan {
    // Per pack named by a record: its live packages.
    let mut named: HashMap<String, Vec<AptStoredPackage>> = HashMap::new();
    let mut forget = Vec::new();
    let mut pool_files = Vec::new();
    for package in stored {
        let live = referenced.contains(&package.key.sha256);
        match &package.location {
            Some(location) => {
                let in_pack = named.entry(location.pack.clone()).or_default();
                if live {
                    in_pack.push(package.clone());
                }
            }
            None if !live => {
                let path = content_path(pool, &package.key.sha256);
                if let Ok(metadata) = std::fs::metadata(&path) {
                    pool_files.push(Doomed {
                        path,
                        size: metadata.len(),
                    });
                }
            }
            None => {}
        }
        if !live {
            forget.push(package);
        }
    }
    let mut plan = Plan {
        forget,
        pool_files,
        dead_packs: Vec::new(),
        abandoned_packs: Vec::new(),
        rewrites: Vec::new(),
        kept_with_dead_bytes: 0,
        dead_bytes_left: 0,
    };
    for pack in packs_on_disk {
        let doomed = Doomed {
            path: pack.path,
            size: pack.size,
        };
        let Some(mut live) = named.remove(&pack.name) else {
            // No record names it: an add writing it now, or one that
            // crashed. Only time tells them apart.
            let idle = now.duration_since(pack.modified).unwrap_or_default();
            if idle >= ABANDONED_AFTER {
                plan.abandoned_packs.push(doomed);
            }
            continue;
        };
        if live.is_empty() {
            plan.dead_packs.push(doomed);
            continue;
        }
        live.sort_by_key(|p| p.location.as_ref().map_or(0, |l| l.offset));
        let live_bytes: u64 = live.iter().map(|p| p.key.size as u64).sum();
        let dead = pack.size.saturating_sub(live_bytes);
        if dead == 0 {
            continue;
        }
        if dead * 2 >= pack.size {
            plan.rewrites.push(Rewrite { old: doomed, live });
        } else {
            plan.kept_with_dead_bytes += 1;
            plan.dead_bytes_left += dead;
        }
    }
    plan
}

impl Plan {
    /// The report of this plan; `bytes_freed` is what it would free.
    pub fn report(&self, dry_run: bool) -> CleanupReport {
        let sizes = |files: &[Doomed]| files.iter().map(|f| f.size).sum::<u64>();
        let rewritten: u64 = self
            .rewrites
            .iter()
            .map(|r| r.old.size.saturating_sub(r.live_bytes()))
            .sum();
        let mut packages_deleted: Vec<_> = self
            .forget
            .iter()
            .map(|p| owned_key_view(p.key.clone()))
            .collect();
        packages_deleted.sort_by(|a, b| a.key.cmp(&b.key));
        CleanupReport {
            dry_run,
            packages_deleted,
            pool_files_deleted: self.pool_files.len(),
            packs_deleted: self.dead_packs.len(),
            packs_rewritten: self.rewrites.len(),
            abandoned_packs_deleted: self.abandoned_packs.len(),
            packs_kept_with_dead_bytes: self.kept_with_dead_bytes,
            dead_bytes_left: self.dead_bytes_left,
            bytes_freed: sizes(&self.pool_files)
                + sizes(&self.dead_packs)
                + sizes(&self.abandoned_packs)
                + rewritten,
        }
    }
}
