use serde_json::json;

use super::{SEALED_KEY, open, seal};

fn store(dir: &std::path::Path) -> gantry_secrets::SecretStore {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("sqlite://{}", dir.join("db").display());
    let store = runtime.block_on(gantry_store::Store::open(&url)).unwrap();
    gantry_secrets::SecretStore::open(store, dir).unwrap()
}

#[test]
fn a_sealed_value_hides_its_text_and_opens_where_it_is_nested() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = store(dir.path());
    let sealed = seal(Some(&secrets), "hunter2-value");
    assert!(!sealed.to_string().contains("hunter2-value"));
    assert!(sealed.get(SEALED_KEY).is_some());
    let outputs = json!({"token": sealed, "plain": "x", "list": [sealed.clone()]});
    assert_eq!(
        open(Some(&secrets), &outputs),
        json!({"token": "hunter2-value", "plain": "x", "list": ["hunter2-value"]})
    );
    // Without the key, a sealed value reads as nothing, never as its seal.
    assert_eq!(open(None, &outputs)["token"], "");
}

#[test]
fn without_a_secret_store_values_stay_as_they_are() {
    assert_eq!(seal(None, "v"), json!("v"));
    assert_eq!(open(None, &json!({"a": "v"})), json!({"a": "v"}));
}
