//! The load balancer's reading of an instance's answer
//! (`gantry-proxy/src/upstream_http1.rs`): the response head, its body's
//! framing (Content-Length, chunked with trailers, until close) and the body
//! itself, over a real loopback connection. A status or an error, never a
//! panic.
//!
//! The first byte says whether the request was a HEAD (its low bit) and how
//! the answer is cut into writes (the rest), so that heads and chunk-size
//! lines also arrive split across reads; the rest is what the instance
//! sends before it closes the connection.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// One runtime and one listener for every input: a new socket pair per input
/// costs a connect and an accept, not a bind.
struct Loopback {
    runtime: Runtime,
    listener: TcpListener,
    addr: SocketAddr,
}

fn loopback() -> &'static Loopback {
    static LOOPBACK: OnceLock<Loopback> = OnceLock::new();
    LOOPBACK.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .expect("a tokio runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback listener");
        let addr = listener.local_addr().expect("the listener's address");
        Loopback {
            runtime,
            listener,
            addr,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, answer)) = data.split_first() else {
        return;
    };
    let is_head = selector & 1 == 1;
    // 0 sends the answer in one write; otherwise in pieces of this size.
    let piece = usize::from(selector >> 1);
    let loopback = loopback();
    loopback.runtime.block_on(async {
        let (instance, accepted) = tokio::join!(
            TcpStream::connect(loopback.addr),
            loopback.listener.accept()
        );
        let mut instance = instance.expect("connecting over loopback");
        let (proxy_side, _) = accepted.expect("accepting over loopback");
        let answer = answer.to_vec();
        let sender = tokio::spawn(async move {
            if piece == 0 {
                let _ = instance.write_all(&answer).await;
            } else {
                for part in answer.chunks(piece) {
                    if instance.write_all(part).await.is_err() {
                        break;
                    }
                    // Lets the reader see this piece on its own.
                    tokio::task::yield_now().await;
                }
            }
            let _ = instance.shutdown().await;
        });
        let read = gantry_proxy::read_response(proxy_side, loopback.addr, is_head);
        // Every answer ends with the instance closing, so the read ends; the
        // timeout turns a hang into a finding instead of a stuck run.
        let _status_or_error = tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("reading a closed connection's answer hangs");
        let _ = sender.await;
    });
});
