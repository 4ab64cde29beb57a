//! Cleanups on real data directories (files and a SQLite store): what is
//! kept, what goes, what packs become, and the races with adds and
//! readers, driven step by step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::{CleanupOptions, CleanupReport};
use crate::tests::{deb, open, pack_files, repo_spec};
use crate::{Apt, AptError};

const RUN: CleanupOptions = CleanupOptions { dry_run: false };
const DRY: CleanupOptions = CleanupOptions { dry_run: true };

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Adds `names` (version 1.0) to `repo` in one add, so into one pack; their
/// SHA-256 and sizes, by name.
async fn add(apt: &Apt, dir: &Path, repo: &str, names: &[&str]) -> BTreeMap<String, Vec<u8>> {
    let files: Vec<(String, Vec<u8>)> = names.iter().map(|n| deb(dir, n, "1.0")).collect();
    apt.add(repo, files.clone(), false).await.unwrap();
    names
        .iter()
        .zip(files)
        .map(|(name, (_, bytes))| (name.to_string(), bytes))
        .collect()
}

async fn remove(apt: &Apt, repo: &str, name: &str) {
    let removed = apt.remove(repo, name).await.unwrap();
    assert_eq!(removed.len(), 1, "{name}");
}

async fn pack_of(apt: &Apt, bytes: &[u8]) -> PathBuf {
    let file = apt.store.apt_package_file(&sha256(bytes)).await.unwrap();
    let pack = file.unwrap().location.expect("a package in a pack").pack;
    apt.packs().join(format!("{pack}.pack"))
}

/// Whether the store still has the package, and if so that its bytes read
/// back whole (their SHA-256 is the package's).
async fn still_stored(apt: &Apt, bytes: &[u8]) -> bool {
    match apt.package_bytes(&sha256(bytes)).await {
        Ok(read) => {
            assert_eq!(sha256(&read), sha256(bytes), "a package read back changed");
            true
        }
        Err(AptError::NotFound { .. }) => false,
        Err(error) => panic!("{error}"),
    }
}

fn deleted(report: &CleanupReport) -> Vec<&str> {
    report
        .packages_deleted
        .iter()
        .map(|p| p.name.as_str())
        .collect()
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// A package removed from its repository, in no snapshot or publication,
/// goes with its bytes: its pack when it was alone in it, its content-pool
/// file when it was recorded before packs. The others stay readable.
#[tokio::test]
async fn an_unreferenced_package_goes_with_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    apt.create_repo("r", None, None, None).await.unwrap();
    let gone = add(&apt, dir.path(), "r", &["gone"]).await;
    let kept = add(&apt, dir.path(), "r", &["kept"]).await;
    let gone_pack = pack_of(&apt, &gone["gone"]).await;
    // A package recorded before packs: a row without a pack, a pool file.
    let legacy = deb(dir.path(), "legacy", "1.0").1;
    let legacy_path = crate::publish::content_path(&apt.pool(), &sha256(&legacy));
    std::fs::create_dir_all(legacy_path.parent().unwrap()).unwrap();
    std::fs::write(&legacy_path, &legacy).unwrap();
    let inspected = gantry_deb::inspect("legacy.deb", &legacy).unwrap();
    let legacy_record = gantry_store::AptPackageRecord {
        sha256: inspected.sha256.clone(),
        name: inspected.name,
        version: inspected.version.to_string(),
        architecture: inspected.architecture,
        size: inspected.size as i64,
        control: "Package: legacy\n".into(),
        created_at: 1,
        location: None,
    };
    apt.store.add_apt_packages(&[&legacy_record]).await.unwrap();
    assert!(still_stored(&apt, &legacy).await);
    remove(&apt, "r", "gone").await;

    let report = apt.cleanup(RUN).await.unwrap();
    assert_eq!(deleted(&report), ["gone", "legacy"]);
    assert_eq!((report.packs_deleted, report.pool_files_deleted), (1, 1));
    assert_eq!(
        report.bytes_freed,
        (gone["gone"].len() + legacy.len()) as u64
    );
    assert!(!gone_pack.exists(), "the dead pack stayed");
    assert!(!legacy_path.exists(), "the pool file stayed");
    assert!(!still_stored(&apt, &gone["gone"]).await);
    assert!(!still_stored(&apt, &legacy).await);
    assert!(still_stored(&apt, &kept["kept"]).await);

    // Nothing left to do.
    let again = apt.cleanup(RUN).await.unwrap();
    assert!(again.packages_deleted.is_empty());
    assert_eq!(again.bytes_freed, 0);
}

