//! Issue 12, items 1 and 3, for the load balancer: one client address
//! holding thousands of idle or slow connections does not starve others,
//! does not make health checks fail, is disconnected after the timeouts
//! and leaves no memory behind; slow body senders hold at most the body
//! budget. Through a real deploy, on loopback only.
//!
//! By default the flood is 2,000 connections against a per-address cap of
//! 1,000; with `GANTRY_TEST_SLOW=1`, 20,000 against 10,000.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::deploy_support::{deploy, free_port, shop_yaml};
use crate::harness::{Backend, Server};

/// The flood's size and the load balancer's caps for it.
struct Scale {
    flood: usize,
    per_address: usize,
    connections: usize,
    /// The header and keep-alive timeouts the flood meets: longer than
    /// the flood takes to open.
    timeout: Duration,
}

fn scale() -> Scale {
    if std::env::var("GANTRY_TEST_SLOW").is_ok_and(|v| v == "1") {
        Scale {
            flood: 20_000,
            per_address: 10_000,
            connections: 12_000,
            timeout: Duration::from_secs(20),
        }
    } else {
        Scale {
            flood: 2_000,
            per_address: 1_000,
            connections: 1_500,
            timeout: Duration::from_secs(3),
        }
    }
}

const FLOODER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const ORDINARY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const MB: u64 = 1_000_000;

#[test]
fn one_address_flooding_a_load_balancer_does_not_starve_others_and_leaves_no_memory_behind() {
    let mut scale = scale();
    // The flood's sockets are this process's: where the hard limit is the
    // flood's size itself (20,000 here), it keeps 1,000 for its own work.
    let allowed = raise_own_fd_limit(scale.flood as u64 + 4_096);
    scale.flood = scale.flood.min(allowed.saturating_sub(1_000) as usize);
    let server = Server::start(Backend::Sqlite);
    let port = start_shop(
        &server,
        &format!(
            "    timeouts: {{header: {t}s, keepAlive: {t}s, body: {t}s}}\n    limits: {{connections: {}, perAddress: {}}}\n",
            scale.connections,
            scale.per_address,
            t = scale.timeout.as_secs()
        ),
    );
    let dataplane = dataplane_pid(&server);
    // Warm up: the workers' buffers and pools exist before the baseline.
    let warm = probe(port, 200);
    assert_eq!(warm.failed, 0, "{:?}", warm.failures);
    let before = rss(dataplane);

    let flood = Flood::start(port, scale.flood);
    flood.wait_opened();
    let during = rss(dataplane);
    // Ordinary requests from another address, while the flood holds its
    // connections and keeps reopening those that are closed.
    let probed = probe(port, 300);
    let p99 = probed.percentile(99);
    assert_all_healthy(&server);
    let held = flood.stop();
    eprintln!(
        "flood of {} from {FLOODER}: {} closed by the load balancer, {} held at most; \
         {} ordinary requests from {ORDINARY}: {} failed, p50 {:?}, p99 {:?}; \
         data plane RSS {} MB before, {} MB during",
        scale.flood,
        held.closed,
        held.open_at_most,
        probed.latencies.len(),
        probed.failed,
        probed.percentile(50),
        p99,
        before / MB,
        during / MB,
    );
    assert_eq!(probed.failed, 0, "{:?}", probed.failures);
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");
    assert!(
        held.open_at_most <= scale.per_address && held.open_at_most >= scale.per_address / 2,
        "{} connections from one address held at once, with a cap of {}",
        held.open_at_most,
        scale.per_address
    );

    // The held connections are closed by the load balancer once the
    // timeouts pass, without the client doing anything.
    let closed_by_timeout = held.wait_all_closed(scale.timeout + Duration::from_secs(5));
    assert!(
        closed_by_timeout.is_ok(),
        "{} flood connections still open {:?} after the flood stopped",
        closed_by_timeout.unwrap_err(),
        scale.timeout + Duration::from_secs(5)
    );
    drop(held);
    assert_all_healthy(&server);
    let after = wait_rss_within(dataplane, before + 20 * MB, Duration::from_secs(15));
    eprintln!("data plane RSS {} MB after the flood", after / MB);
    assert!(
        after <= before + 20 * MB,
        "data plane RSS {} MB after the flood, {} MB before",
        after / MB,
        before / MB
    );
    let again = probe(port, 50);
    assert_eq!(again.failed, 0, "{:?}", again.failures);
}

