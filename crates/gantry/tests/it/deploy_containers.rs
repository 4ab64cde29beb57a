//! Server groups of container instances (`image:`), run by the local
//! provider with the real podman: a red/black between two image versions
//! under load, and an image that does not exist.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::deploy_support::{Load, assert_clean, free_port, get, shop_cluster_yaml, testapp};
use crate::harness::{Backend, Server, stage};
use crate::steps_podman::{BASE, podman};

const IMAGE: &str = "localhost/gantry-deploy-testapp";

/// Builds `IMAGE:tag` from the local base image: gantry-testapp with the
/// shared libraries it links, answering `version` as its version.
fn build_image(dir: &Path, tag: &str, version: &str) -> String {
    build_testapp_image(dir, &format!("{IMAGE}:{tag}"), version)
}

/// Builds the image `name` in `dir` from the local base image:
/// gantry-testapp with the shared libraries it links, answering `version`
/// as its version.
pub fn build_testapp_image(dir: &Path, name: &str, version: &str) -> String {
    let root = dir.join("root");
    let binary = testapp();
    std::fs::create_dir_all(root.join("bin")).expect("mkdir");
    std::fs::copy(&binary, root.join("bin/gantry-testapp")).expect("copy the test app");
    let ldd = Command::new("ldd").arg(&binary).output().expect("ldd");
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|word| word.starts_with('/'))
    {
        let target = root.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::copy(lib, &target).expect("copy a shared library");
    }
    std::fs::write(
        dir.join("Containerfile"),
        format!(
            "FROM {BASE}\nCOPY root/ /\nENV VERSION={version}\nCMD [\"/bin/gantry-testapp\"]\n"
        ),
    )
    .expect("write the Containerfile");
    let name = name.to_owned();
    let out = Command::new("podman")
        .args(["build", "-q", "-t", &name])
        .arg(dir)
        .output()
        .expect("podman build");
    assert!(out.status.success(), "podman build {name}: {out:?}");
    name
}

/// Application `shop` behind load balancer `shop` on `port`, deployed from
/// the image given as the parameter `image` by pipeline `deploy-image`.
pub fn image_yaml(port: u16) -> String {
    format!(
        r#"{}  - name: deploy-image
    parameters:
      - {{name: image}}
    stages:
      - id: deploy
        type: deploy
        application: shop
        stack: web
        image: "${{{{ parameters.image }}}}"
        size: 2
        strategy: redblack
        healthTimeout: 30s
        gracePeriod: 2s
"#,
        shop_cluster_yaml(port)
    )
}

fn live_groups(server: &Server) -> Vec<(String, bool)> {
    server.get("/api/v1/clusters/shop-web")["serverGroups"]
        .as_array()
        .expect("server groups")
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap_or("").to_owned(),
                g["enabled"] == true,
            )
        })
        .collect()
}

fn deploy_image(server: &Server, image: &str) -> serde_json::Value {
    let id = server.run("deploy-image", &[&format!("image={image}")]);
    server.wait_terminal(&id)
}

#[test]
fn red_black_between_two_image_versions_drops_nothing() {
    podman();
    let server = Server::start(Backend::Sqlite);
    let v1 = build_image(&server.work().join("image-v1"), "v1", "img1");
    let v2 = build_image(&server.work().join("image-v2"), "v2", "img2");
    let port = free_port();
    server.apply(&image_yaml(port));

    let first = deploy_image(&server, &v1);
    assert_eq!(first["status"], "succeeded", "{first:#}");
    assert!(get(port, "/").1.starts_with("img1 "));
    let group = server.get("/api/v1/server-groups/shop-web-v000");
    assert_eq!(group["spec"]["image"], v1.as_str(), "{group:#}");

    let load = Load::start(port, 4, 2);
    std::thread::sleep(Duration::from_millis(300));
    let second = deploy_image(&server, &v2);
    assert_eq!(second["status"], "succeeded", "{second:#}");
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();
    assert_clean(&tally, "red/black between two images");
    assert!(tally.versions.contains_key("img2"), "{:?}", tally.versions);
    assert_eq!(get(port, "/").1.split_whitespace().next(), Some("img2"));

    // An image this machine does not have: refused, nothing disturbed.
    let load = Load::start(port, 2, 1);
    let missing = format!("{IMAGE}:missing");
    let bad = deploy_image(&server, &missing);
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();
    assert_eq!(bad["status"], "failed", "{bad:#}");
    let error = stage(&bad, "deploy")["error"].to_string();
    assert!(
        error.contains(&format!("image \\\"{missing}\\\" does not exist")),
        "{error}"
    );
    assert_clean(&tally, "a deploy of a missing image");
    assert_eq!(
        live_groups(&server),
        vec![
            ("shop-web-v000".to_owned(), false),
            ("shop-web-v001".to_owned(), true)
        ]
    );
    assert_eq!(tally.versions.keys().collect::<Vec<_>>(), vec!["img2"]);
}
