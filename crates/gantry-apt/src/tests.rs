mod adds;
mod query;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use crate::{Apt, PublicationSpec, Source, SourceKind};

pub(crate) fn deb(dir: &Path, name: &str, version: &str) -> (String, Vec<u8>) {
    let tree = dir.join(format!("tree-{name}-{version}"));
    std::fs::create_dir_all(tree.join("usr/share")).unwrap();
    std::fs::write(tree.join("usr/share/file"), format!("{name} {version}")).unwrap();
    let mut options = gantry_deb::BuildOptions::new(name, version);
    options.architecture = "amd64".into();
    (
        format!("{name}.deb"),
        gantry_deb::build(&tree, &options).unwrap(),
    )
}

pub(crate) async fn open(dir: &Path) -> Apt {
    let store = gantry_store::Store::open(&format!("sqlite://{}", dir.join("db").display()))
        .await
        .unwrap();
    let secrets = gantry_secrets::SecretStore::open(store.clone(), dir).unwrap();
    Apt::open(store, &dir.join("apt"), &secrets).await.unwrap()
}

pub(crate) fn repo_spec(repo: &str) -> PublicationSpec {
    PublicationSpec {
        source_kind: SourceKind::Repo,
        sources: vec![Source {
            component: "main".into(),
            name: repo.into(),
        }],
        architectures: vec!["amd64".into()],
        skip_signing: true,
        key: None,
        acquire_by_hash: true,
        xz: false,
        origin: None,
        label: None,
    }
}

pub(crate) fn pack_files(data_dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(data_dir.join("apt/packs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect()
}

/// A reader doing what apt does (read `Release`, then fetch the index it
/// names by hash) while publishes replace the tree: every index it is told
/// about exists and has the announced hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_never_sees_a_mix_of_generations() {
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    apt.create_repo("r", None, None, None).await.unwrap();
    apt.add("r", vec![deb(dir.path(), "p0", "1.0")], false)
        .await
        .unwrap();
    apt.publish(None, "stable", repo_spec("r")).await.unwrap();

    let root = apt.public_dir().join("dists/stable");
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let release = std::fs::read_to_string(root.join("Release")).unwrap();
                let sha = release
                    .split("SHA256:")
                    .nth(1)
                    .unwrap()
                    .lines()
                    .find(|l| l.ends_with(" main/binary-amd64/Packages"))
                    .unwrap()
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_owned();
                let index =
                    std::fs::read(root.join(format!("main/binary-amd64/by-hash/SHA256/{sha}")))
                        .unwrap_or_else(|e| panic!("the index Release names is gone: {e}"));
                assert_eq!(hex::encode(Sha256::digest(&index)), sha);
                reads += 1;
            }
            reads
        })
    };
    for i in 1..30 {
        apt.add("r", vec![deb(dir.path(), &format!("p{i}"), "1.0")], false)
            .await
            .unwrap();
        apt.update("stable", None).await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().unwrap();
    assert!(reads > 10, "the reader read {reads} times");
    let packages = std::fs::read_to_string(
        apt.public_dir()
            .join("dists/stable/main/binary-amd64/Packages"),
    )
    .unwrap();
    assert_eq!(packages.matches("Package: ").count(), 30);
}

