//! A publication's `pool/`, without a file per package. Each generation of
//! `dists/D` carries a map, `.pool-map`, of the pool paths its indexes name
//! (`pool/main/h/hello/hello_1.0_amd64.deb`) to the packages' SHA-256; the server
//! answers a request under `pool/` from the maps of the generations on disk
//! and the package's bytes in its pack (`Apt::published_package`).
//!
//! So a publish writes one small file instead of linking every package
//! into the tree, and the pool a client sees changes with `dists/D`, in the
//! same atomic rename: a client that read the previous generation's
//! indexes can still fetch the files they name, as long as that generation
//! is kept (until the next publish of the same distribution).
//!
//! Trees published before the maps keep their `pool/` files on disk; the
//! server serves those as files, and they are removed once every
//! distribution of their prefix has been published again.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::AptError;
use crate::publish::Tree;

/// The file, in each generation of `dists/D`, that maps pool paths to
/// SHA-256s. Its dot keeps the server from serving it.
pub(crate) const MAP_NAME: &str = ".pool-map";

/// The pool paths a tree's indexes name (`paths`, from writing them),
/// sorted and each once, with its package's SHA-256; an error if one path
/// would name two different files, within the tree or against another
/// distribution published under the same prefix.
pub(crate) fn plan(
    tree: &Tree<'_>,
    mut paths: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, AptError> {
    paths.sort_unstable();
    paths.dedup();
    if let Some(pair) = paths.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(collision(&pair[0].0));
    }
    check_against_others(tree, &paths)?;
    Ok(paths)
}

/// Writes the map of `planned` into a generation directory. It appears
/// whole (written aside, then renamed): the server reads a map once.
pub(crate) fn write_map(generation: &Path, planned: &[(String, String)]) -> Result<(), AptError> {
    let temp = generation.join(format!("{MAP_NAME}.partial"));
    let file = std::fs::File::create(&temp).map_err(AptError::io(temp.display()))?;
    let mut out = BufWriter::new(file);
    for (pool_path, sha256) in planned {
        writeln!(out, "{sha256} {pool_path}").map_err(AptError::io(temp.display()))?;
    }
    out.flush().map_err(AptError::io(temp.display()))?;
    let path = generation.join(MAP_NAME);
    std::fs::rename(&temp, &path).map_err(AptError::io(path.display()))
}

/// One generation's map: pool path to SHA-256.
type PoolMap = HashMap<String, String>;

fn read_map(generation: &Path) -> Option<PoolMap> {
    let file = std::fs::File::open(generation.join(MAP_NAME)).ok()?;
    let mut map = HashMap::new();
    for line in BufReader::new(file).lines() {
        let line = line.ok()?;
        let (sha256, path) = line.split_once(' ')?;
        map.insert(path.to_owned(), sha256.to_owned());
    }
    Some(map)
}

/// The pool paths of the other distributions under the tree's prefix must
/// name the same files as this one's: a client of both fetches one file.
fn check_against_others(tree: &Tree<'_>, planned: &[(String, String)]) -> Result<(), AptError> {
    let find = |path: &str| {
        planned
            .binary_search_by(|(p, _)| p.as_str().cmp(path))
            .ok()
            .map(|i| &planned[i].1)
    };
    for (distribution, generation) in current_generations(&tree.root) {
        if distribution == tree.distribution {
            continue;
        }
        let Some(map) = read_map(&generation) else {
            continue;
        };
        for (path, sha256) in &map {
            if find(path).is_some_and(|ours| ours != sha256) {
                return Err(collision(path));
            }
        }
    }
    // The files of a tree published before the maps cannot collide: they
    // are at `pool/C/h/NAME_…`, without the directory per package.
    Ok(())
}

fn collision(path: &str) -> AptError {
    AptError::Conflict(format!(
        "{path} is already published with different contents under this prefix"
    ))
}

