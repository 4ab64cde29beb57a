//! `gantry serve --local-runner on`: the server starts its own runner as a
//! child process and hands it every step.

use crate::harness::{Backend, Server, read_pid, stage};
use crate::runners::wait_registered;

/// `gantry serve --local-runner on`: the server runs no step itself; its
/// child runner does, in its own copy of the workspace (outside the data
/// directory) whose changes come back to the server's, and comes back when
/// killed.
#[test]
fn the_local_runner_runs_every_step_and_is_started_again_when_it_dies() {
    let server = Server::start_with_env(&[("GANTRY_LOCAL_RUNNER", "on")]);
    wait_registered(&server, &["local"]);
    server.apply(
        r#"
pipelines:
  - name: plain
    stages:
      - id: build
        type: run
        steps:
          - script: |
              echo built > artifact
              echo "where=$PWD" >> "$GANTRY_OUTPUT"
              echo $PPID > @W@/parent.pid
"#,
    );
    let id = server.run("plain", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    // The step ran in the runner's copy of the workspace, in the runner's
    // work directory (the harness puts it beside the data directory); what
    // it wrote came back to the server's workspace.
    let workspace = server.data_dir().join("workspaces").join(&id);
    let where_ = stage(&execution, "build")["outputs"]["where"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        std::path::PathBuf::from(&where_),
        server.local_runner_dir().join("workspaces").join(&id),
        "the step ran in {where_}"
    );
    assert_eq!(
        std::fs::read_to_string(workspace.join("artifact")).unwrap(),
        "built\n"
    );
    // The step's parent is the runner, a child of the server; kill it and
    // the server starts another that runs the next execution.
    let parent = read_pid(&server.work().join("parent.pid"));
    let runner = if command_of(parent).contains(" runner ") {
        parent
    } else {
        // The step's shell may sit below a sandbox helper.
        parent_of(parent).expect("the runner process")
    };
    assert!(
        command_of(runner).contains(" runner "),
        "{}",
        command_of(runner)
    );
    crate::runners_steps::nix_kill(runner).unwrap();
    std::fs::remove_file(server.work().join("parent.pid")).unwrap();
    let id = server.run("plain", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let again = read_pid(&server.work().join("parent.pid"));
    assert_ne!(again, parent, "the step ran under the killed runner");
}

/// On the embedded default (no setting) the server starts its local
/// runner, and a step without `runsOn` runs under it, never under the
/// server: as the step user, confined, it cannot read the server's
/// `secrets.key` nor list the data directory.
#[test]
fn by_default_a_step_runs_under_the_local_runner_and_cannot_read_the_servers_data() {
    let server = Server::start(Backend::Sqlite);
    wait_registered(&server, &["local"]);
    let data_dir = server.data_dir();
    assert!(data_dir.join("secrets.key").exists());
    server.apply(&format!(
        r#"
pipelines:
  - name: nosy
    stages:
      - id: build
        type: run
        steps:
          - script: |
              D={data_dir}
              if cat "$D/secrets.key" >/dev/null 2>&1; then echo "read=secrets.key" >> "$GANTRY_OUTPUT"; fi
              if ls "$D" >/dev/null 2>&1; then echo "listed=data-dir" >> "$GANTRY_OUTPUT"; fi
              if cat "{runner_dir}/credential.json" >/dev/null 2>&1; then echo "read=credential" >> "$GANTRY_OUTPUT"; fi
              echo "uid=$(id -u)" >> "$GANTRY_OUTPUT"
              echo $$ > @W@/step.pid
              sleep 1
"#,
        data_dir = data_dir.display(),
        runner_dir = server.local_runner_dir().display(),
    ));
    let id = server.run("nosy", &[]);
    let pid_file = server.work().join("step.pid");
    crate::steps_containers::wait_until("the step wrote its pid", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|t| t.trim().parse::<i32>().is_ok())
    });
    let mut ancestors = Vec::new();
    let mut pid = read_pid(&pid_file);
    while let Some(parent) = parent_of(pid).filter(|p| *p > 1) {
        ancestors.push(command_of(parent));
        pid = parent;
    }
    let runner_pid = {
        let mut pid = read_pid(&pid_file);
        while !command_of(pid).contains(" runner ") {
            pid = parent_of(pid).expect("the runner among the step's ancestors");
        }
        pid
    };
    let runner_uid = uid_of(runner_pid);
    let runner_env = std::fs::read(format!("/proc/{runner_pid}/environ")).unwrap_or_default();
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let outputs = &stage(&execution, "build")["outputs"];
    assert!(
        std::path::Path::new(&format!(
            "{runner_dir}/credential.json",
            runner_dir = server.local_runner_dir().display()
        ))
        .exists(),
        "there was a credential to read"
    );
    assert_eq!(outputs["read"], serde_json::Value::Null, "{outputs:#}");
    assert_eq!(outputs["listed"], serde_json::Value::Null, "{outputs:#}");
    let as_root =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    if as_root {
        assert_ne!(outputs["uid"], "0", "the step ran as root");
        // The runner itself runs as its own user, which cannot read the
        // data directory (root's, private), with none of the server's
        // environment.
        let runner_user = runner_user();
        assert_eq!(
            runner_uid, runner_user,
            "the runner runs as uid {runner_uid}"
        );
        for (what, command) in [
            (
                "read the secret key",
                format!("cat {}/secrets.key", data_dir.display()),
            ),
            (
                "read the database",
                format!("cat {}/gantry.db", data_dir.display()),
            ),
            (
                "list the data directory",
                format!("ls {}", data_dir.display()),
            ),
        ] {
            let out = std::process::Command::new("runuser")
                .args(["-u", "gantry-runner", "--", "sh", "-c", &command])
                .output()
                .expect("runuser");
            assert!(
                !out.status.success(),
                "the runner's user could {what}: {out:?}"
            );
        }
        let env = String::from_utf8_lossy(&runner_env);
        assert!(
            !env.contains("GANTRY_LOCAL_RUNNER_DIR"),
            "the server's environment reached the runner: {env}"
        );
    }
    // The step's ancestors: the runner, then the server that started it.
    let runner = ancestors
        .iter()
        .position(|c| c.contains(" runner "))
        .unwrap_or_else(|| panic!("no runner among the step's ancestors: {ancestors:#?}"));
    assert!(
        ancestors[..runner].iter().all(|c| !c.contains(" serve")),
        "the server runs the step itself: {ancestors:#?}"
    );
}