/// A package is kept while a snapshot lists it, or a kept generation of a
/// publication maps it: the current one (removed from the repository, not
/// published since) and the previous one (published once since). Published
/// twice since, it goes.
#[tokio::test]
async fn snapshots_and_kept_publications_keep_packages() {
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    apt.create_repo("r", None, None, None).await.unwrap();
    let snapped = add(&apt, dir.path(), "r", &["snapped"]).await;
    apt.snapshot_from_repo("s", "r").await.unwrap();
    let published = add(&apt, dir.path(), "r", &["published"]).await;
    apt.publish(None, "stable", repo_spec("r")).await.unwrap();
    remove(&apt, "r", "snapped").await;
    remove(&apt, "r", "published").await;
    let path = "pool/main/p/published/published_1.0_amd64.deb";

    let report = apt.cleanup(RUN).await.unwrap();
    assert!(deleted(&report).is_empty(), "{:?}", deleted(&report));
    assert!(apt.published_package(path).await.unwrap().is_some());

    apt.update("stable", None).await.unwrap();
    let report = apt.cleanup(RUN).await.unwrap();
    assert!(
        deleted(&report).is_empty(),
        "the previous generation still serves it"
    );
    assert!(apt.published_package(path).await.unwrap().is_some());

    apt.update("stable", None).await.unwrap();
    let report = apt.cleanup(RUN).await.unwrap();
    assert_eq!(deleted(&report), ["published"]);
    assert!(!still_stored(&apt, &published["published"]).await);
    assert!(still_stored(&apt, &snapped["snapped"]).await);

    apt.drop_snapshot("s").await.unwrap();
    let report = apt.cleanup(RUN).await.unwrap();
    assert_eq!(deleted(&report), ["snapped"]);
}

/// A pack is removed when nothing of it is alive, rewritten when half or
/// more is dead (its live packages read back byte for byte from the new
/// pack), kept with its dead bytes counted when less is.
#[tokio::test]
async fn packs_are_removed_rewritten_or_kept_by_their_dead_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    apt.create_repo("r", None, None, None).await.unwrap();
    let dead = add(&apt, dir.path(), "r", &["d1", "d2"]).await;
    let half = add(&apt, dir.path(), "r", &["h1", "h2", "h3", "h4"]).await;
    let little = add(&apt, dir.path(), "r", &["l1", "l2", "l3", "l4"]).await;
    let (dead_pack, half_pack, little_pack) = (
        pack_of(&apt, &dead["d1"]).await,
        pack_of(&apt, &half["h1"]).await,
        pack_of(&apt, &little["l1"]).await,
    );
    let (half_size, little_size) = (size(&half_pack), size(&little_pack));
    for name in ["d1", "d2", "h1", "h2", "h3", "l1"] {
        remove(&apt, "r", name).await;
    }

    let report = apt.cleanup(RUN).await.unwrap();
    assert_eq!(deleted(&report), ["d1", "d2", "h1", "h2", "h3", "l1"]);
    assert_eq!(report.packs_deleted, 1);
    assert!(!dead_pack.exists());

    assert_eq!(report.packs_rewritten, 1);
    assert!(!half_pack.exists(), "the half-dead pack stayed");
    let new_pack = pack_of(&apt, &half["h4"]).await;
    assert_ne!(new_pack, half_pack);
    assert_eq!(size(&new_pack), half["h4"].len() as u64);
    assert!(still_stored(&apt, &half["h4"]).await);

    assert_eq!(report.packs_kept_with_dead_bytes, 1);
    assert_eq!(report.dead_bytes_left, little["l1"].len() as u64);
    assert_eq!(
        size(&little_pack),
        little_size,
        "the little-dead pack changed"
    );
    for name in ["l2", "l3", "l4"] {
        assert!(still_stored(&apt, &little[name]).await, "{name}");
    }
    let dead_bytes: usize = dead.values().map(Vec::len).sum();
    assert_eq!(
        report.bytes_freed,
        dead_bytes as u64 + half_size - half["h4"].len() as u64
    );
    let mut left: Vec<PathBuf> = pack_files(dir.path());
    left.sort();
    let mut expected = vec![new_pack, little_pack];
    expected.sort();
    assert_eq!(left, expected);
}

