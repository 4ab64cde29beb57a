//! Against a real SQLite store in a temporary data directory.

use std::os::unix::fs::PermissionsExt;

use crate::{SecretError, SecretStore};

async fn open(dir: &std::path::Path) -> (gantry_store::Store, SecretStore) {
    let url = format!("sqlite://{}", dir.join("gantry.db").display());
    let store = gantry_store::Store::open(&url).await.unwrap();
    let secrets = SecretStore::open(store.clone(), dir).unwrap();
    (store, secrets)
}

#[tokio::test]
async fn values_round_trip_and_are_sealed_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let (store, secrets) = open(dir.path()).await;
    let mode = std::fs::metadata(dir.path().join("secrets.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    secrets
        .set("DEPLOY_TOKEN", "s3cr3t-value", 1)
        .await
        .unwrap();
    secrets
        .set("DEPLOY_TOKEN", "s3cr3t-value-2", 2)
        .await
        .unwrap();
    assert_eq!(
        secrets.get("DEPLOY_TOKEN").await.unwrap().as_deref(),
        Some("s3cr3t-value-2")
    );
    let record = store.secret("DEPLOY_TOKEN").await.unwrap().unwrap();
    assert_eq!((record.created_at, record.updated_at), (1, 2));
    assert!(!record.sealed.contains("s3cr3t"));
    let raw = std::fs::read(dir.path().join("gantry.db")).unwrap();
    assert!(
        !raw.windows(6).any(|w| w == b"s3cr3t"),
        "a value is in the database file in the clear"
    );

    // A sealed value moved onto another name does not open.
    store
        .put_secret(&gantry_store::SecretRecord {
            name: "OTHER".into(),
            ..record
        })
        .await
        .unwrap();
    assert!(matches!(
        secrets.get("OTHER").await,
        Err(SecretError::Undecryptable(_))
    ));

    let names: Vec<String> = secrets
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["DEPLOY_TOKEN", "OTHER"]);
    assert!(secrets.delete("DEPLOY_TOKEN").await.unwrap());
    assert!(!secrets.delete("DEPLOY_TOKEN").await.unwrap());
    assert_eq!(secrets.get("DEPLOY_TOKEN").await.unwrap(), None);

    // The same key is read back by the next server.
    secrets.set("KEPT", "value-kept", 3).await.unwrap();
    let again = SecretStore::open(store.clone(), dir.path()).unwrap();
    assert_eq!(
        again.get("KEPT").await.unwrap().as_deref(),
        Some("value-kept")
    );
}

#[tokio::test]
async fn bad_names_values_and_key_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, secrets) = open(dir.path()).await;
    let error = secrets.set("bad name", "value", 1).await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("invalid secret name \"bad name\""),
        "{error}"
    );
    let error = secrets.set("EMPTY", "", 1).await.unwrap_err();
    assert_eq!(error.to_string(), "secret \"EMPTY\" is empty");

    let key = dir.path().join("secrets.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = SecretStore::open(store, dir.path()).unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("is readable by others (mode 644); run chmod 600 on it"),
        "{error}"
    );
}

#[tokio::test]
async fn another_process_reads_a_servers_store_but_never_makes_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let (store, secrets) = open(dir.path()).await;
    secrets.set("REGISTRY", "user:pw-123", 1).await.unwrap();
    let reader = SecretStore::open_existing(store.clone(), dir.path()).unwrap();
    assert_eq!(
        reader.get("REGISTRY").await.unwrap().as_deref(),
        Some("user:pw-123")
    );

    let empty = tempfile::tempdir().unwrap();
    let error = SecretStore::open_existing(store, empty.path()).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "secret key file {}: does not exist (is this a server's data directory?)",
            empty.path().join("secrets.key").display()
        )
    );
    assert!(!empty.path().join("secrets.key").exists());
}

#[tokio::test]
async fn the_servers_own_secrets_are_out_of_reach_of_users() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, secrets) = open(dir.path()).await;
    secrets
        .set_own("_gantry.signing", "passphrase", 1)
        .await
        .unwrap();
    secrets.set("DEPLOY_TOKEN", "token", 1).await.unwrap();

    let names: Vec<String> = secrets
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["DEPLOY_TOKEN"]);
    let reserved = "secret name \"_gantry.signing\" is reserved: names starting with \"_gantry.\" are the server's own";
    for error in [
        secrets.get("_gantry.signing").await.unwrap_err(),
        secrets.set("_gantry.signing", "mine", 2).await.unwrap_err(),
        secrets.delete("_gantry.signing").await.unwrap_err(),
    ] {
        assert!(matches!(error, SecretError::Reserved(_)), "{error:?}");
        assert_eq!(error.to_string(), reserved);
    }
    assert_eq!(
        secrets.get_own("_gantry.signing").await.unwrap().as_deref(),
        Some("passphrase")
    );
}
