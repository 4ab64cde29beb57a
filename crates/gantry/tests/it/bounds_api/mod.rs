//! The API's listener under hostile or careless clients (issue 12, items 1,
//! 3 and 4): many idle connections from one address, idle and slow
//! connections, slow webhook senders, and large uploads. Real sockets
//! against the real `gantry serve`, on loopback only; the full sizes run
//! under `GANTRY_TEST_SLOW=1`.
//!
//! This file holds what the tests share (the server's address, its
//! memory); the tests live in `connections.rs` and `uploads.rs`.

mod connections;
mod uploads;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::harness::Server;

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