/// A dry run changes nothing (files, store) and reports what the real run
/// then does.
#[tokio::test]
async fn a_dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    apt.create_repo("r", None, None, None).await.unwrap();
    let packages = add(&apt, dir.path(), "r", &["aa", "bb", "cc"]).await;
    add(&apt, dir.path(), "r", &["dd"]).await;
    remove(&apt, "r", "aa").await;
    remove(&apt, "r", "bb").await;
    remove(&apt, "r", "dd").await;
    let before = listing(dir.path());

    let dry = apt.cleanup(DRY).await.unwrap();
    assert!(dry.dry_run);
    assert_eq!(listing(dir.path()), before, "a dry run changed files");
    for bytes in packages.values() {
        assert!(still_stored(&apt, bytes).await);
    }
    assert_eq!(deleted(&dry), ["aa", "bb", "dd"]);
    assert_eq!((dry.packs_deleted, dry.packs_rewritten), (1, 1));

    let real = apt.cleanup(RUN).await.unwrap();
    assert!(!real.dry_run);
    assert_eq!(deleted(&real), deleted(&dry));
    assert_eq!(real.bytes_freed, dry.bytes_freed);
    assert_ne!(listing(dir.path()), before);
}

/// Every pack file with its size.
fn listing(data_dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut files: Vec<_> = pack_files(data_dir)
        .into_iter()
        .map(|path| {
            let size = size(&path);
            (path, size)
        })
        .collect();
    files.sort();
    files
}

fn age(path: &Path, by: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - by).unwrap();
}

/// A pack no record names belongs to an add in progress, or to one that
/// crashed: left alone while fresh, removed after an hour. An add whose
/// pack was taken for abandoned (it waited over an hour to record) fails
/// and says to retry, instead of recording records pointing nowhere.
#[tokio::test]
async fn unnamed_packs_are_left_alone_while_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    apt.create_repo("r", None, None, None).await.unwrap();
    let intake = |name: &str| {
        let mut intake = crate::intake::Intake::new(
            &apt.packs(),
            &dir.path().join("apt/incoming"),
            Box::new(|_: &[String]| Ok(Default::default())),
        );
        let file = deb(dir.path(), name, "1.0");
        intake.push(file.0, file.1.clone()).unwrap();
        let (checked, pack) = intake.finish();
        (checked, pack, file.1)
    };
    let (fresh_checked, fresh_pack, fresh_bytes) = intake("fresh");
    let (old_checked, old_pack, _) = intake("old");
    let fresh_path = apt.packs().join(format!("{}.pack", fresh_pack.name()));
    let old_path = apt.packs().join(format!("{}.pack", old_pack.name()));
    age(&old_path, Duration::from_secs(2 * 3600));
    age(&fresh_path, Duration::from_secs(50 * 60));

    let report = apt.cleanup(RUN).await.unwrap();
    assert_eq!(report.abandoned_packs_deleted, 1);
    assert!(fresh_path.exists(), "an add's fresh pack was removed");
    assert!(!old_path.exists());

    let mut fresh_checked = fresh_checked.unwrap();
    apt.record_checked("r", &mut fresh_checked, false)
        .await
        .unwrap();
    let mut old_checked = old_checked.unwrap();
    let error = apt
        .record_checked("r", &mut old_checked, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("removed by `apt db cleanup`") && error.contains("add the files again"),
        "{error}"
    );
    let names: Vec<String> = apt
        .repo_packages("r", None)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["fresh"]);
    assert!(still_stored(&apt, &fresh_bytes).await);
}

/// An add checks its files and finds package X known, so does not write
/// it; a cleanup then forgets X (in nothing at that moment); the add
/// records after. It must fail, saying to retry, and list nothing whose
/// row or bytes are gone; the retry stores X again.
#[tokio::test]
async fn an_add_counting_on_a_package_a_cleanup_deleted_fails_and_a_retry_works() {
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    apt.create_repo("r", None, None, None).await.unwrap();
    apt.create_repo("other", None, None, None).await.unwrap();
    let x = deb(dir.path(), "xx", "1.0");
    let fresh = deb(dir.path(), "fresh", "1.0");
    apt.add("r", vec![x.clone()], false).await.unwrap();
    remove(&apt, "r", "xx").await;

    // The intake's check, as `Apt::add` makes it: X is known.
    let known = apt
        .store
        .known_apt_packages(&[sha256(&x.1), sha256(&fresh.1)])
        .await
        .unwrap();
    assert_eq!(known.len(), 1);
    let mut intake = crate::intake::Intake::new(
        &apt.packs(),
        &dir.path().join("apt/incoming"),
        Box::new(move |_: &[String]| Ok(known.clone())),
    );
    intake.push(x.0.clone(), x.1.clone()).unwrap();
    intake.push(fresh.0.clone(), fresh.1.clone()).unwrap();
    let (checked, pack) = intake.finish();
    let mut checked = checked.unwrap();

    let report = apt.cleanup(RUN).await.unwrap();
    assert_eq!(deleted(&report), ["xx"]);

    let error = apt
        .record_checked("other", &mut checked, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("package xx_1.0_amd64 was deleted by `apt db cleanup`")
            && error.contains("add the files again"),
        "{error}"
    );
    apt.remove_unrecorded(pack).await.unwrap();
    assert!(apt.repo_packages("other", None).await.unwrap().is_empty());
    assert!(!still_stored(&apt, &x.1).await);
    assert!(!still_stored(&apt, &fresh.1).await);

    let added = apt
        .add("other", vec![x.clone(), fresh], false)
        .await
        .unwrap();
    assert_eq!(added.added.len(), 2);
    assert!(still_stored(&apt, &x.1).await);
}

