use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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

#[tokio::test]
async fn only_idempotent_requests_are_resent_after_an_instance_died_with_them() {
    let dying = TestUpstream::start(Behaviour::Die).await;
    let good = TestUpstream::start(Behaviour::Answer).await;
    let (proxy, port) = proxy_listening(None).await;

    // Round-robin alternates; send until each method has met the dying
    // instance first at least once.
    let check = |method: &'static str, resent: bool| {
        let proxy = proxy.clone();
        let (dying, good) = (&dying, &good);
        async move {
            for _ in 0..4 {
                proxy.set_table(table(&proxy, &[dying, good]));
                let before = (dying.requests(), good.requests());
                let (status, _) = send(port, method).await;
                let after = (dying.requests(), good.requests());
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

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_reused() {
    let upstream = TestUpstream::start(Behaviour::Answer).await;
    let (proxy, port) = proxy_listening(None).await;
    proxy.set_table(table(&proxy, &[&upstream]));
    for _ in 0..20 {
        assert_eq!(send(port, "GET").await.0, 200);
    }
    assert_eq!(upstream.requests(), 20);
    // Each worker thread keeps its own pool: at most one connection each
    // for requests sent one after another.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        upstream.connections() <= workers,
        "{} connections for 20 sequential requests on {workers} workers",
        upstream.connections()
    );
}

#[tokio::test]
async fn a_pooled_connection_the_instance_closed_is_not_used() {
    let upstream = TestUpstream::start(Behaviour::AnswerOnceThenClose).await;
    let (proxy, port) = proxy_listening(None).await;
    proxy.set_table(table(&proxy, &[&upstream]));
    for i in 0..10 {
        // Let the proxy see the close, as it would after an instance's
        // keep-alive timeout ran out between two requests.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (status, answer) = send(port, "POST").await;
        assert_eq!(status, 200, "request {i}: {answer}");
    }
    assert_eq!(upstream.requests(), 10);
    assert_eq!(upstream.connections(), 10);
}

#[tokio::test]
async fn a_hung_instance_gets_a_gateway_timeout_and_no_resend() {
    let hung = TestUpstream::start(Behaviour::Hang).await;
    let good = TestUpstream::start(Behaviour::Answer).await;
    let (proxy, port) = proxy_listening(Some(Duration::from_millis(300))).await;
    proxy.set_table(table(&proxy, &[&hung, &good]));
    let started = std::time::Instant::now();
    let (status, answer) = send(port, "GET").await;
    let waited = started.elapsed();
    assert_eq!(status, 504, "{answer}");
    assert!(answer.contains("x-gantry-error: timeout"), "{answer}");
    assert!(
        answer.contains("instance i0 sent no response header within 300ms"),
        "{answer}"
    );
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(good.requests(), 0, "a timed-out request is not sent again");
    let stats = proxy.stats().group("g").snapshot();
    assert_eq!((stats.requests, stats.status_5xx), (1, 1));
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

#[tokio::test]
async fn a_large_request_body_is_streamed_not_held_and_may_take_its_time() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, received) = counting_upstream().await;
    // A response timeout shorter than the upload: it counts from the end of
    // the body, not from its start.
    let (proxy, port) = proxy_listening(Some(Duration::from_millis(300))).await;
    let upstream = TestUpstream {
        addr,
        requests: Arc::default(),
        connections: Arc::default(),
    };
    proxy.set_table(table(&proxy, &[&upstream]));
    const LENGTH: usize = 8 << 20;
    let mut client = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {LENGTH}\r\nConnection: close\r\n\r\n"
    );
    client.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![7u8; LENGTH / 4];
    client.write_all(&chunk).await.unwrap();
    // With three quarters still unsent, the instance already has bytes: the
    // proxy did not wait for the whole body.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while received.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing reached the instance before the body was complete"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    for _ in 0..3 {
        client.write_all(&chunk).await.unwrap();
    }
    let mut answer = String::new();
    client.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(&LENGTH.to_string()), "{answer}");
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
