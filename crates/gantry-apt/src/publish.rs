//! Writing a publication's tree: `Packages` indexes, `Release` and its
//! signatures, and the map of its pool (`published_pool.rs`). The new
//! `dists/D` is built aside in
//! `.gantry-dists/D.<id>` and put in place by renaming a symlink over
//! `dists/D`, which is atomic: a client sees the old indexes or the new
//! ones, never a mix. The previous generation is kept until the next
//! publish, so a client that read the old `InRelease` can still fetch the
//! old indexes (by hash too).

use std::path::{Path, PathBuf};

use gantry_deb::Digests;

use crate::AptError;
use crate::index::IndexWriter;
use crate::published_pool;
use crate::signing::{KeyInfo, Keyring};

/// One package of a publication: what names its pool file.
#[derive(Clone, Debug)]
pub struct IndexEntry {
    pub sha256: String,
    pub name: String,
    pub version: String,
    pub architecture: String,
}

/// The paragraphs of a publication's indexes, read as they are written
/// (never all in memory): `each` calls `sink` with every package an index
/// of `architecture` lists in component number `component`, with its
/// paragraph (without `Filename`, ending in a newline).
pub trait Paragraphs: Sync {
    fn each(
        &self,
        component: usize,
        architecture: &str,
        sink: &mut dyn FnMut(&IndexEntry, &str) -> Result<(), AptError>,
    ) -> Result<(), AptError>;
}

/// Everything one `dists/D` needs.
pub struct Tree<'a> {
    pub root: PathBuf,
    pub distribution: String,
    /// The components, in the order [`Paragraphs::each`] numbers them.
    pub components: Vec<String>,
    pub paragraphs: &'a dyn Paragraphs,
    pub architectures: Vec<String>,
    pub origin: String,
    pub label: String,
    pub acquire_by_hash: bool,
    /// Whether to write `Packages.xz` too (`index.rs`).
    pub xz: bool,
    pub signer: Option<(&'a Keyring, KeyInfo)>,
}

/// The pool path of a package in a publication, laid out as Debian's
/// archive and aptly lay it out: `pool/main/h/hello/hello_1.0-1_amd64.deb`
/// (`lib*` under `libh/`), the epoch left out. The pool is a map, not
/// files (`published_pool.rs`), so the directory per package costs nothing.
pub fn pool_path(component: &str, entry: &IndexEntry) -> String {
    package_pool_path(component, &entry.name, &entry.version, &entry.architecture)
}

/// [`pool_path`] from the parts.
pub fn package_pool_path(component: &str, name: &str, version: &str, architecture: &str) -> String {
    let letter = if name.starts_with("lib") && name.len() > 3 {
        &name[..4]
    } else {
        &name[..1.min(name.len())]
    };
    let version = version.split_once(':').map_or(version, |(_, rest)| rest);
    format!("pool/{component}/{letter}/{name}/{name}_{version}_{architecture}.deb")
}

/// Where the content-addressed pool keeps a file: one level of 16
/// directories (by the first hex digit), which stay few whatever the number
/// of packages: creating a directory costs as much as storing a package.
pub fn content_path(pool: &Path, sha256: &str) -> PathBuf {
    pool.join(&sha256[..1]).join(format!("{sha256}.deb"))
}

/// Moves files of earlier pool layouts (`pool/ab/cd/<sha256>.deb`, then
/// `pool/ab/<sha256>.deb`) to [`content_path`] and removes the directories
/// left empty; a marker file says it was done. Idempotent: a move cut
/// short by a crash is finished at the next start.
pub fn migrate_pool_layout(pool: &Path) -> Result<(), AptError> {
    let marker = pool.join(".layout-3");
    if marker.exists() {
        return Ok(());
    }
    fn walk(pool: &Path, dir: &Path) -> Result<(), AptError> {
        for item in std::fs::read_dir(dir)
            .map_err(AptError::io(dir.display()))?
            .flatten()
        {
            let path = item.path();
            if item.file_type().is_ok_and(|t| t.is_dir()) {
                walk(pool, &path)?;
                // Only empty directories go; the current ones stay.
                let _ = std::fs::remove_dir(&path);
                continue;
            }
            let name = item.file_name().to_string_lossy().into_owned();
            let Some(sha256) = name.strip_suffix(".deb") else {
                if dir != pool {
                    // An interrupted write (`.SHA256.partial`).
                    let _ = std::fs::remove_file(&path);
                }
                continue;
            };
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let to = content_path(pool, sha256);
            if to != path {
                let parent = to.parent().expect("pool paths have a directory");
                std::fs::create_dir_all(parent).map_err(AptError::io(parent.display()))?;
                std::fs::rename(&path, &to).map_err(AptError::io(to.display()))?;
            }
        }
        Ok(())
    }
    walk(pool, pool)?;
    std::fs::write(&marker, b"").map_err(AptError::io(marker.display()))
}