/// A reader looked a package's location up; a cleanup then rewrote its
/// pack and removed the old one; the reader opens what it looked up. It
/// must find the package at its new place, not answer 404.
#[tokio::test]
async fn a_reader_behind_a_rewrite_finds_the_package_again() {
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    apt.create_repo("r", None, None, None).await.unwrap();
    let packages = add(&apt, dir.path(), "r", &["aa", "bb", "cc"]).await;
    apt.publish(None, "stable", repo_spec("r")).await.unwrap();
    remove(&apt, "r", "aa").await;
    remove(&apt, "r", "bb").await;
    apt.update("stable", None).await.unwrap();
    apt.update("stable", None).await.unwrap();
    let old_pack = pack_of(&apt, &packages["cc"]).await;
    let looked_up = apt.store.apt_package_file(&sha256(&packages["cc"])).await;
    let looked_up = looked_up.unwrap().unwrap();

    let report = apt.cleanup(RUN).await.unwrap();
    assert_eq!(report.packs_rewritten, 1);
    assert!(!old_pack.exists());

    let opened = apt.open_package(looked_up).await.unwrap();
    let bytes = opened.expect("the package is still recorded").read_all();
    assert_eq!(sha256(&bytes.unwrap()), sha256(&packages["cc"]));
    let served = apt
        .published_package("pool/main/c/cc/cc_1.0_amd64.deb")
        .await
        .unwrap()
        .expect("still published");
    assert_eq!(served.bytes.read_all().unwrap(), packages["cc"]);
}

/// The rule for one pack of 100 bytes, by the sizes of its live packages.
fn check_rule(live: &[i64], expected: &str) {
    use gantry_store::{AptPackLocation, AptPackageKey, AptStoredPackage};
    let mut stored = Vec::new();
    let mut referenced = std::collections::HashSet::new();
    let mut offset = 0;
    for (n, size) in live.iter().chain([&7]).enumerate() {
        let sha256 = format!("{n:064x}");
        if n < live.len() {
            referenced.insert(sha256.clone());
        }
        stored.push(AptStoredPackage {
            key: AptPackageKey {
                name: format!("p{n}"),
                version: "1".into(),
                architecture: "all".into(),
                sha256,
                size: *size,
            },
            location: Some(AptPackLocation {
                pack: "pack".into(),
                offset,
            }),
        });
        offset += size;
    }
    let pack = super::plan::PackFile {
        name: "pack".into(),
        path: "pack.pack".into(),
        size: 100,
        modified: SystemTime::now(),
    };
    let plan = super::plan::plan(
        stored,
        &referenced,
        vec![pack],
        Path::new("/nonexistent"),
        SystemTime::now(),
    );
    let outcome = match (
        plan.dead_packs.len(),
        plan.rewrites.len(),
        plan.kept_with_dead_bytes,
    ) {
        (1, 0, 0) => "removed",
        (0, 1, 0) => "rewritten",
        (0, 0, 1) => "kept",
        (0, 0, 0) => "untouched",
        other => panic!("{live:?}: {other:?}"),
    };
    assert_eq!(outcome, expected, "live {live:?} of 100 bytes");
}

#[test]
fn a_pack_is_rewritten_from_half_dead() {
    check_rule(&[], "removed");
    check_rule(&[50], "rewritten");
    check_rule(&[20, 30], "rewritten");
    check_rule(&[10], "rewritten");
    check_rule(&[51], "kept");
    check_rule(&[93], "kept");
    check_rule(&[40, 53], "kept");
    // Dead bytes are the file's size less the live packages' (the
    // forgotten package of 7 bytes is not counted itself).
    check_rule(&[100], "untouched");
}
