//! What the deploy tests share: the test application's path, a gantry
//! file for one cluster behind one load balancer, and a load client that
//! checks every response, over keep-alive connections and new ones.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::harness::{BIN, Server};

/// `gantry-testapp`, built beside `gantry`: built once per test run, so
/// that a test never runs a stale copy (cargo does not rebuild it for the
/// `gantry` tests: it is no dependency of theirs).
pub fn testapp() -> PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let dir = PathBuf::from(BIN).parent().expect("bin dir").to_path_buf();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "-q", "-p", "gantry-testapp"]);
        if dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo build -p gantry-testapp");
        assert!(status.success(), "cannot build gantry-testapp");
    });
    dir.join("gantry-testapp")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A gantry file: application `shop`, cluster `shop-web` behind load
/// balancer `shop` on `port`, and one deploy pipeline per strategy
/// (`deploy-redblack`, …) taking `version`, `failHealth`, `errorPercent`,
/// `delayMs`.
pub fn shop_yaml(port: u16, extra_stage_fields: &str) -> String {
    let app = testapp();
    let mut pipelines = String::new();
    for (strategy, options) in [
        ("redblack", ""),
        ("highlander", ""),
        ("none", ""),
        ("rolling", "        targetPercentages: [50, 100]\n"),
        (
            "canary",
            "        steps:\n          - setWeight: 20\n          - analysis: {window: 3s, marginal: 50, pass: 100}\n          - setWeight: 50\n",
        ),
    ] {
        pipelines.push_str(&format!(
            r#"  - name: deploy-{strategy}
    parameters:
      - {{name: version, default: v1}}
      - {{name: failHealth, default: ""}}
      - {{name: errorPercent, default: "0"}}
      - {{name: delayMs, default: "0"}}
    stages:
      - id: deploy
        type: deploy
        application: shop
        stack: web
        command: {app}
        size: 2
        strategy: {strategy}
        healthTimeout: 6s
        gracePeriod: 2s
        env:
          VERSION: "${{{{ parameters.version }}}}"
          FAIL_HEALTH: "${{{{ parameters.failHealth }}}}"
          ERROR_PERCENT: "${{{{ parameters.errorPercent }}}}"
          DELAY_MS: "${{{{ parameters.delayMs }}}}"
{options}{extra_stage_fields}"#,
            app = app.display()
        ));
    }
    format!(
        r#"applications:
  - name: shop
    description: the test shop
loadBalancers:
  - name: shop
    port: {port}
    cluster: shop-web
    healthCheck: {{path: /health, interval: 200ms, timeout: 1s, healthyThreshold: 2, unhealthyThreshold: 2}}
pipelines:
{pipelines}"#
    )
}

/// The start of a gantry file: application `shop` and load balancer `shop`
/// on `port` in front of cluster `shop-web`, up to `pipelines:`.
pub fn shop_cluster_yaml(port: u16) -> String {
    format!(
        r#"applications:
  - name: shop
loadBalancers:
  - name: shop
    port: {port}
    cluster: shop-web
    healthCheck: {{path: /health, interval: 200ms, timeout: 1s, healthyThreshold: 2, unhealthyThreshold: 2}}
pipelines:
"#
    )
}

/// A pipeline `name` whose one stage `deploy` deploys to cluster
/// `shop-web`; `parameters` and `fields` are YAML lines, unindented, of the
/// pipeline's parameters and of the stage.
pub fn shop_pipeline(name: &str, parameters: &[&str], fields: &str) -> String {
    let mut text = format!("  - name: {name}\n");
    if !parameters.is_empty() {
        text.push_str("    parameters:\n");
        for parameter in parameters {
            text.push_str(&format!("      - {parameter}\n"));
        }
    }
    text.push_str(
        "    stages:\n      - id: deploy\n        type: deploy\n        application: shop\n        stack: web\n        healthTimeout: 30s\n        gracePeriod: 1s\n",
    );
    for line in fields.lines() {
        text.push_str(&format!("        {line}\n"));
    }
    text
}

