//! What bounds a client: the header, keep-alive and body timeouts, the
//! connection caps, and the memory budget of bodies read whole. Real
//! sockets on loopback; every wait is bounded.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

use super::{TestUpstream, table};
use crate::discovery::{ClientTimeouts, ConnectionLimits, RouteRule};
use crate::{BodyBudgetConfig, FdBudget, ListenerConfig, Proxy, ProxyConfig};

/// An instance that reads each request with its `Content-Length` body
/// and answers `200` with the number of body bytes it got; keeps
/// connections open. Counts requests.
async fn length_upstream() -> TestUpstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = TestUpstream {
        addr: listener.local_addr().unwrap(),
        requests: Arc::default(),
        connections: Arc::default(),
    };
    let requests = upstream.requests.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let requests = requests.clone();
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                loop {
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(value) =
                            line.to_ascii_lowercase().strip_prefix("content-length:")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0u8; length];
                    if stream.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    requests.fetch_add(1, Ordering::SeqCst);
                    let text = length.to_string();
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
                        text.len()
                    );
                    if stream.get_mut().write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    upstream
}

/// A proxy with one listener ("lb", everything to cluster "c") with these
/// timeouts and limits; its port.
async fn listening(
    config: ProxyConfig,
    timeouts: ClientTimeouts,
    limits: ConnectionLimits,
) -> (Proxy, u16) {
    let proxy = Proxy::with_config(config);
    let port = free_port();
    let errors = proxy
        .set_listeners(&[ListenerConfig {
            name: "lb".into(),
            port,
            rules: vec![RouteRule {
                host: None,
                path_prefix: None,
                cluster: "c".into(),
            }],
            response_timeout: None,
            client_timeouts: timeouts,
            limits,
        }])
        .await;
    assert!(errors.is_empty(), "{errors:?}");
    (proxy, port)
}

fn plenty() -> ProxyConfig {
    ProxyConfig {
        body_budget: BodyBudgetConfig::default(),
        fd_budget: Some(FdBudget::with_capacity(100_000)),
    }
}

/// A connection to the proxy from the loopback address `from`.
async fn connect_from(from: Ipv4Addr, port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
    socket
        .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .unwrap()
}

/// Reads until the proxy closes the connection (or 10 s pass); returns
/// what it sent and how long after `since` it closed.
async fn read_until_closed(stream: &mut TcpStream, since: Instant) -> (String, Duration) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = since + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the proxy kept the connection open for 10 s; it sent {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), since.elapsed())
}

/// Reads one whole response with a `Content-Length` body.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
            .await
            .expect("a response within 10 s")
            .unwrap();
        assert!(n > 0, "the connection closed after {head:?}");
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).await.unwrap();
    head + &String::from_utf8_lossy(&body)
}

fn timeouts(header: u64, keep_alive: u64, body: u64) -> ClientTimeouts {
    ClientTimeouts {
        header: Some(Duration::from_millis(header)),
        keep_alive: Some(Duration::from_millis(keep_alive)),
        body: Some(Duration::from_millis(body)),
        send: None,
    }
}

#[tokio::test]
async fn a_client_that_sends_no_complete_header_in_time_is_disconnected() {
    let upstream = length_upstream().await;
    let (proxy, port) = listening(
        plenty(),
        timeouts(400, 5_000, 5_000),
        ConnectionLimits::default(),
    )
    .await;
    proxy.set_table(table(&proxy, &[&upstream]));

    // Nothing at all, and half a header sent a byte at a time: both are
    // timed from the accept.
    let started = Instant::now();
    let mut silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut dribbling = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let dribble = async {
        for byte in b"GET / HTTP/1.1\r\nHost: x\r\n" {
            if dribbling.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        read_until_closed(&mut dribbling, started).await
    };
    let ((_, silent_after), (_, dribbling_after)) =
        tokio::join!(read_until_closed(&mut silent, started), dribble);
    for waited in [silent_after, dribbling_after] {
        assert!(
            waited >= Duration::from_millis(350) && waited < Duration::from_secs(3),
            "closed after {waited:?}"
        );
    }
    assert_eq!(upstream.requests(), 0);
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let upstream = length_upstream().await;
    // A header timeout shorter than the keep-alive one: an idle connection
    // outlives the header timeout (hyper's own header timeout would close
    // it then) and is closed by the keep-alive timeout.
    let (proxy, port) = listening(
        plenty(),
        timeouts(300, 1_200, 5_000),
        ConnectionLimits::default(),
    )
    .await;
    proxy.set_table(table(&proxy, &[&upstream]));
    let mut client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    for i in 0..3 {
        // Each wait is longer than the header timeout, shorter than the
        // keep-alive one: the connection stays.
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let answer = read_response(&mut client).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "request {i}: {answer}");
    }
    let idle_since = Instant::now();
    let (rest, waited) = read_until_closed(&mut client, idle_since).await;
    assert!(rest.is_empty(), "{rest}");
    assert!(
        waited >= Duration::from_millis(1_100) && waited < Duration::from_secs(4),
        "an idle connection closed after {waited:?}"
    );

    // A later request's header is timed from its first byte, by the header
    // timeout.
    let mut client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_response(&mut client).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let first_byte = Instant::now();
    client.write_all(b"GET / HT").await.unwrap();
    let (_, waited) = read_until_closed(&mut client, first_byte).await;
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_millis(1_000),
        "a half-sent header closed after {waited:?}"
    );
}