/// A publish that fails (a pool collision under the prefix, a missing key)
/// leaves what was published as it was, and records nothing.
#[tokio::test]
async fn a_failed_publish_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    apt.create_repo("a", None, None, None).await.unwrap();
    apt.create_repo("b", None, None, None).await.unwrap();
    apt.add("a", vec![deb(dir.path(), "same", "1.0")], false)
        .await
        .unwrap();
    // Same name, version and architecture, other contents.
    let tree = dir.path().join("x");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("extra"), "x").unwrap();
    let mut options = gantry_deb::BuildOptions::new("same", "1.0");
    options.architecture = "amd64".into();
    let other = gantry_deb::build(&tree, &options).unwrap();
    apt.add("b", vec![("same.deb".into(), other)], false)
        .await
        .unwrap();

    apt.publish(None, "one", repo_spec("a")).await.unwrap();
    let release = apt.public_dir().join("dists/one/Release");
    let before = std::fs::read(&release).unwrap();

    let error = apt
        .publish(None, "two", repo_spec("b"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("already published with different contents"),
        "{error}"
    );
    assert!(!apt.public_dir().join("dists/two").exists());
    assert_eq!(apt.publications().await.unwrap().len(), 1);

    let mut signed = repo_spec("b");
    signed.skip_signing = false;
    let error = apt
        .publish(Some("other"), "two", signed)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("no signing key"), "{error}");
    assert!(!apt.public_dir().join("other").exists());

    let error = apt
        .publish(None, "one", repo_spec("b"))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("already has a publication"), "{error}");
    assert_eq!(std::fs::read(&release).unwrap(), before);

    // Bad names never reach the disk.
    for (prefix, dist) in [
        (Some("../x"), "d"),
        (Some("pool"), "d"),
        (None, "a/b"),
        (None, ".."),
        (None, "a\u{7}"),
    ] {
        assert!(
            apt.publish(prefix, dist, repo_spec("a")).await.is_err(),
            "{prefix:?} {dist:?}"
        );
    }
    assert!(apt.create_repo("../r", None, None, None).await.is_err());
}

/// Packages are stored once, however many repositories and snapshots hold
/// them: an add of packages the store knows writes no pack.
#[tokio::test]
async fn packages_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    let file = deb(dir.path(), "once", "1.0");
    for repo in ["a", "b"] {
        apt.create_repo(repo, None, None, None).await.unwrap();
        apt.add(repo, vec![file.clone(), file.clone()], false)
            .await
            .unwrap();
    }
    apt.snapshot_from_repo("s", "a").await.unwrap();
    let packs = pack_files(dir.path());
    assert_eq!(packs.len(), 1, "{packs:?}");
    assert_eq!(
        std::fs::metadata(&packs[0]).unwrap().len(),
        file.1.len() as u64,
        "a file given twice in one add was written twice"
    );
    let sha256 = hex::encode(Sha256::digest(&file.1));
    assert_eq!(apt.package_bytes(&sha256).await.unwrap(), file.1);
}

/// Data directories of earlier pool layouts (`pool/ab/cd/<sha256>.deb`,
/// `pool/ab/<sha256>.deb`) are moved to the current one on open, and a
/// package recorded before packs is read from there.
#[tokio::test]
async fn earlier_pool_layouts_are_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    let pool = dir.path().join("apt/pool");
    let current = |sha256: &str| crate::publish::content_path(&pool, sha256);
    let (old, older) = (
        deb(dir.path(), "old", "1.0").1,
        deb(dir.path(), "older", "1.0").1,
    );
    let (a, b) = (
        hex::encode(Sha256::digest(&old)),
        hex::encode(Sha256::digest(&older)),
    );
    let first = pool.join(&a[..2]).join(&a[2..4]);
    let second = pool.join(&b[..2]);
    for (sha256, bytes, old_dir) in [(&a, &old, &first), (&b, &older, &second)] {
        std::fs::create_dir_all(old_dir).unwrap();
        std::fs::write(old_dir.join(format!("{sha256}.deb")), bytes).unwrap();
    }
    std::fs::write(first.join(format!(".{a}.partial")), "cut").unwrap();
    std::fs::remove_file(pool.join(".layout-3")).unwrap();
    drop(apt);

    open(dir.path()).await;
    assert!(current(&a).is_file() && current(&b).is_file());
    assert!(!pool.join(&a[..2]).exists() && !pool.join(&b[..2]).exists());
    let legacy = gantry_store::AptPackageFile {
        sha256: a.clone(),
        size: old.len() as i64,
        created_at: 0,
        location: None,
    };
    let bytes = crate::PackageBytes::open(&dir.path().join("apt/packs"), &pool, &legacy)
        .unwrap()
        .read_all()
        .unwrap();
    assert_eq!(bytes, old);
}

