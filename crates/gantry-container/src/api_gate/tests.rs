use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::ApiGate;

/// The docker CLI sends a request's header, then its body: the refusal must reach it
/// even when the body comes a moment later, not a "broken pipe" on its next write.
#[tokio::test]
async fn a_refused_call_whose_body_comes_after_its_header_gets_the_reason_not_a_broken_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("gate.sock");
    // Refused calls never reach the engine: it need not exist.
    let _gate = ApiGate::start(&socket, &dir.path().join("no-engine.sock")).unwrap();
    let body = br#"{"Image":"debian","HostConfig":{"Binds":["/:/host"]}}"#;
    let mut stream = UnixStream::connect(&socket).await.unwrap();
    let header = format!(
        "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes()).await.unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream
        .write_all(&body[10..])
        .await
        .expect("the rest of the body is written: the gate has not closed on it");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("an answer within 5 s")
        .expect("the answer is read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("containers/create"), "{answer}");
}
