//! The proxy's listeners: binding, accepting, and swapping their rules and
//! the routing table without dropping a connection.
//!
//! Every accepted connection is first admitted (`gantry_listen`): past the
//! listener's cap, its client address's cap or the process's share of file
//! descriptors it is closed at once, counted and logged (at most every
//! [`REFUSAL_LOG_EVERY`]). Admission happens once per connection; requests
//! pay nothing for it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use gantry_listen::{Admission, FdBudget, Refused};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;

use crate::body_budget::{BodyBudget, BodyBudgetConfig};
use crate::client_conn::{Activity, IdleTimeouts, TimedStream, Tracked};
use crate::discovery::{ListenerConfig, RoutingTable};
use crate::memory::ConnectionCount;
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

/// The longest a refused connection or a failing accept goes unlogged.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);
/// How long the accept loop waits after a failed accept (out of file
/// descriptors, most often) before it tries again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Connections the kernel queues for an accept loop: nginx's 511 is for
/// one worker of many; one loop deals to all workers here, and a burst of
/// refused connections must not crowd out the others.
const LISTEN_BACKLOG: u32 = 4096;

/// The most a client connection's read (and write) buffer grows to. hyper's
/// default, about 400 KiB, is what a fast upload grows it to, and 300
/// uploading clients then held 75 MB of buffers alone; 32 KiB, nginx's
/// `large_client_header_buffers` in all, is also the largest request
/// header accepted.
const CLIENT_BUFFER: usize = 32 << 10;

/// What a proxy shares among all its listeners.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// The memory all request bodies read whole may hold at once.
    pub body_budget: BodyBudgetConfig,
    /// The process's share of file descriptors for client connections;
    /// unset, [`FdBudget::for_process`] (which raises the soft limit).
    pub fd_budget: Option<FdBudget>,
}

impl ProxyConfig {
    /// The defaults, with the body budget's memory taken from
    /// `GANTRY_LB_BODY_MEMORY` (bytes, or a number with `KiB` or `MiB`)
    /// when it is set: the data plane is started by `gantry serve` and
    /// inherits its environment.
    pub fn from_environment() -> ProxyConfig {
        let mut config = ProxyConfig {
            body_budget: BodyBudgetConfig::default(),
            fd_budget: None,
        };
        if let Ok(value) = std::env::var("GANTRY_LB_BODY_MEMORY") {
            match parse_bytes(&value) {
                Some(bytes) => config.body_budget.memory = bytes,
                None => tracing::warn!(
                    %value,
                    "GANTRY_LB_BODY_MEMORY is not a size; using the default"
                ),
            }
        }
        config
    }
}

fn parse_bytes(value: &str) -> Option<usize> {
    let value = value.trim();
    let (number, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => value.split_at(at),
        None => (value, ""),
    };
    let number: usize = number.parse().ok()?;
    let unit = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(unit)
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
    /// One for the whole process, shared by every listener's admission.
    fd_budget: FdBudget,
    body_budget: BodyBudget,
    connections: ConnectionCount,
    /// Connections closed at accept for passing a limit.
    refused: AtomicU64,
    /// Sockets already listening, by port, offered by the owner (see
    /// [`Proxy::offer_listener`]); the next `set_listeners` takes or drops them.
    offered: Mutex<HashMap<u16, std::net::TcpListener>>,
}

struct Running {
    config: Arc<RwLock<Arc<ListenerConfig>>>,
    admission: Admission,
    cancel: CancellationToken,
}

impl Default for Proxy {
    fn default() -> Self {
        Proxy::new()
    }
}

impl Proxy {
    pub fn new() -> Proxy {
        Proxy::with_config(ProxyConfig::from_environment())
    }

