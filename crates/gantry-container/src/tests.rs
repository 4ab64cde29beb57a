//! Against the real podman (set up by scripts/setup-podman).

use crate::{ContainerEngine, ContainerRun, Credentials, newest_tag, split_reference};

const BASE: &str = "localhost/gantry-test-base:latest";

#[test]
fn references_split_into_registry_and_repository() {
    let check = |reference: &str, expected: Option<(&str, &str)>| {
        let got = split_reference(reference).ok();
        let got = got.as_ref().map(|(h, r)| (h.as_str(), r.as_str()));
        assert_eq!(got, expected, "{reference}");
    };
    check(
        "127.0.0.1:5000/team/app:v1",
        Some(("127.0.0.1:5000", "team/app")),
    );
    check(
        "registry.example.com/app",
        Some(("registry.example.com", "app")),
    );
    check("localhost/app:1", Some(("localhost", "app")));
    check("app:1", None);
    check("team/app", None);
}

#[test]
fn unknown_and_missing_engines_are_named() {
    let error = ContainerEngine::detect(Some("rkt")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown container engine \"rkt\"; expected podman or docker"
    );
    let error = ContainerEngine::detect(Some("/nonexistent/podman")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "container engine \"/nonexistent/podman\" is not installed (not found on PATH)"
    );
}

#[tokio::test]
async fn a_labelled_container_is_found_and_removed() {
    let engine = ContainerEngine::detect(Some("podman")).expect("podman (scripts/setup-podman)");
    let marker = format!("unit-{}", std::process::id());
    let spec = ContainerRun {
        name: format!("gantry-{marker}"),
        image: BASE.to_owned(),
        labels: vec![("io.gantry.test".to_owned(), marker.clone())],
        args: vec!["sleep".to_owned(), "600".to_owned()],
        ..ContainerRun::default()
    };
    let mut child = engine.run_command(&spec).spawn().expect("podman run");
    // Wait until the container exists, then remove it by label alone.
    let mut removed = 0;
    for _ in 0..100 {
        removed = engine
            .remove_labelled(&[("io.gantry.test", &marker)])
            .await
            .unwrap();
        if removed > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(removed, 1);
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .expect("podman run ends once its container is removed")
        .unwrap();
    assert!(!status.success());
    assert!(
        !engine
            .image_exists("localhost/no-such-image:1")
            .await
            .unwrap()
    );
    assert!(engine.image_exists(BASE).await.unwrap());
}

#[test]
fn the_newest_matching_tag_is_chosen_semver_aware() {
    let check = |tags: &[&str], pattern: &str, expected: Option<(&str, &str)>| {
        let pattern = regex::Regex::new(pattern).unwrap();
        let got = newest_tag(tags.iter().copied(), &pattern);
        let got = got.as_ref().map(|(t, v)| (*t, v.as_str()));
        assert_eq!(got, expected, "{tags:?} {pattern}");
    };
    let tags = [
        "order_v1.9.0",
        "order_v1.10.0",
        "order_v1.10.0-rc.1",
        "order_v2.0.0-rc.1",
        "other_v9.0.0",
        "order_latest",
    ];
    check(
        &tags,
        r"^order_v(\d+\.\d+\.\d+)$",
        Some(("order_v1.10.0", "1.10.0")),
    );
    check(
        &tags,
        r"^order_v(.+)$",
        Some(("order_v2.0.0-rc.1", "2.0.0-rc.1")),
    );
    check(
        &["build-9", "build-10", "build-8"],
        r"^build-\d+$",
        Some(("build-10", "build-10")),
    );
    check(
        &["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0"],
        ".",
        Some(("1.0.0", "1.0.0")),
    );
    check(
        &["1.0.0-alpha.1", "1.0.0-alpha", "1.0.0-alpha.beta"],
        ".",
        Some(("1.0.0-alpha.beta", "1.0.0-alpha.beta")),
    );
    check(&tags, "^nothing$", None);
}

#[tokio::test]
async fn volumes_are_removed_only_when_every_label_matches() {
    let engine = ContainerEngine::detect(Some("podman")).expect("podman (scripts/setup-podman)");
    let marker = format!("vol-{}", std::process::id());
    let (mine, other) = (format!("{marker}-mine"), format!("{marker}-other"));
    engine
        .create_volume(
            &mine,
            &[("io.gantry.test", &marker), ("io.gantry.stage", "a")],
        )
        .await
        .unwrap();
    engine
        .create_volume(
            &other,
            &[("io.gantry.test", &marker), ("io.gantry.stage", "b")],
        )
        .await
        .unwrap();
    let removed = engine
        .remove_volumes(&[("io.gantry.test", &marker), ("io.gantry.stage", "a")])
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let left = engine
        .output(
            "volume ls",
            &[
                "volume",
                "ls",
                "-q",
                "--filter",
                &format!("label=io.gantry.test={marker}"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(left.trim(), other);
    engine
        .remove_volumes(&[("io.gantry.test", &marker)])
        .await
        .unwrap();
}

#[test]
fn credentials_are_user_colon_password_and_never_printed() {
    let credentials = Credentials::parse("robot:pa:ss").unwrap();
    assert_eq!(
        (credentials.user.as_str(), credentials.password.as_str()),
        ("robot", "pa:ss")
    );
    assert_eq!(
        format!("{credentials:?}"),
        "Credentials { user: \"robot\", password: *** }"
    );
    for bad in ["robot", ":pw", "robot:", ""] {
        assert_eq!(Credentials::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn an_auth_dir_is_private_and_removed_after_use() {
    use std::os::unix::fs::PermissionsExt;
    let credentials = Credentials::parse("robot:pw-1").unwrap();
    let auth = crate::auth::AuthDir::create("127.0.0.1:5056", &credentials).unwrap();
    let dir = auth.dir().to_owned();
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&auth.file()), 0o600);
    if std::path::Path::new("/dev/shm").is_dir() {
        assert!(
            dir.starts_with("/dev/shm"),
            "the password stays in memory: {}",
            dir.display()
        );
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(auth.file()).unwrap()).unwrap();
    // base64("robot:pw-1")
    assert_eq!(
        config["auths"]["127.0.0.1:5056"]["auth"],
        "cm9ib3Q6cHctMQ=="
    );
    drop(auth);
    assert!(!dir.exists());
}
