//! Many idle connections from one address, idle and slow connections,
//! and slow webhook senders.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{MIB, PeakSampler, address, mib, rss, server_pid, settle_under, slow};
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

/// A client whose connections come from 127.0.0.2.
fn other_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(OTHER_CLIENT)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
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
