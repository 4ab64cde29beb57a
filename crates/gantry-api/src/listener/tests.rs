use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::{ListenerConfig, Timeouts, serve};

/// Sends one request on a kept-alive connection, reads its answer, then
/// waits for the server to close it: how long after the answer.
async fn idle_time_until_closed(address: std::net::SocketAddr) -> Option<Duration> {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let read = stream.read(&mut buf).await.unwrap();
    assert!(buf[..read].starts_with(b"HTTP/1.1 200"));
    let answered = Instant::now();
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => Some(answered.elapsed()),
        Ok(Ok(_)) => panic!("unexpected bytes"),
        Err(_) => None,
    }
}

/// What the listener's design rests on: in the hyper of Cargo.lock,
/// `header_read_timeout` also runs while a kept-alive connection waits for
/// its next request, so it cannot stand for a separate keep-alive timeout.
#[tokio::test]
async fn hypers_header_read_timeout_also_closes_idle_kept_alive_connections() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(String::from("ok")))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_millis(500))
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let closed = idle_time_until_closed(address)
        .await
        .expect("hyper kept the idle connection open");
    assert!(closed < Duration::from_secs(2), "closed after {closed:?}");
}

fn app() -> Router {
    Router::new().route("/", get(|| async { "ok" }))
}

async fn start(timeouts: Timeouts) -> (std::net::SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let admission = gantry_listen::Admission::new(
        gantry_listen::Limits::default(),
        gantry_listen::FdBudget::with_capacity(100),
    );
    tokio::spawn(serve(
        listener,
        app(),
        admission,
        ListenerConfig {
            timeouts,
            drain: Duration::from_secs(1),
        },
        shutdown.clone(),
    ));
    (address, shutdown)
}

#[tokio::test]
async fn an_idle_connection_lives_for_the_keep_alive_timeout_not_the_header_one() {
    let (address, shutdown) = start(Timeouts {
        header: Duration::from_millis(300),
        keep_alive: Duration::from_millis(1500),
        body: Duration::from_secs(5),
    })
    .await;
    let closed = idle_time_until_closed(address)
        .await
        .expect("the idle connection was never closed");
    assert!(
        closed >= Duration::from_millis(1200) && closed < Duration::from_secs(3),
        "closed after {closed:?}"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_connection_past_the_cap_is_answered_503_and_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let admission = gantry_listen::Admission::new(
        gantry_listen::Limits {
            max_connections: 10,
            max_per_address: 1,
        },
        gantry_listen::FdBudget::with_capacity(100),
    );
    tokio::spawn(serve(
        listener,
        app(),
        admission,
        ListenerConfig {
            timeouts: Timeouts::default(),
            drain: Duration::from_secs(1),
        },
        CancellationToken::new(),
    ));
    let _first = TcpStream::connect(address).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut second = TcpStream::connect(address).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), second.read_to_end(&mut answer))
        .await
        .expect("the refused connection was closed")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("client address holds its maximum of 1"),
        "{answer}"
    );
}
