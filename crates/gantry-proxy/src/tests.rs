use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::discovery::RouteRule;
use crate::health_check::{HealthCheckConfig, UpstreamHealth};

mod bounds;
mod instances;
mod upstream_http1;

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

/// What a test upstream does with each connection.
#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// Reads one request and closes without answering (an instance dying
    /// with the request inside).
    Die,
    /// Answers every request `200 fine`, keeping the connection open.
    Answer,
    /// Answers one request as if it kept the connection alive, then closes
    /// it (an instance's keep-alive timeout running out).
    AnswerOnceThenClose,
    /// Reads requests and never answers (a hung instance).
    Hang,
}

/// An upstream on a real socket, counting requests and connections.
struct TestUpstream {
    addr: std::net::SocketAddr,
    requests: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
}

impl TestUpstream {
    async fn start(behaviour: Behaviour) -> TestUpstream {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = TestUpstream {
            addr: listener.local_addr().unwrap(),
            requests: Arc::default(),
            connections: Arc::default(),
        };
        let (requests, connections) = (upstream.requests.clone(), upstream.connections.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let requests = requests.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while stream.read(&mut buf).await.unwrap_or(0) > 0 {
                        requests.fetch_add(1, Ordering::SeqCst);
                        match behaviour {
                            Behaviour::Die => return,
                            Behaviour::Hang => continue,
                            Behaviour::Answer | Behaviour::AnswerOnceThenClose => {
                                let answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfine\n";
                                if stream.write_all(answer.as_bytes()).await.is_err()
                                    || behaviour == Behaviour::AnswerOnceThenClose
                                {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        upstream
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
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

/// A routing table with cluster "c" of one group "g" holding `upstreams`.
/// A fresh table restarts the round-robin at the first of them.
fn table(proxy: &crate::Proxy, upstreams: &[&TestUpstream]) -> crate::RoutingTable {
    let group = crate::GroupBackend {
        name: "g".to_owned(),
        weight: 1,
        upstreams: upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| routable(&format!("i{i}"), u.addr))
            .collect(),
        stats: proxy.stats().group("g"),
    };
    crate::RoutingTable::new([("c".to_owned(), vec![group])].into())
}

/// A proxy with one listener routing everything to cluster "c"; its port.
async fn proxy_listening(response_timeout: Option<Duration>) -> (crate::Proxy, u16) {
    let proxy = crate::Proxy::new();
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
            response_timeout,
            ..Default::default()
        }])
        .await;
    assert!(errors.is_empty(), "{errors:?}");
    (proxy, port)
}

/// Sends `method /` with a body through a proxy on `port`; returns the
/// status and the whole answer.
async fn send(port: u16, method: &str) -> (u16, String) {
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
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// An upstream that reads one request with a `Content-Length` body,
/// counting body bytes as they arrive, and answers how many it got.
async fn counting_upstream() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut reader = BufReader::new(stream);
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut buf = vec![0u8; 64 << 10];
        let mut got = 0;
        while got < length {
            let n = reader.read(&mut buf).await.unwrap();
            assert!(n > 0, "the body ended early");
            got += n;
            counter.store(got, Ordering::SeqCst);
        }
        let answer = got.to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        reader
            .get_mut()
            .write_all(response.as_bytes())
            .await
            .unwrap();
    });
    (addr, received)
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

#[test]
fn per_worker_counters_sum_their_slots() {
    use crate::per_worker::{self, Counter};
    let counter = Counter::default();
    let slots = per_worker::slots();
    // A step up on one worker and down on another still sums to zero.
    let threads: Vec<_> = (0..slots)
        .map(|worker| {
            std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        per_worker::set_worker(worker);
                        counter.add(3, Ordering::SeqCst);
                        if worker + 1 == slots {
                            counter.sub(3 * slots as u64 - 1, Ordering::SeqCst);
                        }
                        per_worker::slot()
                    })
                    .join()
                    .unwrap()
            })
        })
        .collect();
    assert_eq!(threads, (0..slots).collect::<Vec<_>>());
    assert_eq!(counter.sum(Ordering::SeqCst), 1);
}
