//! What keeps an add and a reader right while a cleanup runs beside them.

use std::collections::HashSet;

use gantry_store::AptPackageFile;

use crate::checked::Checked;
use crate::packs::{PackageBytes, pack_path};
use crate::{Apt, AptError};

impl Apt {
    /// Called under the lock before an add records what it checked: that
    /// what it counts on is still stored. It wrote to its pack only the
    /// packages the store did not know when it checked them; a cleanup may
    /// since have forgotten one of the others (it was in no repository,
    /// snapshot or publication then), or taken the add's pack, still named
    /// by no record, for the leftover of a crash. Recording anyway would
    /// list a package whose row or bytes are gone.
    ///
    /// The add fails then, saying to retry, rather than writing the bytes
    /// after all: it no longer has them (an intake keeps a batch of files
    /// at a time, and a streamed upload cannot be read twice), and the race
    /// takes a cleanup forgetting the very package an add brings back,
    /// between its check and its recording: rare, and cheap to retry, when
    /// the retry stores the bytes again.
    pub(crate) async fn check_still_stored(&self, checked: &Checked) -> Result<(), AptError> {
        let mut written = HashSet::new();
        let mut counted_on = Vec::new();
        for (key, wrote) in checked.keys.iter().zip(&checked.written) {
            if *wrote {
                written.insert(key.sha256.as_str());
            }
        }
        let mut seen = HashSet::new();
        for key in &checked.keys {
            if !written.contains(key.sha256.as_str()) && seen.insert(key.sha256.as_str()) {
                counted_on.push(key.sha256.clone());
            }
        }
        if !written.is_empty() {
            let path = pack_path(&self.packs(), checked.pack());
            if !path.exists() {
                return Err(AptError::Conflict(format!(
                    "the pack of this add, {}, was removed by `apt db cleanup` while the add waited to record it: nothing was added, add the files again",
                    path.display()
                )));
            }
        }
        let known = self.store.known_apt_packages(&counted_on).await?;
        if let Some(gone) = checked
            .keys
            .iter()
            .find(|key| !written.contains(key.sha256.as_str()) && !known.contains(&key.sha256))
        {
            return Err(AptError::Conflict(format!(
                "package {}_{}_{} was deleted by `apt db cleanup` while this add was in progress: nothing was added, add the files again",
                gone.name, gone.version, gone.architecture
            )));
        }
        Ok(())
    }

    /// Opens the bytes of a recorded package; `None` if it is no longer
    /// recorded. The location in `file` was read before: if a cleanup has
    /// since moved the package to a new pack and removed the old one, the
    /// open fails with "not found", and the location is read once more (a
    /// cleanup records the new location before it removes the old pack, so
    /// the second read finds the new one). Once open, the file stays
    /// readable whatever is removed.
    pub(crate) async fn open_package(
        &self,
        file: AptPackageFile,
    ) -> Result<Option<PackageBytes>, AptError> {
        let sha256 = file.sha256.clone();
        match self.open_blocking(file).await {
            Err(AptError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            opened => return opened.map(Some),
        }
        let Some(file) = self.store.apt_package_file(&sha256).await? else {
            return Ok(None);
        };
        self.open_blocking(file).await.map(Some)
    }

    async fn open_blocking(&self, file: AptPackageFile) -> Result<PackageBytes, AptError> {
        let (packs, pool) = (self.packs(), self.pool());
        tokio::task::spawn_blocking(move || PackageBytes::open(&packs, &pool, &file))
            .await
            .expect("package open task")
    }
}