    pub fn with_config(config: ProxyConfig) -> Proxy {
        let fd_budget = config.fd_budget.unwrap_or_else(|| {
            FdBudget::for_process().unwrap_or_else(|error| {
                tracing::warn!(%error, "cannot read or raise the file descriptor limit; assuming 1024");
                FdBudget::new(1024, 256)
            })
        });
        tracing::info!(
            connections = fd_budget.capacity(),
            body_memory = config.body_budget.memory,
            "load balancer bounds"
        );
        Proxy {
            inner: Arc::new(Inner {
                fd_budget,
                body_budget: BodyBudget::new(config.body_budget),
                connections: ConnectionCount::default(),
                refused: AtomicU64::new(0),
                table: RwLock::new(Arc::new(RoutingTable::default())),
                generation: AtomicU64::new(0),
                listeners: Mutex::new(HashMap::new()),
                workers: workers::start(),
                stats: Stats::default(),
                offered: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Client connections open on all listeners now.
    pub fn open_connections(&self) -> usize {
        self.inner.connections.open()
    }

    /// Client connections closed at accept for passing a limit, since the
    /// proxy started.
    pub fn refused_connections(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// Bytes of request bodies held in memory now.
    pub fn buffered_body_bytes(&self) -> usize {
        self.inner.body_budget.in_use()
    }

    /// Requests whose body was streamed because the body budget was spent
    /// or the body was slow to arrive, since the proxy started.
    pub fn bodies_streamed_for_budget(&self) -> u64 {
        self.inner.body_budget.streamed()
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
                    running.admission.set_limits(config.limits.resolve());
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
            match self.bind(addr).await {
                Ok(listener) => {
                    let running = Running {
                        config: Arc::new(RwLock::new(Arc::new(config.clone()))),
                        admission: Admission::new(
                            config.limits.resolve(),
                            self.inner.fd_budget.clone(),
                        ),
                        cancel: CancellationToken::new(),
                    };
                    tokio::spawn(accept_loop(
                        self.clone(),
                        listener,
                        running.config.clone(),
                        running.admission.clone(),
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
        self.inner
            .offered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        errors
    }

    /// Offers a socket already listening on `port` (one a previous data
    /// plane left, whose backlog holds connections waiting to be served):
    /// the next `set_listeners` accepts on it instead of binding the port,
    /// and drops it when no listener needs it.
    pub fn offer_listener(&self, port: u16, listener: std::net::TcpListener) {
        self.inner
            .offered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(port, listener);
    }

    async fn bind(&self, addr: SocketAddr) -> std::io::Result<TcpListener> {
        let offered = self
            .inner
            .offered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&addr.port());
        match offered {
            Some(listener) => {
                listener.set_nonblocking(true)?;
                TcpListener::from_std(listener)
            }
            None => bind_with_backlog(addr),
        }
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
            body_budget: self.inner.body_budget.clone(),
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

fn bind_with_backlog(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accepts connections and deals them to the workers in turn, so that
/// each carries an even share of them (workers accepting on a shared socket
/// themselves split a burst of new connections unevenly, and the busier one
/// then makes the tail latency).
async fn accept_loop(
    proxy: Proxy,
    listener: TcpListener,
    config: Arc<RwLock<Arc<ListenerConfig>>>,
    admission: Admission,
    cancel: CancellationToken,
) {
    let mut next_worker = 0;
    let mut refusals = RateLimitedLog::default();
    let mut accept_errors = RateLimitedLog::default();
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep
                    // serving (retrying at once would spin on EMFILE).
                    if let Some(failed) = accept_errors.due() {
                        tracing::warn!(%error, failed, "accept failed");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let permit = match admission.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(reason) => {
                // Dropping the socket closes it: the client sees its end.
                drop(stream);
                proxy.inner.refused.fetch_add(1, Ordering::Relaxed);
                if let Some(refused) = refusals.due() {
                    let name = config
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .name
                        .clone();
                    // One client at its cap is routine; the listener or the
                    // process at theirs is what an operator must hear of.
                    if matches!(reason, Refused::AddressFull(_)) {
                        tracing::debug!(listener = %name, client = %peer.ip(), refused, %reason, "connections refused");
                    } else {
                        tracing::warn!(listener = %name, client = %peer.ip(), refused, %reason, "connections refused");
                    }
                }
                continue;
            }
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
        let timeouts = config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .client_timeouts;
        let timeouts = IdleTimeouts {
            header: timeouts.header(),
            keep_alive: timeouts.keep_alive(),
            send: timeouts.send(),
        };
        let workers = &proxy.inner.workers;
        let worker = &workers[next_worker % workers.len()];
        next_worker = next_worker.wrapping_add(1);
        let runtime = worker.runtime.clone();
        let proxy = proxy.clone();
        let config = config.clone();
        runtime.spawn(async move {
            // The connection's place, held as long as it is open.
            let _permit = permit;
            let stream = match tokio::net::TcpStream::from_std(stream) {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::warn!(%error, "a proxy worker cannot take a connection");
                    return;
                }
            };
            proxy.inner.connections.opened();
            serve(&proxy, stream, peer, config, timeouts).await;
            proxy.inner.connections.closed();
        });
    }
}

/// Serves one client connection until it ends.
async fn serve(
    proxy: &Proxy,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    config: Arc<RwLock<Arc<ListenerConfig>>>,
    timeouts: IdleTimeouts,
) {
    let client_ip = client_ip_header(peer);
    let cached = RefCell::new(None);
    let activity = Arc::new(Activity::default());
    let io = TimedStream::new(stream, activity.clone(), timeouts);
    let proxy = proxy.clone();
    let service = service_fn(move |req| {
        let ctx = proxy.context(&config, &client_ip, &cached);
        let busy = activity.begin();
        async move {
            let response = service::handle(req, ctx).await;
            if response.status() == hyper::StatusCode::SWITCHING_PROTOCOLS {
                busy.tunnel();
            }
            let response = response.map(|body| Tracked { body, _busy: busy });
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .max_buf_size(CLIENT_BUFFER)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    if let Err(error) = connection.await {
        tracing::debug!(%error, "client connection ended with an error");
    }
}

/// Says when a repeated event is due to be logged again, and how many
/// times it happened since it last was.
#[derive(Default)]
struct RateLimitedLog {
    last: Option<Instant>,
    since: u64,
}

impl RateLimitedLog {
    fn due(&mut self) -> Option<u64> {
        self.since += 1;
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < REFUSAL_LOG_EVERY)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.since))
    }
}

/// The client's address as an `X-Forwarded-For` entry.
fn client_ip_header(peer: SocketAddr) -> hyper::header::HeaderValue {
    hyper::header::HeaderValue::from_str(&peer.ip().to_string())
        .expect("an IP address is a valid header value")
}
