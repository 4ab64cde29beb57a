//! `bake` and `findImage` against the real loopback registry.

use std::process::Command;

use crate::harness::{Backend, Server, stage};
use crate::steps_podman::{
    AUTH_PASSWORD, AUTH_USER, BASE, auth_registry, log_text, podman, registry, registry_tags,
    set_secret,
};

#[test]
fn a_bake_pushes_and_the_same_inputs_are_not_baked_twice() {
    podman();
    let server = Server::start(Backend::Sqlite);
    let registry = registry();
    let repository = format!("bake-app-{}", std::process::id());
    let pipeline = |name: &str, rebake: bool| {
        format!(
            r#"
  - name: {name}
    stages:
      - id: sources
        type: run
        steps:
          - script: |
              mkdir -p app
              printf 'FROM {BASE}\nCOPY hello /hello\n' > app/Containerfile
              echo "hello from the bake" > app/hello
              echo version=1.4.2 >> $GANTRY_OUTPUT
      - id: bake
        type: bake
        dependsOn: [sources]
        context: app
        image: {registry}/{repository}:v${{{{ stages.sources.outputs.version }}}}
        rebake: {rebake}
      - id: use
        type: run
        dependsOn: [bake]
        steps:
          - image: ${{{{ stages.bake.outputs.image }}}}
            script: cat /hello
"#
        )
    };
    server.apply(&format!(
        "pipelines:{}{}",
        pipeline("bake", false),
        pipeline("rebake", true)
    ));
    let first = server.run("bake", &[]);
    let execution = server.wait_terminal(&first);
    assert_eq!(
        execution["status"],
        "succeeded",
        "{execution:#}\n{}",
        log_text(&server, &first)
    );
    let outputs = &stage(&execution, "bake")["outputs"];
    assert_eq!(outputs["image"], format!("{registry}/{repository}:v1.4.2"));
    assert_eq!(outputs["skipped"], false);
    let digest = outputs["digest"].as_str().unwrap().to_owned();
    assert_eq!(registry_digest(&registry, &repository, "v1.4.2"), digest);
    assert!(log_text(&server, &first).contains("hello from the bake"));

    let second = server.run("bake", &[]);
    let execution = server.wait_terminal(&second);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let outputs = &stage(&execution, "bake")["outputs"];
    assert_eq!(outputs["skipped"], true);
    assert_eq!(outputs["digest"], digest.as_str());
    assert!(log_text(&server, &second).contains("the same inputs were baked before"));

    let third = server.run("rebake", &[]);
    let execution = server.wait_terminal(&third);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(stage(&execution, "bake")["outputs"]["skipped"], false);
}