/// Checks, writes and maps; puts the new `dists/D` in place last. On any
/// error before the swap, what was published stays as it was.
pub fn write(tree: &Tree<'_>) -> Result<(), AptError> {
    let generations = tree.root.join(".gantry-dists");
    std::fs::create_dir_all(&generations).map_err(AptError::io(generations.display()))?;
    let id = uuid::Uuid::now_v7().simple().to_string();
    let staging = generations.join(format!("{}.{id}", tree.distribution));
    let result = write_dists(tree, &staging)
        .and_then(|pool| published_pool::plan(tree, pool))
        .and_then(|pool| published_pool::write_map(&staging, &pool))
        .and_then(|()| swap(tree, &staging));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result?;
    prune_generations(&generations, &tree.distribution, &staging);
    published_pool::remove_legacy_pool(&tree.root);
    Ok(())
}

/// Removes a publication's `dists/D` (the link, then its generations).
pub fn remove(root: &Path, distribution: &str) -> Result<(), AptError> {
    let link = root.join("dists").join(distribution);
    match std::fs::remove_file(&link) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(AptError::io(link.display())(e)),
    }
    let generations = root.join(".gantry-dists");
    prune_generations(&generations, distribution, Path::new(""));
    published_pool::remove_legacy_pool(root);
    Ok(())
}

/// One file listed in Release: its path under `dists/D` and digests.
struct Listed {
    path: String,
    size: u64,
    digests: Digests,
}

/// Writes the indexes and `Release`; the pool paths the indexes name, each
/// with its package's SHA-256 (a package of architecture `all` once per
/// index that lists it).
fn write_dists(tree: &Tree<'_>, staging: &Path) -> Result<Vec<(String, String)>, AptError> {
    let previous = std::fs::canonicalize(tree.root.join("dists").join(&tree.distribution)).ok();
    let mut listed = Vec::new();
    let mut pool = Vec::new();
    for (number, component) in tree.components.iter().enumerate() {
        for arch in &tree.architectures {
            let relative = format!("{component}/binary-{arch}");
            let dir = staging.join(&relative);
            std::fs::create_dir_all(&dir).map_err(AptError::io(dir.display()))?;
            let mut index = IndexWriter::create(&dir, tree.xz)?;
            tree.paragraphs.each(number, arch, &mut |entry, control| {
                let path = pool_path(component, entry);
                index.write(control.as_bytes())?;
                index.write(b"Filename: ")?;
                index.write(path.as_bytes())?;
                index.write(b"\n\n")?;
                pool.push((path, entry.sha256.clone()));
                Ok(())
            })?;
            for file in index.finish()? {
                let item = Listed {
                    path: format!("{relative}/{}", file.name),
                    size: file.size,
                    digests: file.digests,
                };
                if tree.acquire_by_hash {
                    link_by_hash(&dir, &file.path, &item)?;
                }
                listed.push(item);
            }
            if tree.acquire_by_hash
                && let Some(previous) = &previous
            {
                carry_by_hash(&previous.join(&relative), &dir);
            }
        }
    }
    let release = release_text(tree, &listed);
    let path = staging.join("Release");
    std::fs::write(&path, release).map_err(AptError::io(path.display()))?;
    if let Some((keyring, key)) = &tree.signer {
        keyring.sign(key, &path)?;
    }
    Ok(pool)
}

fn link_by_hash(dir: &Path, file: &Path, item: &Listed) -> Result<(), AptError> {
    for (algorithm, hash) in [
        ("MD5Sum", &item.digests.md5),
        ("SHA1", &item.digests.sha1),
        ("SHA256", &item.digests.sha256),
        ("SHA512", &item.digests.sha512),
    ] {
        let by_hash = dir.join("by-hash").join(algorithm);
        std::fs::create_dir_all(&by_hash).map_err(AptError::io(by_hash.display()))?;
        let target = by_hash.join(hash);
        if !target.exists() {
            std::fs::hard_link(file, &target).map_err(AptError::io(target.display()))?;
        }
    }
    Ok(())
}

