use gantry_store::{TokenRecord, UiSessionRecord};

use crate::db::{TestDb, both};

both!(a_session_lives_until_it_expires_its_token_is_revoked_or_it_signs_out);

fn session(hash: &str, created_at: i64, expires_at: i64) -> UiSessionRecord {
    UiSessionRecord {
        hash: hash.into(),
        token_id: "t1".into(),
        csrf: format!("csrf-of-{hash}"),
        created_at,
        expires_at,
    }
}

async fn a_session_lives_until_it_expires_its_token_is_revoked_or_it_signs_out(db: TestDb) {
    let store = &db.store;
    let token = TokenRecord {
        id: "t1".into(),
        name: "ana".into(),
        hash: "hash-of-t1".into(),
        created_at: 1,
        revoked_at: None,
        last_used_at: None,
        role: "operator".into(),
    };
    store.create_token(&token).await.unwrap();
    store
        .create_ui_session(&session("s1", 10, 100))
        .await
        .unwrap();
    store
        .create_ui_session(&session("s2", 10, 1000))
        .await
        .unwrap();

    let (found, found_token) = store.ui_session("s1", 50).await.unwrap().unwrap();
    assert_eq!(found, session("s1", 10, 100));
    assert_eq!(found_token, token);
    assert_eq!(store.ui_session("s1", 100).await.unwrap(), None, "expired");
    assert_eq!(store.ui_session("nope", 50).await.unwrap(), None);

    // A new session sweeps the expired ones away.
    store
        .create_ui_session(&session("s3", 200, 1000))
        .await
        .unwrap();
    assert!(!store.delete_ui_session("s1").await.unwrap());

    assert!(store.delete_ui_session("s3").await.unwrap());
    assert_eq!(
        store.ui_session("s3", 300).await.unwrap(),
        None,
        "signed out"
    );

    assert!(store.revoke_token("t1", 300).await.unwrap());
    assert_eq!(store.ui_session("s2", 300).await.unwrap(), None, "revoked");
}