#[tokio::test]
async fn a_client_pausing_longer_than_the_body_timeout_gets_a_408() {
    let upstream = length_upstream().await;
    let (proxy, port) = listening(
        plenty(),
        timeouts(5_000, 5_000, 400),
        ConnectionLimits::default(),
    )
    .await;
    proxy.set_table(table(&proxy, &[&upstream]));
    let mut client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // Pauses shorter than the timeout are fine, however long the whole.
    client
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n")
        .await
        .unwrap();
    for byte in b"abcdef" {
        tokio::time::sleep(Duration::from_millis(200)).await;
        client.write_all(&[*byte]).await.unwrap();
    }
    let answer = read_response(&mut client).await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("\r\n6"),
        "{answer}"
    );

    let started = Instant::now();
    client
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        .await
        .unwrap();
    let (answer, waited) = read_until_closed(&mut client, started).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("x-gantry-error: client"), "{answer}");
    assert!(
        waited >= Duration::from_millis(350) && waited < Duration::from_secs(3),
        "answered after {waited:?}"
    );
    assert_eq!(upstream.requests(), 1, "a cut body is not sent on");
}

#[tokio::test]
async fn a_streamed_body_that_stalls_is_cut_off_after_the_body_timeout() {
    let (addr, received) = super::counting_upstream().await;
    let upstream = TestUpstream {
        addr,
        requests: Arc::default(),
        connections: Arc::default(),
    };
    let (proxy, port) = listening(
        plenty(),
        timeouts(5_000, 5_000, 400),
        ConnectionLimits::default(),
    )
    .await;
    proxy.set_table(table(&proxy, &[&upstream]));
    const LENGTH: usize = 4 << 20;
    let mut client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: {LENGTH}\r\n\r\n");
    client.write_all(head.as_bytes()).await.unwrap();
    client.write_all(&vec![1u8; LENGTH / 4]).await.unwrap();
    let started = Instant::now();
    let (answer, waited) = read_until_closed(&mut client, started).await;
    assert!(
        waited < Duration::from_secs(3),
        "the stalled upload held on for {waited:?}: {answer}"
    );
    assert!(received.load(Ordering::SeqCst) < LENGTH);
    // The client's fault, told as nginx's client_body_timeout tells it.
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn connections_past_a_cap_are_closed_at_once_and_other_addresses_still_served() {
    let upstream = length_upstream().await;
    let limits = ConnectionLimits {
        connections: Some(8),
        per_address: Some(5),
    };
    let (proxy, port) = listening(plenty(), ClientTimeouts::default(), limits).await;
    proxy.set_table(table(&proxy, &[&upstream]));
    let flooder = Ipv4Addr::new(127, 0, 0, 1);
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(connect_from(flooder, port).await);
    }
    // Let the accept loop admit them before the sixth.
    wait_for(|| proxy.open_connections() == 5).await;
    let started = Instant::now();
    let mut sixth = connect_from(flooder, port).await;
    let (answer, waited) = read_until_closed(&mut sixth, started).await;
    assert!(answer.is_empty(), "{answer}");
    assert!(waited < Duration::from_secs(1), "refused after {waited:?}");
    assert_eq!(proxy.refused_connections(), 1);

    let mut other = connect_from(Ipv4Addr::new(127, 0, 0, 2), port).await;
    other
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut other).await.starts_with("HTTP/1.1 200"));

    // The listener's own cap, across addresses.
    let mut more = Vec::new();
    for _ in 0..2 {
        more.push(connect_from(Ipv4Addr::new(127, 0, 0, 3), port).await);
    }
    wait_for(|| proxy.open_connections() == 8).await;
    let mut ninth = connect_from(Ipv4Addr::new(127, 0, 0, 4), port).await;
    let (answer, _) = read_until_closed(&mut ninth, Instant::now()).await;
    assert!(answer.is_empty(), "{answer}");
    assert_eq!(proxy.refused_connections(), 2);

    // A place given back is taken again.
    drop(held.pop());
    wait_for(|| proxy.open_connections() == 7).await;
    let mut again = connect_from(flooder, port).await;
    again
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut again).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn bodies_past_the_memory_budget_are_streamed_not_refused() {
    let upstream = length_upstream().await;
    const BODY: usize = 400 << 10;
    let config = ProxyConfig {
        body_budget: BodyBudgetConfig {
            memory: 1 << 20,
            buffer_time: Duration::from_secs(30),
        },
        ..plenty()
    };
    let (proxy, port) = listening(
        config,
        ClientTimeouts::default(),
        ConnectionLimits::default(),
    )
    .await;
    proxy.set_table(table(&proxy, &[&upstream]));
    // Four slow senders of 400 KiB each, with a quarter sent: two bodies fit
    // in the 1 MiB budget, the others are streamed.
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let head = format!("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY}\r\n\r\n");
        client.write_all(head.as_bytes()).await.unwrap();
        client.write_all(&vec![2u8; BODY / 4]).await.unwrap();
        clients.push(client);
    }
    wait_for(|| proxy.bodies_streamed_for_budget() == 2).await;
    assert_eq!(proxy.buffered_body_bytes(), 2 * BODY);
    for client in &mut clients {
        client.write_all(&vec![2u8; BODY * 3 / 4]).await.unwrap();
    }
    for client in &mut clients {
        let answer = read_response(client).await;
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with(&format!("\r\n{BODY}")),
            "{answer}"
        );
    }
    assert_eq!(upstream.requests(), 4);
    wait_for(|| proxy.buffered_body_bytes() == 0).await;
}

