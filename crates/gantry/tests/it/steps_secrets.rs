//! The secret store through the CLI and the API, and `secretEnv` in steps:
//! values reach the steps, and nothing else (database, API, logs).

use std::os::unix::fs::PermissionsExt;

use crate::harness::{Server, stage};
use crate::steps_podman::{BASE, log_text, podman};

const VALUE: &str = "tok-8f3a91-do-not-leak";

crate::on_both_backends! {
    secrets_reach_steps_and_nothing_else,
}

fn secrets_reach_steps_and_nothing_else(server: &mut Server) {
    podman();
    let input = server.write_file("secret-input", &format!("{VALUE}\n"));
    server
        .cli_with(&["secret", "set", "DEPLOY_TOKEN"], |command| {
            command.stdin(std::fs::File::open(&input).unwrap());
        })
        .ok();
    std::fs::remove_file(&input).unwrap();

    let listed = server.cli(&["secret", "list"]).ok();
    assert!(listed.stdout.contains("DEPLOY_TOKEN"), "{}", listed.stdout);
    let (status, body) = server.api("GET", "/api/v1/secrets", None);
    assert_eq!(status, 200);
    assert_eq!(body["secrets"][0]["name"], "DEPLOY_TOKEN");
    assert!(!body.to_string().contains(VALUE));
    let key = server.data_dir().join("secrets.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    server.apply(&format!(
        r#"
pipelines:
  - name: deploy
    stages:
      - id: build
        type: run
        steps:
          - image: {BASE}
            secretEnv: [DEPLOY_TOKEN]
            script: |
              echo "token is $DEPLOY_TOKEN"
              echo "$DEPLOY_TOKEN" > /workspace/token
          - secretEnv: [TOKEN=DEPLOY_TOKEN]
            script: |
              test "$TOKEN" = "$(cat token)"
              echo "host sees $TOKEN" >&2
      # A stage without the secret that prints it anyway (from the
      # workspace): masked too, since the value belongs to the execution.
      - id: later
        type: run
        dependsOn: [build]
        steps:
          - script: echo "later reads $(cat token)"
  - name: missing
    stages:
      - id: build
        type: run
        steps:
          - script: touch @W@/ran
          - image: {BASE}
            secretEnv: [NOPE]
            script: 'true'
"#
    ));
    let id = server.run("deploy", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let logs = log_text(server, &id);
    assert!(logs.contains("token is ***"), "{logs}");
    assert!(logs.contains("host sees ***"), "{logs}");
    assert!(logs.contains("later reads ***"), "{logs}");
    assert!(!logs.contains(VALUE), "a secret value reached the logs");
    let followed = server.cli(&["logs", &id]).ok();
    assert!(!followed.stdout.contains(VALUE));

    for file in ["gantry.db", "gantry.db-wal"] {
        if let Ok(bytes) = std::fs::read(server.data_dir().join(file)) {
            assert!(
                !bytes.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()),
                "{file} holds the secret in the clear"
            );
        }
    }

    // A secret that does not exist fails the stage before any step runs.
    let id = server.run("missing", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "failed");
    assert_eq!(
        stage(&execution, "build")["error"],
        "step 2: secret \"NOPE\" does not exist"
    );
    assert!(!server.work().join("ran").exists());

    server.cli(&["secret", "delete", "DEPLOY_TOKEN"]).ok();
    server
        .cli(&["secret", "delete", "DEPLOY_TOKEN"])
        .fails_with("secret \"DEPLOY_TOKEN\" not found");
    let (_, body) = server.api("GET", "/api/v1/secrets", None);
    // Secrets the server keeps for itself (`_gantry.…`, e.g. the APT signing
    // key's passphrase) are never listed.
    let names: Vec<&str> = body["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, Vec::<&str>::new());
    let (status, body) = server.api(
        "PUT",
        "/api/v1/secrets/bad%20name",
        Some(serde_json::json!({"value": "x"})),
    );
    assert_eq!(status, 400, "{body}");
}
