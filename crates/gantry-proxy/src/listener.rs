//! The proxy's listeners: binding, accepting, and swapping their rules and
//! the routing table without dropping a connection.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::discovery::{ListenerConfig, RoutingTable};
use crate::service::{self, Ctx};
use crate::stats::Stats;
use crate::workers::{self, Worker};

#[derive(Debug, thiserror::Error)]
#[error("load balancer {name:?}: cannot listen on port {port}: {message}")]
pub struct ProxyConfigError {
    pub name: String,
    pub port: u16,
    pub message: String,
}

/// The load balancer: cheap to clone, shared by listeners and their owner.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    table: RwLock<Arc<RoutingTable>>,
    /// Bumped after every change of the table or of a listener's rules:
    /// connections keep both until it moves (see [`Proxy::context`]).
    generation: AtomicU64,
    listeners: Mutex<HashMap<String, Running>>,
    /// Every listener accepts on each of them (see `workers`).
    workers: Vec<Worker>,
    stats: Stats,
}

struct Running {
    config: Arc<RwLock<Arc<ListenerConfig>>>,
    cancel: CancellationToken,
}

impl Default for Proxy {
    fn default() -> Self {
        Proxy::new()
    }
}

impl Proxy {
    pub fn new() -> Proxy {
        Proxy {
            inner: Arc::new(Inner {
                table: RwLock::new(Arc::new(RoutingTable::default())),
                generation: AtomicU64::new(0),
                listeners: Mutex::new(HashMap::new()),
                workers: workers::start(),
                stats: Stats::default(),
            }),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Replaces the routing table; new requests use it at once.
    pub fn set_table(&self, table: RoutingTable) {
        *self.inner.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Opens new listeners, updates the rules of existing ones and closes
    /// those no longer wanted. A listener that cannot bind is reported; the
    /// others are applied regardless.
    pub async fn set_listeners(&self, configs: &[ListenerConfig]) -> Vec<ProxyConfigError> {
        let mut errors = Vec::new();
        let wanted: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
        {
            let mut listeners = self
                .inner
                .listeners
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            listeners.retain(|name, running| {
                let port_same = configs
                    .iter()
                    .any(|c| &c.name == name && c.port == running.port());
                let keep = wanted.contains(&name.as_str()) && port_same;
                if !keep {
                    running.cancel.cancel();
                }
                keep
            });
            for config in configs {
                if let Some(running) = listeners.get(&config.name) {
                    *running.config.write().unwrap_or_else(|e| e.into_inner()) =
                        Arc::new(config.clone());
                }
            }
            self.inner.generation.fetch_add(1, Ordering::SeqCst);
        }
        for config in configs {
            let exists = self
                .inner
                .listeners
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&config.name);
            if exists {
                continue;
            }
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, config.port));
            match TcpListener::bind(addr).await {
                Ok(listener) => {
                    let running = Running {
                        config: Arc::new(RwLock::new(Arc::new(config.clone()))),
                        cancel: CancellationToken::new(),
                    };
                    tokio::spawn(accept_loop(
                        self.clone(),
                        listener,
                        running.config.clone(),
                        running.cancel.clone(),
                    ));
                    tracing::info!(listener = %config.name, port = config.port, "listening");
                    self.inner
                        .listeners
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(config.name.clone(), running);
                }
                Err(error) => errors.push(ProxyConfigError {
                    name: config.name.clone(),
                    port: config.port,
                    message: error.to_string(),
                }),
            }
        }
        errors
    }

    /// Names of the listeners that are open.
    pub fn listening(&self) -> Vec<String> {
        let listeners = self
            .inner
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        listeners.keys().cloned().collect()
    }

    fn table(&self) -> Arc<RoutingTable> {
        self.inner
            .table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What a request on a connection to `config`'s listener routes by. The
    /// connection keeps it (`cached`) while neither the table nor the rules
    /// change: a request then costs one atomic load instead of two lock
    /// round trips and two reference counts on memory every worker writes.
    fn context(
        &self,
        config: &RwLock<Arc<ListenerConfig>>,
        client_ip: &hyper::header::HeaderValue,
        cached: &RefCell<Option<Arc<Ctx>>>,
    ) -> Arc<Ctx> {
        let generation = self.inner.generation.load(Ordering::SeqCst);
        let mut cached = cached.borrow_mut();
        if let Some(ctx) = cached.as_ref()
            && ctx.generation == generation
        {
            return ctx.clone();
        }
        let ctx = Arc::new(Ctx {
            table: self.table(),
            listener: config.read().unwrap_or_else(|e| e.into_inner()).clone(),
            client_ip: client_ip.clone(),
            generation,
        });
        *cached = Some(ctx.clone());
        ctx
    }
}

impl Running {
    fn port(&self) -> u16 {
        self.config.read().unwrap_or_else(|e| e.into_inner()).port
    }
}

/// Accepts connections and deals them to the workers in turn, so that
/// each carries an even share of them (workers accepting on a shared socket
/// themselves split a burst of new connections unevenly, and the busier one
/// then makes the tail latency).
async fn accept_loop(
    proxy: Proxy,
    listener: TcpListener,
    config: Arc<RwLock<Arc<ListenerConfig>>>,
    cancel: CancellationToken,
) {
    let mut next_worker = 0;
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        // Leaves this runtime's reactor, to join the worker's.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "cannot hand a connection to a proxy worker");
                continue;
            }
        };
        let workers = &proxy.inner.workers;
        let worker = &workers[next_worker % workers.len()];
        next_worker = next_worker.wrapping_add(1);
        let runtime = worker.runtime.clone();
        let proxy = proxy.clone();
        let config = config.clone();
        runtime.spawn(async move {
            let stream = match tokio::net::TcpStream::from_std(stream) {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::warn!(%error, "a proxy worker cannot take a connection");
                    return;
                }
            };
            let client_ip = client_ip_header(peer);
            let cached = RefCell::new(None);
            let service = service_fn(move |req| {
                let ctx = proxy.context(&config, &client_ip, &cached);
                async move { Ok::<_, std::convert::Infallible>(service::handle(req, ctx).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(error) = connection.await {
                tracing::debug!(%error, "client connection ended with an error");
            }
        });
    }
}

/// The client's address as an `X-Forwarded-For` entry.
fn client_ip_header(peer: SocketAddr) -> hyper::header::HeaderValue {
    hyper::header::HeaderValue::from_str(&peer.ip().to_string())
        .expect("an IP address is a valid header value")
}
