use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use crate::{Apt, PublicationSpec, Query, Source, SourceKind};

// --- Queries ----------------------------------------------------------------

fn check(query: &str, name: &str, version: &str, arch: &str, expected: bool) {
    let parsed = Query::parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    let priority = |field: &str| (field == "Priority").then(|| "optional".to_owned());
    let candidate = crate::Candidate {
        name,
        version,
        architecture: arch,
        field: &priority,
    };
    assert_eq!(
        parsed.matches(&candidate),
        expected,
        "{query} on {name} {version} {arch}"
    );
}

#[test]
fn queries_match_as_aptly_documents_them() {
    check("hello", "hello", "1.0", "amd64", true);
    check("hello", "hello-doc", "1.0", "amd64", false);
    check("hello (>= 1.2)", "hello", "1.10", "amd64", true);
    check("hello (>= 1.2)", "hello", "1.2~rc1", "amd64", false);
    check("hello (= 1:1.0)", "hello", "1:1.0", "amd64", true);
    check("hello (<< 1.0)", "hello", "1.0", "amd64", false);
    check("hello (>> 1.0)", "hello", "1.0+b1", "amd64", true);
    check("hello {i386}", "hello", "1.0", "amd64", false);
    check("$Architecture (= amd64)", "x", "1", "amd64", true);
    check("$Version (>= 2)", "x", "10", "all", true);
    check("Priority (optional)", "x", "1", "all", true);
    check("hello | world", "world", "1", "all", true);
    check(
        "hello, $Architecture (= i386)",
        "hello",
        "1",
        "amd64",
        false,
    );
    check(
        "hello, $Architecture (= i386) | world",
        "world",
        "1",
        "amd64",
        true,
    );
    check("!hello", "world", "1", "amd64", true);
    check(
        "(hello | world), !$Architecture (= all)",
        "world",
        "1",
        "all",
        false,
    );
}

#[test]
fn bad_queries_say_where() {
    for (query, expected) in [
        ("hello (>= 1.2", "expected ')'"),
        ("", "expected a package name"),
        ("hello |", "expected a package name"),
        ("$Architecture", "needs a (value)"),
        ("hello ) x", "unexpected text"),
    ] {
        let error = Query::parse(query).unwrap_err().to_string();
        assert!(
            error.contains(expected) && error.contains("column"),
            "{query:?}: {error}"
        );
    }
}

// --- Publishing ---------------------------------------------------------------

fn deb(dir: &Path, name: &str, version: &str) -> (String, Vec<u8>) {
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

async fn open(dir: &Path) -> Apt {
    let store = gantry_store::Store::open(&format!("sqlite://{}", dir.join("db").display()))
        .await
        .unwrap();
    let secrets = gantry_secrets::SecretStore::open(store.clone(), dir).unwrap();
    Apt::open(store, &dir.join("apt"), &secrets).await.unwrap()
}

fn repo_spec(repo: &str) -> PublicationSpec {
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
        origin: None,
        label: None,
    }
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

/// Packages are stored once, however many repositories and snapshots hold them.
#[tokio::test]
async fn packages_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    let file = deb(dir.path(), "once", "1.0");
    for repo in ["a", "b"] {
        apt.create_repo(repo, None, None, None).await.unwrap();
        apt.add(repo, vec![file.clone()], false).await.unwrap();
    }
    apt.snapshot_from_repo("s", "a").await.unwrap();
    let mut count = 0;
    let mut pending = vec![dir.path().join("apt/pool")];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.path().is_dir() {
                pending.push(e.path());
            } else if e.path().extension().is_some_and(|x| x == "deb") {
                count += 1;
            }
        }
    }
    assert_eq!(count, 1);
}

