use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::discovery::RouteRule;
use crate::health_check::{HealthCheckConfig, UpstreamHealth};

mod bounds;

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

// The direct path (`upstream_http1`): every way an instance can frame a
// response, seen through the proxy by a real HTTP client over real sockets.

/// What a scripted instance does after writing its answer.
#[derive(Clone, Copy, PartialEq)]
enum After {
    /// Waits for the next request on the same connection.
    KeepOpen,
    /// Closes the connection.
    Close,
    /// Echoes every byte it receives from then on (a protocol switch).
    Echo,
}

/// An instance on a real socket that answers each request with what
/// `answer` makes of its head; each piece of the answer is written
/// separately, 20 ms apart. Keeps every request it got (head and body).
struct Scripted {
    upstream: TestUpstream,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
}

type Answer = fn(&str) -> (Vec<&'static str>, After);

impl Scripted {
    async fn start(answer: Answer) -> Scripted {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scripted = Scripted {
            upstream: TestUpstream {
                addr: listener.local_addr().unwrap(),
                requests: Arc::default(),
                connections: Arc::default(),
            },
            seen: Arc::default(),
        };
        let (requests, connections) = (
            scripted.upstream.requests.clone(),
            scripted.upstream.connections.clone(),
        );
        let seen = scripted.seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let (requests, seen) = (requests.clone(), seen.clone());
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    loop {
                        let mut head = String::new();
                        let mut length = 0;
                        loop {
                            let mut line = String::new();
                            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if let Some(value) =
                                line.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                length = value.trim().parse().unwrap();
                            }
                            head.push_str(&line);
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let mut body = vec![0u8; length];
                        stream.read_exact(&mut body).await.unwrap();
                        head.push_str(&String::from_utf8_lossy(&body));
                        requests.fetch_add(1, Ordering::SeqCst);
                        let (pieces, after) = answer(&head);
                        seen.lock().unwrap().push(head);
                        for (i, piece) in pieces.iter().enumerate() {
                            if i > 0 {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            if stream.get_mut().write_all(piece.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        match after {
                            After::KeepOpen => {}
                            After::Close => return,
                            After::Echo => {
                                let (mut from, mut to) = tokio::io::split(stream);
                                let _ = tokio::io::copy(&mut from, &mut to).await;
                                return;
                            }
                        }
                    }
                });
            }
        });
        scripted
    }

    /// The request heads (and bodies) the instance got, in order.
    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// A proxy routing to the one scripted instance.
async fn proxy_to(scripted: &Scripted) -> u16 {
    let (proxy, port) = proxy_listening(None).await;
    proxy.set_table(table(&proxy, &[&scripted.upstream]));
    // The proxy lives as long as its workers' threads: leaking it for the
    // test's duration keeps its listener open.
    std::mem::forget(proxy);
    port
}

type Client = hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>;

/// One keep-alive client connection to the proxy: all its requests are
/// carried by the same worker, so they share that worker's upstream pool.
async fn client(port: u16) -> Client {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    sender
}

