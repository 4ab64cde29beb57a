//! The direct path (`upstream_http1`): every way an instance can frame a
//! response, seen through the proxy by a real HTTP client over real sockets.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{TestUpstream, proxy_listening, table};
use crate::discovery::RouteRule;

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
