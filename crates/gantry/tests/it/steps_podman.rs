//! What the step tests share: the real podman (configured, with the local
//! base image) and the real registry, set up by the same scripts CI runs.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The local base image scripts/setup-podman builds (busybox).
pub const BASE: &str = "localhost/gantry-test-base:latest";

pub(crate) fn scripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

/// Runs scripts/setup-podman once per test binary (it is idempotent and
/// fast when already done).
pub fn podman() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let status = Command::new(scripts().join("setup-podman"))
            .status()
            .expect("run scripts/setup-podman");
        assert!(status.success(), "scripts/setup-podman failed");
    });
}

/// podman as the local runner's user (`scripts/runner-podman`): the
/// container storage its steps see, apart from root's.
pub fn runner_podman(args: &[&str]) -> std::process::Output {
    runner_podman_command()
        .args(args)
        .output()
        .expect("podman as gantry-runner")
}

/// A `podman` command that runs as the local runner's user, with its home
/// (as `scripts/runner-podman`, but the process is podman itself, so that a
/// test can kill it).
pub fn runner_podman_command() -> Command {
    use std::os::unix::process::CommandExt;
    let (uid, gid, home) = runner_account();
    let mut command = Command::new("podman");
    command
        .uid(uid)
        .gid(gid)
        .current_dir(&home)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &home)
        .env("USER", "gantry-runner");
    command
}

/// The local runner user's uid, gid and home (`scripts/setup-podman` makes it).
pub fn runner_account() -> (u32, u32, PathBuf) {
    podman();
    let out = Command::new("getent")
        .args(["passwd", "gantry-runner"])
        .output()
        .expect("getent");
    let entry = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let fields: Vec<&str> = entry.split(':').collect();
    assert!(fields.len() >= 6, "no gantry-runner user: {entry:?}");
    (
        fields[2].parse().expect("uid"),
        fields[3].parse().expect("gid"),
        PathBuf::from(fields[5]),
    )
}

/// Puts `image`, which root's podman holds, in the local runner's storage,
/// as an administrator hands an image to it.
pub fn give_to_local_runner(image: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "podman save '{image}' | '{}' load --quiet",
            scripts().join("runner-podman").display()
        ))
        .output()
        .expect("podman save | runner-podman load");
    assert!(
        out.status.success(),
        "giving {image} to the local runner: {out:?}"
    );
}

/// The loopback registry's `127.0.0.1:PORT`: `GANTRY_TEST_REGISTRY`, or the
/// one scripts/start-registry starts (or finds running).
pub fn registry() -> String {
    static ADDRESS: OnceLock<String> = OnceLock::new();
    ADDRESS
        .get_or_init(|| started("GANTRY_TEST_REGISTRY", "start-registry"))
        .clone()
}

/// The account of the registry scripts/start-auth-registry starts.
pub const AUTH_USER: &str = "gantry-test";
pub const AUTH_PASSWORD: &str = "registry-pw-5c1e9a";

/// The `127.0.0.1:PORT` of the loopback registry that asks for credentials
/// (htpasswd): `GANTRY_TEST_AUTH_REGISTRY`, or the one
/// scripts/start-auth-registry starts (or finds running).
pub fn auth_registry() -> String {
    static ADDRESS: OnceLock<String> = OnceLock::new();
    ADDRESS
        .get_or_init(|| started("GANTRY_TEST_AUTH_REGISTRY", "start-auth-registry"))
        .clone()
}

/// The address in `variable` (scripts/test sets it), else what `script`
/// prints (the only thing it prints on stdout).
fn started(variable: &str, script: &str) -> String {
    if let Ok(address) = std::env::var(variable) {
        return address;
    }
    let out = Command::new(scripts().join(script))
        .output()
        .unwrap_or_else(|e| panic!("run scripts/{script}: {e}"));
    assert!(
        out.status.success(),
        "scripts/{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `gantry secret set NAME` with `value` on stdin (never on a command line).
pub fn set_secret(server: &crate::harness::Server, name: &str, value: &str) {
    let input = server.write_file(&format!("{name}.secret"), value);
    server
        .cli_with(&["secret", "set", name], |command| {
            command.stdin(std::fs::File::open(&input).unwrap());
        })
        .ok();
    std::fs::remove_file(&input).unwrap();
}

/// Names of the containers (running or not) of an execution.
pub fn containers_of(execution: &str) -> Vec<String> {
    listed(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=io.gantry.execution={execution}"),
        "--format",
        "{{.Names}}",
    ])
}

/// Names of the volumes of an execution.
pub fn volumes_of(execution: &str) -> Vec<String> {
    listed(&[
        "volume",
        "ls",
        "--filter",
        &format!("label=io.gantry.execution={execution}"),
        "--format",
        "{{.Name}}",
    ])
}

/// What root's podman (`gantry build`, remote runners of the tests) and the
/// local runner's (a server's steps without `runsOn`) list together.
fn listed(args: &[&str]) -> Vec<String> {
    let root = Command::new("podman").args(args).output().expect("podman");
    assert!(root.status.success(), "podman {args:?}: {root:?}");
    let runner = runner_podman(args);
    assert!(
        runner.status.success(),
        "runner-podman {args:?}: {runner:?}"
    );
    [root, runner]
        .iter()
        .flat_map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .into_owned()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.is_empty())
        .collect()
}

/// The tags of `repository` in the test registry.
pub fn registry_tags(repository: &str) -> Vec<String> {
    let url = format!("http://{}/v2/{repository}/tags/list", registry());
    let body: serde_json::Value = reqwest::blocking::get(&url)
        .and_then(|r| r.json())
        .unwrap_or_default();
    body["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect()
}

/// Every log line of an execution as text.
/// The execution's log once it holds `text` (log lines reach the store in
/// batches, a moment after the output and possibly after the execution ended);
/// fails after `limit` with the log as it is.
pub fn wait_log_text(
    server: &crate::harness::Server,
    id: &str,
    text: &str,
    limit: std::time::Duration,
) -> String {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let log = log_text(server, id);
        if log.contains(text) {
            return log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{text:?} not in the log within {limit:?}:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

pub fn log_text(server: &crate::harness::Server, id: &str) -> String {
    server
        .logs(id)
        .iter()
        .map(|l| l["line"].as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}
