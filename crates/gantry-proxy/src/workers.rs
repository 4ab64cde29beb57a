//! The threads that carry requests: one per core, each with its own
//! single-threaded runtime and its own pool of upstream connections
//! (`upstream_pool`).
//!
//! Why not the process's multi-threaded runtime: a proxied request is a
//! chain of small wake-ups (client socket readable → the server connection's
//! task → hyper's pooled upstream connection task → upstream socket readable
//! → back). On a work-stealing runtime the links of that chain land on
//! different threads, and most of the data plane's time went to the kernel
//! waking threads and switching between them. Here a connection, the
//! upstream connections its requests use and every task they spawn stay on
//! one worker, as in an nginx worker process (and most requests no longer
//! cross to an upstream connection task at all: see `upstream_http1`). The
//! listener's accept loop deals new connections to the workers in turn; the
//! shared state (routing table, health) is atomics and `Arc` swaps, and the
//! counters every request bumps have a slot per worker (`per_worker`).

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::{per_worker, upstream_pool};

/// One request-carrying thread. Dropping it ends the thread and everything
/// running on it.
pub(crate) struct Worker {
    pub(crate) runtime: Handle,
    _stop: oneshot::Sender<()>,
}

/// One worker per core the process may use.
pub(crate) fn start() -> Vec<Worker> {
    (0..count()).map(start_one).collect()
}

/// How many workers a proxy runs.
pub(crate) fn count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn start_one(index: usize) -> Worker {
    let (stop, stopped) = oneshot::channel::<()>();
    let (runtime_tx, runtime_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("gantry-proxy-{index}"))
        .spawn(move || {
            per_worker::set_worker(index);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a single-threaded tokio runtime builds");
            let _ = runtime_tx.send(runtime.handle().clone());
            // Until the worker is dropped (the sender closes the channel),
            // closing this thread's idle upstream connections now and then.
            runtime.block_on(async {
                let mut sweep = tokio::time::interval(upstream_pool::IDLE_TIMEOUT / 2);
                tokio::select! {
                    _ = stopped => {}
                    _ = async { loop { sweep.tick().await; upstream_pool::sweep(); } } => {}
                }
            });
        })
        .expect("the proxy can start its worker threads");
    let runtime = runtime_rx
        .recv()
        .expect("a proxy worker thread reports its runtime");
    Worker {
        runtime,
        _stop: stop,
    }
}
