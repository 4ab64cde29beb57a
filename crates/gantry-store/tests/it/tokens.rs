use gantry_store::{StoreError, TokenRecord};

use crate::db::{TestDb, both};

both!(
    use_and_revoke,
    names_and_ids_are_unique,
    a_token_keeps_its_role,
    a_claim_within_the_window_is_taken_once
);

fn token(id: &str, name: &str, created_at: i64) -> TokenRecord {
    TokenRecord {
        id: id.into(),
        name: name.into(),
        hash: format!("hash-of-{id}"),
        created_at,
        revoked_at: None,
        last_used_at: None,
        role: "admin".into(),
    }
}

async fn use_and_revoke(db: TestDb) {
    let store = &db.store;
    assert_eq!(store.token_count().await.unwrap(), 0);
    assert!(store.tokens().await.unwrap().is_empty());
    store.create_token(&token("t1", "admin", 10)).await.unwrap();
    store.create_token(&token("t2", "ci", 20)).await.unwrap();
    assert_eq!(store.token_count().await.unwrap(), 2);

    let used = store.use_token("hash-of-t1", 100).await.unwrap().unwrap();
    assert_eq!(
        used,
        TokenRecord {
            last_used_at: Some(100),
            ..token("t1", "admin", 10)
        }
    );
    assert_eq!(store.use_token("hash-of-nothing", 100).await.unwrap(), None);
    assert_eq!(
        store.tokens().await.unwrap(),
        [used.clone(), token("t2", "ci", 20)]
    );

    // By name…
    assert!(store.revoke_token("admin", 200).await.unwrap());
    assert!(
        !store.revoke_token("admin", 300).await.unwrap(),
        "already revoked"
    );
    assert_eq!(store.use_token("hash-of-t1", 400).await.unwrap(), None);
    assert_eq!(
        store.tokens().await.unwrap()[0],
        TokenRecord {
            revoked_at: Some(200),
            ..used
        }
    );
    assert_eq!(store.token_count().await.unwrap(), 1);

    // …or by id.
    assert!(store.revoke_token("t2", 500).await.unwrap());
    assert!(!store.revoke_token("t2", 500).await.unwrap());
    assert!(!store.revoke_token("nobody", 500).await.unwrap());
    assert_eq!(store.use_token("hash-of-t2", 600).await.unwrap(), None);
    assert_eq!(store.token_count().await.unwrap(), 0);
    assert_eq!(
        store.tokens().await.unwrap().len(),
        2,
        "revoked tokens are still listed"
    );
}

async fn names_and_ids_are_unique(db: TestDb) {
    let store = &db.store;
    store.create_token(&token("t1", "admin", 10)).await.unwrap();

    let same_name = store.create_token(&token("t2", "admin", 20)).await;
    assert!(
        matches!(&same_name, Err(StoreError::Conflict { kind: "token", id }) if id == "admin"),
        "{same_name:?}"
    );
    let same_id = store.create_token(&token("t1", "other", 20)).await;
    assert!(
        matches!(&same_id, Err(StoreError::Conflict { kind: "token", id }) if id == "t1"),
        "{same_id:?}"
    );
    let same_hash = store
        .create_token(&TokenRecord {
            hash: "hash-of-t1".into(),
            ..token("t3", "other", 20)
        })
        .await;
    assert!(
        matches!(&same_hash, Err(StoreError::Conflict { kind: "token", id }) if id == "t3"),
        "{same_hash:?}"
    );

    // A revoked token's name is free again; revoking by that name then
    // revokes the live token.
    store.revoke_token("admin", 30).await.unwrap();
    store.create_token(&token("t4", "admin", 40)).await.unwrap();
    assert!(store.use_token("hash-of-t4", 50).await.unwrap().is_some());
    assert!(store.revoke_token("admin", 60).await.unwrap());
    assert_eq!(store.use_token("hash-of-t4", 70).await.unwrap(), None);

    // An id wins over another token's name.
    store.create_token(&token("t5", "t6", 80)).await.unwrap();
    store.create_token(&token("t6", "ops", 90)).await.unwrap();
    assert!(store.revoke_token("t6", 100).await.unwrap());
    assert!(
        store.use_token("hash-of-t5", 110).await.unwrap().is_some(),
        "t5 (named t6) is still live"
    );
    assert_eq!(store.use_token("hash-of-t6", 110).await.unwrap(), None);
}

async fn a_token_keeps_its_role(db: TestDb) {
    let store = &db.store;
    let viewer = TokenRecord {
        role: "viewer".into(),
        ..token("t1", "ci", 10)
    };
    store.create_token(&viewer).await.unwrap();
    assert_eq!(
        store
            .use_token("hash-of-t1", 20)
            .await
            .unwrap()
            .unwrap()
            .role,
        "viewer"
    );
    assert_eq!(store.tokens().await.unwrap()[0].role, "viewer");
}

/// Replay-window claims (generic webhook bodies) share the trigger claims table.
async fn a_claim_within_the_window_is_taken_once(db: TestDb) {
    let store = &db.store;
    let claim = |key: &'static str, now: i64| async move {
        store
            .claim_trigger_since(key, "", now, now - 600, "digest:")
            .await
            .unwrap()
    };
    assert!(claim("digest:a", 1_000).await, "the first claim");
    assert!(!claim("digest:a", 1_300).await, "again within the window");
    assert!(claim("digest:b", 1_300).await, "another key");
    assert!(
        claim("digest:a", 1_601).await,
        "after the window it is taken anew"
    );
    assert!(!claim("digest:a", 2_000).await, "and counts from then");
    // Forever claims (delivery ids) are not touched by the window's cleanup.
    assert!(store.claim_trigger("delivery:x", "", 0).await.unwrap());
    assert!(claim("digest:c", 100_000).await);
    assert!(
        !store
            .claim_trigger("delivery:x", "", 100_000)
            .await
            .unwrap()
    );
    assert_eq!(
        store.trigger_value("digest:b").await.unwrap(),
        None,
        "expired digests are forgotten"
    );
}
