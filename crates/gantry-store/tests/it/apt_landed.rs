//! Landed packages: recorded by whoever adds them, claimed once by a server.

use gantry_store::AptLanded;

use crate::db::{TestDb, both};

both!(landings_are_claimed_once);

fn landed(name: &str, version: &str) -> AptLanded {
    AptLanded {
        repo: "r".into(),
        name: name.into(),
        version: version.into(),
        architecture: "amd64".into(),
    }
}

async fn landings_are_claimed_once(db: TestDb) {
    let store = &db.store;
    // More rows than one statement takes.
    let many: Vec<AptLanded> = (0..450)
        .map(|i| landed("bulk", &format!("1.{i}")))
        .collect();
    store.record_apt_landed(&many, 10).await.unwrap();
    store
        .record_apt_landed(&[landed("hello", "2.0")], 11)
        .await
        .unwrap();

    let unfired = store.unfired_apt_landed(1000).await.unwrap();
    assert_eq!(unfired.len(), 451);
    assert_eq!(unfired[0].landed, landed("bulk", "1.0"), "oldest first");
    assert_eq!(unfired[450].landed, landed("hello", "2.0"));
    assert_eq!(store.unfired_apt_landed(5).await.unwrap().len(), 5);

    let ids: Vec<i64> = unfired.iter().map(|r| r.id).collect();
    let (first, second) = ids.split_at(300);
    assert_eq!(store.claim_apt_landed(first, 20).await.unwrap().len(), 300);
    // A second server asking for all of them gets only the rest.
    let mut rest = store.claim_apt_landed(&ids, 21).await.unwrap();
    rest.sort_unstable();
    assert_eq!(rest, second);
    assert!(store.claim_apt_landed(&ids, 22).await.unwrap().is_empty());
    assert!(store.unfired_apt_landed(1000).await.unwrap().is_empty());

    // Forgetting keeps what was fired later than the cut.
    store.forget_fired_apt_landed(21).await.unwrap();
    store
        .record_apt_landed(&[landed("new", "1")], 30)
        .await
        .unwrap();
    assert_eq!(store.unfired_apt_landed(10).await.unwrap().len(), 1);
}
