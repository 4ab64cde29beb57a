//! Writing a publication's tree: pool links, `Packages` indexes, `Release`
//! and its signatures. The new `dists/D` is built aside in
//! `.gantry-dists/D.<id>` and put in place by renaming a symlink over
//! `dists/D`, which is atomic: a client sees the old indexes or the new
//! ones, never a mix. The previous generation is kept until the next
//! publish, so a client that read the old `InRelease` can still fetch the
//! old indexes (by hash too).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use crate::AptError;
use crate::signing::{KeyInfo, Keyring};

/// One package as an index lists it.
#[derive(Clone, Debug)]
pub struct IndexEntry {
    pub sha256: String,
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The paragraph without `Filename`, ending in a newline.
    pub control: String,
}

/// Everything one `dists/D` needs.
pub struct Tree<'a> {
    pub root: PathBuf,
    pub distribution: String,
    pub components: Vec<(String, Vec<IndexEntry>)>,
    pub architectures: Vec<String>,
    pub origin: String,
    pub label: String,
    pub acquire_by_hash: bool,
    pub content_pool: &'a Path,
    pub signer: Option<(&'a Keyring, KeyInfo)>,
}

/// The pool path of a package in a publication, as Debian lays it out:
/// `pool/main/h/hello/hello_1.0-1_amd64.deb` (`lib*` under `libh/`).
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

/// Where the content-addressed pool keeps a file.
pub fn content_path(pool: &Path, sha256: &str) -> PathBuf {
    pool.join(&sha256[..2])
        .join(&sha256[2..4])
        .join(format!("{sha256}.deb"))
}

/// Checks, links and writes; puts the new `dists/D` in place last. On any
/// error before the swap, what was published stays as it was.
pub fn write(tree: &Tree<'_>) -> Result<(), AptError> {
    link_pool(tree)?;
    let generations = tree.root.join(".gantry-dists");
    std::fs::create_dir_all(&generations).map_err(AptError::io(generations.display()))?;
    let id = uuid::Uuid::now_v7().simple().to_string();
    let staging = generations.join(format!("{}.{id}", tree.distribution));
    let result = write_dists(tree, &staging).and_then(|()| swap(tree, &staging));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result?;
    prune_generations(&generations, &tree.distribution, &staging);
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
    Ok(())
}