/// Runs a deploy pipeline to its end; returns the execution.
pub fn deploy(server: &Server, strategy: &str, params: &[&str]) -> serde_json::Value {
    let id = server.run(&format!("deploy-{strategy}"), params);
    server.wait_terminal(&id)
}

/// What the load client saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub sent: u64,
    pub failed: u64,
    /// The first few failures, for the assertion message.
    pub failures: Vec<String>,
    /// Responses by the version that answered.
    pub versions: BTreeMap<String, u64>,
    /// Responses by the port of the instance that answered.
    pub ports: BTreeMap<u16, u64>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.sent += other.sent;
        self.failed += other.failed;
        self.failures.extend(other.failures.into_iter().take(10));
        for (version, n) in other.versions {
            *self.versions.entry(version).or_default() += n;
        }
        for (port, n) in other.ports {
            *self.ports.entry(port).or_default() += n;
        }
    }

    fn fail(&mut self, what: String) {
        self.failed += 1;
        if self.failures.len() < 10 {
            self.failures.push(what);
        }
    }
}

/// Concurrent load on a load balancer: `keep_alive` workers reuse one
/// connection each, `fresh` workers open a new one per request.
pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<Tally>>,
}

impl Load {
    pub fn start(port: u16, keep_alive: usize, fresh: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for i in 0..keep_alive + fresh {
            let stop = stop.clone();
            let reuse = i < keep_alive;
            workers.push(std::thread::spawn(move || worker(port, reuse, &stop)));
        }
        Load { stop, workers }
    }

    pub fn finish(self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        let mut tally = Tally::default();
        for worker in self.workers {
            tally.merge(worker.join().expect("load worker"));
        }
        tally
    }
}

fn worker(port: u16, reuse: bool, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let mut connection: Option<BufReader<TcpStream>> = None;
    while !stop.load(Ordering::SeqCst) {
        tally.sent += 1;
        if connection.is_none() {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    connection = Some(BufReader::new(stream));
                }
                Err(e) => {
                    tally.fail(format!("connect: {e}"));
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            }
        }
        let reader = connection.as_mut().expect("connected");
        match exchange(reader, reuse) {
            Ok((200, body)) => {
                let mut words = body.split_whitespace();
                let version = words.next().unwrap_or("").to_owned();
                *tally.versions.entry(version).or_default() += 1;
                if let Some(port) = words.next().and_then(|p| p.parse().ok()) {
                    *tally.ports.entry(port).or_default() += 1;
                }
            }
            Ok((status, body)) => tally.fail(format!("status {status}: {}", body.trim())),
            Err(e) => {
                tally.fail(format!(
                    "io ({}): {e}",
                    if reuse {
                        "keep-alive"
                    } else {
                        "new connection"
                    }
                ));
                connection = None;
            }
        }
        if !reuse {
            connection = None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    tally
}

/// One `GET /` and its answer (status, body).
pub fn exchange(reader: &mut BufReader<TcpStream>, reuse: bool) -> std::io::Result<(u16, String)> {
    let close = if reuse { "" } else { "Connection: close\r\n" };
    let request = format!("GET / HTTP/1.1\r\nHost: shop.test\r\n{close}\r\n");
    reader.get_mut().write_all(request.as_bytes())?;
    let mut status_line = String::new();
    if reader.read_line(&mut status_line)? == 0 {
        return Err(std::io::Error::other("connection closed before the answer"));
    }
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A plain `GET path` on the load balancer, on a new connection.
pub fn get(port: u16, path: &str) -> (u16, String) {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut reader = BufReader::new(stream);
    let request = format!("GET {path} HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n");
    reader
        .get_mut()
        .write_all(request.as_bytes())
        .expect("write");
    let mut text = String::new();
    let _ = reader.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Load for `duration`, checking it ends with zero failures.
pub fn assert_clean(tally: &Tally, what: &str) {
    eprintln!(
        "{what}: {} requests sent, {} failed, by version {:?}",
        tally.sent, tally.failed, tally.versions
    );
    assert!(
        tally.sent > 50,
        "{what}: too little load to tell ({} requests)",
        tally.sent
    );
    assert_eq!(
        tally.failed, 0,
        "{what}: failed requests: {:#?}",
        tally.failures
    );
}
