//! A secret parameter leaves no trace outside the masked logs: on no
//! command line while its steps run (host or container), in no API answer,
//! nowhere in the database or the data directory, nowhere in podman's
//! storage while its containers run; and everything the server writes
//! there is readable by its own user only.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::{Backend, Server, stage};
use crate::steps_podman::{BASE, podman};

/// The secret, different in every run of the tests: podman's storage and
/// the process table are the machine's, shared with any other run of this
/// test going on at the same time.
static VALUE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!("sekrit-{:x}{nanos:x}-never-seen", std::process::id())
});

const PIPELINE: &str = r#"
pipelines:
  - name: leaky
    parameters:
      - name: token
        secret: true
        required: true
    stages:
      - id: build
        type: run
        steps:
          - script: |
              test "${{ parameters.token }}" = "$EXPECTED"
              echo "host=${{ parameters.token }}" >> "$GANTRY_OUTPUT"
              sleep 3
            env:
              EXPECTED: "${{ parameters.token }}"
          - image: @BASE@
            env:
              TOKEN: "${{ parameters.token }}"
            script: |
              test "${{ parameters.token }}" = "$TOKEN"
              echo "container=${{ parameters.token }}" >> "$GANTRY_OUTPUT"
              sleep 4
          # No script: a shell reads the secret, then runs the command.
          - image: @BASE@
            env:
              TOKEN: "${{ parameters.token }}"
            command: [sh, -c, 'echo "command=$TOKEN" >> "$GANTRY_OUTPUT"; sleep 2']
      # Later stages still read the sealed values through expressions.
      - id: check
        type: run
        dependsOn: [build]
        steps:
          - image: @BASE@
            script: |
              test "${{ stages.build.outputs.host }}" = "${{ parameters.token }}"
              test "${{ stages.build.outputs.container }}" = "${{ parameters.token }}"
              test "${{ stages.build.outputs.command }}" = "${{ parameters.token }}"
              echo "the sealed outputs read back"
"#;

