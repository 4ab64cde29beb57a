use gantry_store::Upsert;
use serde_json::json;

use crate::db::{TestDb, both, new_execution};

both!(
    upsert_creates_updates_and_leaves_unchanged,
    pipelines_are_listed_by_name,
    delete_keeps_executions,
    the_fingerprint_moves_with_every_change_and_only_then
);

async fn upsert_creates_updates_and_leaves_unchanged(db: TestDb) {
    let store = &db.store;
    let spec = json!({ "stages": [{ "id": "build", "type": "run" }] });
    assert_eq!(
        store.upsert_pipeline("web", None, &spec, 10).await.unwrap(),
        Upsert::Created
    );
    let created = store.pipeline("web").await.unwrap().unwrap();
    assert_eq!(
        (created.version, created.created_at, created.updated_at),
        (1, 10, 10)
    );
    assert_eq!(created.spec, spec);
    assert_eq!(created.application, None);

    // The same spec again changes nothing, not even updated_at.
    assert_eq!(
        store.upsert_pipeline("web", None, &spec, 20).await.unwrap(),
        Upsert::Unchanged
    );
    assert_eq!(store.pipeline("web").await.unwrap().unwrap(), created);

    // A new application is a change, and so is dropping it again.
    assert_eq!(
        store
            .upsert_pipeline("web", Some("shop"), &spec, 30)
            .await
            .unwrap(),
        Upsert::Updated
    );
    let updated = store.pipeline("web").await.unwrap().unwrap();
    assert_eq!(
        (updated.version, updated.created_at, updated.updated_at),
        (2, 10, 30)
    );
    assert_eq!(updated.application.as_deref(), Some("shop"));
    assert_eq!(
        store
            .upsert_pipeline("web", Some("shop"), &spec, 35)
            .await
            .unwrap(),
        Upsert::Unchanged
    );
    assert_eq!(
        store.upsert_pipeline("web", None, &spec, 40).await.unwrap(),
        Upsert::Updated
    );

    let new_spec = json!({ "stages": [] });
    assert_eq!(
        store
            .upsert_pipeline("web", None, &new_spec, 50)
            .await
            .unwrap(),
        Upsert::Updated
    );
    let updated = store.pipeline("web").await.unwrap().unwrap();
    assert_eq!((updated.version, updated.updated_at), (4, 50));
    assert_eq!(updated.spec, new_spec);

    assert_eq!(store.pipeline("nope").await.unwrap(), None);
}

async fn pipelines_are_listed_by_name(db: TestDb) {
    let store = &db.store;
    assert!(store.pipelines().await.unwrap().is_empty());
    for name in ["deploy", "build", "test"] {
        store
            .upsert_pipeline(name, Some("app"), &json!({ "name": name }), 1)
            .await
            .unwrap();
    }
    let names: Vec<String> = store
        .pipelines()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["build", "deploy", "test"]);
}

async fn delete_keeps_executions(db: TestDb) {
    let store = &db.store;
    store
        .upsert_pipeline("web", None, &json!({}), 1)
        .await
        .unwrap();
    store
        .create_execution(&new_execution("e1", "web", &["build"], 2))
        .await
        .unwrap();
    assert!(store.delete_pipeline("web").await.unwrap());
    assert!(!store.delete_pipeline("web").await.unwrap());
    assert_eq!(store.pipeline("web").await.unwrap(), None);
    assert_eq!(
        store.execution("e1").await.unwrap().unwrap().pipeline,
        "web"
    );
    assert_eq!(store.stages("e1").await.unwrap().len(), 1);
}

async fn the_fingerprint_moves_with_every_change_and_only_then(db: TestDb) {
    let store = &db.store;
    let empty = store.pipelines_fingerprint().await.unwrap();
    let spec = json!({ "stages": [] });
    store.upsert_pipeline("web", None, &spec, 1).await.unwrap();
    let created = store.pipelines_fingerprint().await.unwrap();
    assert_ne!(created, empty);
    store.upsert_pipeline("web", None, &spec, 2).await.unwrap();
    assert_eq!(store.pipelines_fingerprint().await.unwrap(), created);
    let changed = json!({ "stages": [{ "id": "build", "type": "run" }] });
    store
        .upsert_pipeline("web", None, &changed, 3)
        .await
        .unwrap();
    let updated = store.pipelines_fingerprint().await.unwrap();
    assert_ne!(updated, created);
    // One pipeline deleted and another created in its place still moves it.
    store.delete_pipeline("web").await.unwrap();
    store
        .upsert_pipeline("api", None, &changed, 4)
        .await
        .unwrap();
    assert_ne!(store.pipelines_fingerprint().await.unwrap(), updated);
}