#[test]
fn three_hundred_slow_body_senders_hold_at_most_the_body_budget() {
    raise_own_fd_limit(4_096);
    let server = Server::start(Backend::Sqlite);
    let port = start_shop(&server, "    timeouts: {body: 20s}\n");
    let dataplane = dataplane_pid(&server);
    let warm = probe(port, 100);
    assert_eq!(warm.failed, 0, "{:?}", warm.failures);
    let before = rss(dataplane);

    // 300 clients each announcing a 1 MiB body and sending half of it,
    // 64 KiB at a time, then waiting.
    const BODY: usize = 1 << 20;
    let mut senders = Vec::new();
    let chunk = vec![b'x'; 64 << 10];
    for round in 0..8 {
        if round == 0 {
            for _ in 0..300 {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                let head = format!(
                    "POST /upload HTTP/1.1\r\nHost: shop.test\r\nContent-Length: {BODY}\r\n\r\n"
                );
                stream.write_all(head.as_bytes()).expect("head");
                senders.push(stream);
            }
        }
        for stream in &mut senders {
            stream.write_all(&chunk).expect("a piece of the body");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let during = rss(dataplane);
    // Others are still served meanwhile.
    let probed = probe(port, 50);
    assert_all_healthy(&server);
    eprintln!(
        "300 slow senders of 1 MiB bodies: data plane RSS {} MB before, {} MB while they send",
        before / MB,
        during / MB
    );
    assert_eq!(probed.failed, 0, "{:?}", probed.failures);
    assert!(
        during <= before + 50 * MB,
        "300 slow senders added {} MB",
        (during - before.min(during)) / MB
    );
    drop(senders);
    let after = wait_rss_within(dataplane, before + 20 * MB, Duration::from_secs(15));
    eprintln!("data plane RSS {} MB after they went", after / MB);
    assert!(
        after <= before + 20 * MB,
        "RSS {} MB after the senders went, {} MB before",
        after / MB,
        before / MB
    );
}

#[test]
fn load_balancer_timeouts_and_limits_are_validated_with_positions() {
    let server = Server::start(Backend::Sqlite);
    let file = server.write_file(
        "bounds.yaml",
        r#"applications:
  - name: shop
loadBalancers:
  - {name: a, port: 8091, cluster: x, timeouts: {header: 0s, keepAlive: 75, body: 60s}}
  - {name: b, port: 8092, cluster: x, limits: {connections: 10, perAddress: 20}}
  - {name: c, port: 8093, cluster: x, limits: {connections: 0, perAdress: 5}}
  - {name: d, port: 8094, cluster: x, timeouts: {header: 60s, keepAlive: 75s, body: 60s}, limits: {connections: 10000, perAddress: 1000}}
"#,
    );
    let out = server
        .cli(&["validate", file.to_str().expect("path")])
        .fails_with("bounds.yaml:4:58:");
    let text = out.stderr;
    for expected in [
        "bounds.yaml:4:58: timeouts of load balancer \"a\": \"header\" must be longer than 0s",
        "bounds.yaml:4:73: \"keepAlive\" must be a duration like 30s, 5m or 1h30m, not the number 75; add a unit",
        "bounds.yaml:5:77: limits of load balancer \"b\": \"perAddress\" (20) cannot be more than \"connections\" (10)",
        "bounds.yaml:6:61: limits of load balancer \"c\": \"connections\" must be at least 1",
        "bounds.yaml:6:64: unknown field \"perAdress\" in limits of load balancer \"c\"",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("load balancer \"d\""), "{text}");
}

/// Applies the shop with `extra` added to its load balancer and deploys
/// it; returns the load balancer's port.
fn start_shop(server: &Server, extra: &str) -> u16 {
    let port = free_port();
    let yaml = shop_yaml(port, "").replace(
        "    cluster: shop-web\n",
        &format!("    cluster: shop-web\n{extra}"),
    );
    server.apply(&yaml);
    let first = deploy(server, "redblack", &["version=v1"]);
    assert_eq!(first["status"], "succeeded", "{first:#}");
    port
}

fn dataplane_pid(server: &Server) -> i32 {
    let path = server.data_dir().join("deploy/dataplane.pid");
    std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {}", path.display()))
}

/// Resident memory of a process, in bytes.
fn rss(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// Waits up to `limit` for the RSS to fall to `target`; returns the last.
fn wait_rss_within(pid: i32, target: u64, limit: Duration) -> u64 {
    let deadline = Instant::now() + limit;
    loop {
        let now = rss(pid);
        if now <= target || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn assert_all_healthy(server: &Server) {
    let group = server.get("/api/v1/server-groups/shop-web-v000");
    let instances = group["instances"].as_array().expect("instances");
    assert_eq!(instances.len(), 2, "{group:#}");
    assert!(
        instances.iter().all(|i| i["healthy"] == true),
        "an instance is unhealthy: {group:#}"
    );
}

/// The test process holds the flood's sockets: it needs more than the
/// usual 1,024 descriptors. With the right to, it raises the hard limit to
/// `wanted` too. Returns the soft limit it got.
fn raise_own_fd_limit(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        if limit.rlim_max < wanted {
            let raised = libc::rlimit {
                rlim_cur: wanted,
                rlim_max: wanted,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &raised);
        }
    }
    let soft = gantry_listen::raise_fd_limit().expect("raise the descriptor limit");
    assert!(
        soft >= 4_096,
        "this test needs at least 4096 file descriptors; the hard limit allows {soft}"
    );
    soft
}

/// What ordinary requests saw.
struct Probed {
    latencies: Vec<Duration>,
    failed: usize,
    failures: Vec<String>,
}

impl Probed {
    fn percentile(&self, p: usize) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::MAX;
        }
        sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
    }
}

/// `count` requests, one after another, each on a new connection from
/// [`ORDINARY`]; the time from connect to the whole answer.
fn probe(port: u16, count: usize) -> Probed {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut probed = Probed {
        latencies: Vec::new(),
        failed: 0,
        failures: Vec::new(),
    };
    for _ in 0..count {
        let started = Instant::now();
        match one_request(&runtime, port) {
            Ok(answer) if answer.starts_with("HTTP/1.1 200") => {
                probed.latencies.push(started.elapsed())
            }
            Ok(answer) => {
                probed.failed += 1;
                probed.failures.push(answer);
            }
            Err(error) => {
                probed.failed += 1;
                probed.failures.push(error.to_string());
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    probed.failures.truncate(10);
    probed
}

fn one_request(runtime: &tokio::runtime::Runtime, port: u16) -> std::io::Result<String> {
    let mut stream = connect_from(runtime, ORDINARY, port)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// A blocking connection to the load balancer from the loopback address
/// `from` (std cannot bind before connecting; tokio's socket can).
fn connect_from(
    runtime: &tokio::runtime::Runtime,
    from: Ipv4Addr,
    port: u16,
) -> std::io::Result<TcpStream> {
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((from, 0)))?;
        socket
            .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .await
    })?;
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// One client address holding `size` connections: half idle, half sending
/// a request header a byte at a time (slowloris), reopening every one the
/// load balancer closes, until stopped.
struct Flood {
    stop: Arc<AtomicBool>,
    opened: Arc<AtomicUsize>,
    size: usize,
    thread: std::thread::JoinHandle<Held>,
}

/// The flood's connections when it stopped, and what it saw.
struct Held {
    streams: Vec<TcpStream>,
    /// Connections the load balancer closed (refused at once, or timed
    /// out).
    closed: usize,
    /// The most connections open at once (the load balancer's view).
    open_at_most: usize,
}

impl Flood {
    fn start(port: u16, size: usize) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let opened = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, opened) = (stop.clone(), opened.clone());
            std::thread::spawn(move || flood(port, size, &stop, &opened))
        };
        Flood {
            stop,
            opened,
            size,
            thread,
        }
    }

    fn wait_opened(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.opened.load(Ordering::SeqCst) < self.size {
            assert!(Instant::now() < deadline, "the flood did not open in time");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Let the load balancer take them in and close the refused ones.
        std::thread::sleep(Duration::from_secs(1));
    }

    fn stop(self) -> Held {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("flood thread")
    }
}

impl Held {
    /// Waits for the load balancer to close every connection; the number
    /// still open when `limit` passed otherwise.
    fn wait_all_closed(&self, limit: Duration) -> Result<(), usize> {
        let deadline = Instant::now() + limit;
        loop {
            let open = self.streams.iter().filter(|s| is_open(s)).count();
            if open == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(open);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn flood(port: u16, size: usize, stop: &AtomicBool, opened: &AtomicUsize) -> Held {
    let mut streams: Vec<(TcpStream, usize)> = Vec::with_capacity(size);
    let mut closed = 0;
    let mut open_at_most = 0;
    for _ in 0..size {
        match TcpStream::connect((FLOODER, port)) {
            Ok(stream) => {
                let _ = stream.set_nonblocking(true);
                streams.push((stream, 0));
                opened.fetch_add(1, Ordering::SeqCst);
            }
            Err(error) => panic!("the flood cannot connect: {error}"),
        }
    }
    // Let the load balancer take them in and close those past its caps.
    std::thread::sleep(Duration::from_secs(1));
    let header = b"GET / HTTP/1.1\r\nHost: shop.test\r\nX-Slow: ";
    while !stop.load(Ordering::SeqCst) {
        let round = Instant::now();
        let mut open = 0;
        let mut reopened = 0;
        for (i, (stream, sent)) in streams.iter_mut().enumerate() {
            if is_open(stream) {
                open += 1;
                if i % 2 == 1 {
                    // Slowloris: one more byte of a header that never ends.
                    let byte = header.get(*sent).copied().unwrap_or(b'a');

                    if stream.write(&[byte]).is_ok() {
                        *sent += 1;
                    }
                }
                continue;
            }
            if *sent != usize::MAX {
                closed += 1;
            }
            // Closed: an attacker reconnects, up to 200 a round.
            if reopened < 200
                && let Ok(new) = TcpStream::connect((FLOODER, port))
            {
                let _ = new.set_nonblocking(true);
                *stream = new;
                *sent = 0;
                reopened += 1;
            } else {
                // Counted once.
                *sent = usize::MAX;
            }
        }
        open_at_most = open_at_most.max(open);
        let spent = round.elapsed();
        std::thread::sleep(Duration::from_millis(300).saturating_sub(spent));
    }
    Held {
        streams: streams.into_iter().map(|(s, _)| s).collect(),
        closed,
        open_at_most,
    }
}

/// True while the load balancer has not closed the connection.
fn is_open(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 512];
    match (&*stream).read(&mut buf) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
        Err(_) => false,
    }
}