/// The uid of the local runner's user, `gantry-runner`.
pub(crate) fn runner_user() -> u32 {
    let out = std::process::Command::new("id")
        .args(["-u", "gantry-runner"])
        .output()
        .expect("id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the gantry-runner user")
}

/// A process's real uid, from `/proc`.
fn uid_of(pid: i32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| panic!("no uid for {pid}: {status}"))
}

/// A container step on the local runner runs in its user's rootless podman:
/// the container's root is that user on the machine, never root.
#[test]
fn a_container_step_on_the_local_runner_runs_in_its_users_rootless_podman() {
    crate::steps_podman::podman();
    let server = Server::start(Backend::Sqlite);
    server.apply(&format!(
        r#"
pipelines:
  - name: contained
    stages:
      - id: build
        type: run
        steps:
          - image: {base}
            script: |
              echo "map=$(head -n1 /proc/self/uid_map | tr -s ' ' | sed 's/^ //')" >> "$GANTRY_OUTPUT"
              echo made > made-in-a-container
"#,
        base = crate::steps_podman::BASE
    ));
    let id = server.run("contained", &[]);
    let execution = server.wait_terminal(&id);
    assert_eq!(execution["status"], "succeeded", "{execution:#}");
    let map = stage(&execution, "build")["outputs"]["map"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // `0 HOST-UID 1`: the container's root is the runner's user.
    let host_uid: u32 = map
        .split(' ')
        .nth(1)
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX);
    assert_eq!(host_uid, runner_user(), "uid map {map:?}");
    let workspace = server.data_dir().join("workspaces").join(&id);
    assert_eq!(
        std::fs::read_to_string(workspace.join("made-in-a-container")).unwrap(),
        "made\n"
    );
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(1)?.parse().ok()
}

fn command_of(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .unwrap_or_default()
}

/// A local runner's work directory inside the data directory would put the
/// data directory in its user's reach: the server refuses to start, naming
/// both and the flag to change.
#[test]
fn a_local_runner_work_directory_inside_the_data_directory_is_refused_at_start() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--local-runner-dir")
        .arg(data.join("runner"))
        .env_remove("GANTRY_LOCAL_RUNNER_DIR")
        .output()
        .expect("gantry serve");
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let as_root =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    if as_root {
        assert!(
            stderr.contains(&format!(
                "the local runner's work directory {}/runner is inside the data directory {}",
                data.display(),
                data.display()
            )) && stderr.contains("--local-runner-dir"),
            "{stderr}"
        );
    }
}