#[tokio::test]
async fn a_body_slower_than_the_buffer_time_gives_its_budget_back_and_is_streamed() {
    let upstream = length_upstream().await;
    const BODY: usize = 100_000;
    let config = ProxyConfig {
        body_budget: BodyBudgetConfig {
            memory: 1 << 20,
            buffer_time: Duration::from_millis(300),
        },
        ..plenty()
    };
    let (proxy, port) = listening(
        config,
        ClientTimeouts::default(),
        ConnectionLimits::default(),
    )
    .await;
    proxy.set_table(table(&proxy, &[&upstream]));
    let mut client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY}\r\n\r\n");
    client.write_all(head.as_bytes()).await.unwrap();
    client.write_all(&vec![3u8; BODY / 2]).await.unwrap();
    wait_for(|| proxy.buffered_body_bytes() == BODY).await;
    wait_for(|| proxy.buffered_body_bytes() == 0).await;
    assert_eq!(proxy.bodies_streamed_for_budget(), 1);
    client.write_all(&vec![3u8; BODY / 2]).await.unwrap();
    let answer = read_response(&mut client).await;
    assert!(answer.ends_with(&format!("\r\n{BODY}")), "{answer}");
}

/// Waits up to 5 s for `condition`.
async fn wait_for(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An instance that answers every connection's first request with `size`
/// bytes, whatever the request.
async fn large_answer_upstream(size: usize) -> TestUpstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = TestUpstream {
        addr: listener.local_addr().unwrap(),
        requests: Arc::default(),
        connections: Arc::default(),
    };
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                let mut line = String::new();
                while stream.read_line(&mut line).await.unwrap_or(0) > 0 && line != "\r\n" {
                    line.clear();
                }
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
                let stream = stream.get_mut();
                if stream.write_all(head.as_bytes()).await.is_ok() {
                    let _ = stream.write_all(&vec![b'x'; size]).await;
                }
            });
        }
    });
    upstream
}

#[tokio::test]
async fn a_client_that_stops_reading_its_response_is_cut_off_after_the_send_timeout() {
    // Far more than the socket buffers on both sides hold.
    const SIZE: usize = 64 << 20;
    let upstream = large_answer_upstream(SIZE).await;
    let mut timeouts = timeouts(5_000, 5_000, 5_000);
    timeouts.send = Some(Duration::from_millis(400));
    let (proxy, port) = listening(plenty(), timeouts, ConnectionLimits::default()).await;
    proxy.set_table(table(&proxy, &[&upstream]));
    let mut client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    client
        .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The client takes nothing for well past the send timeout...
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // ...then reads what is left: the proxy gave up on it, so the answer
    // ends (closed or reset) before its length.
    let started = Instant::now();
    let mut got = 0usize;
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), client.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got += n,
            Err(_) => panic!("the connection stayed open after {got} bytes"),
        }
    }
    assert!(got < SIZE, "the whole response came ({got} bytes)");
    assert!(started.elapsed() < Duration::from_secs(10));
}
