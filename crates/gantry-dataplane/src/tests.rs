use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use tokio::net::UnixStream;

use super::adopt;
use super::handoff::{FrameReader, Published, send_set};

/// Listening sockets on free loopback ports, each with a copy to send.
fn listeners(count: usize) -> (Vec<std::net::TcpListener>, Vec<(u16, OwnedFd)>) {
    let listeners: Vec<std::net::TcpListener> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let copies = listeners
        .iter()
        .map(|l| {
            let port = l.local_addr().expect("addr").port();
            (port, l.as_fd().try_clone_to_owned().expect("dup"))
        })
        .collect();
    (listeners, copies)
}

/// Sends the set over a socket pair; returns what the holder received.
async fn check(count: usize, stopping: bool) {
    let (listeners, copies) = listeners(count);
    let ports: Vec<u16> = copies.iter().map(|(port, _)| *port).collect();
    let (data_plane, holder) = UnixStream::pair().expect("socket pair");
    let published = Published {
        sockets: Arc::new(copies),
        stopping,
    };
    let sending = tokio::spawn(async move { send_set(&data_plane, &published).await });
    let received = FrameReader::new()
        .next(&holder)
        .await
        .expect("read")
        .expect("a complete set");
    sending.await.expect("task").expect("sent");
    assert_eq!(received.stopping, stopping);
    let received_ports: Vec<u16> = received.sockets.iter().map(|(port, _)| *port).collect();
    assert_eq!(received_ports, ports);
    for (port, fd) in received.sockets {
        // The descriptor received is the very socket listening on the port.
        let socket = std::net::TcpListener::from(fd);
        assert_eq!(socket.local_addr().expect("addr").port(), port);
    }
    drop(listeners);
}

#[tokio::test]
async fn listening_sockets_reach_the_holder_with_their_ports() {
    check(3, false).await;
}

#[tokio::test]
async fn more_sockets_than_one_message_carries_arrive_as_one_set() {
    check(300, false).await;
}

#[tokio::test]
async fn a_stop_reaches_the_holder_as_an_empty_set() {
    check(0, true).await;
}

#[test]
fn a_recorded_process_is_alive_only_with_its_own_start_time() {
    let pid = std::process::id();
    let started = adopt::start_time(pid).expect("this process has a start time");
    assert!(adopt::is_alive(pid, started));
    // The same pid with another start time is another process (a reused pid).
    assert!(!adopt::is_alive(pid, started + 1));
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let gone = child.id();
    child.wait().expect("wait");
    assert_eq!(adopt::start_time(gone), None);
}
