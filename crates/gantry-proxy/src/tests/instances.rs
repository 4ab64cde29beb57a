//! How the proxy treats its instances: which requests are resent after an
//! instance died with them, kept-alive and pooled connections, a hung
//! instance, a large body streamed, a client gone mid-request.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Behaviour, TestUpstream, counting_upstream, proxy_listening, routable, send, table};

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
