//! Where package files are: packages recorded with their span of a pack,
//! read back by SHA-256; an older record keeps its location when the same
//! package is recorded again.

use gantry_store::{AptPackLocation, AptPackageRecord};

use crate::db::{TestDb, both};

both!(package_locations_are_kept);

fn package(n: usize, location: Option<AptPackLocation>) -> AptPackageRecord {
    AptPackageRecord {
        sha256: format!("{n:064x}"),
        name: format!("p{n}"),
        version: "1.0".into(),
        architecture: "amd64".into(),
        size: 100 + n as i64,
        control: format!("Package: p{n}\n"),
        created_at: 7,
        location,
    }
}

fn at(pack: &str, offset: i64) -> Option<AptPackLocation> {
    Some(AptPackLocation {
        pack: pack.into(),
        offset,
    })
}

async fn package_locations_are_kept(db: TestDb) {
    let store = &db.store;
    // More rows than one statement takes, one without a pack (a package
    // recorded before packs).
    let first: Vec<AptPackageRecord> = (0..250)
        .map(|n| {
            package(
                n,
                (n > 0).then(|| n as i64 * 1000).and_then(|o| at("one", o)),
            )
        })
        .collect();
    store
        .add_apt_packages(&first.iter().collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(store.apt_pack_in_use("one").await.unwrap());
    assert!(!store.apt_pack_in_use("two").await.unwrap());

    // The same package again from another pack: the first location stays.
    let again = package(3, at("two", 0));
    store.add_apt_packages(&[&again]).await.unwrap();
    assert!(!store.apt_pack_in_use("two").await.unwrap());

    let file = store
        .apt_package_file(&format!("{:064x}", 3))
        .await
        .unwrap();
    let file = file.expect("a recorded package");
    assert_eq!(file.location, at("one", 3000));
    assert_eq!((file.size, file.created_at), (103, 7));
    let legacy = store
        .apt_package_file(&format!("{:064x}", 0))
        .await
        .unwrap();
    assert_eq!(legacy.unwrap().location, None);
    let unknown = store.apt_package_file(&"f".repeat(64)).await.unwrap();
    assert!(unknown.is_none());
    let known = store
        .known_apt_packages(&[format!("{:064x}", 249), "e".repeat(64)])
        .await
        .unwrap();
    assert_eq!(known.len(), 1);
}
