use gantry_store::Upsert;
use serde_json::json;

use crate::db::{TestDb, both};

both!(
    a_host_is_created_updated_and_left_unchanged,
    a_drained_host_stays_drained_across_applies
);

async fn a_host_is_created_updated_and_left_unchanged(db: TestDb) {
    let store = &db.store;
    let spec = json!({"name": "web-1", "address": "127.0.0.2", "user": "u"});
    assert_eq!(
        store.upsert_host("web-1", &spec, 10).await.unwrap(),
        Upsert::Created
    );
    assert_eq!(
        store.upsert_host("web-1", &spec, 20).await.unwrap(),
        Upsert::Unchanged
    );
    let moved = json!({"name": "web-1", "address": "127.0.0.3", "user": "u"});
    assert_eq!(
        store.upsert_host("web-1", &moved, 30).await.unwrap(),
        Upsert::Updated
    );
    let host = store.host("web-1").await.unwrap().expect("stored");
    assert_eq!(
        (host.spec, host.version, host.created_at, host.updated_at),
        (moved, 2, 10, 30)
    );
    assert_eq!(store.host("nope").await.unwrap(), None);
}

async fn a_drained_host_stays_drained_across_applies(db: TestDb) {
    let store = &db.store;
    store
        .upsert_host("b", &json!({"address": "b"}), 1)
        .await
        .unwrap();
    store
        .upsert_host("a", &json!({"address": "a"}), 1)
        .await
        .unwrap();
    assert!(store.set_host_drained("b", Some(5)).await.unwrap());
    assert!(!store.set_host_drained("c", Some(5)).await.unwrap());
    store
        .upsert_host("b", &json!({"address": "b2"}), 6)
        .await
        .unwrap();
    let hosts = store.hosts().await.unwrap();
    let seen: Vec<(&str, Option<i64>)> = hosts
        .iter()
        .map(|h| (h.name.as_str(), h.drained_at))
        .collect();
    assert_eq!(seen, [("a", None), ("b", Some(5))]);
    assert!(store.set_host_drained("b", None).await.unwrap());
    assert_eq!(store.host("b").await.unwrap().unwrap().drained_at, None);
}