/// Data directories of earlier pool layouts (`pool/ab/cd/<sha256>.deb`,
/// `pool/ab/<sha256>.deb`) are moved to the current one on open, and their
/// packages still publish.
#[tokio::test]
async fn earlier_pool_layouts_are_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    apt.create_repo("r", None, None, None).await.unwrap();
    let files = vec![
        deb(dir.path(), "old", "1.0"),
        deb(dir.path(), "older", "1.0"),
    ];
    let added = apt.add("r", files, false).await.unwrap();
    let pool = dir.path().join("apt/pool");
    let current = |sha256: &str| crate::publish::content_path(&pool, sha256);
    let (a, b) = (&added.added[0].sha256, &added.added[1].sha256);
    let first = pool.join(&a[..2]).join(&a[2..4]);
    let second = pool.join(&b[..2]);
    for (sha256, old_dir) in [(a, &first), (b, &second)] {
        std::fs::create_dir_all(old_dir).unwrap();
        std::fs::rename(current(sha256), old_dir.join(format!("{sha256}.deb"))).unwrap();
    }
    std::fs::write(first.join(format!(".{a}.partial")), "cut").unwrap();
    std::fs::remove_file(pool.join(".layout-3")).unwrap();
    drop(apt);

    let apt = open(dir.path()).await;
    assert!(current(a).is_file() && current(b).is_file());
    assert!(!pool.join(&a[..2]).exists() && !pool.join(&b[..2]).exists());
    apt.publish(None, "stable", repo_spec("r")).await.unwrap();
    for name in ["old", "older"] {
        let published = format!("apt/public/pool/main/o/{name}_1.0_amd64.deb");
        assert!(dir.path().join(published).is_file(), "{name}");
    }
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
    apt.publish(None, "stable", repo_spec("r")).await.unwrap();
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

/// An add larger than one intake batch whose last file is not a package
/// records nothing and leaves no file in the pool.
#[tokio::test]
async fn a_refused_add_leaves_no_pool_files() {
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    apt.create_repo("r", None, None, None).await.unwrap();
    let mut files: Vec<(String, Vec<u8>)> = (0..1100)
        .map(|n| deb(dir.path(), &format!("p{n}"), "1.0"))
        .collect();
    files.push(("junk.deb".to_owned(), b"not a package".to_vec()));
    let error = apt.add("r", files, false).await.unwrap_err();
    assert!(error.to_string().contains("junk.deb"), "{error}");
    assert!(apt.repo_packages("r", None).await.unwrap().is_empty());
    let mut left = 0;
    for first in std::fs::read_dir(dir.path().join("apt/pool"))
        .unwrap()
        .flatten()
    {
        if first.path().is_dir() {
            left += std::fs::read_dir(first.path()).unwrap().count();
        }
    }
    assert_eq!(left, 0);
    // Nor what it kept of the checked files until recording them.
    let incoming = std::fs::read_dir(dir.path().join("apt/incoming")).unwrap();
    assert_eq!(incoming.count(), 0);
}

/// Two handles on one directory (as a server and `gantry apt --local` are)
/// exclude each other: the lock is a `flock` on a file, not a mutex of
/// one process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_is_shared_by_every_handle_on_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path()).await;
    let second = open(dir.path()).await;
    second.create_repo("r", None, None, None).await.unwrap();
    let held = first.lock.acquire().await.unwrap();
    let waiting = tokio::spawn(async move { second.drop_repo("r").await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "a change ran while the lock was held"
    );
    drop(held);
    tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .expect("the change did not run once the lock was free")
        .unwrap()
        .unwrap();
    assert!(first.repos().await.unwrap().is_empty());
}

/// An upload that has not finished arriving holds no lock: other changes
/// (a publish, another add) go ahead meanwhile, and the slow add still
/// lands when its last byte comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_does_not_hold_up_other_changes() {
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    apt.create_repo("r", None, None, None).await.unwrap();
    let (name, bytes) = deb(dir.path(), "slow", "1.0");
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, &name, &bytes[..]).unwrap();
    let tar = tar.into_inner().unwrap();

    // The upload: half of it now, the rest when the test says so.
    let (send, receive) = std::sync::mpsc::channel::<Vec<u8>>();
    send.send(tar[..tar.len() / 2].to_vec()).unwrap();
    let slow = {
        let apt = apt.clone();
        tokio::spawn(async move { apt.add_tar("r", ChannelReader::new(receive), false).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let quick = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        apt.add("r", vec![deb(dir.path(), "quick", "1.0")], false)
            .await
            .unwrap();
        apt.publish(None, "stable", repo_spec("r")).await.unwrap();
    })
    .await;
    assert!(quick.is_ok(), "other changes waited for the slow upload");
    assert!(!slow.is_finished());
    send.send(tar[tar.len() / 2..].to_vec()).unwrap();
    drop(send);
    let report = slow.await.unwrap().unwrap();
    assert_eq!(report.added.len(), 1);
    let names: Vec<String> = apt
        .repo_packages("r", None)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["quick", "slow"]);
    let incoming = std::fs::read_dir(dir.path().join("apt/incoming")).unwrap();
    assert_eq!(
        incoming.count(),
        0,
        "an add left its checked paragraphs behind"
    );
}

