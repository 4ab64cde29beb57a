use std::collections::BTreeSet;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use axum::routing::get;
use serde_json::Value;
use tower::ServiceExt;

use crate::extract::parse_json;
use crate::routes::events::Seen;

#[test]
fn openapi_document_lists_exactly_the_routes() {
    let document: Value =
        serde_json::from_str(&crate::OPENAPI_DOCUMENT).expect("openapi.json is JSON");
    assert_eq!(document["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            documented.insert((method.to_uppercase(), path.clone()));
            let public = operation
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty);
            let route = crate::routes()
                .into_iter()
                .find(|r| r.method.as_str() == method.to_uppercase() && r.path == path);
            if let Some(route) = route {
                assert_eq!(
                    route.public, public,
                    "{method} {path}: the document and the router disagree on auth"
                );
            }
        }
    }
    let routed: BTreeSet<(String, String)> = crate::routes()
        .iter()
        .map(|r| (r.method.as_str().to_owned(), r.path.to_owned()))
        .collect();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(
        missing.is_empty(),
        "routes missing from openapi.json: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "openapi.json documents routes that do not exist: {extra:?}"
    );
}

#[test]
fn openapi_references_resolve() {
    let text = crate::OPENAPI_DOCUMENT.as_str();
    let document: Value = serde_json::from_str(text).expect("openapi.json is JSON");
    for reference in text.split("\"$ref\": \"").skip(1) {
        let pointer = reference.split('"').next().expect("a quoted reference");
        let pointer = pointer.strip_prefix('#').expect("a local reference");
        assert!(
            document.pointer(pointer).is_some(),
            "dangling reference {pointer}"
        );
    }
}

#[test]
fn seen_drops_duplicates_and_admits_late_lines() {
    let mut seen = Seen::new(10);
    assert!(!seen.admit(9), "before the resume point");
    assert!(!seen.admit(10));
    assert!(seen.admit(12));
    assert!(!seen.admit(12), "duplicate");
    assert!(
        seen.admit(11),
        "a lower seq that arrives late is still sent"
    );
    assert!(!seen.admit(11));
}

#[test]
fn seen_window_is_bounded() {
    let mut seen = Seen::new(0);
    let last = Seen::WINDOW as i64 + 10;
    for seq in 1..=last {
        assert!(seen.admit(seq));
    }
    // The ten oldest fell out of the window and now count as sent.
    assert!(!seen.admit(5));
    assert!(!seen.admit(last));
    assert!(seen.admit(last + 1));
}

#[test]
fn bad_json_bodies_name_the_problem() {
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        #[serde(default)]
        count: u32,
    }
    let check = |input: &str, expected: &str| {
        let error = parse_json::<Body>(input.as_bytes()).expect_err(input);
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(
            error.message.contains(expected),
            "{input}: {:?} should contain {expected:?}",
            error.message
        );
    };
    check("{", "EOF while parsing");
    check("[]", "expected struct Body");
    check(
        r#"{"name": 3}"#,
        "name: invalid type: integer `3`, expected a string",
    );
    check(r#"{"name": "a", "count": "x"}"#, "count");
    check(r#"{"name": "a", "nope": 1}"#, "unknown field `nope`");
    check("", "missing field `name`");
    check(r#"{"name": "a"} x"#, "trailing characters");
    assert!(parse_json::<Body>(br#"{"name": "a"}"#).is_ok());
}

#[test]
fn timestamps_are_rfc3339_with_milliseconds() {
    assert_eq!(crate::views::timestamp(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        crate::views::timestamp(1_700_000_000_123),
        "2023-11-14T22:13:20.123Z"
    );
}

#[tokio::test]
async fn a_panicking_handler_becomes_a_json_500() {
    async fn boom() -> &'static str {
        panic!("boom in handler")
    }
    let app: Router = crate::with_common_layers(Router::new().route("/boom", get(boom)));
    let response = app
        .clone()
        .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value =
        serde_json::from_slice(&to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!(body["code"], "internal");
    assert!(
        body["error"].as_str().unwrap().contains("boom in handler"),
        "{body}"
    );

    // The router keeps serving after the panic.
    let response = app
        .oneshot(Request::get("/nowhere").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value =
        serde_json::from_slice(&to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!(body["error"], "no route for GET /nowhere");
}
