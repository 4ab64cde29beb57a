//! Active health checks (an HTTP GET on a path, every interval, with healthy
//! and unhealthy thresholds) and passive ejection: a connection error takes
//! an instance out of rotation at once, until the active check has seen it
//! healthy `healthy_threshold` times in a row again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckConfig {
    pub path: String,
    #[serde(with = "millis")]
    pub interval: Duration,
    #[serde(with = "millis")]
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            path: "/health".to_owned(),
            interval: Duration::from_millis(500),
            timeout: Duration::from_secs(1),
            healthy_threshold: 2,
            unhealthy_threshold: 2,
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// The health of one instance, shared by its checker, the proxy and the
/// supervisor of its process.
#[derive(Debug, Default)]
pub struct UpstreamHealth {
    healthy: AtomicBool,
    /// The process is running (the supervisor clears it on exit).
    alive: AtomicBool,
    successes: AtomicU32,
    failures: AtomicU32,
}

impl UpstreamHealth {
    /// Routable: running and seen healthy by the checks.
    pub fn is_routable(&self) -> bool {
        self.alive.load(Ordering::SeqCst) && self.healthy.load(Ordering::SeqCst)
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    pub fn set_alive(&self, alive: bool) {
        self.alive.store(alive, Ordering::SeqCst);
        if !alive {
            self.eject();
        }
    }

    /// Out of rotation at once; only active checks bring it back.
    pub fn eject(&self) {
        self.healthy.store(false, Ordering::SeqCst);
        self.successes.store(0, Ordering::SeqCst);
    }

    /// Records one active check; returns true when the health changed.
    pub fn record(&self, ok: bool, config: &HealthCheckConfig) -> bool {
        if ok {
            self.failures.store(0, Ordering::SeqCst);
            let n = self.successes.fetch_add(1, Ordering::SeqCst) + 1;
            if n >= config.healthy_threshold.max(1) && !self.healthy.swap(true, Ordering::SeqCst) {
                return true;
            }
        } else {
            self.successes.store(0, Ordering::SeqCst);
            let n = self.failures.fetch_add(1, Ordering::SeqCst) + 1;
            if n >= config.unhealthy_threshold.max(1) && self.healthy.swap(false, Ordering::SeqCst)
            {
                return true;
            }
        }
        false
    }
}

/// Checks `addr` every interval until canceled.
pub async fn run(
    addr: SocketAddr,
    config: HealthCheckConfig,
    health: std::sync::Arc<UpstreamHealth>,
    cancel: CancellationToken,
) {
    loop {
        let ok = probe(addr, &config).await;
        if health.record(ok, &config) {
            tracing::info!(%addr, healthy = ok, "instance health changed");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(config.interval) => {}
        }
    }
}

/// One `GET path`: healthy on a 2xx or 3xx status within the timeout.
pub async fn probe(addr: SocketAddr, config: &HealthCheckConfig) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: gantry-health-check\r\nConnection: close\r\n\r\n",
            config.path
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 16];
        let mut read = 0;
        while read < 12 {
            let n = stream.read(&mut head[read..]).await.ok()?;
            if n == 0 {
                break;
            }
            read += n;
        }
        let line = std::str::from_utf8(&head[..read]).ok()?;
        let code: u16 = line.get(9..12)?.parse().ok()?;
        Some((200..400).contains(&code))
    };
    matches!(
        tokio::time::timeout(config.timeout, attempt).await,
        Ok(Some(true))
    )
}
