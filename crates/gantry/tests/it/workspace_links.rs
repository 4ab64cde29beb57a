//! The server reads what steps wrote only beneath the workspace (or the stage's run
//! directory): a step plants symbolic links to the server's own files (`secrets.key`,
//! `admin-token`, `/etc/shadow`, a directory link to the data directory or to `/`) where a
//! stage will read, and the stage fails naming the path and saying it leads outside, while
//! links inside a `packageDeb` root are packaged as links. Neither the published APT pool
//! nor the execution's API answers ever hold the linked files' bytes.

use std::path::Path;

use crate::harness::{Backend, Server, stage};
use crate::steps_podman::{log_text, podman};

/// The bytes the test must never find: the secret key (raw and hex), the admin token and
/// the first line of `/etc/shadow`.
struct Secrets {
    key: Vec<u8>,
    texts: Vec<String>,
}

impl Secrets {
    fn of(server: &Server) -> Secrets {
        let key = std::fs::read(server.data_dir().join("secrets.key")).expect("secrets.key");
        let token = std::fs::read_to_string(server.data_dir().join("admin-token"))
            .expect("admin-token")
            .trim()
            .to_owned();
        // The server runs as root (its steps run as `gantry-steps`), and so does this test.
        let shadow = std::fs::read_to_string("/etc/shadow")
            .ok()
            .and_then(|text| text.lines().next().map(str::to_owned))
            .filter(|line| !line.is_empty())
            .expect("/etc/shadow has a first line");
        Secrets {
            texts: vec![hex(&key), token, shadow],
            key,
        }
    }

    /// Fails when `bytes` (an API answer, a published file) holds any of them.
    fn check_absent(&self, what: &str, bytes: &[u8]) {
        assert!(
            !contains(bytes, &self.key),
            "{what} holds the bytes of secrets.key"
        );
        for text in &self.texts {
            assert!(
                !contains(bytes, text.as_bytes()),
                "{what} holds {:?}…",
                &text[..text.len().min(8)]
            );
        }
    }

    /// The execution's API answers (the execution and its logs) hold none of them.
    fn check_execution(&self, server: &Server, id: &str) {
        let execution = server.execution(id);
        self.check_absent(
            "the execution's API answer",
            execution.to_string().as_bytes(),
        );
        self.check_absent("the execution's logs", log_text(server, id).as_bytes());
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, read whole (links are not followed).
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let Ok(listing) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in listing.flatten() {
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            files.extend(files_under(&entry.path()));
        } else if kind.is_file() {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            files.push((entry.path().display().to_string(), bytes));
        }
    }
    files
}

