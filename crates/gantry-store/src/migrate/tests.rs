use std::path::Path;

use super::{Embedded, POSTGRES, SQLITE};

/// Every file in a migrations folder is embedded, under the version and
/// description its name gives, and the two backends have the same history.
#[test]
fn embedded_lists_match_the_folders() {
    check("sqlite", SQLITE);
    check("postgres", POSTGRES);
    let versions = |list: Embedded| list.iter().map(|m| (m.0, m.1)).collect::<Vec<_>>();
    assert_eq!(versions(SQLITE), versions(POSTGRES));
}

fn check(folder: &str, embedded: Embedded) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(folder);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let listed: Vec<_> = embedded
        .iter()
        .map(|(version, description, _)| format!("{version:04}_{description}.sql"))
        .collect();
    assert_eq!(files, listed, "{}", dir.display());
    for (file, (_, _, sql)) in files.iter().zip(embedded) {
        assert_eq!(
            &std::fs::read_to_string(dir.join(file)).unwrap(),
            sql,
            "{file}"
        );
    }
}

/// A command opening a server's database neither migrates it nor reads it
/// with a schema it does not know.
#[tokio::test]
async fn open_existing_refuses_a_database_behind_this_binary_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gantry.db").display());
    let store = crate::Store::open(&url).await.unwrap();
    crate::Store::open_existing(&url)
        .await
        .expect("a database at this binary's schema opens");
    let last = SQLITE.last().unwrap().0;
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
        .bind(last)
        .execute(&store.writer)
        .await
        .unwrap();
    store.close().await;
    let error = crate::Store::open_existing(&url).await.unwrap_err();
    assert!(
        matches!(error, crate::StoreError::SchemaMismatch { expected, .. } if expected == last),
        "{error}"
    );
    let store = crate::Store::open_existing(&url).await;
    assert!(store.is_err(), "still behind: nothing was migrated");
}
