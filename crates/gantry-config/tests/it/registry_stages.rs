//! `bake` and `findImage` share how they reach a registry (`RegistryAccess`,
//! flattened into both): the same fields, the same checks.

use expect_test::expect;
use gantry_config::{RegistryAccess, StageKind, parse_document};

fn access_of(kind: &StageKind) -> &RegistryAccess {
    match kind {
        StageKind::Bake(bake) => &bake.registry,
        StageKind::FindImage(find) => &find.registry,
        other => panic!("not a registry stage: {other:?}"),
    }
}

#[test]
fn both_stages_read_tls_verify_and_credentials() {
    let document = parse_document(
        "r.yaml",
        r#"
pipelines:
  - name: p
    stages:
      - {id: b, type: bake, image: "registry.example.com/app:1", tlsVerify: false, credentials: login}
      - {id: f, type: findImage, repository: registry.example.com/app, pattern: '^v', credentials: login}
      - {id: plain, type: findImage, repository: registry.example.com/app, pattern: '^v'}
"#,
    )
    .unwrap();
    let stages = &document.pipelines[0].stages;
    let expected = RegistryAccess {
        tls_verify: Some(false),
        credentials: Some("login".to_owned()),
    };
    assert_eq!(access_of(&stages[0].kind), &expected);
    assert_eq!(
        access_of(&stages[1].kind),
        &RegistryAccess {
            tls_verify: None,
            ..expected
        }
    );
    assert_eq!(access_of(&stages[2].kind), &RegistryAccess::default());

    // Flattened: the fields stay on the stage when it is stored and read back.
    let json = serde_json::to_value(&stages[0].kind).unwrap();
    assert_eq!(json["tlsVerify"], false);
    assert_eq!(json["credentials"], "login");
    let back: StageKind = serde_json::from_value(json).unwrap();
    assert_eq!(back, stages[0].kind);
}

#[test]
fn mistakes_in_either_stage_are_reported_alike() {
    let error = parse_document(
        "r.yaml",
        r#"
pipelines:
  - name: p
    stages:
      - {id: b, type: bake, image: "registry.example.com/app:1", tlsVerify: nope, credentials: [x]}
      - {id: f, type: findImage, repository: registry.example.com/app, pattern: '^v', tlsVerify: nope, credentials: [x]}
"#,
    )
    .unwrap_err()
    .to_string();
    expect![[r#"
        r.yaml:5:77: "tlsVerify" must be true or false, not the string "nope"
        r.yaml:5:96: "credentials" must be a string, not a list
        r.yaml:6:98: "tlsVerify" must be true or false, not the string "nope"
        r.yaml:6:117: "credentials" must be a string, not a list"#]]
    .assert_eq(error.trim_end());
}