/// Sends `method path` (with `body`) and reads the whole answer, failing
/// the test if the proxy takes more than 5 s (a body it waits for in vain).
async fn exchange(
    client: &mut Client,
    method: &str,
    path: &str,
    body: &'static str,
) -> (u16, hyper::HeaderMap, String) {
    use http_body_util::BodyExt;
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "app.test")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            body.as_bytes(),
        )))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), client.send_request(request))
        .await
        .expect("the proxy answers in time")
        .expect("the proxy answers");
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .expect("the body ends in time")
        .expect("the body arrives whole")
        .to_bytes();
    (
        parts.status.as_u16(),
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn content_length_bodies_arrive_whole_and_the_connection_is_reused() {
    let scripted = Scripted::start(|_| {
        (
            vec![
                "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello",
                " world",
            ],
            After::KeepOpen,
        )
    })
    .await;
    let mut client = client(proxy_to(&scripted).await).await;
    for _ in 0..3 {
        let (status, headers, body) = exchange(&mut client, "GET", "/", "").await;
        assert_eq!((status, body.as_str()), (200, "hello world"));
        assert_eq!(headers["content-length"], "11");
    }
    assert_eq!(scripted.upstream.connections(), 1, "one connection, reused");
}

#[tokio::test]
async fn chunked_bodies_are_decoded_and_the_connection_is_reused() {
    let scripted = Scripted::start(|_| {
        (
            vec![
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                "lo\r\n6;name=value\r\n world\r\n",
                "0\r\nX-Trailer: dropped\r\n\r\n",
            ],
            After::KeepOpen,
        )
    })
    .await;
    let mut client = client(proxy_to(&scripted).await).await;
    for _ in 0..3 {
        let (status, headers, body) = exchange(&mut client, "GET", "/", "").await;
        assert_eq!((status, body.as_str()), (200, "hello world"));
        assert!(!headers.contains_key("content-length"));
    }
    assert_eq!(scripted.upstream.connections(), 1, "one connection, reused");
}

#[tokio::test]
async fn a_body_without_length_runs_until_the_instance_closes() {
    let scripted =
        Scripted::start(|_| (vec!["HTTP/1.1 200 OK\r\n\r\nuntil", " close"], After::Close)).await;
    let mut client = client(proxy_to(&scripted).await).await;
    for _ in 0..2 {
        let (status, _, body) = exchange(&mut client, "GET", "/", "").await;
        assert_eq!((status, body.as_str()), (200, "until close"));
    }
    assert_eq!(scripted.upstream.connections(), 2, "never reused");
}

#[tokio::test]
async fn head_204_and_304_answers_have_no_body_and_keep_the_connection() {
    // Each announces a length it does not send: waiting for it would hang.
    let scripted = Scripted::start(|request| {
        let answer = if request.starts_with("HEAD") {
            "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"
        } else if request.starts_with("GET /204") {
            "HTTP/1.1 204 No Content\r\n\r\n"
        } else if request.starts_with("GET /304") {
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 11\r\n\r\n"
        } else {
            "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody"
        };
        (vec![answer], After::KeepOpen)
    })
    .await;
    let mut client = client(proxy_to(&scripted).await).await;
    let (status, headers, body) = exchange(&mut client, "HEAD", "/", "").await;
    assert_eq!((status, body.as_str()), (200, ""));
    assert_eq!(headers["content-length"], "11");
    assert_eq!(exchange(&mut client, "GET", "/204", "").await.0, 204);
    assert_eq!(exchange(&mut client, "GET", "/304", "").await.0, 304);
    let (status, _, body) = exchange(&mut client, "GET", "/", "").await;
    assert_eq!((status, body.as_str()), (200, "body"));
    assert_eq!(scripted.upstream.connections(), 1, "one connection, reused");
}

#[tokio::test]
async fn informational_answers_are_skipped() {
    let scripted = Scripted::start(|_| {
        (
            vec![
                "HTTP/1.1 100 Continue\r\n\r\n",
                "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
            ],
            After::KeepOpen,
        )
    })
    .await;
    let mut client = client(proxy_to(&scripted).await).await;
    let (status, _, body) = exchange(&mut client, "POST", "/", "data").await;
    assert_eq!((status, body.as_str()), (201, "ok"));
}

#[tokio::test]
async fn an_instance_asking_to_close_is_not_reused() {
    // It says `Connection: close` and leaves the socket open.
    let scripted = Scripted::start(|_| {
        (
            vec!["HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"],
            After::KeepOpen,
        )
    })
    .await;
    let mut client = client(proxy_to(&scripted).await).await;
    for _ in 0..3 {
        let (status, headers, body) = exchange(&mut client, "GET", "/", "").await;
        assert_eq!((status, body.as_str()), (200, "ok"));
        assert!(
            !headers.contains_key("connection"),
            "hop-by-hop: {headers:?}"
        );
    }
    assert_eq!(scripted.upstream.connections(), 3);
}

#[tokio::test]
async fn malformed_answers_get_a_bad_gateway_naming_the_instance() {
    let scripted = Scripted::start(|request| {
        let answer = if request.starts_with("GET /garbage") {
            "this is not http\r\n\r\n"
        } else if request.starts_with("GET /length ") {
            "HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\nbody"
        } else {
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nbody"
        };
        (vec![answer], After::Close)
    })
    .await;
    let mut client = client(proxy_to(&scripted).await).await;
    for (path, problem) in [
        ("/garbage", "invalid response header"),
        ("/length", "invalid Content-Length \"12x\""),
        ("/lengths", "conflicting Content-Length values 2 and 3"),
    ] {
        let (status, headers, body) = exchange(&mut client, "GET", path, "").await;
        assert_eq!(status, 502, "{path}: {body}");
        assert_eq!(headers["x-gantry-error"], "upstream");
        assert!(
            body.contains("instance i0 sent a malformed response") && body.contains(problem),
            "{path}: {body}"
        );
    }
    // A malformed answer is an answer: never sent again.
    assert_eq!(scripted.upstream.requests(), 3);
}

#[tokio::test]
async fn requests_arrive_in_origin_form_with_forwarded_headers_and_body() {
    let scripted = Scripted::start(|_| {
        (
            vec!["HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"],
            After::KeepOpen,
        )
    })
    .await;
    let mut client = client(proxy_to(&scripted).await).await;
    assert_eq!(
        exchange(&mut client, "POST", "/path?q=1", "payload")
            .await
            .0,
        200
    );
    let seen = scripted.seen();
    let request = &seen[0];
    assert!(
        request.starts_with("POST /path?q=1 HTTP/1.1\r\n"),
        "{request}"
    );
    for line in [
        "host: app.test\r\n",
        "content-length: 7\r\n",
        "x-forwarded-for: 127.0.0.1\r\n",
        "x-forwarded-proto: http\r\n",
        "x-forwarded-host: app.test\r\n",
    ] {
        assert!(request.contains(line), "{line:?} missing from {request}");
    }
    assert!(request.ends_with("\r\n\r\npayload"), "{request}");
}

#[tokio::test]
async fn a_body_cut_short_is_not_passed_off_as_whole() {
    use http_body_util::BodyExt;
    let scripted = Scripted::start(|request| {
        let answer = if request.starts_with("GET /chunked") {
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"
        } else {
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"
        };
        (vec![answer], After::Close)
    })
    .await;
    let port = proxy_to(&scripted).await;
    for path in ["/chunked", "/length"] {
        let mut client = client(port).await;
        let request = hyper::Request::builder()
            .uri(path)
            .header("host", "x")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        // Either no response at all or one whose body breaks off: never a
        // complete one.
        let Ok(response) = client.send_request(request).await else {
            continue;
        };
        let body = tokio::time::timeout(Duration::from_secs(5), response.into_body().collect())
            .await
            .expect("the body ends in time");
        assert!(body.is_err(), "{path}: {:?}", body.map(|b| b.to_bytes()));
    }
}

#[tokio::test]
async fn protocol_switches_are_tunnelled() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let scripted = Scripted::start(|_| {
        (
            vec![
                "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
            ],
            After::Echo,
        )
    })
    .await;
    let port = proxy_to(&scripted).await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "{head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut echoed))
        .await
        .expect("the tunnel echoes in time")
        .unwrap();
    assert_eq!(&echoed, b"ping");
    let request = &scripted.seen()[0];
    assert!(request.contains("upgrade: echo\r\n"), "{request}");
}

