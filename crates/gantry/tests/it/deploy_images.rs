//! A container deploy whose image this machine lacks pulls it first, from
//! the real loopback registries: anonymously, and with credentials from the
//! secret store; a refused pull fails the deploy naming the image and the
//! registry's answer.

use std::process::Command;

use crate::deploy_containers::build_testapp_image;
use crate::deploy_support::{free_port, get, shop_cluster_yaml, shop_pipeline};
use crate::harness::{Backend, Server, stage};
use crate::steps_podman::{AUTH_PASSWORD, AUTH_USER, auth_registry, podman, registry, set_secret};

/// Pushes `image` (built here) to its registry, then removes it from this
/// machine, as on a server that never built it.
fn push_and_forget(image: &str, credentials: Option<&str>) {
    let mut push = Command::new("podman");
    push.args(["push", "--quiet", "--tls-verify=false"]);
    if let Some(credentials) = credentials {
        push.args(["--creds", credentials]);
    }
    let out = push.arg(image).output().expect("podman push");
    assert!(out.status.success(), "podman push {image}: {out:?}");
    let out = Command::new("podman")
        .args(["rmi", "--force", image])
        .output()
        .expect("podman rmi");
    assert!(out.status.success(), "podman rmi {image}: {out:?}");
}

/// Pipelines deploying `image` to cluster `shop-web` behind `port`: one
/// with the secret `REGISTRY_LOGIN`, one without credentials.
fn pull_yaml(port: u16, image: &str) -> String {
    let fields = format!("image: {image}\nsize: 1\n");
    format!(
        "{}{}{}",
        shop_cluster_yaml(port),
        shop_pipeline("deploy-anonymous", &[], &fields),
        shop_pipeline(
            "deploy-login",
            &[],
            &format!("{fields}credentials: REGISTRY_LOGIN\n")
        ),
    )
}

fn image_present(image: &str) -> bool {
    Command::new("podman")
        .args(["image", "exists", image])
        .status()
        .expect("podman image exists")
        .success()
}

#[test]
fn a_deploy_pulls_its_image_from_the_registry_when_the_machine_lacks_it() {
    podman();
    let server = Server::start(Backend::Sqlite);
    let image = format!(
        "{}/gantry-deploy-pull-{}:v1",
        registry(),
        std::process::id()
    );
    build_testapp_image(&server.work().join("image"), &image, "pulled1");
    push_and_forget(&image, None);
    assert!(!image_present(&image));
    let port = free_port();
    server.apply(&pull_yaml(port, &image));

    let id = server.run("deploy-anonymous", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert!(get(port, "/").1.starts_with("pulled1 "));
    assert!(image_present(&image));
    let log = crate::steps_podman::log_text(&server, &id);
    assert!(log.contains(&format!("pulled image {image}")), "{log}");
}

#[test]
fn a_deploy_pulls_with_the_credentials_its_stage_names_and_names_a_refusal() {
    podman();
    let server = Server::start(Backend::Sqlite);
    let registry = auth_registry();
    let image = format!(
        "{registry}/gantry-deploy-pull-auth-{}:v1",
        std::process::id()
    );
    build_testapp_image(&server.work().join("image"), &image, "private1");
    push_and_forget(&image, Some(&format!("{AUTH_USER}:{AUTH_PASSWORD}")));
    set_secret(
        &server,
        "REGISTRY_LOGIN",
        &format!("{AUTH_USER}:{AUTH_PASSWORD}"),
    );
    let port = free_port();
    server.apply(&pull_yaml(port, &image));

    // Without credentials the registry refuses: the deploy fails before
    // any server group exists, naming the image and the answer.
    let id = server.run("deploy-anonymous", &[]);
    let refused = server.wait_terminal(&id);
    assert_eq!(refused["status"], "failed", "{refused:#}");
    let error = stage(&refused, "deploy")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains(&format!(
            "image {image:?} does not exist on this machine and cannot be pulled from {registry}"
        )),
        "{error}"
    );
    assert!(error.contains("401 unauthorized"), "{error}");
    assert!(error.contains("it needs credentials"), "{error}");
    let (status, cluster) = server.api("GET", "/api/v1/clusters/shop-web", None);
    assert_eq!(status, 404, "no server group was created: {cluster:#}");

    let id = server.run("deploy-login", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert!(get(port, "/").1.starts_with("private1 "));
}
