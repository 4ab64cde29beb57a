//! Running a cleanup: under the lock, find what is referenced, plan, copy
//! the live packages of half-dead packs, record it all in one transaction,
//! and only then remove files.

use std::collections::HashSet;
use std::path::Path;

use gantry_store::{AptPackLocation, AptPackageFile};
use sha2::{Digest, Sha256};

use super::plan::{Plan, Rewrite, list_packs, plan};
use super::{CleanupOptions, CleanupReport};
use crate::packs::{PackWriter, PackageBytes};
use crate::{Apt, AptError};

impl Apt {
    /// Forgets the packages nothing refers to and frees their bytes (see
    /// the module docs for the rules); with `dry_run`, only says what
    /// would go.
    pub async fn cleanup(&self, options: CleanupOptions) -> Result<CleanupReport, AptError> {
        let _guard = self.lock.acquire().await?;
        let referenced = self.referenced_packages().await?;
        let stored = self.store.apt_stored_packages().await?;
        let (packs, pool) = (self.packs(), self.pool());
        let plan = tokio::task::spawn_blocking(move || {
            let on_disk = list_packs(&packs)?;
            Ok::<_, AptError>(plan(
                stored,
                &referenced,
                on_disk,
                &pool,
                std::time::SystemTime::now(),
            ))
        })
        .await
        .expect("cleanup plan task")?;
        let mut report = plan.report(options.dry_run);
        if options.dry_run {
            return Ok(report);
        }
        report.bytes_freed = self.carry_out(plan).await?;
        tracing::info!(
            packages = report.packages_deleted.len(),
            packs_deleted = report.packs_deleted,
            packs_rewritten = report.packs_rewritten,
            bytes_freed = report.bytes_freed,
            "apt cleanup done"
        );
        Ok(report)
    }

    /// Every package a repository or snapshot lists or a kept generation
    /// of a publication maps.
    async fn referenced_packages(&self) -> Result<HashSet<String>, AptError> {
        let mut referenced = self.store.apt_listed_packages().await?;
        let mut roots: Vec<_> = self
            .store
            .apt_publications()
            .await?
            .iter()
            .map(|publication| self.prefix_root(&publication.prefix))
            .collect();
        roots.sort();
        roots.dedup();
        tokio::task::spawn_blocking(move || {
            for root in roots {
                crate::published_pool::mapped_packages(&root, &mut referenced)?;
            }
            Ok(referenced)
        })
        .await
        .expect("pool map task")
    }

    /// Rewrites, records, removes; the bytes freed.
    async fn carry_out(&self, plan: Plan) -> Result<u64, AptError> {
        let Plan {
            forget,
            pool_files,
            dead_packs,
            abandoned_packs,
            rewrites,
            ..
        } = plan;
        let (packs, pool) = (self.packs(), self.pool());
        let (rewrites, written) =
            tokio::task::spawn_blocking(move || copy_live(&packs, &pool, rewrites))
                .await
                .expect("pack rewrite task")?;
        let forget: Vec<String> = forget.into_iter().map(|p| p.key.sha256).collect();
        let moves: Vec<(String, AptPackLocation)> = written
            .iter()
            .flat_map(|pack| pack.moves.iter().cloned())
            .collect();
        let recorded = self.store.forget_apt_packages(&forget, &moves).await;
        if !matches!(recorded, Ok(true)) {
            // Nothing points into the new packs: they go, the old stay.
            for pack in written {
                pack.writer.remove();
            }
            return Err(match recorded {
                Err(error) => error.into(),
                _ => AptError::Conflict(
                    "a repository or snapshot changed during the cleanup: nothing was deleted, run it again"
                        .to_owned(),
                ),
            });
        }
        // From here the store names none of these files: removing them can
        // fail (then they are left, and a later cleanup takes an unnamed
        // pack for abandoned) but never breaks a package.
        let mut freed = 0;
        for doomed in pool_files.iter().chain(&dead_packs).chain(&abandoned_packs) {
            if remove(&doomed.path) {
                freed += doomed.size;
            }
        }
        for rewrite in &rewrites {
            if remove(&rewrite.old.path) {
                freed += rewrite.old.size.saturating_sub(rewrite.live_bytes());
            }
        }
        Ok(freed)
    }
}

/// A new pack holding the live packages of rewritten ones, and where each
/// package now is.
struct Written {
    writer: PackWriter,
    moves: Vec<(String, AptPackLocation)>,
}

/// Copies the live packages of each pack to be rewritten to a new pack of
/// its own, checking each one's SHA-256 on the way (a damaged package is
/// not spread), and syncs the new packs. On an error, the new packs are
/// removed and nothing else has changed.
fn copy_live(
    packs: &Path,
    pool: &Path,
    rewrites: Vec<Rewrite>,
) -> Result<(Vec<Rewrite>, Vec<Written>), AptError> {
    let mut written: Vec<Written> = Vec::new();
    for rewrite in &rewrites {
        let mut pack = Written {
            writer: PackWriter::new(packs),
            moves: Vec::new(),
        };
        let copied = copy_pack(packs, pool, rewrite, &mut pack);
        written.push(pack);
        if let Err(error) = copied {
            for pack in written {
                pack.writer.remove();
            }
            return Err(error);
        }
    }
    Ok((rewrites, written))
}

fn copy_pack(
    packs: &Path,
    pool: &Path,
    rewrite: &Rewrite,
    into: &mut Written,
) -> Result<(), AptError> {
    for package in &rewrite.live {
        let file = AptPackageFile {
            sha256: package.key.sha256.clone(),
            size: package.key.size,
            created_at: 0,
            location: package.location.clone(),
        };
        let bytes = PackageBytes::open(packs, pool, &file)?.read_all()?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != package.key.sha256 {
            return Err(AptError::io(rewrite.old.path.display())(
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "package {} {} is damaged (its bytes hash to {actual}): the pack is left as it is",
                        package.key.name, package.key.version
                    ),
                ),
            ));
        }
        let location = into.writer.append(&bytes)?;
        into.moves.push((package.key.sha256.clone(), location));
    }
    into.writer.finish()?;
    Ok(())
}

/// Removes a file no record names any more; whether its bytes were freed.
fn remove(path: &Path) -> bool {
    match std::fs::remove_file(path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot remove a file the cleanup freed");
            false
        }
    }
}
