//! `pruneImages` against real podman: it removes only images Gantry built, of exactly the
//! repository given, all but the newest `keep`, and skips an image a container uses.

use std::process::Command;

use crate::harness::{Backend, Server, stage};
use crate::steps_bake::podman_ok;
use crate::steps_podman::{BASE, log_text, podman, registry};

#[test]
fn prune_images_removes_only_older_images_gantry_built_of_the_repository() {
    podman();
    let server = Server::start(Backend::Sqlite);
    let registry = registry();
    let repository = format!("{registry}/prune-app-{}", std::process::id());
    let other = format!("{registry}/prune-other-{}", std::process::id());
    server.apply(&format!(
        r#"
pipelines:
  - name: bake
    parameters:
      - {{name: image, required: true}}
    stages:
      - id: sources
        type: run
        steps:
          - script: |
              mkdir -p app
              printf 'FROM {BASE}\nCOPY hello /hello\n' > app/Containerfile
              echo "${{{{ parameters.image }}}}" > app/hello
      - id: bake
        type: bake
        dependsOn: [sources]
        context: app
        image: ${{{{ parameters.image }}}}
        push: false
  - name: prune
    stages:
      - id: prune
        type: pruneImages
        repository: {repository}
        keep: 2
"#
    ));
    let baked = |image: &str| {
        let id = server.run("bake", &[&format!("image={image}")]);
        let execution = server.wait_terminal(&id);
        assert_eq!(
            execution["status"],
            "succeeded",
            "{execution:#}\n{}",
            log_text(&server, &id)
        );
    };
    // Oldest first: v1 and v2 are beyond the newest two.
    for version in 1..=4 {
        baked(&format!("{repository}:v{version}"));
    }
    baked(&format!("{other}:v1"));
    // The same repository, but not built by Gantry: no label.
    let unlabelled = format!("{repository}:unlabelled");
    podman_ok(&["tag", BASE, &unlabelled]);
    // v2 is used by a container, so it must be skipped rather than forced.
    let container = format!("prune-user-{}", std::process::id());
    podman_ok(&["create", "--name", &container, &format!("{repository}:v2")]);

    let id = server.run("prune", &[]);
    let execution = server.wait_terminal(&id);
    let log = log_text(&server, &id);
    let _ = Command::new("podman")
        .args(["rm", "--force", &container])
        .output();
    assert_eq!(execution["status"], "succeeded", "{execution:#}\n{log}");
    let outputs = &stage(&execution, "prune")["outputs"];
    assert_eq!(
        outputs["removed"],
        serde_json::json!([format!("{repository}:v1")]),
        "{log}"
    );
    assert_eq!(outputs["removedIds"].as_array().map(Vec::len), Some(1));
    assert!(log.contains("a container uses it"), "{log}");

    assert!(!image_exists(&format!("{repository}:v1")));
    for kept in [
        format!("{repository}:v2"),
        format!("{repository}:v3"),
        format!("{repository}:v4"),
        unlabelled.clone(),
        format!("{other}:v1"),
    ] {
        assert!(image_exists(&kept), "{kept} should still be there\n{log}");
    }
    for image in [
        format!("{repository}:v2"),
        format!("{repository}:v3"),
        format!("{repository}:v4"),
        unlabelled,
        format!("{other}:v1"),
    ] {
        let _ = Command::new("podman").args(["rmi", &image]).output();
    }
}

#[test]
fn prune_images_refuses_a_keep_of_zero_and_a_tagged_repository() {
    let server = Server::start(Backend::Sqlite);
    let path = server.write_file(
        "prune.yaml",
        r#"
pipelines:
  - name: prune
    stages:
      - {id: prune, type: pruneImages, repository: "127.0.0.1:5000/app:1.0", keep: 0}
"#,
    );
    let out = server.cli(&["apply", "-f", path.to_str().unwrap()]);
    let stderr = &out.stderr;
    assert!(!out.status.success());
    assert!(
        stderr.contains("must be a repository without a tag"),
        "{stderr}"
    );
    assert!(stderr.contains("\"keep\" must be at least 1"), "{stderr}");
}

fn image_exists(image: &str) -> bool {
    Command::new("podman")
        .args(["image", "exists", image])
        .status()
        .expect("podman")
        .success()
}