#[tokio::test]
async fn a_kept_alive_client_connection_follows_table_and_rule_changes() {
    let answer_a: Answer = |_| {
        (
            vec!["HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"],
            After::KeepOpen,
        )
    };
    let answer_b: Answer = |_| {
        (
            vec!["HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"],
            After::KeepOpen,
        )
    };
    let (a, b) = (
        Scripted::start(answer_a).await,
        Scripted::start(answer_b).await,
    );
    let (proxy, port) = proxy_listening(None).await;
    let mut client = client(port).await;
    proxy.set_table(table(&proxy, &[&a.upstream]));
    assert_eq!(exchange(&mut client, "GET", "/", "").await.2, "a");
    proxy.set_table(table(&proxy, &[&b.upstream]));
    assert_eq!(exchange(&mut client, "GET", "/", "").await.2, "b");
    let errors = proxy
        .set_listeners(&[crate::ListenerConfig {
            name: "lb".into(),
            port,
            rules: vec![RouteRule {
                host: None,
                path_prefix: None,
                cluster: "elsewhere".into(),
            }],
            response_timeout: None,
            ..Default::default()
        }])
        .await;
    assert!(errors.is_empty(), "{errors:?}");
    let (status, _, body) = exchange(&mut client, "GET", "/", "").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("cluster \"elsewhere\" has no enabled server group"),
        "{body}"
    );
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

/// A client that goes away while its instance is still answering leaves
/// nothing counted in flight on that instance: draining it does not wait
/// for a request nobody will finish.
#[tokio::test]
async fn a_client_gone_mid_request_is_not_left_in_flight() {
    use tokio::io::AsyncWriteExt;
    let hung = TestUpstream::start(Behaviour::Hang).await;
    let (proxy, port) = proxy_listening(None).await;
    let upstream = routable("i0", hung.addr);
    let group = crate::GroupBackend {
        name: "g".to_owned(),
        weight: 1,
        upstreams: vec![upstream.clone()],
        stats: proxy.stats().group("g"),
    };
    proxy.set_table(crate::RoutingTable::new(
        [("c".to_owned(), vec![group])].into(),
    ));
    let mut client = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while hung.requests() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(upstream.in_flight(), 1, "the request reached the instance");
    drop(client);
    while upstream.in_flight() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(upstream.in_flight(), 0, "still counted in flight");
}