/// Hard-links the previous generation's by-hash files into the new one.
fn carry_by_hash(previous: &Path, dir: &Path) {
    let Ok(algorithms) = std::fs::read_dir(previous.join("by-hash")) else {
        return;
    };
    for algorithm in algorithms.flatten() {
        let Ok(files) = std::fs::read_dir(algorithm.path()) else {
            continue;
        };
        let into = dir.join("by-hash").join(algorithm.file_name());
        let _ = std::fs::create_dir_all(&into);
        for file in files.flatten() {
            let target = into.join(file.file_name());
            if !target.exists() {
                let _ = std::fs::hard_link(file.path(), target);
            }
        }
    }
}

fn release_text(tree: &Tree<'_>, listed: &[Listed]) -> String {
    let mut text = String::new();
    let components: Vec<&str> = tree.components.iter().map(String::as_str).collect();
    text.push_str(&format!("Origin: {}\n", tree.origin));
    text.push_str(&format!("Label: {}\n", tree.label));
    text.push_str(&format!("Suite: {}\n", tree.distribution));
    text.push_str(&format!("Codename: {}\n", tree.distribution));
    text.push_str(&format!(
        "Date: {}\n",
        httpdate::fmt_http_date(std::time::SystemTime::now()).replace("GMT", "UTC")
    ));
    text.push_str(&format!(
        "Architectures: {}\n",
        tree.architectures.join(" ")
    ));
    text.push_str(&format!("Components: {}\n", components.join(" ")));
    text.push_str("Description: Generated by gantry\n");
    if tree.acquire_by_hash {
        text.push_str("Acquire-By-Hash: yes\n");
    }
    type Pick = fn(&Listed) -> &str;
    let sections: [(&str, Pick); 4] = [
        ("MD5Sum", |l| &l.digests.md5),
        ("SHA1", |l| &l.digests.sha1),
        ("SHA256", |l| &l.digests.sha256),
        ("SHA512", |l| &l.digests.sha512),
    ];
    for (name, pick) in sections {
        text.push_str(name);
        text.push_str(":\n");
        for item in listed {
            text.push_str(&format!(
                " {} {:>16} {}\n",
                pick(item),
                item.size,
                item.path
            ));
        }
    }
    text
}

fn swap(tree: &Tree<'_>, staging: &Path) -> Result<(), AptError> {
    let dists = tree.root.join("dists");
    std::fs::create_dir_all(&dists).map_err(AptError::io(dists.display()))?;
    keep_last_modified_increasing(&dists.join(&tree.distribution), staging);
    let name = staging.file_name().expect("staging has a name");
    let target = Path::new("../.gantry-dists").join(name);
    let temp = dists.join(format!(".{}.new", tree.distribution));
    let _ = std::fs::remove_file(&temp);
    std::os::unix::fs::symlink(&target, &temp).map_err(AptError::io(temp.display()))?;
    let link = dists.join(&tree.distribution);
    std::fs::rename(&temp, &link).map_err(AptError::io(link.display()))
}

/// HTTP dates have one-second resolution: two publishes within the same
/// second would give the new `Release` the `Last-Modified` of the old one, and
/// apt's `If-Modified-Since` would get a 304 and keep the old indexes. So the
/// new tree's files are dated at least one second after the published ones.
fn keep_last_modified_increasing(published: &Path, staging: &Path) {
    // The newest of the published files: signing may end a second after
    // `Release` was written.
    let previous = ["Release", "InRelease", "Release.gpg"]
        .iter()
        .filter_map(|name| {
            std::fs::metadata(published.join(name))
                .and_then(|m| m.modified())
                .ok()
        })
        .max();
    let Some(previous) = previous else {
        return; // First publish.
    };
    let floor = previous + std::time::Duration::from_secs(1);
    let mut pending = vec![staging.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file()
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|at| at < floor)
                && let Ok(file) = std::fs::File::options().write(true).open(entry.path())
            {
                let _ = file.set_modified(floor);
            }
        }
    }
}

/// Keeps the current generation and the one before it.
fn prune_generations(generations: &Path, distribution: &str, current: &Path) {
    let Ok(listing) = std::fs::read_dir(generations) else {
        return;
    };
    let prefix = format!("{distribution}.");
    let mut old: Vec<PathBuf> = listing
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && !n[prefix.len()..].contains('.'))
                && p != current
        })
        .collect();
    // Ids are time-ordered (UUIDv7), so the last one is the previous generation.
    old.sort();
    let keep = if current.as_os_str().is_empty() { 0 } else { 1 };
    for path in old.iter().rev().skip(keep) {
        let _ = std::fs::remove_dir_all(path);
    }
}