/// The three forms of an index hold the same text, and `Release` lists
/// each with its size and SHA-256.
#[tokio::test]
async fn compressed_indexes_hold_the_plain_one() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    apt.create_repo("r", None, None, None).await.unwrap();
    let files = (0..300)
        .map(|n| deb(dir.path(), &format!("p{n}"), "1.0"))
        .collect();
    apt.add("r", files, false).await.unwrap();
    let mut spec = repo_spec("r");
    spec.xz = true;
    apt.publish(None, "stable", spec).await.unwrap();
    let dists = dir.path().join("apt/public/dists/stable");
    let index = dists.join("main/binary-amd64");
    let plain = std::fs::read(index.join("Packages")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&plain).matches("Package: ").count(),
        300
    );
    let mut gz = Vec::new();
    flate2::read::GzDecoder::new(&std::fs::read(index.join("Packages.gz")).unwrap()[..])
        .read_to_end(&mut gz)
        .unwrap();
    let mut xz = Vec::new();
    liblzma::read::XzDecoder::new(&std::fs::read(index.join("Packages.xz")).unwrap()[..])
        .read_to_end(&mut xz)
        .unwrap();
    assert!(gz == plain && xz == plain);
    let release = std::fs::read_to_string(dists.join("Release")).unwrap();
    let sha256 = release.split("SHA256:\n").nth(1).unwrap();
    for name in ["Packages", "Packages.gz", "Packages.xz"] {
        let bytes = std::fs::read(index.join(name)).unwrap();
        let line = format!(
            " {} {:>16} main/binary-amd64/{name}\n",
            hex::encode(Sha256::digest(&bytes)),
            bytes.len()
        );
        assert!(sha256.contains(&line), "{line:?} not in {release}");
    }
}

/// A publication's pool is a map to packs: a path resolves under its
/// prefix (one that itself holds a `pool` segment too), hidden names and
/// other paths do not. A tree published before the maps keeps serving its
/// on-disk `pool/` (the server falls back to files) until it is published
/// again, which removes those files.
#[tokio::test]
async fn published_pools_resolve_to_packs_and_replace_on_disk_pools() {
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    apt.create_repo("r", None, None, None).await.unwrap();
    let file = deb(dir.path(), "hello", "1:1.0");
    apt.add("r", vec![file.clone()], false).await.unwrap();
    apt.publish(None, "stable", repo_spec("r")).await.unwrap();
    apt.publish(Some("team/pool"), "stable", repo_spec("r"))
        .await
        .unwrap();
    let path = "pool/main/h/hello/hello_1.0_amd64.deb";
    for url in [path.to_owned(), format!("team/pool/{path}")] {
        let found = apt.published_package(&url).await.unwrap();
        let found = found.unwrap_or_else(|| panic!("{url} not found"));
        assert_eq!(found.bytes.read_all().unwrap(), file.1, "{url}");
    }
    for missing in [
        "pool/main/h/hello/hello_2.0_amd64.deb",
        "dists/stable/Release",
        "dists/stable/.pool-map",
        "other/pool/main/h/hello/hello_1.0_amd64.deb",
    ] {
        let found = apt.published_package(missing).await.unwrap();
        assert!(found.is_none(), "{missing}");
    }

    // As a tree published before the maps: no map, files on disk.
    let public = dir.path().join("apt/public");
    let generation = std::fs::canonicalize(public.join("dists/stable")).unwrap();
    std::fs::remove_file(generation.join(".pool-map")).unwrap();
    let on_disk = public.join("pool/main/h/hello_1.0_amd64.deb");
    std::fs::create_dir_all(on_disk.parent().unwrap()).unwrap();
    std::fs::write(&on_disk, &file.1).unwrap();
    let apt = open(dir.path()).await; // a server started afresh
    assert!(apt.published_package(path).await.unwrap().is_none());
    apt.update("stable", None).await.unwrap();
    assert!(apt.published_package(path).await.unwrap().is_some());
    assert!(!public.join("pool").exists(), "the on-disk pool stayed");
}