/// A blocking reader fed piece by piece through a channel.
struct ChannelReader {
    pieces: std::sync::mpsc::Receiver<Vec<u8>>,
    current: std::io::Cursor<Vec<u8>>,
}

impl ChannelReader {
    fn new(pieces: std::sync::mpsc::Receiver<Vec<u8>>) -> ChannelReader {
        ChannelReader {
            pieces,
            current: std::io::Cursor::new(Vec::new()),
        }
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = std::io::Read::read(&mut self.current, buf)?;
            if n > 0 {
                return Ok(n);
            }
            match self.pieces.recv() {
                Ok(piece) => self.current = std::io::Cursor::new(piece),
                Err(_) => return Ok(0),
            }
        }
    }
}

/// A failed add removes the pool files it wrote, except those a package
/// record took up meanwhile; an add that found a file in the pool checks,
/// under the lock, that it is still there before recording it.
#[tokio::test]
async fn a_failed_add_keeps_pool_files_that_others_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    apt.create_repo("r", None, None, None).await.unwrap();
    let shared = deb(dir.path(), "shared", "1.0");
    // An add of `shared` that fails (a junk file after it) and one that
    // succeeds, in sequence: the success recorded `shared`, the failure's
    // clean-up must leave its file alone.
    let mut intake = crate::intake::Intake::new(
        &dir.path().join("apt/pool"),
        &dir.path().join("apt/incoming"),
    );
    intake.push(shared.0.clone(), shared.1.clone()).unwrap();
    let (checked, stored) = intake.finish();
    checked.unwrap();
    apt.add("r", vec![shared.clone()], false).await.unwrap();
    apt.remove_unrecorded(stored).await.unwrap();
    let sha256 = hex::encode(Sha256::digest(&shared.1));
    let path = crate::publish::content_path(&dir.path().join("apt/pool"), &sha256);
    assert!(path.exists(), "a recorded package lost its file");

    // An intake that found the file in place, then lost it to a failing
    // add's clean-up, refuses to record rather than record a missing file.
    let lonely = deb(dir.path(), "lonely", "1.0");
    let mut writer = crate::intake::Intake::new(
        &dir.path().join("apt/pool"),
        &dir.path().join("apt/incoming"),
    );
    writer.push(lonely.0.clone(), lonely.1.clone()).unwrap();
    let (checked, written) = writer.finish();
    checked.unwrap();
    let mut finder = crate::intake::Intake::new(
        &dir.path().join("apt/pool"),
        &dir.path().join("apt/incoming"),
    );
    finder.push(lonely.0.clone(), lonely.1.clone()).unwrap();
    let (checked, found) = finder.finish();
    checked.unwrap();
    apt.remove_unrecorded(written).await.unwrap();
    let error = found.check_present().unwrap_err();
    assert!(error.to_string().contains("add again"), "{error}");
}

/// Two adds (here through two handles, as a server and a local command
/// would) storing the same new file at the same moment both succeed, and
/// the file is in the pool for both repositories.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_adds_of_the_same_new_file_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path()).await;
    let second = open(dir.path()).await;
    first.create_repo("a", None, None, None).await.unwrap();
    first.create_repo("b", None, None, None).await.unwrap();
    for n in 0..20 {
        let file = deb(dir.path(), &format!("same{n}"), "1.0");
        let sha256 = hex::encode(Sha256::digest(&file.1));
        let (a, b) = tokio::join!(
            first.add("a", vec![file.clone()], false),
            second.add("b", vec![file], false)
        );
        a.unwrap();
        b.unwrap();
        let path = crate::publish::content_path(&dir.path().join("apt/pool"), &sha256);
        assert!(path.exists(), "same{n}: no pool file");
    }
    assert_eq!(first.repo_packages("a", None).await.unwrap().len(), 20);
    assert_eq!(first.repo_packages("b", None).await.unwrap().len(), 20);
}