#[test]
fn find_image_picks_the_newest_matching_tag() {
    podman();
    let server = Server::start(Backend::Sqlite);
    let registry = registry();
    let repository = format!("{registry}/find-app-{}", std::process::id());
    for tag in [
        "order_v1.2.0",
        "order_v1.10.0",
        "order_v1.9.3",
        "order_v2.0.0-rc.1",
        "other_v3.0.0",
        "latest",
    ] {
        let target = format!("{repository}:{tag}");
        podman_ok(&["tag", BASE, &target]);
        podman_ok(&["push", "--quiet", "--tls-verify=false", &target]);
    }
    assert_eq!(
        registry_tags(repository.split_once('/').unwrap().1).len(),
        6
    );
    server.apply(&format!(
        r#"
pipelines:
  - name: find
    stages:
      - id: find
        type: findImage
        repository: {repository}
        pattern: '^order_v(\d+\.\d+\.\d+)$'
      - id: use
        type: run
        dependsOn: [find]
        steps:
          - image: ${{{{ stages.find.outputs.image }}}}
            script: echo "running ${{{{ stages.find.outputs.version }}}}"
  - name: unreachable
    stages:
      - id: find
        type: findImage
        repository: 127.0.0.1:1/app
        pattern: '.'
"#
    ));
    let id = server.run("find", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(
        execution["status"],
        "succeeded",
        "{execution:#}\n{}",
        log_text(&server, &id)
    );
    let outputs = &stage(&execution, "find")["outputs"];
    assert_eq!(outputs["tag"], "order_v1.10.0");
    assert_eq!(outputs["version"], "1.10.0");
    assert_eq!(outputs["image"], format!("{repository}:order_v1.10.0"));
    assert!(log_text(&server, &id).contains("running 1.10.0"));

    let id = server.run("unreachable", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed");
    let error = stage(&execution, "find")["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.starts_with("findImage 127.0.0.1:1/app: registry 127.0.0.1:1: "),
        "{error}"
    );
}

pub fn podman_ok(args: &[&str]) {
    let out = Command::new("podman").args(args).output().expect("podman");
    assert!(out.status.success(), "podman {args:?}: {out:?}");
}

/// The manifest digest the registry serves for `repository:tag`.
fn registry_digest(registry: &str, repository: &str, tag: &str) -> String {
    let response = reqwest::blocking::Client::new()
        .head(format!("http://{registry}/v2/{repository}/manifests/{tag}"))
        .header(
            "accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .expect("registry");
    assert!(response.status().is_success(), "{response:?}");
    response.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// A pipeline `name` whose `bake` stage builds a small image and pushes it
/// as `image` (every run: `rebake: true`) with the registry credentials in
/// secret `credentials`.
pub fn bake_pipeline(name: &str, image: &str, credentials: Option<&str>) -> String {
    let credentials = credentials.map_or(String::new(), |c| format!("credentials: {c}"));
    format!(
        r#"
  - name: {name}
    stages:
      - id: sources
        type: run
        steps:
          - script: printf 'FROM {BASE}\nRUN echo baked > /baked\n' > Containerfile
      - id: bake
        type: bake
        dependsOn: [sources]
        image: {image}
        rebake: true
        {credentials}
"#
    )
}

#[test]
fn registry_credentials_come_from_the_secret_store() {
    podman();
    let server = Server::start(Backend::Sqlite);
    let registry = auth_registry();
    let repository = format!("auth-app-{}", std::process::id());
    let image = format!("{registry}/{repository}:v7");
    const WRONG: &str = "wrong-pw-4d81c2";
    set_secret(
        &server,
        "REGISTRY_LOGIN",
        &format!("{AUTH_USER}:{AUTH_PASSWORD}"),
    );
    set_secret(&server, "WRONG_LOGIN", &format!("{AUTH_USER}:{WRONG}"));
    let find = |pipeline: &str, credentials: &str| {
        format!(
            r#"
  - name: {pipeline}
    stages:
      - id: find
        type: findImage
        repository: {registry}/{repository}
        pattern: '^v(\d+)$'
        {credentials}
"#
        )
    };
    server.apply(&format!(
        "pipelines:{}{}{}{}{}{}",
        bake_pipeline("bake", &image, Some("REGISTRY_LOGIN")),
        bake_pipeline("bake-wrong", &image, Some("WRONG_LOGIN")),
        bake_pipeline("bake-anonymous", &image, None),
        find("find", "credentials: REGISTRY_LOGIN"),
        find("find-wrong", "credentials: WRONG_LOGIN"),
        find("find-anonymous", ""),
    ));
    let mut logs = String::new();
    let mut run = |pipeline: &str, status: &str| {
        let id = server.run(pipeline, &[]);
        let execution = server.wait_terminal(&id);
        let text = log_text(&server, &id);
        assert_eq!(execution["status"], status, "{execution:#}\n{text}");
        logs.push_str(&text);
        execution
    };

    let execution = run("bake", "succeeded");
    let digest = stage(&execution, "bake")["outputs"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let tags = reqwest::blocking::Client::new()
        .get(format!("http://{registry}/v2/{repository}/tags/list"))
        .basic_auth(AUTH_USER, Some(AUTH_PASSWORD))
        .send()
        .and_then(|r| r.json::<serde_json::Value>())
        .unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["v7"]));
    assert!(digest.starts_with("sha256:"), "{digest}");

    let execution = run("find", "succeeded");
    let outputs = &stage(&execution, "find")["outputs"];
    assert_eq!(outputs["image"], image.as_str());
    assert_eq!(outputs["version"], "7");

    let refused = |what: &str| format!("registry {registry} answered 401 unauthorized to {what}: ");
    let push = format!("the push of {image}");
    let list = format!("listing the tags of {repository:?}");
    for (pipeline, stage_id, prefix, what, hint) in [
        (
            "bake-wrong",
            "bake",
            format!("bake {image}"),
            &push,
            "the credentials in secret \"WRONG_LOGIN\" were refused",
        ),
        (
            "bake-anonymous",
            "bake",
            format!("bake {image}"),
            &push,
            "it needs credentials (credentials: a secret holding user:password)",
        ),
        (
            "find-wrong",
            "find",
            format!("findImage {registry}/{repository}"),
            &list,
            "the credentials in secret \"WRONG_LOGIN\" were refused",
        ),
        (
            "find-anonymous",
            "find",
            format!("findImage {registry}/{repository}"),
            &list,
            "it needs credentials (credentials: a secret holding user:password)",
        ),
    ] {
        let execution = run(pipeline, "failed");
        assert_eq!(
            stage(&execution, stage_id)["error"],
            format!("{prefix}: {}{hint}", refused(what)),
            "{pipeline}"
        );
    }

    for value in [AUTH_PASSWORD, WRONG] {
        assert!(!logs.contains(value), "a password reached the logs");
        assert!(
            !server.log_tail().contains(value),
            "a password reached the server's log"
        );
    }
}
