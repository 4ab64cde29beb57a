//! What the fleet tests share: the test hosts `scripts/start-test-hosts`
//! started (read from `GANTRY_TEST_HOSTS`), taken by one test at a time
//! and wiped first (every process of each host user killed, its agent
//! directory removed), and a `hosts:` file for them.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::deploy_support::{Load, Tally};
use crate::harness::Server;

/// One test host, as `hosts.json` describes it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestHost {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    pub home: PathBuf,
    /// The host's own root filesystem on this machine (its sshd chroots
    /// the host user's sessions there).
    pub root: PathBuf,
    /// The client's private key file.
    pub key: PathBuf,
    pub host_key: String,
}

/// The test hosts, held for one test (an exclusive lock on their file):
/// the agents and ports of a host belong to one test at a time.
pub struct TestHosts {
    pub hosts: Vec<TestHost>,
    /// Where `scripts/start-test-hosts` keeps them.
    dir: PathBuf,
    _lock: gantry_unix::FileLock,
}

impl TestHosts {
    /// The hosts, wiped; `None` with a note when `GANTRY_TEST_HOSTS` is not
    /// set (run `scripts/start-test-hosts` and export what it prints).
    pub fn take() -> Option<TestHosts> {
        let Ok(path) = std::env::var("GANTRY_TEST_HOSTS") else {
            eprintln!(
                "note: GANTRY_TEST_HOSTS is not set (scripts/start-test-hosts prints it); the fleet test did not run"
            );
            return None;
        };
        let text = std::fs::read_to_string(&path).expect("read GANTRY_TEST_HOSTS");
        let hosts: Vec<TestHost> = serde_json::from_str(&text).expect("parse GANTRY_TEST_HOSTS");
        assert!(hosts.len() >= 3, "the fleet tests need 3 hosts: {path}");
        // Beside the hosts file, so every test of every run on this
        // machine takes the same lock.
        let lock = gantry_unix::FileLock::wait(&PathBuf::from(format!("{path}.lock")))
            .expect("lock the test hosts");
        let dir = Path::new(&path)
            .parent()
            .expect("the hosts directory")
            .to_owned();
        let taken = TestHosts {
            hosts,
            dir,
            _lock: lock,
        };
        for host in &taken.hosts {
            host.wipe();
        }
        // A test that failed half way may have left a host's sshd stopped.
        taken.restart_sshd();
        Some(taken)
    }

    /// Starts again any sshd that is not running (`scripts/start-test-hosts`
    /// is idempotent).
    pub fn restart_sshd(&self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/start-test-hosts");
        let status = Command::new(script)
            .arg(self.hosts.len().to_string())
            .env("GANTRY_TEST_HOSTS_DIR", &self.dir)
            .stdout(Stdio::null())
            .status()
            .expect("run scripts/start-test-hosts");
        assert!(status.success(), "scripts/start-test-hosts failed");
    }

    /// A `hosts:` list of every host, its key in secret `key_secret`.
    pub fn yaml(&self, key_secret: &str) -> String {
        let mut yaml = String::from("hosts:\n");
        for host in &self.hosts {
            yaml.push_str(&host.yaml_entry(key_secret, &host.host_key));
        }
        yaml
    }

    /// Has the server bootstrap every host (`gantry host bootstrap`).
    pub fn bootstrap_all(&self, server: &Server) {
        for host in &self.hosts {
            server.cli(&["host", "bootstrap", &host.name]).ok();
        }
    }

    /// Stores the client key as secret `name` on the server.
    pub fn store_key(&self, server: &Server, name: &str) {
        let key = self.hosts[0].key.clone();
        server
            .cli_with(&["secret", "set", name], |command| {
                command.stdin(File::open(&key).expect("open the client key"));
            })
            .ok();
    }
}

impl TestHost {
    pub fn yaml_entry(&self, key_secret: &str, host_key: &str) -> String {
        format!(
            "  - name: {}\n    address: {}\n    port: {}\n    user: {}\n    key: {key_secret}\n    hostKey: {host_key}\n    labels: [web]\n",
            self.name, self.address, self.port, self.user
        )
    }

    /// Runs a program as root in the host's own root (its dpkg database,
    /// its files) and returns its standard output.
    pub fn in_root(&self, program: &[&str]) -> String {
        let output = Command::new("chroot")
            .arg(&self.root)
            .args(program)
            .stderr(Stdio::inherit())
            .output()
            .expect("run chroot");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The version of `package` dpkg shows installed on the host ("" when
    /// it is not fully installed).
    pub fn installed(&self, package: &str) -> String {
        self.in_root(&[
            "dpkg-query",
            "-W",
            "-f=${db:Status-Abbrev}${Version}",
            package,
        ])
        .strip_prefix("ii ")
        .unwrap_or_default()
        .to_owned()
    }

    /// Removes packages a test installed on the host, and what an install
    /// cut short could have left.
    pub fn purge(&self, packages: &[&str]) {
        let mut command = vec!["dpkg", "--purge"];
        command.extend_from_slice(packages);
        self.in_root(&command);
        let _ = std::fs::remove_file(self.root.join("etc/apt/sources.list.d/gantry-server.list"));
    }

    /// Stops the host's sshd: it no longer answers SSH at all.
    pub fn stop_sshd(&self) {
        let dir = Path::new(&self.key)
            .parent()
            .and_then(Path::parent)
            .expect("the hosts directory")
            .join(&self.name);
        if let Ok(pid) = std::fs::read_to_string(dir.join("sshd.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }

    /// Kills every process of the host's user, removes its agent and the
    /// containers its instances ran as (root's, so no `pkill` reaches them).
    pub fn wipe(&self) {
        self.kill_everything();
        let _ = std::fs::remove_dir_all(self.home.join(".gantry"));
        if self.root.join("usr/bin/podman").exists() {
            self.in_root(&["podman", "rm", "--all", "--force", "--time", "0"]);
        }
    }

    /// `kill -9` of every process of the host (its user's).
    pub fn kill_everything(&self) {
        let _ = Command::new("pkill")
            .args(["-9", "-u", &self.user])
            .stderr(Stdio::null())
            .status();
        // pkill returns before the kernel has reaped them all.
        for _ in 0..100 {
            let alive = Command::new("pgrep")
                .args(["-u", &self.user])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !alive {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Runs `work` while a client checking every response loads `port` (four
/// keep-alive and two fresh-connection workers, from half a second before
/// to half a second after), and returns what `work` returned with the
/// load's tally.
pub fn under_load<T>(port: u16, work: impl FnOnce() -> T) -> (T, Tally) {
    let load = Load::start(port, 4, 2);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let result = work();
    std::thread::sleep(std::time::Duration::from_millis(500));
    (result, load.finish())
}
