use std::sync::Arc;

use crate::discovery::RouteRule;
use crate::health_check::{HealthCheckConfig, UpstreamHealth};

#[test]
fn rules_match_host_and_path_prefix() {
    let check = |host: Option<&str>,
                 prefix: Option<&str>,
                 req_host: Option<&str>,
                 path: &str,
                 expected: bool| {
        let rule = RouteRule {
            host: host.map(str::to_owned),
            path_prefix: prefix.map(str::to_owned),
            cluster: "c".into(),
        };
        assert_eq!(
            rule.matches(req_host, path),
            expected,
            "{host:?} {prefix:?} {req_host:?} {path}"
        );
    };
    check(None, None, None, "/", true);
    check(Some("a.test"), None, Some("A.test"), "/", true);
    check(Some("a.test"), None, Some("b.test"), "/", false);
    check(Some("a.test"), None, None, "/", false);
    check(None, Some("/api"), None, "/api/x", true);
    check(None, Some("/api"), None, "/web", false);
}

#[test]
fn thresholds_gate_health_changes() {
    let config = HealthCheckConfig {
        healthy_threshold: 2,
        unhealthy_threshold: 3,
        ..HealthCheckConfig::default()
    };
    let health = Arc::new(UpstreamHealth::default());
    health.set_alive(true);
    assert!(!health.record(true, &config));
    assert!(!health.is_routable());
    assert!(health.record(true, &config));
    assert!(health.is_routable());
    assert!(!health.record(false, &config));
    assert!(!health.record(false, &config));
    assert!(health.is_routable());
    assert!(health.record(false, &config));
    assert!(!health.is_routable());
    // Passive ejection takes it out at once; two passes bring it back.
    health.record(true, &config);
    health.record(true, &config);
    health.eject();
    assert!(!health.is_routable());
}

/// An upstream that reads one request and closes the connection without
/// answering (an instance dying with the request inside), counting requests.
async fn dying_upstream() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            if stream.read(&mut buf).await.unwrap_or(0) > 0 {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            drop(stream);
        }
    });
    (addr, seen)
}

/// An upstream that answers every request `200 fine`, counting requests.
async fn answering_upstream() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while stream.read(&mut buf).await.unwrap_or(0) > 0 {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfine\n";
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

fn routable(id: &str, addr: std::net::SocketAddr) -> Arc<crate::Upstream> {
    let health = Arc::new(UpstreamHealth::default());
    health.set_alive(true);
    let config = HealthCheckConfig {
        healthy_threshold: 1,
        ..HealthCheckConfig::default()
    };
    health.record(true, &config);
    Arc::new(crate::Upstream::new(id.to_owned(), addr, health))
}

/// Sends `method /` with a body through a proxy on `port`; returns the status.
async fn send(port: u16, method: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!(
        "{method} / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn only_idempotent_requests_are_resent_after_an_instance_died_with_them() {
    use std::sync::atomic::Ordering;
    let (dying_addr, dying_seen) = dying_upstream().await;
    let (good_addr, good_seen) = answering_upstream().await;
    let proxy = crate::Proxy::new();
    let stats = proxy.stats().group("g");
    // One group of two instances; a fresh table restarts the round-robin.
    let group = |name: &str, upstreams| crate::GroupBackend {
        name: name.to_owned(),
        weight: 1,
        upstreams,
        stats: stats.clone(),
    };
    let table = || {
        crate::RoutingTable::new(
            [(
                "c".to_owned(),
                vec![group(
                    "g",
                    vec![routable("dying", dying_addr), routable("good", good_addr)],
                )],
            )]
            .into(),
        )
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let errors = proxy
        .set_listeners(&[crate::ListenerConfig {
            name: "lb".into(),
            port,
            rules: vec![RouteRule {
                host: None,
                path_prefix: None,
                cluster: "c".into(),
            }],
        }])
        .await;
    assert!(errors.is_empty(), "{errors:?}");

    // Round-robin alternates; send until each method has met the dying
    // instance first at least once.
    let check = |method: &'static str, resent: bool| {
        let proxy = proxy.clone();
        let dying_seen = dying_seen.clone();
        let good_seen = good_seen.clone();
        async move {
            for _ in 0..4 {
                proxy.set_table(table());
                let before = (
                    dying_seen.load(Ordering::SeqCst),
                    good_seen.load(Ordering::SeqCst),
                );
                let status = send(port, method).await;
                let after = (
                    dying_seen.load(Ordering::SeqCst),
                    good_seen.load(Ordering::SeqCst),
                );
                if after.0 == before.0 {
                    assert_eq!(status, 200, "{method} straight to the good instance");
                    continue;
                }
                if resent {
                    assert_eq!(status, 200, "{method} is sent again to the good instance");
                    assert_eq!(after.1, before.1 + 1, "{method} reached the good instance");
                } else {
                    assert_eq!(status, 502, "{method} is never sent twice");
                    assert_eq!(
                        after.1, before.1,
                        "{method} must not reach a second instance"
                    );
                }
                return;
            }
            panic!("{method} never went to the dying instance first");
        }
    };
    check("GET", true).await;
    check("PUT", true).await;
    check("DELETE", true).await;
    check("POST", false).await;
    check("PATCH", false).await;
}

#[test]
fn sample_ring_keeps_the_newest_samples_within_the_window() {
    use std::time::Duration;
    let stats = crate::stats::GroupStats::default();
    for i in 0..25_000u64 {
        stats.record(Duration::from_micros(i), i % 10 == 0);
    }
    // 20 000 slots: the oldest 5 000 were overwritten.
    let samples = stats.samples_since(Duration::from_secs(60));
    assert_eq!(samples.len(), 20_000);
    assert_eq!(samples.iter().map(|s| s.micros).min(), Some(5_000));
    assert_eq!(samples.iter().filter(|s| s.error).count(), 2_000);
    // Latency is kept to the microsecond, clamped at about 134 s.
    stats.record(Duration::from_secs(500), false);
    assert!(
        stats
            .samples_since(Duration::from_secs(60))
            .iter()
            .any(|s| s.micros == (1 << 27) - 1)
    );
    std::thread::sleep(Duration::from_millis(30));
    assert!(stats.samples_since(Duration::from_millis(10)).is_empty());
    assert_eq!(stats.snapshot().requests, 25_001);
}
