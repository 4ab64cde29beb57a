//! The API's listener under hostile or careless clients (issue 12, items 1,
//! 3 and 4): many idle connections from one address, idle and slow
//! connections, slow webhook senders, and large uploads. Real sockets
//! against the real `gantry serve`, on loopback only; the full sizes run
//! under `GANTRY_TEST_SLOW=1`.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::Server;

const OTHER_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

const PIPELINE: &str = r#"
pipelines:
  - name: meanwhile
    stages:
      - id: work
        type: run
        steps:
          - script: echo still working
"#;

fn slow() -> bool {
    std::env::var_os("GANTRY_TEST_SLOW").is_some_and(|v| v == "1")
}

fn address(server: &Server) -> SocketAddr {
    server
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("the server's address")
}

/// A client whose connections come from 127.0.0.2.
fn other_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(OTHER_CLIENT)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// The `gantry serve` process of `server`, found by its data directory.
fn server_pid(server: &Server) -> u32 {
    let data_dir = server.data_dir();
    let needle = data_dir.to_str().expect("utf-8 path");
    for entry in std::fs::read_dir("/proc").expect("/proc") {
        let entry = entry.expect("/proc entry");
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "serve") && args.iter().any(|a| a == needle) {
            return pid;
        }
    }
    panic!("no gantry serve process for {needle}");
}

/// Resident memory of a process, in bytes (`VmRSS`).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in kB");
    kib * 1024
}

const MIB: u64 = 1 << 20;

/// Samples a process's `VmRSS` every 20 ms from a thread of its own until
/// stopped; the highest value seen.
struct PeakSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl PeakSampler {
    fn start(pid: u32) -> PeakSampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = rss(pid);
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss(pid));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak.max(rss(pid))
        });
        PeakSampler { stop, thread }
    }

    fn peak(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("sampler thread")
    }
}

/// Waits up to `limit` for the server's memory to come back under
/// `bound`; what it was last.
fn settle_under(pid: u32, bound: u64, limit: Duration) -> u64 {
    let deadline = Instant::now() + limit;
    loop {
        let now = rss(pid);
        if now < bound || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

/// Raises this process's descriptor limit to `wanted`, the hard limit
/// too where the process may (root may); else the soft limit to the hard
/// one. The limit reached.
fn raise_own_fd_limit(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        let raised = libc::rlimit {
            rlim_cur: wanted.max(limit.rlim_max),
            rlim_max: wanted.max(limit.rlim_max),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return raised.rlim_cur;
        }
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    limit.rlim_cur
}

/// Whether the server closed (or refused) the connection: it reads end of
/// stream, an answer it did not ask for, or a reset.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 512];
    let closed = match stream.read(&mut buf) {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    };
    stream.set_nonblocking(false).expect("blocking");
    closed
}

/// Waits until the server closes `stream`; how long that took, or `None`
/// within `limit`.
fn time_to_close(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    stream.set_read_timeout(Some(limit)).expect("read timeout");
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None;
            }
            Err(_) => return Some(start.elapsed()),
        }
    }
}

fn percentile(mut samples: Vec<Duration>, p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
    samples[index]
}

