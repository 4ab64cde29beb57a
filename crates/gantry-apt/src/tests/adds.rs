//! Adds and the lock: a refused or failed add leaves no pack behind, every
//! handle on a directory shares the lock, a slow upload holds no lock, and
//! concurrent adds of one file both succeed.

use sha2::{Digest, Sha256};

use super::{deb, open, pack_files, repo_spec};

/// An add larger than one intake batch whose last file is not a package
/// records nothing and leaves no pack.
#[tokio::test]
async fn a_refused_add_leaves_no_pack() {
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
    assert_eq!(pack_files(dir.path()), Vec::<std::path::PathBuf>::new());
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

/// A failed add removes its pack, unless a package record points into it
/// (an add that failed part way through recording).
#[tokio::test]
async fn a_failed_add_keeps_a_pack_that_records_point_into() {
    let dir = tempfile::tempdir().unwrap();
    let apt = open(dir.path()).await;
    apt.create_repo("r", None, None, None).await.unwrap();
    let intake = |name: &str| {
        let mut intake = crate::intake::Intake::new(
            &dir.path().join("apt/packs"),
            &dir.path().join("apt/incoming"),
            Box::new(|_: &[String]| Ok(Default::default())),
        );
        let file = deb(dir.path(), name, "1.0");
        intake.push(file.0, file.1).unwrap();
        intake.finish()
    };
    // Never recorded: its pack goes.
    let (checked, pack) = intake("unrecorded");
    drop(checked.unwrap());
    apt.remove_unrecorded(pack).await.unwrap();
    assert!(pack_files(dir.path()).is_empty());

    // Recorded, then cleaned up as if what followed had failed: kept.
    let (checked, pack) = intake("recorded");
    let mut checked = checked.unwrap();
    apt.record_checked("r", &mut checked, false).await.unwrap();
    apt.remove_unrecorded(pack).await.unwrap();
    assert_eq!(pack_files(dir.path()).len(), 1);
    let recorded = &apt.repo_packages("r", None).await.unwrap()[0];
    let bytes = apt.package_bytes(&recorded.sha256).await.unwrap();
    assert_eq!(hex::encode(Sha256::digest(&bytes)), recorded.sha256);
}

/// Two adds (here through two handles, as a server and a local command
/// would) storing the same new file at the same moment both succeed, and
/// the file is readable for both repositories.
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
        let bytes = first.package_bytes(&sha256).await.unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), sha256, "same{n}");
    }
    assert_eq!(first.repo_packages("a", None).await.unwrap().len(), 20);
    assert_eq!(first.repo_packages("b", None).await.unwrap().len(), 20);
}
