//! A `gantry runner` agent as a real process for the tests: started against a test
//! server with its own work directory and labels, killed or restarted by the test, and
//! stopped when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{BIN, NetNs, Server};

/// A `gantry runner` process and its work directory.
pub(crate) struct Runner {
    pub(crate) name: String,
    pub(crate) labels: String,
    pub(crate) dir: PathBuf,
    child: Option<Child>,
    pub(crate) url: String,
    token: String,
    extra: Vec<String>,
    /// The network namespace it runs in, if not this machine's.
    netns: Option<String>,
}

impl Runner {
    pub(crate) fn start(server: &Server, token: &str, name: &str, labels: &str) -> Runner {
        Runner::start_with(server, token, name, labels, &[])
    }

    /// A runner started with `extra` arguments too.
    pub(crate) fn start_with(
        server: &Server,
        token: &str,
        name: &str,
        labels: &str,
        extra: &[&str],
    ) -> Runner {
        let mut runner = Runner::new(server, token, name, labels, extra);
        runner.spawn();
        runner
    }

    fn new(server: &Server, token: &str, name: &str, labels: &str, extra: &[&str]) -> Runner {
        // Beside the server's work directory, not in it: a runner's
        // Landlock rules keep its steps out of its work directory and so
        // off the files directly in that directory's parent.
        let dir = server
            .work()
            .parent()
            .expect("the work directory has a parent")
            .join(format!("runner-{name}"));
        Runner {
            name: name.into(),
            labels: labels.into(),
            dir,
            child: None,
            url: server.url.clone(),
            token: token.into(),
            extra: extra.iter().map(|a| a.to_string()).collect(),
            netns: None,
        }
    }

    /// A runner inside `net`'s namespace: it reaches the server (which must
    /// listen on `net.host_ip`) only through the veth pair.
    pub(crate) fn start_inside(
        net: &NetNs,
        server: &Server,
        token: &str,
        name: &str,
        labels: &str,
    ) -> Runner {
        let mut runner = Runner::new(server, token, name, labels, &[]);
        runner.netns = Some(net.name.clone());
        runner.spawn();
        runner
    }

    pub(crate) fn spawn(&mut self) {
        std::fs::create_dir_all(&self.dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("agent.log"))
            .unwrap();
        let mut command = match &self.netns {
            Some(name) => NetNs::command_in(name, BIN),
            None => Command::new(BIN),
        };
        let child = command
            .args([
                "runner",
                "--url",
                &self.url,
                "--token",
                &self.token,
                "--name",
                &self.name,
            ])
            .args(["--labels", &self.labels, "--capacity", "2", "--work-dir"])
            .arg(&self.dir)
            .args(&self.extra)
            .env("RUST_LOG", "info")
            .env_remove("GANTRY_TOKEN")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start gantry runner");
        self.child = Some(child);
    }

    pub(crate) fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// The runner process's resident memory, in KiB (`VmRSS`).
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    /// Waits for the agent to exit by itself; its status.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the runner did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.kill9();
    }
}