/// Deletes pool files under `root/pool` that no publication there uses.
pub fn collect_pool(root: &Path, used: &HashSet<String>) {
    let pool = root.join("pool");
    let mut pending = vec![pool];
    while let Some(dir) = pending.pop() {
        let Ok(listing) = std::fs::read_dir(&dir) else {
            continue;
        };
        for item in listing.flatten() {
            let path = item.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(root)
                && !used.contains(relative.to_string_lossy().as_ref())
            {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

fn link_pool(tree: &Tree<'_>) -> Result<(), AptError> {
    // Check everything first: a collision must leave the pool untouched.
    let mut wanted: HashMap<String, &IndexEntry> = HashMap::new();
    for (component, entries) in &tree.components {
        for entry in entries {
            let path = pool_path(component, entry);
            if let Some(other) = wanted.get(&path)
                && other.sha256 != entry.sha256
            {
                return Err(collision(&path));
            }
            wanted.insert(path, entry);
        }
    }
    let mut missing = Vec::new();
    for (path, entry) in &wanted {
        let target = tree.root.join(path);
        let source = content_path(tree.content_pool, &entry.sha256);
        match std::fs::metadata(&target) {
            Ok(existing) => {
                use std::os::unix::fs::MetadataExt;
                let source_meta =
                    std::fs::metadata(&source).map_err(AptError::io(source.display()))?;
                if existing.ino() != source_meta.ino() && sha256_of(&target)? != entry.sha256 {
                    return Err(collision(path));
                }
            }
            Err(_) => missing.push((target, source)),
        }
    }
    for (target, source) in missing {
        let dir = target.parent().expect("pool paths have a directory");
        std::fs::create_dir_all(dir).map_err(AptError::io(dir.display()))?;
        // A hard link keeps one copy on disk; another file system gets a copy.
        if let Err(e) = std::fs::hard_link(&source, &target)
            && e.kind() != std::io::ErrorKind::AlreadyExists
        {
            std::fs::copy(&source, &target).map_err(AptError::io(target.display()))?;
        }
    }
    Ok(())
}

fn collision(path: &str) -> AptError {
    AptError::Conflict(format!(
        "{path} is already published with different contents under this prefix"
    ))
}

fn sha256_of(path: &Path) -> Result<String, AptError> {
    let bytes = std::fs::read(path).map_err(AptError::io(path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// One file listed in Release: its path under `dists/D` and hashes.
struct Listed {
    path: String,
    size: usize,
    md5: String,
    sha1: String,
    sha256: String,
    sha512: String,
}

fn write_dists(tree: &Tree<'_>, staging: &Path) -> Result<(), AptError> {
    let previous = std::fs::canonicalize(tree.root.join("dists").join(&tree.distribution)).ok();
    let mut listed = Vec::new();
    for (component, entries) in &tree.components {
        let mut by_arch: BTreeMap<&str, String> = tree
            .architectures
            .iter()
            .map(|a| (a.as_str(), String::new()))
            .collect();
        let mut sorted: Vec<&IndexEntry> = entries.iter().collect();
        sorted.sort_by(|a, b| {
            (&a.name, &a.architecture, &a.version, &a.sha256).cmp(&(
                &b.name,
                &b.architecture,
                &b.version,
                &b.sha256,
            ))
        });
        for entry in sorted {
            let paragraph = format!(
                "{}Filename: {}\n\n",
                entry.control,
                pool_path(component, entry)
            );
            for (arch, text) in by_arch.iter_mut() {
                if entry.architecture == *arch || entry.architecture == "all" {
                    text.push_str(&paragraph);
                }
            }
        }
        for (arch, text) in by_arch {
            let relative = format!("{component}/binary-{arch}");
            let dir = staging.join(&relative);
            std::fs::create_dir_all(&dir).map_err(AptError::io(dir.display()))?;
            let (gz, xz) = compress_both(text.as_bytes());
            for (name, bytes) in [
                ("Packages", text.as_bytes()),
                ("Packages.gz", &gz),
                ("Packages.xz", &xz),
            ] {
                let path = dir.join(name);
                std::fs::write(&path, bytes).map_err(AptError::io(path.display()))?;
                let item = listed_file(format!("{relative}/{name}"), bytes);
                if tree.acquire_by_hash {
                    link_by_hash(&dir, &path, &item)?;
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
    Ok(())
}

/// gzip and xz at once, on two threads: on a large index they are most of
/// the time a publish takes.
fn compress_both(data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    std::thread::scope(|scope| {
        let xz = scope.spawn(|| {
            let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 1);
            encoder.write_all(data).expect("writing to memory");
            encoder.finish().expect("writing to memory")
        });
        let mut encoder = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).expect("writing to memory");
        let gz = encoder.finish().expect("writing to memory");
        (gz, xz.join().expect("xz thread"))
    })
}

fn listed_file(path: String, bytes: &[u8]) -> Listed {
    Listed {
        path,
        size: bytes.len(),
        md5: hex::encode(Md5::digest(bytes)),
        sha1: hex::encode(Sha1::digest(bytes)),
        sha256: hex::encode(Sha256::digest(bytes)),
        sha512: hex::encode(Sha512::digest(bytes)),
    }
}

fn link_by_hash(dir: &Path, file: &Path, item: &Listed) -> Result<(), AptError> {
    for (algorithm, hash) in [
        ("MD5Sum", &item.md5),
        ("SHA1", &item.sha1),
        ("SHA256", &item.sha256),
        ("SHA512", &item.sha512),
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
    let components: Vec<&str> = tree.components.iter().map(|(c, _)| c.as_str()).collect();
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
        ("MD5Sum", |l| &l.md5),
        ("SHA1", |l| &l.sha1),
        ("SHA256", |l| &l.sha256),
        ("SHA512", |l| &l.sha512),
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
