use super::{Allowed, decide, labelled_build_query};

#[test]
fn image_work_is_allowed_with_or_without_an_api_version() {
    for (method, path, query) in [
        ("HEAD", "/_ping", None),
        ("GET", "/v1.41/version", None),
        ("GET", "/v1.41/info", None),
        ("GET", "/v1.41/images/json", Some("all=0")),
        ("GET", "/v1.41/images/127.0.0.1:5000/app:v1/json", None),
        (
            "POST",
            "/v1.41/images/create",
            Some("fromImage=alpine&tag=3"),
        ),
        (
            "POST",
            "/v1.41/images/app:v1/tag",
            Some("repo=127.0.0.1:5000/app&tag=v1"),
        ),
        (
            "POST",
            "/v1.41/images/127.0.0.1:5000/app/push",
            Some("tag=v1"),
        ),
        ("POST", "/v1.41/auth", None),
    ] {
        assert_eq!(
            decide(method, path, query),
            Ok(Allowed::AsIs),
            "{method} {path}"
        );
    }
    assert_eq!(
        decide(
            "POST",
            "/v1.41/build",
            Some("t=app%3Av1&networkmode=default")
        ),
        Ok(Allowed::Build)
    );
}

#[test]
fn what_reaches_the_host_is_refused_naming_the_call() {
    for (method, path, query, why) in [
        (
            "POST",
            "/v1.41/containers/create",
            None,
            "run or enter a container",
        ),
        (
            "POST",
            "/v1.41/containers/abc/start",
            None,
            "run or enter a container",
        ),
        (
            "POST",
            "/v1.41/exec/abc/start",
            None,
            "run or enter a container",
        ),
        (
            "POST",
            "/v1.41/volumes/create",
            None,
            "volumes live on the host",
        ),
        ("DELETE", "/v1.41/images/app:v1", None, "does not remove"),
        (
            "POST",
            "/v1.41/build",
            Some("remote=https%3A%2F%2Fexample.com%2Fctx.tar"),
            "remote URL",
        ),
        (
            "POST",
            "/v1.41/build",
            Some("networkmode=host"),
            "host's network",
        ),
        (
            "POST",
            "/v1.41/images/create",
            Some("fromSrc=-"),
            "importing an image",
        ),
        ("POST", "/session", None, "BuildKit"),
        ("POST", "/v1.41/images/load", None, "allow-list"),
        (
            "GET",
            "/v1.41/containers/json",
            None,
            "run or enter a container",
        ),
        ("POST", "/v1.41/swarm/init", None, "allow-list"),
    ] {
        let refusal = decide(method, path, query).expect_err(path);
        let text = refusal.to_string();
        assert!(text.contains(why), "{method} {path}: {text}");
        assert!(
            text.contains(&format!("may not call {method} {path}")),
            "{text}"
        );
    }
}

#[test]
fn a_build_is_labelled_as_gantry_built_keeping_its_own_labels_and_options() {
    let query = labelled_build_query(Some("t=app%3Av1&labels=%7B%22team%22%3A%22shop%22%7D&rm=1"));
    let url = reqwest::Url::parse(&format!("http://x/build?{query}")).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    assert!(pairs.contains(&("t".into(), "app:v1".into())), "{pairs:?}");
    assert!(pairs.contains(&("rm".into(), "1".into())), "{pairs:?}");
    let labels = &pairs.iter().find(|(k, _)| k == "labels").unwrap().1;
    let labels: serde_json::Value = serde_json::from_str(labels).unwrap();
    assert_eq!(labels["team"], "shop");
    assert_eq!(labels[crate::labels::BUILT], "true");
}
