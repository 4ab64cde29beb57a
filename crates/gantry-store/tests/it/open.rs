use gantry_store::{Backend, ExecutionFilter, Store, StoreError};
use serde_json::json;
use sqlx::{Connection, Row};

use crate::db::{TestDb, both, new_execution};

both!(reopening_keeps_data_and_migrates_once);

async fn reopening_keeps_data_and_migrates_once(db: TestDb) {
    let expected = if db.url.starts_with("sqlite") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    };
    assert_eq!(db.store.backend(), expected);
    db.store
        .upsert_pipeline("web", None, &json!({ "a": 1 }), 1)
        .await
        .unwrap();
    db.store
        .create_execution(&new_execution("e1", "web", &["build"], 2))
        .await
        .unwrap();
    db.store.close().await;

    // Opening twice more: the second and third open find every migration applied.
    for _ in 0..2 {
        let store = db.reopen().await;
        assert_eq!(
            store.pipeline("web").await.unwrap().unwrap().spec,
            json!({ "a": 1 })
        );
        assert_eq!(
            store
                .executions(&ExecutionFilter::default())
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(store.stages("e1").await.unwrap().len(), 1);
        store.close().await;
    }

    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let applied: i64 = sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get("n");
    // Every migration of the folder was applied, each once.
    let in_folder = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "sql")
        })
        .count();
    assert_eq!(applied, in_folder as i64);
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    for url in [
        "",
        "mysql://root@localhost/gantry",
        "http://localhost",
        "gantry.db",
        "sqlite://",
        "sqlite::memory:",
        "sqlite://gantry.db?mode=ro",
    ] {
        let result = Store::open(url).await;
        assert!(
            matches!(&result, Err(StoreError::UnsupportedUrl(u)) if u == url),
            "{url}: {:?}",
            result.err()
        );
    }
}

/// `sqlite:PATH` works like `sqlite://PATH`; the file, whatever its name, is
/// created, in WAL mode.
#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd name #1 100%20.db");
    let store = Store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    assert!(path.exists());
    store
        .upsert_pipeline("web", None, &json!({}), 1)
        .await
        .unwrap();
    store.close().await;

    let mut conn = sqlx::SqliteConnection::connect(&format!(
        "sqlite://{}",
        dir.path().join("odd%20name%20%231%20100%2520.db").display()
    ))
    .await
    .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM pipelines")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(names, ["web"]);
}

#[tokio::test]
async fn sqlite_directory_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}",
        dir.path().join("missing/gantry.db").display()
    );
    let result = Store::open(&url).await;
    assert!(
        matches!(result, Err(StoreError::Database(_))),
        "{:?}",
        result.err()
    );
}

/// Fails at once, rather than after the pool's 30 s of retrying.
#[tokio::test]
async fn postgres_that_is_not_there_is_an_error() {
    let start = std::time::Instant::now();
    let result = Store::open("postgres://gantry:gantry@127.0.0.1:9/gantry").await;
    assert!(
        matches!(result, Err(StoreError::Database(_))),
        "{:?}",
        result.err()
    );
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}