/// A binary the runner's user cannot reach (built under a private home, say
/// `/root`): the server starts the runner from a copy of it that user can
/// run, and the runner registers.
#[test]
fn a_binary_beyond_the_runner_users_reach_runs_from_a_copy() {
    let as_root =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    if !as_root {
        eprintln!("note: not root; the runner runs as this user and needs no copy");
        return;
    }
    let private = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let binary = private.path().join("gantry");
    std::fs::copy(crate::harness::BIN, &binary).unwrap();
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("server.log");
    let port = crate::deploy_support::free_port();
    let mut child = std::process::Command::new(&binary)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(root.path().join("data"))
        .env_remove("GANTRY_LOCAL_RUNNER_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("gantry serve");
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !text().contains("runner registered") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = text();
    assert!(text.contains("it runs a copy"), "{text}");
    assert!(text.contains("runner registered runner=local"), "{text}");
    // Its default work directory, in the runner user's home, goes with the test.
    if let Some(dir) = text
        .lines()
        .find(|l| l.contains("local runner started"))
        .and_then(|l| l.split("work_dir=").nth(1))
    {
        let _ = std::fs::remove_dir_all(dir.trim());
    }
}

/// A rootless podman whose every process was killed while a container ran
/// (the runner, conmon, the pause process: a crash, the OOM killer, a
/// machine's processes stopped with its /tmp kept) still records that
/// container as running, and refuses every later command with "invalid
/// internal status". The local runner started again resets it (`podman
/// system migrate`, as podman's message says) and runs container steps,
/// instead of failing at every start while steps wait. Its own runner
/// user, so that no other test's podman is touched.
#[test]
fn a_local_runner_resets_a_rootless_podman_left_by_killed_processes() {
    const USER: &str = "gantry-test-podreset";
    crate::steps_podman::podman();
    let scripts = crate::steps_podman::scripts();
    let made = std::process::Command::new(scripts.join("add-runner-user"))
        .arg(USER)
        .output()
        .expect("scripts/add-runner-user");
    assert!(made.status.success(), "{made:?}");
    // A failed earlier run may have left the user's podman as this test
    // leaves it: reset it as `scripts/setup-podman` does before using it.
    let given = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "set -e; p='{}'; \"$p\" info >/dev/null 2>&1 || \"$p\" system migrate; \
             podman save '{}' | \"$p\" load --quiet",
            scripts.join("runner-podman").display(),
            crate::steps_podman::BASE,
        ))
        .env("GANTRY_LOCAL_RUNNER_USER", USER)
        .output()
        .expect("podman save | runner-podman load");
    assert!(given.status.success(), "{given:?}");
    let server = Server::start_with_env(&[("GANTRY_LOCAL_RUNNER_USER", USER)]);
    server.apply(&format!(
        r#"
pipelines:
  - name: hold
    stages:
      - id: build
        type: run
        onInterrupt: fail
        steps:
          - image: {base}
            script: sleep 86400
  - name: after
    stages:
      - id: again
        type: run
        steps:
          - image: {base}
            script: echo ran
"#,
        base = crate::steps_podman::BASE
    ));
    let held = server.run("hold", &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::process::Command::new("pgrep")
        .args(["-u", USER, "-f", "sleep 86400"])
        .status()
        .expect("pgrep")
        .success()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the container step never started:\n{}",
            server.log_tail()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let killed = std::process::Command::new("pkill")
        .args(["-9", "-u", USER])
        .status()
        .expect("pkill");
    assert!(killed.success(), "no process of {USER} to kill");
    let execution = server.wait_terminal(&held);
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let execution = server.wait_terminal(&server.run("after", &[]));
    assert_eq!(
        execution["status"],
        "succeeded",
        "{execution:#}\n{}",
        server.log_tail()
    );
    assert!(
        server
            .log_tail()
            .contains("resetting it (podman system migrate)"),
        "{}",
        server.log_tail()
    );
}

/// Two parallel stages of several steps each on the one local runner share
/// its copy of the workspace and come home at once, round after round:
/// every step finds what its stage wrote before, and every file both wrote
/// reaches the server's workspace.
#[test]
fn parallel_multi_step_stages_on_the_local_runner_keep_one_copy_of_the_workspace() {
    let server = Server::start(Backend::Sqlite);
    server.apply(
        r#"
pipelines:
  - name: lanes
    stages:
      - id: a
        type: run
        steps:
          - script: echo a1 > a1
          - script: sleep 0.6; echo a2 > a2; test -f a1
          - script: echo a3 > a3; test -f a2
      - id: b
        type: run
        steps:
          - script: sleep 0.2; echo b1 > b1
          - script: sleep 0.2; echo b2 > b2; test -f b1
          - script: sleep 0.2; echo b3 > b3; test -f b2
          - script: sleep 0.2; echo b4 > b4; test -f b3
      - id: join
        type: run
        dependsOn: [a, b]
        steps:
          - script: cat a1 a2 a3 b1 b2 b3 b4 | tr -d '\n' > all
"#,
    );
    for round in 0..3 {
        let id = server.run("lanes", &[]);
        let execution = server.wait_terminal(&id);
        assert_eq!(
            execution["status"], "succeeded",
            "round {round}: {execution:#}"
        );
        let workspace = server.data_dir().join("workspaces").join(&id);
        assert_eq!(
            std::fs::read_to_string(workspace.join("all")).unwrap(),
            "a1a2a3b1b2b3b4",
            "round {round}"
        );
    }
}
