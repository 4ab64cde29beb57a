//! A Cloud Build file's `artifacts.objects`: kept by a `run` stage with
//! `config:` in the server's artifact store, listed and downloaded through
//! the CLI.

use crate::harness::{Backend, Server, stage};
use crate::steps_podman::{BASE, log_text, podman};

/// A Cloud Build file's `artifacts.objects` are kept in the artifact store once every step
/// succeeded, listed with their digests and downloadable through the CLI; a link out of the
/// workspace is refused, never followed.
#[test]
fn a_cloud_build_files_objects_are_kept_and_downloadable() {
    podman();
    let server = Server::start(Backend::Sqlite);
    let file = |paths: &str| {
        format!(
            r#"
steps:
- name: {BASE}
  entrypoint: sh
  args: ['-c', 'mkdir -p out && echo "app $SHORT_SHA" > out/app.txt && echo report > report.txt && ln -sf /etc/hostname out/host.txt']
artifacts:
  objects:
    location: gs://$PROJECT_ID-builds/$BUILD_ID/
    paths: {paths}
"#
        )
    };
    let pipeline = |name: &str, paths: &str| {
        format!(
            r#"
  - name: {name}
    stages:
      - id: prepare
        type: run
        steps:
          - script: |
              cat > cloudbuild.yaml <<'CB'
{}
              CB
      - {{ id: build, type: run, dependsOn: [prepare], config: cloudbuild.yaml }}
"#,
            file(paths)
                .lines()
                .map(|line| format!("              {line}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    server.apply(&format!(
        "pipelines:{}{}",
        pipeline("kept", "['out/*.txt', report.txt]").replace("out/*.txt", "out/app.txt"),
        pipeline("linked", "['out/*.txt']")
    ));
    let id = server.run("kept", &[]);
    let execution = server.wait_terminal(&id);
    let logs = log_text(&server, &id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}\n{logs}");
    let kept = &stage(&execution, "build")["outputs"]["artifacts"];
    assert!(
        kept["location"]
            .as_str()
            .unwrap()
            .starts_with("gs://gantry-builds/"),
        "{kept:#}"
    );
    let listed = server.cli(&["artifact", "list", &id]).ok().stdout;
    assert!(
        listed.contains("build/app.txt") && listed.contains("build/report.txt"),
        "{listed}"
    );
    let dest = server.work().join("downloaded.txt");
    server
        .cli(&[
            "artifact",
            "get",
            &id,
            "report.txt",
            "-o",
            dest.to_str().unwrap(),
        ])
        .ok();
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "report\n");
    server
        .cli(&["artifact", "get", &id, "build/missing.txt"])
        .fails_with("has no artifact \"missing.txt\" from stage \"build\"");

    let id = server.run("linked", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let error = stage(&execution, "build")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("out/host.txt leads outside the workspace"),
        "{error}"
    );
}