#[test]
fn idle_connections_from_one_address_leave_the_api_to_everyone_else() {
    let (connections, per_address, total) = if slow() {
        (20_000, 5_000, 8_000)
    } else {
        (2_000, 500, 800)
    };
    // The connections are this process's descriptors: where the hard limit
    // is their number itself (20,000 here), it keeps 1,000 for its own work.
    let own_limit = raise_own_fd_limit(connections as u64 + 1024);
    let connections = connections.min(own_limit.saturating_sub(1000) as usize);
    assert!(
        connections > per_address,
        "this test needs more than {per_address} descriptors; the limit is {own_limit}"
    );
    let server = Server::start_with_env(&[
        ("GANTRY_MAX_CONNECTIONS", &total.to_string()),
        (
            "GANTRY_MAX_CONNECTIONS_PER_ADDRESS",
            &per_address.to_string(),
        ),
    ]);
    server.apply(PIPELINE);
    let address = address(&server);
    let pid = server_pid(&server);
    let before = rss(pid);
    let sampler = PeakSampler::start(pid);

    let mut idle = Vec::with_capacity(connections);
    for _ in 0..connections {
        match TcpStream::connect_timeout(&address, Duration::from_secs(5)) {
            Ok(stream) => idle.push(stream),
            // The backlog is full while the server refuses: that is a
            // refusal too.
            Err(_) => continue,
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    let mut held = 0;
    for stream in &mut idle {
        if !closed_by_server(stream) {
            held += 1;
        }
    }
    assert!(
        held <= per_address,
        "the server holds {held} connections from one address, above its cap of {per_address}"
    );

    // Everyone else is still served, quickly.
    let client = other_client();
    let mut latencies = Vec::new();
    for _ in 0..100 {
        let start = Instant::now();
        let response = client
            .get(format!("{}/api/v1/pipelines", server.url))
            .bearer_auth(&server.token)
            .send()
            .unwrap_or_else(|e| panic!("a request from another address failed: {e}"));
        assert_eq!(response.status(), 200);
        latencies.push(start.elapsed());
    }
    let p99 = percentile(latencies, 0.99);
    eprintln!(
        "figure: {connections} idle connections from one address: {held} held, p99 of 100 requests from another address {:.1} ms",
        p99.as_secs_f64() * 1000.0
    );
    assert!(
        p99 < Duration::from_millis(100),
        "p99 of requests from another address is {p99:?}"
    );

    // And a step started meanwhile runs.
    let started: Value = client
        .post(format!(
            "{}/api/v1/pipelines/meanwhile/executions",
            server.url
        ))
        .bearer_auth(&server.token)
        .json(&json!({}))
        .send()
        .expect("start an execution")
        .json()
        .expect("an execution");
    let id = started["id"].as_str().expect("an execution id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let execution: Value = client
            .get(format!("{}/api/v1/executions/{id}", server.url))
            .bearer_auth(&server.token)
            .send()
            .expect("read the execution")
            .json()
            .expect("an execution");
        match execution["status"].as_str() {
            Some("succeeded") => break,
            Some("failed" | "cancelled") => panic!(
                "the step failed while connections were held: {execution}\n{}",
                server.log_tail()
            ),
            _ if Instant::now() > deadline => panic!("the execution did not finish: {execution}"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    let during = rss(pid);
    drop(idle);

    // The memory the connections took comes back once they are gone.
    let after = settle_under(pid, before + 20 * MIB, Duration::from_secs(10));
    let peak = sampler.peak();
    eprintln!(
        "figure: {connections} idle connections from one address: server VmRSS before {:.1} MiB, during {:.1} MiB (peak {:.1} MiB), after {:.1} MiB",
        mib(before),
        mib(during),
        mib(peak),
        mib(after)
    );
    assert!(
        after < before + 20 * MIB,
        "the server kept {:.1} MiB after the connections closed",
        mib(after.saturating_sub(before))
    );
}

#[test]
fn an_idle_connection_is_closed_after_the_keep_alive_timeout() {
    let server = Server::start_with_env(&[("GANTRY_KEEP_ALIVE_TIMEOUT", "2s")]);
    let mut stream = TcpStream::connect(address(&server)).expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gantry\r\n\r\n")
        .expect("send a request");
    let mut answer = [0u8; 1024];
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let read = stream.read(&mut answer).expect("the answer");
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));

    let closed = time_to_close(&mut stream, Duration::from_secs(10));
    let closed = closed.expect("the idle connection was still open after 10 s");
    assert!(
        closed >= Duration::from_millis(1500),
        "closed after {closed:?}, before the keep-alive timeout"
    );
}

#[test]
fn a_slow_header_is_cut_off_after_the_header_timeout() {
    let server = Server::start_with_env(&[
        ("GANTRY_HEADER_TIMEOUT", "2s"),
        ("GANTRY_KEEP_ALIVE_TIMEOUT", "30s"),
    ]);
    let mut stream = TcpStream::connect(address(&server)).expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gantry\r\n")
        .expect("start a request");
    let start = Instant::now();
    // One byte of a header every half second: never a whole head.
    let mut cut = false;
    while start.elapsed() < Duration::from_secs(10) {
        if stream.write_all(b"X").is_err() || closed_by_server(&mut stream) {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        cut,
        "a head sent one byte at a time was still read after 10 s"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn slow_webhook_senders_stay_within_the_memory_budget() {
    let senders = 300;
    let server = Server::start_with_env(&[("GANTRY_UNAUTHENTICATED_BODY_TIMEOUT", "30s")]);
    let pid = server_pid(&server);
    let address = address(&server);
    let before = rss(pid);
    let sampler = PeakSampler::start(pid);

    // Each sender announces 2 MiB and sends all of it but the last byte.
    let body_size: usize = 2 << 20;
    let mut threads = Vec::new();
    for _ in 0..senders {
        threads.push(std::thread::spawn(move || -> Option<TcpStream> {
            let mut stream = TcpStream::connect(address).ok()?;
            let head = format!(
                "POST /webhooks/github HTTP/1.1\r\nHost: gantry\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nContent-Length: {body_size}\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).ok()?;
            stream
                .set_write_timeout(Some(Duration::from_secs(5)))
                .ok()?;
            let piece = vec![b' '; 64 << 10];
            let mut sent = 0;
            while sent + piece.len() < body_size {
                if stream.write_all(&piece).is_err() {
                    return Some(stream);
                }
                sent += piece.len();
            }
            let _ = stream.write_all(&piece[..body_size - sent - 1]);
            Some(stream)
        }));
    }
    let streams: Vec<TcpStream> = threads
        .into_iter()
        .filter_map(|t| t.join().expect("sender thread"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let during = rss(pid);

    // A delivery arriving now finds the budget spent, and is told so.
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
        .post(format!("{}/webhooks/github", server.url))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .body(vec![b' '; body_size])
        .send()
        .expect("a late delivery");
    // Whether it fits depends on how the budget is split; when it does
    // not, the refusal says why and when to come back.
    if response.status() == 503 {
        assert!(response.headers().contains_key("retry-after"));
        let text = response.text().expect("the answer");
        assert!(text.contains("budget"), "{text}");
    }
    let (_, metrics) = server.api("GET", "/metrics", None);
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("gantry_unauthenticated_bodies_refused_total")
                && l.contains("budget")
        ),
        "no sender was refused for the budget:\n{metrics}"
    );
    drop(streams);

    let grown = during.saturating_sub(before);
    assert!(
        grown < 50 * MIB,
        "{senders} slow webhook senders grew the server by {} MiB",
        grown / MIB
    );

    // The memory comes back once they are gone.
    let after = settle_under(pid, before + 20 * MIB, Duration::from_secs(10));
    let peak = sampler.peak();
    eprintln!(
        "figure: {senders} slow webhook senders: server VmRSS before {:.1} MiB, during {:.1} MiB (peak {:.1} MiB), after {:.1} MiB",
        mib(before),
        mib(during),
        mib(peak),
        mib(after)
    );
    assert!(
        after < before + 20 * MIB,
        "the server kept {:.1} MiB after the senders left",
        mib(after.saturating_sub(before))
    );
}

fn create_repo(server: &Server, name: &str) {
    let (status, answer) = server.api("POST", "/api/v1/apt/repos", Some(json!({ "name": name })));
    assert_eq!(status, 201, "{answer}");
}

/// Sends `body` as a single-file package upload to `repo`; the answer's
/// status and text.
fn upload(
    server: &Server,
    repo: &str,
    query: &str,
    body: reqwest::blocking::Body,
) -> (u16, String) {
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(1800))
        .build()
        .expect("client")
        .post(format!(
            "{}/api/v1/apt/repos/{repo}/packages{query}",
            server.url
        ))
        .bearer_auth(&server.token)
        .header("content-type", "application/vnd.debian.binary-package")
        .body(body)
        .send()
        .expect("upload");
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

/// Runs `work` while sampling the server's memory every 20 ms; what it
/// returned, and the server's memory before (idle) and at its highest.
fn sampling<T: Send>(server: &Server, work: impl FnOnce() -> T + Send) -> (T, u64, u64) {
    let pid = server_pid(server);
    let idle = rss(pid);
    let sampler = PeakSampler::start(pid);
    let result = std::thread::scope(|scope| scope.spawn(work).join().expect("the work"));
    (result, idle, sampler.peak())
}

fn uploads_left(data_dir: &Path) -> usize {
    std::fs::read_dir(data_dir.join("apt/uploads"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

#[test]
fn a_large_upload_streams_to_disk_without_growing_the_server() {
    let size = if slow() { 1 << 30 } else { 256 * MIB };
    let server = Server::start_with_env(&[]);
    create_repo(&server, "big");
    let body = reqwest::blocking::Body::sized(std::io::repeat(b'x').take(size), size);
    let ((status, text), idle, peak) = sampling(&server, || upload(&server, "big", "", body));
    // The bytes are no package: refused once checked, after all of them
    // went to disk.
    assert_eq!(status, 400, "{text}");
    assert!(
        peak < idle + 64 * MIB,
        "a {} MiB upload took the server from {} MiB to {} MiB",
        size / MIB,
        idle / MIB,
        peak / MIB
    );
    assert_eq!(
        uploads_left(&server.data_dir()),
        0,
        "the upload's file was left behind"
    );
}

#[test]
fn an_upload_over_the_limit_is_refused_with_413() {
    let server = Server::start_with_env(&[("GANTRY_UPLOAD_LIMIT", "1MiB")]);
    create_repo(&server, "small");
    // The refusal comes before the body is sent: announce it, then read.
    let mut stream = TcpStream::connect(address(&server)).expect("connect");
    let head = format!(
        "POST /api/v1/apt/repos/small/packages HTTP/1.1\r\nHost: gantry\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
        server.token,
        2 * MIB
    );
    stream.write_all(head.as_bytes()).expect("send the head");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut answer = vec![0u8; 4096];
    let read = stream.read(&mut answer).expect("the answer");
    let text = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.contains("1048576"),
        "the refusal names the limit: {text}"
    );
    assert_eq!(
        uploads_left(&server.data_dir()),
        0,
        "the upload's file was left behind"
    );
}

/// Builds, with `gantry deb build`, a package `huge` whose one file holds
/// `size` bytes that do not compress (from a seeded generator, cheap to
/// make), stored uncompressed: a package file a little over `size` bytes.
fn large_package(server: &Server, size: u64) -> std::path::PathBuf {
    let root = server.work().join("huge-root");
    std::fs::create_dir_all(root.join("opt/huge")).expect("package root");
    let mut out = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(root.join("opt/huge/blob")).expect("blob"),
    );
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            // xorshift64: fast, and nothing deflate could shrink.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let take = left.min(block.len() as u64) as usize;
        out.write_all(&block[..take]).expect("write the blob");
        left -= take as u64;
    }
    out.flush().expect("flush the blob");
    drop(out);
    let deb = server.work().join("huge_1.0_all.deb");
    let root_arg = root.display().to_string();
    let deb_arg = deb.display().to_string();
    let args = [
        "deb",
        "build",
        root_arg.as_str(),
        "--name",
        "huge",
        "--version",
        "1.0",
        "--compression",
        "none",
        "-o",
        deb_arg.as_str(),
    ];
    crate::harness::wait_output(server.cli_spawn(&args), &args, Duration::from_secs(900)).ok();
    std::fs::remove_dir_all(&root).expect("remove the package root");
    deb
}

/// A file's SHA-256 by `sha256sum` (the test binary's own is slow on a
/// gigabyte unoptimised).
fn sha256sum(path: &Path) -> String {
    let output = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_owned()
}

/// The repository's packages as `gantry apt repo show --with-packages`
/// lists them.
fn listed_packages(server: &Server, repo: &str) -> String {
    server
        .cli(&["apt", "repo", "show", "--with-packages", repo])
        .ok()
        .stdout
}

#[test]
fn a_large_package_upload_is_checked_and_stored_in_bounded_memory() {
    let size = if slow() { 1 << 30 } else { 256 * MIB };
    let server = Server::start_with_env(&[]);
    create_repo(&server, "big");
    let deb = large_package(&server, size);
    let length = std::fs::metadata(&deb).expect("the package").len();

    let started = Instant::now();
    let ((status, text), idle, peak) = sampling(&server, || {
        let file = std::fs::File::open(&deb).expect("the package");
        let body = reqwest::blocking::Body::sized(file, length);
        upload(&server, "big", "?filename=huge_1.0_all.deb", body)
    });
    eprintln!(
        "figure: a {:.0} MiB package uploaded alone: server VmRSS idle {:.1} MiB, peak {:.1} MiB (+{:.1} MiB), {:.1} s",
        mib(length),
        mib(idle),
        mib(peak),
        mib(peak.saturating_sub(idle)),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(status, 200, "{text}");
    assert!(
        peak < idle + 64 * MIB,
        "a {:.0} MiB package took the server from {:.1} MiB to {:.1} MiB",
        mib(length),
        mib(idle),
        mib(peak)
    );
    let listed = listed_packages(&server, "big");
    assert!(listed.contains("Pall huge 1.0"), "{listed}");
    // Recorded with the file's size and digest, and stored whole.
    let sha256 = sha256sum(&deb);
    let packages = server.get("/api/v1/apt/repos/big/packages");
    let package = &packages["packages"][0];
    assert_eq!(package["sha256"], sha256.as_str(), "{packages}");
    assert_eq!(package["size"], length, "{packages}");
    let stored: Vec<String> = std::fs::read_dir(server.data_dir().join("apt/packs"))
        .expect("packs")
        .map(|entry| sha256sum(&entry.expect("a pack").path()))
        .collect();
    assert_eq!(
        stored,
        [sha256],
        "the pack does not hold the package's bytes"
    );
    assert_eq!(
        uploads_left(&server.data_dir()),
        0,
        "the upload's file was left behind"
    );
}

#[test]
fn a_large_package_in_an_uploaded_tar_is_checked_in_bounded_memory() {
    let size = if slow() { 1 << 30 } else { 256 * MIB };
    let server = Server::start_with_env(&[]);
    create_repo(&server, "bigtar");
    let deb = large_package(&server, size);
    let length = std::fs::metadata(&deb).expect("the package").len();

    // `gantry apt repo add` sends its files as one tar stream.
    let deb_arg = deb.display().to_string();
    let args = ["apt", "repo", "add", "bigtar", deb_arg.as_str()];
    let started = Instant::now();
    let (added, idle, peak) = sampling(&server, || {
        crate::harness::wait_output(server.cli_spawn(&args), &args, Duration::from_secs(1800))
    });
    eprintln!(
        "figure: a {:.0} MiB package uploaded in a tar: server VmRSS idle {:.1} MiB, peak {:.1} MiB (+{:.1} MiB), {:.1} s",
        mib(length),
        mib(idle),
        mib(peak),
        mib(peak.saturating_sub(idle)),
        started.elapsed().as_secs_f64()
    );
    let added = added.ok();
    assert!(added.stdout.contains("[+] Pall huge 1.0"), "{added:?}");
    assert!(
        peak < idle + 64 * MIB,
        "a {:.0} MiB package in a tar took the server from {:.1} MiB to {:.1} MiB",
        mib(length),
        mib(idle),
        mib(peak)
    );
    let listed = listed_packages(&server, "bigtar");
    assert!(listed.contains("Pall huge 1.0"), "{listed}");
    let packages = server.get("/api/v1/apt/repos/bigtar/packages");
    assert_eq!(
        packages["packages"][0]["sha256"],
        sha256sum(&deb).as_str(),
        "{packages}"
    );
    assert_eq!(
        uploads_left(&server.data_dir()),
        0,
        "the tar entry's file was left behind"
    );
}

#[test]
fn uploads_left_by_a_crash_are_removed_when_the_server_starts() {
    let mut server = Server::start_with_env(&[]);
    let uploads = server.data_dir().join("apt/uploads");
    std::fs::create_dir_all(&uploads).expect("uploads directory");
    let leftover = uploads.join("0190b3a5c2f87e3c9d4a1b2c3d4e5f60.upload");
    std::fs::write(&leftover, vec![b'x'; 1 << 20]).expect("a leftover upload");
    server.kill9();
    server.restart();
    assert!(
        !leftover.exists(),
        "an upload left by a crash is still in {}",
        uploads.display()
    );
}
