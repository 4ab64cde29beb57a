//! `gantry-testapp`: a tiny HTTP/1.1 server that deploy tests run as the
//! instances of server groups. It has no dependencies so that it builds in
//! seconds, and it is deliberately simple: one thread per connection.
//!
//! - `GET /` answers `VERSION PORT` (200), or 500 at `ERROR_RATE`;
//! - `GET /health` answers 200, or 503 when told to fail;
//! - `GET /control/fail-health`, `/control/heal`, `/control/crash`,
//!   `/control/slow?ms=N`, `/control/error-rate?percent=N` change behaviour;
//! - `GET /slow?ms=N` answers after N milliseconds (draining tests);
//! - `GET /headers` answers the `X-Forwarded-*` headers it received;
//! - a request with `Upgrade:` gets a 101 and an echo of what follows;
//! - any other path answers 200 with the path (for routing tests).
//!
//! Environment: `PORT` (required), `HOST` (the address to listen on,
//! 127.0.0.1 by default; fleet agents set it), `VERSION`, `FAIL_HEALTH=1`,
//! `ERROR_PERCENT`, `DELAY_MS`, `CRASH_AFTER_MS` (exit 3 after that long),
//! `EXIT_AT_ONCE=1` (exit 2 before listening: a command that fails at once).
//! A file `crash-loop-N` in the working directory, holding a number of
//! milliseconds, makes instance N (`GANTRY_INSTANCE`) exit 3 that long after
//! every start: one instance of a group that keeps failing.

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

struct Behaviour {
    version: String,
    port: u16,
    fail_health: AtomicBool,
    error_percent: AtomicU64,
    delay_ms: AtomicU64,
    counter: AtomicU64,
}

fn main() {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if env("EXIT_AT_ONCE").is_some() {
        eprintln!("gantry-testapp: told to exit at once");
        std::process::exit(2);
    }
    let Some(port) = env("PORT").and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("gantry-testapp: PORT must be set to a port number");
        std::process::exit(2);
    };
    let behaviour = Arc::new(Behaviour {
        version: env("VERSION").unwrap_or_else(|| "v0".to_owned()),
        port,
        fail_health: AtomicBool::new(env("FAIL_HEALTH").is_some()),
        error_percent: AtomicU64::new(
            env("ERROR_PERCENT")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        ),
        delay_ms: AtomicU64::new(env("DELAY_MS").and_then(|v| v.parse().ok()).unwrap_or(0)),
        counter: AtomicU64::new(0),
    });
    let crash_loop = env("GANTRY_INSTANCE")
        .and_then(|n| std::fs::read_to_string(format!("crash-loop-{n}")).ok())
        .and_then(|ms| ms.trim().parse::<u64>().ok());
    if let Some(ms) = crash_loop.or_else(|| env("CRASH_AFTER_MS").and_then(|v| v.parse().ok())) {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            eprintln!("gantry-testapp: crashing as told");
            std::process::exit(3);
        });
    }
    let host = env("HOST").unwrap_or_else(|| "127.0.0.1".to_owned());
    let listener = match TcpListener::bind((host.as_str(), port)) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("gantry-testapp: cannot listen on port {port}: {error}");
            std::process::exit(1);
        }
    };
    println!(
        "gantry-testapp {} listening on port {port}",
        behaviour.version
    );
    for stream in listener.incoming().flatten() {
        let behaviour = behaviour.clone();
        std::thread::spawn(move || serve(stream, &behaviour));
    }
}

fn serve(stream: TcpStream, behaviour: &Behaviour) {
    let _ = stream.set_nodelay(true);
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut writer = write_half;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let mut content_length = 0usize;
        let mut close = false;
        let mut upgrade = false;
        let mut forwarded = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => content_length = value.parse().unwrap_or(0),
                "connection" if value.eq_ignore_ascii_case("close") => close = true,
                "upgrade" => upgrade = true,
                name if name.starts_with("x-forwarded-") => {
                    forwarded.push(format!("{name}: {value}"))
                }
                _ => {}
            }
        }
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if upgrade {
            // A minimal echo "protocol" after a 101, enough to test tunnels.
            let _ = writer.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
            );
            let mut buf = [0u8; 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if writer.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        }
        let (status, text, crash) = if target == "/headers" {
            ("200 OK", format!("{}\n", forwarded.join("\n")), false)
        } else {
            respond(&target, behaviour)
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nX-Version: {}\r\n{}\r\n{text}",
            text.len(),
            behaviour.version,
            if close { "Connection: close\r\n" } else { "" }
        );
        let written = writer.write_all(response.as_bytes()).is_ok();
        let _ = writer.flush();
        if crash {
            eprintln!("gantry-testapp: crashing as told");
            std::process::exit(3);
        }
        if !written || close {
            return;
        }
    }
}

/// The status line tail, the body and whether to crash after answering.
fn respond(target: &str, b: &Behaviour) -> (&'static str, String, bool) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let number = |key: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    match path {
        "/health" => {
            if b.fail_health.load(Ordering::SeqCst) {
                ("503 Service Unavailable", "unhealthy\n".into(), false)
            } else {
                ("200 OK", "ok\n".into(), false)
            }
        }
        "/control/fail-health" => {
            b.fail_health.store(true, Ordering::SeqCst);
            ("200 OK", "health will fail\n".into(), false)
        }
        "/control/heal" => {
            b.fail_health.store(false, Ordering::SeqCst);
            ("200 OK", "healthy again\n".into(), false)
        }
        "/control/crash" => ("200 OK", "crashing\n".into(), true),
        "/slow" => {
            std::thread::sleep(Duration::from_millis(number("ms")));
            ("200 OK", format!("{} {} slow\n", b.version, b.port), false)
        }
        "/control/slow" => {
            b.delay_ms.store(number("ms"), Ordering::SeqCst);
            ("200 OK", "slow\n".into(), false)
        }
        "/control/error-rate" => {
            b.error_percent.store(number("percent"), Ordering::SeqCst);
            ("200 OK", "error rate set\n".into(), false)
        }
        _ => {
            let delay = b.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                std::thread::sleep(Duration::from_millis(delay));
            }
            let n = b.counter.fetch_add(1, Ordering::SeqCst);
            // Every 100 requests carry exactly `error_percent` errors.
            if (n % 100) < b.error_percent.load(Ordering::SeqCst) {
                return (
                    "500 Internal Server Error",
                    "injected error\n".into(),
                    false,
                );
            }
            let body = if path == "/" {
                format!("{} {}\n", b.version, b.port)
            } else {
                format!("{} {} {path}\n", b.version, b.port)
            };
            ("200 OK", body, false)
        }
    }
}