#[test]
fn a_secret_parameter_is_on_no_command_line_in_no_api_answer_and_nowhere_on_disk() {
    podman();
    let server = Server::start(Backend::Sqlite);
    server.apply(&PIPELINE.replace("@BASE@", BASE));
    let value = VALUE.as_str();
    let id = server.run("leaky", &[&format!("token={value}")]);

    // While the steps run, every process's command line (read by a thread of
    // its own every 50 ms, so that a slow read of podman's storage cannot make
    // it miss a short step), and while the container steps run, podman's
    // storage (its containers' configs, its database): `/var/lib/containers`,
    // and `/run/containers` and `/run/libpod`, which are tmpfs on most hosts
    // but disk on this one.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        let value = value.to_owned();
        std::thread::spawn(move || {
            let mut seen_sleeps: Vec<&str> = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for line in process_table().lines() {
                    assert!(
                        !line.contains(&value),
                        "the secret is on a command line: {line}"
                    );
                    for sleep in ["sleep 3", "sleep 4", "sleep 2"] {
                        if line.trim() == sleep && !seen_sleeps.contains(&sleep) {
                            seen_sleeps.push(sleep);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            seen_sleeps
        })
    };
    let mut storage_read_while_containers_ran = 0;
    loop {
        if process_table()
            .lines()
            .any(|line| matches!(line.trim(), "sleep 4" | "sleep 2"))
        {
            for dir in PODMAN_STORAGE {
                for file in files_under(Path::new(dir)) {
                    assert!(
                        !holds_value(&file),
                        "{} holds the secret while its container runs",
                        file.display()
                    );
                }
            }
            storage_read_while_containers_ran += 1;
        }
        let execution = server.execution(&id);
        if matches!(
            execution["status"].as_str(),
            Some("succeeded" | "failed" | "canceled")
        ) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen_sleeps = sampler.join().expect("the process table sampler");
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    assert_eq!(
        seen_sleeps.len(),
        3,
        "the process table was not read while every step ran"
    );
    assert!(storage_read_while_containers_ran > 0);

    // Every answer of the API about the execution.
    let masked = |value: &serde_json::Value| {
        value
            .as_str()
            .is_some_and(|s| !s.is_empty() && s.chars().all(|c| c == '*'))
    };
    assert!(masked(&execution["parameters"]["token"]), "{execution:#}");
    let outputs = &stage(&execution, "build")["outputs"];
    assert!(masked(&outputs["host"]), "{outputs:#}");
    assert!(masked(&outputs["container"]), "{outputs:#}");
    let answers = [
        format!("/api/v1/executions/{id}"),
        "/api/v1/executions".to_owned(),
        "/api/v1/executions?pipeline=leaky".to_owned(),
        format!("/api/v1/executions/{id}/logs"),
    ];
    for path in &answers {
        let (_, body) = server.api("GET", path, None);
        assert!(
            !body.to_string().contains(value),
            "GET {path} returns the secret: {body}"
        );
    }
    let shown = server.cli(&["execution", "show", &id]).ok();
    assert!(!shown.stdout.contains(value), "{}", shown.stdout);
    let logs = server.cli(&["logs", &id]).ok();
    assert!(
        logs.stdout.contains("the sealed outputs read back"),
        "{}",
        logs.stdout
    );
    assert!(!logs.stdout.contains(value));

    // Every file of the data directory, the database and its WAL included.
    let files = files_under(&server.data_dir());
    assert!(files.iter().any(|f| f.ends_with("gantry.db")));
    for file in &files {
        assert!(
            !holds_value(file),
            "{} holds the secret in the clear",
            file.display()
        );
    }
}

/// Where podman keeps its containers' configs and its database.
const PODMAN_STORAGE: [&str; 3] = ["/var/lib/containers", "/run/containers", "/run/libpod"];

fn holds_value(file: &Path) -> bool {
    let bytes = std::fs::read(file).unwrap_or_default();
    bytes.windows(VALUE.len()).any(|w| w == VALUE.as_bytes())
}

#[test]
fn every_file_the_server_writes_is_readable_by_its_own_user_only() {
    podman();
    let mut server = Server::start(Backend::Sqlite);
    server.apply(&PIPELINE.replace("@BASE@", BASE));
    // Another value than the test above, whose process table must not see
    // this test's `gantry run -p` (they run at the same time).
    let id = server.run("leaky", &["token=other-sekrit-0b9d44"]);
    assert_eq!(server.wait_terminal(&id)["status"], "succeeded");
    assert_private(&server.data_dir());

    // A data directory an older server left readable is tightened at start.
    server.stop();
    for file in ["gantry.db", "admin-token"] {
        let path = server.data_dir().join(file);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(server.data_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    server.restart();
    assert_private(&server.data_dir());
}

/// No file beneath `dir` has a right for group or others; directories only
/// the right to traverse (`--x`), and only those a step user passes through
/// to its workspace and run directory.
fn assert_private(dir: &Path) {
    let mut problems = Vec::new();
    let traversed = |path: &Path| {
        path == dir
            || path == dir.join("workspaces")
            || path == dir.join("runs")
            || path.parent() == Some(&dir.join("runs"))
    };
    for path in std::iter::once(dir.to_owned()).chain(entries_under(dir)) {
        let Ok(metadata) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if metadata.file_type().is_symlink() {
            continue;
        }
        let mode = metadata.permissions().mode() & 0o777;
        let allowed = if metadata.is_dir() && traversed(&path) {
            0o011
        } else {
            0
        };
        if mode & 0o077 & !allowed != 0 {
            problems.push(format!("{} is {mode:o}", path.display()));
        }
    }
    assert!(problems.is_empty(), "readable by others: {problems:#?}");
}

/// `ps -eo args`: every process's command line.
fn process_table() -> String {
    let output = Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .expect("run ps");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    entries_under(dir)
        .into_iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
        .collect()
}

fn entries_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path.clone());
            }
            found.push(path);
        }
    }
    found
}
