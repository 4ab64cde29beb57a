//! What `gantry apt db cleanup` asks of the store: every package with its
//! location, the packages repositories and snapshots list, and forgetting
//! packages and moving others in one transaction, never forgetting a
//! listed one.

use gantry_store::{AptPackLocation, AptPackageRecord, AptSnapshotRecord, AptStoredPackage};

use crate::db::{TestDb, both};

both!(cleanup_forgets_only_unlisted_packages_and_moves_the_rest);

fn sha(n: usize) -> String {
    format!("{n:064x}")
}

fn package(n: usize) -> AptPackageRecord {
    AptPackageRecord {
        sha256: sha(n),
        name: format!("p{n}"),
        version: "1.0".into(),
        architecture: "amd64".into(),
        size: 10 + n as i64,
        control: format!("Package: p{n}\n"),
        created_at: 7,
        location: (n > 0).then(|| AptPackLocation {
            pack: "old".into(),
            offset: n as i64 * 100,
        }),
    }
}

async fn stored(db: &TestDb) -> Vec<AptStoredPackage> {
    let mut stored = db.store.apt_stored_packages().await.unwrap();
    stored.sort_by(|a, b| a.key.sha256.cmp(&b.key.sha256));
    stored
}

async fn cleanup_forgets_only_unlisted_packages_and_moves_the_rest(db: TestDb) {
    let store = &db.store;
    // More than one statement's worth, one without a pack.
    let packages: Vec<AptPackageRecord> = (0..250).map(package).collect();
    store
        .add_apt_packages(&packages.iter().collect::<Vec<_>>())
        .await
        .unwrap();
    store
        .create_apt_repo(&gantry_store::AptRepoRecord {
            name: "r".into(),
            distribution: String::new(),
            component: "main".into(),
            comment: String::new(),
            created_at: 1,
        })
        .await
        .unwrap();
    store
        .change_apt_repo_packages("r", &[&sha(1), &sha(2)], &[])
        .await
        .unwrap();
    store
        .create_apt_snapshot(
            &AptSnapshotRecord {
                name: "s".into(),
                description: String::new(),
                created_at: 1,
            },
            &[sha(2), sha(3)],
        )
        .await
        .unwrap();

    let all = stored(&db).await;
    assert_eq!(all.len(), 250);
    assert_eq!((all[0].location.clone(), all[0].key.size), (None, 10));
    assert_eq!(
        all[5].location,
        Some(AptPackLocation {
            pack: "old".into(),
            offset: 500
        })
    );
    let listed = store.apt_listed_packages().await.unwrap();
    let mut listed: Vec<String> = listed.into_iter().collect();
    listed.sort();
    assert_eq!(listed, [sha(1), sha(2), sha(3)]);

    // A listed package among those to forget: nothing changes.
    let moved = AptPackLocation {
        pack: "new".into(),
        offset: 0,
    };
    let changed = store
        .forget_apt_packages(&[sha(0), sha(3)], &[(sha(1), moved.clone())])
        .await
        .unwrap();
    assert!(!changed);
    assert_eq!(stored(&db).await, all);

    let forget: Vec<String> = (0..250)
        .filter(|n| *n > 3)
        .map(sha)
        .chain([sha(0)])
        .collect();
    let changed = store
        .forget_apt_packages(&forget, &[(sha(1), moved.clone())])
        .await
        .unwrap();
    assert!(changed);
    let left = stored(&db).await;
    let left_hashes: Vec<&str> = left.iter().map(|p| p.key.sha256.as_str()).collect();
    assert_eq!(left_hashes, [sha(1), sha(2), sha(3)]);
    assert_eq!(left[0].location, Some(moved));
    assert_eq!(left[1].location, all[2].location);
    assert!(store.apt_package_file(&sha(0)).await.unwrap().is_none());
}