/// Each distribution published under `root`, with the generation its
/// `dists/D` link points at.
fn current_generations(root: &Path) -> Vec<(String, PathBuf)> {
    let Ok(listing) = std::fs::read_dir(root.join("dists")) else {
        return Vec::new();
    };
    listing
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            if name.starts_with('.') {
                return None;
            }
            Some((name, std::fs::canonicalize(entry.path()).ok()?))
        })
        .collect()
}

/// Every generation kept under `root`: the current ones first (they win if
/// an older generation named a path differently), then the previous ones.
fn kept_generations(root: &Path) -> Vec<PathBuf> {
    let mut generations: Vec<PathBuf> = current_generations(root)
        .into_iter()
        .map(|(_, generation)| generation)
        .collect();
    let seen: HashSet<PathBuf> = generations.iter().cloned().collect();
    if let Ok(listing) = std::fs::read_dir(root.join(".gantry-dists")) {
        let mut older: Vec<PathBuf> = listing
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.join(MAP_NAME).is_file())
            .filter_map(|path| std::fs::canonicalize(path).ok())
            .filter(|path| !seen.contains(path))
            .collect();
        older.sort();
        older.reverse(); // UUIDv7 names: newest first.
        generations.extend(older);
    }
    generations
}

/// Adds to `into` the SHA-256 of every package a kept generation under
/// `root` maps, current or previous (what the server may still answer).
/// Unlike the server's lookups, a map that cannot be read is an error: the
/// cleanup would otherwise take its packages for unreferenced.
pub(crate) fn mapped_packages(root: &Path, into: &mut HashSet<String>) -> Result<(), AptError> {
    if !root.is_dir() {
        return Ok(());
    }
    for generation in kept_generations(root) {
        let path = generation.join(MAP_NAME);
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            // A generation published before the maps names no package.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(AptError::io(path.display())(e)),
        };
        for line in BufReader::new(file).lines() {
            let line = line.map_err(AptError::io(path.display()))?;
            let Some((sha256, _)) = line.split_once(' ') else {
                return Err(AptError::Invalid(format!(
                    "{}: a line without a pool path: {line:?}",
                    path.display()
                )));
            };
            into.insert(sha256.to_owned());
        }
    }
    Ok(())
}

/// Removes the `pool/` files of a tree published before the maps, once no
/// current generation under `root` lacks a map.
pub(crate) fn remove_legacy_pool(root: &Path) {
    let legacy = root.join("pool");
    if !legacy.is_dir() {
        return;
    }
    let all_mapped = current_generations(root)
        .iter()
        .all(|(_, generation)| generation.join(MAP_NAME).is_file());
    if all_mapped {
        let _ = std::fs::remove_dir_all(&legacy);
    }
}

/// The maps the server has read, by generation directory. Generations never
/// change once written, so a map is read once; maps of generations gone
/// from disk are dropped when their tree is next looked at.
#[derive(Clone, Default)]
pub(crate) struct PoolMaps {
    maps: Arc<Mutex<HashMap<PathBuf, Arc<PoolMap>>>>,
}

impl PoolMaps {
    /// The SHA-256 of the package that `pool_path` names in the tree at
    /// `root`, if any kept generation names it.
    pub fn find(&self, root: &Path, pool_path: &str) -> Option<String> {
        let root = std::fs::canonicalize(root).ok()?;
        let generations = kept_generations(&root);
        let found = generations
            .iter()
            .find_map(|generation| self.map(generation).get(pool_path).cloned());
        let kept_here = root.join(".gantry-dists");
        self.maps.lock().expect("pool maps lock").retain(|path, _| {
            path.parent() != Some(kept_here.as_path()) || generations.contains(path)
        });
        found
    }

    fn map(&self, generation: &Path) -> Arc<PoolMap> {
        if let Some(map) = self.maps.lock().expect("pool maps lock").get(generation) {
            return map.clone();
        }
        // A generation without a map is one published before the maps.
        let map = Arc::new(read_map(generation).unwrap_or_default());
        self.maps
            .lock()
            .expect("pool maps lock")
            .insert(generation.to_path_buf(), map.clone());
        map
    }
}