/// Runs `pipeline`, expects it to fail at `stage_id` with an error holding every one of
/// `needles`, and checks the execution's API answers hold no secret.
fn fails_naming(
    server: &Server,
    secrets: &Secrets,
    pipeline: &str,
    stage_id: &str,
    needles: &[&str],
) {
    let id = server.run(pipeline, &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed", "{pipeline}: {execution:#}");
    let error = stage(&execution, stage_id)["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for needle in needles {
        assert!(
            error.contains(needle),
            "{pipeline}: {needle:?} not in {error}"
        );
    }
    secrets.check_execution(server, &id);
}

const PACKAGES: &str = r#"
pipelines:
  - name: root-is-a-link
    stages:
      - id: plant
        type: run
        steps:
          - script: ln -s @D@ pkg
      - id: package
        type: packageDeb
        dependsOn: [plant]
        directory: pkg
        package: leak
        version: "1.0"
        architecture: amd64
      - id: publish
        type: publishDeb
        dependsOn: [package]
        repository: main-repo
        file: ${{ stages.package.outputs.file }}
  - name: script-is-a-link
    stages:
      - id: plant
        type: run
        steps:
          - script: mkdir -p pkg/usr && echo hi > pkg/usr/hi && ln -s /etc/shadow postinst
      - id: package
        type: packageDeb
        dependsOn: [plant]
        directory: pkg
        package: leak
        version: "1.1"
        architecture: amd64
        postinst: postinst
  - name: deb-is-a-link
    stages:
      - id: plant
        type: run
        steps:
          - script: ln -s @D@/secrets.key out.deb
      - id: publish
        type: publishDeb
        dependsOn: [plant]
        repository: main-repo
        file: out.deb
  - name: links-inside-the-root
    stages:
      - id: plant
        type: run
        steps:
          - script: |
              mkdir -p pkg/usr/share/demo
              echo demo > pkg/usr/share/demo/readme
              ln -s @D@/secrets.key pkg/usr/share/demo/key
              ln -s / pkg/usr/share/demo/everything
      - id: package
        type: packageDeb
        dependsOn: [plant]
        directory: pkg
        package: links
        version: "1.0"
        architecture: amd64
      - id: publish
        type: publishDeb
        dependsOn: [package]
        repository: main-repo
        file: ${{ stages.package.outputs.file }}
"#;

#[test]
fn package_roots_scripts_and_files_linked_out_of_the_workspace_are_refused_and_nothing_is_published()
 {
    let server = Server::start(Backend::Sqlite);
    let secrets = Secrets::of(&server);
    crate::apt::publish_empty_stable(&server, "Pipeline <ci@example.com>");
    let data = server.data_dir().display().to_string();
    server.apply(&PACKAGES.replace("@D@", &data));

    fails_naming(
        &server,
        &secrets,
        "root-is-a-link",
        "package",
        &["pkg leads outside the workspace"],
    );
    fails_naming(
        &server,
        &secrets,
        "script-is-a-link",
        "package",
        &["postinst", "postinst leads outside the workspace"],
    );
    fails_naming(
        &server,
        &secrets,
        "deb-is-a-link",
        "publish",
        &["out.deb leads outside the workspace"],
    );

    // Links inside a root are packaged as what they are: links, never what they name.
    let id = server.run("links-inside-the-root", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    secrets.check_execution(&server, &id);
    let url = stage(&execution, "publish")["outputs"]["url"]
        .as_str()
        .expect("a pool url")
        .to_owned();
    let deb = server.work().join("links.deb");
    let status = std::process::Command::new("curl")
        .args(["-sSf", "-o", deb.to_str().unwrap()])
        .arg(format!("{}{url}", server.url))
        .status()
        .expect("curl");
    assert!(status.success(), "GET {url}");
    let listing = std::process::Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .expect("dpkg-deb");
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains(&format!("./usr/share/demo/key -> {data}/secrets.key")),
        "{listing}"
    );
    assert!(
        listing.contains("./usr/share/demo/everything -> /"),
        "{listing}"
    );
    assert!(!listing.contains("etc/shadow"), "{listing}");

    // The whole APT tree (pool, packs, indexes) holds no secret.
    for (path, bytes) in files_under(&server.data_dir().join("apt")) {
        secrets.check_absent(&path, &bytes);
    }
}

const STEP_FILES: &str = r#"
pipelines:
  - name: later-outputs-are-links
    stages:
      - id: plant
        type: run
        steps:
          - script: |
              d=$(dirname "$GANTRY_OUTPUT")
              for i in 0 1 2 3 4 5; do ln -s @D@/secrets.key "$d/step-$i.outputs" 2>/dev/null || true; done
          - script: echo second=yes >> "$GANTRY_OUTPUT"
          - script: echo third=yes >> "$GANTRY_OUTPUT"
  - name: output-is-a-link
    stages:
      - id: plant
        type: run
        steps:
          - script: rm -f "$GANTRY_OUTPUT" && ln -s @D@/admin-token "$GANTRY_OUTPUT"
  - name: config-is-a-link
    stages:
      - id: plant
        type: run
        steps:
          - script: ln -s /etc/shadow cloudbuild.yaml
      - id: build
        type: run
        dependsOn: [plant]
        config: cloudbuild.yaml
  - name: config-through-a-directory-link
    stages:
      - id: plant
        type: run
        steps:
          - script: ln -s / rootfs
      - id: build
        type: run
        dependsOn: [plant]
        config: rootfs/etc/shadow
"#;

#[test]
fn step_outputs_and_cloud_build_files_linked_out_of_their_directories_are_refused() {
    let server = Server::start(Backend::Sqlite);
    let secrets = Secrets::of(&server);
    let data = server.data_dir().display().to_string();
    server.apply(&STEP_FILES.replace("@D@", &data));

    // A step links the output files of the steps after it to the key: the server creates
    // each step's file anew instead of truncating the key through the link.
    let id = server.run("later-outputs-are-links", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(
        std::fs::read(server.data_dir().join("secrets.key")).expect("secrets.key"),
        secrets.key,
        "the server wrote through a link to secrets.key"
    );
    let outputs = &stage(&execution, "plant")["outputs"];
    assert_eq!(outputs["third"], "yes", "{outputs:#}");
    secrets.check_execution(&server, &id);

    fails_naming(
        &server,
        &secrets,
        "output-is-a-link",
        "plant",
        &["$GANTRY_OUTPUT", "leads outside the run directory"],
    );
    fails_naming(
        &server,
        &secrets,
        "config-is-a-link",
        "build",
        &["cloudbuild.yaml leads outside the workspace"],
    );
    fails_naming(
        &server,
        &secrets,
        "config-through-a-directory-link",
        "build",
        &["rootfs/etc/shadow leads outside the workspace"],
    );
}

const BAKES: &str = r#"
pipelines:
  - name: containerfile-is-a-link
    stages:
      - id: plant
        type: run
        steps:
          - script: ln -s /etc/shadow Containerfile
      - id: bake
        type: bake
        dependsOn: [plant]
        image: localhost/leak:1
        push: false
  - name: context-is-a-link
    stages:
      - id: plant
        type: run
        steps:
          - script: ln -s @D@ context
      - id: bake
        type: bake
        dependsOn: [plant]
        image: localhost/leak:2
        context: context
        push: false
"#;

#[test]
fn a_bake_whose_containerfile_or_context_is_linked_out_of_the_workspace_is_refused() {
    podman();
    let server = Server::start(Backend::Sqlite);
    let secrets = Secrets::of(&server);
    let data = server.data_dir().display().to_string();
    server.apply(&BAKES.replace("@D@", &data));

    fails_naming(
        &server,
        &secrets,
        "containerfile-is-a-link",
        "bake",
        &["Containerfile leads outside the workspace"],
    );
    fails_naming(
        &server,
        &secrets,
        "context-is-a-link",
        "bake",
        &["context leads outside the workspace"],
    );
}

#[test]
fn a_deploy_artifact_linked_out_of_the_workspace_is_refused() {
    let server = Server::start(Backend::Sqlite);
    let secrets = Secrets::of(&server);
    let data = server.data_dir().display().to_string();
    let app = crate::deploy_support::testapp();
    server.apply(&format!(
        r#"applications:
  - name: shop
pipelines:
  - name: artifact-is-a-link
    stages:
      - id: plant
        type: run
        steps:
          - script: ln -s {data} app
      - {{id: deploy, type: deploy, dependsOn: [plant], application: shop, stack: web, command: {app}, artifact: app, healthTimeout: 3s}}
  - name: artifact-in-the-data-directory
    stages:
      - {{id: deploy, type: deploy, application: shop, stack: web, command: {app}, artifact: {data}, healthTimeout: 3s}}
"#,
        app = app.display()
    ));
    fails_naming(
        &server,
        &secrets,
        "artifact-is-a-link",
        "deploy",
        &["app leads outside the workspace"],
    );
    fails_naming(
        &server,
        &secrets,
        "artifact-in-the-data-directory",
        "deploy",
        &["is in the server's data directory"],
    );
    // No server group took a copy of the data directory (the cluster never got one).
    let (status, cluster) = server.api("GET", "/api/v1/clusters/shop-web", None);
    let groups = &cluster["serverGroups"];
    assert!(
        status == 404 || groups.as_array().is_none_or(|list| list.is_empty()),
        "{cluster:#}"
    );
}
