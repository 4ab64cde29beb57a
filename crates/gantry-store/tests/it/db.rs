//! A fresh database per test, on either backend.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use gantry_store::Store;
use sqlx::{Connection, Executor};
use tempfile::TempDir;

/// Where PostgreSQL tests connect; they are skipped, saying so, when unset.
pub const POSTGRES_URL_VAR: &str = "GANTRY_TEST_POSTGRES_URL";

/// Runs each named `async fn(TestDb)` of the calling module on both backends,
/// as tests `NAME::sqlite` and `NAME::postgres`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::db::TestDb::sqlite().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::db::TestDb::postgres(module_path!()).await {
                    super::$name(db).await
                }
            }
        }
    )*};
}
pub(crate) use both;

/// A store on a database of its own, removed when dropped.
pub struct TestDb {
    pub store: Store,
    /// What `store` was opened with, to open it again.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The SQLite file's directory.
    Sqlite(#[allow(dead_code)] TempDir),
    /// The URL of the PostgreSQL database, and the schema to drop from it.
    Postgres { base_url: String, schema: String },
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("gantry.db").display());
        let store = Store::open(&url).await.unwrap();
        TestDb {
            store,
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// `None`, after saying so, when no PostgreSQL was given.
    pub async fn postgres(test: &str) -> Option<TestDb> {
        let Ok(base_url) = std::env::var(POSTGRES_URL_VAR) else {
            println!("{test}: {POSTGRES_URL_VAR} is unset; not run against PostgreSQL");
            return None;
        };
        let schema = schema_name(test);
        let mut admin = sqlx::PgConnection::connect(&base_url).await.unwrap();
        admin
            .execute(format!("CREATE SCHEMA {schema}").as_str())
            .await
            .unwrap();
        admin.close().await.unwrap();
        let separator = if base_url.contains('?') { '&' } else { '?' };
        let url = format!("{base_url}{separator}options=-c%20search_path%3D{schema}");
        let store = Store::open(&url).await.unwrap();
        Some(TestDb {
            store,
            url,
            cleanup: Cleanup::Postgres { base_url, schema },
        })
    }

    pub async fn reopen(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }

    /// Runs SQL behind the store's back, e.g. to corrupt a row.
    pub async fn raw(&self, sql: &str) {
        let mut conn = sqlx::AnyConnection::connect(&self.url).await.unwrap();
        conn.execute(sql).await.unwrap();
        conn.close().await.unwrap();
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Cleanup::Postgres { base_url, schema } = &self.cleanup else {
            return;
        };
        let (base_url, schema) = (base_url.clone(), schema.clone());
        // Drop cannot await, and may run inside the test's runtime: drop the
        // schema from a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&base_url).await?;
                admin
                    .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
                    .await?;
                admin.close().await
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop test schema {}: {error}", self.url);
        }
    }
}

/// `t_<test path>_<unique suffix>`, a valid identifier of at most 63 bytes.
fn schema_name(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let unique =
        nanos ^ (u64::from(std::process::id()) << 32) ^ COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name: String = test
        .trim_start_matches("it::")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    name.truncate(40);
    format!("t_{name}_{unique:016x}")
}

/// A manual execution of `pipeline` with the given stages.
pub fn new_execution(
    id: &str,
    pipeline: &str,
    stages: &[&str],
    created_at: i64,
) -> gantry_store::NewExecution {
    gantry_store::NewExecution {
        id: id.to_owned(),
        pipeline: pipeline.to_owned(),
        spec: serde_json::json!({ "name": pipeline, "stages": stages }),
        parameters: serde_json::json!({ "env": "test" }),
        trigger: serde_json::json!({ "type": "manual", "user": "ana" }),
        parent: None,
        stage_ids: stages.iter().map(|s| s.to_string()).collect(),
        created_at,
    }
}
