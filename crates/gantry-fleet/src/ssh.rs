//! One SSH connection to one host: the system's OpenSSH as a multiplexed
//! master (the `openssh` crate), so every command after the first opens a
//! channel on the same connection instead of a new TCP and key exchange.
//!
//! The host key is pinned: ssh sees only `hostKey` (a known-hosts file of
//! one line under a `HostKeyAlias`, strict checking, no global file), so
//! an unknown or changed key fails the connection; the key the host did
//! present is then read with `ssh-keyscan` to name both fingerprints. The
//! private key is written 0600 into a private directory (0700) only for
//! the master's handshake and removed as soon as the master is up; it is
//! never on a command line.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use gantry_config::Host;
use openssh::{ForwardType, KnownHosts, Session, SessionBuilder, Socket, Stdio};
use tokio::io::AsyncWriteExt;

use crate::error::FleetError;
use crate::fingerprint::fingerprint;

/// What ssh's known-hosts file calls every host: the alias keeps the line
/// independent of the address and port.
const HOST_KEY_ALIAS: &str = "gantry-fleet-host";

/// How long connecting (TCP, key exchange, authentication) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An open connection to a host; dropped, it closes its master.
pub struct SshConnection {
    host: String,
    session: Session,
    /// Holds the control socket, the known-hosts and config files.
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for SshConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshConnection")
            .field("host", &self.host)
            .finish()
    }
}

impl SshConnection {
    /// Connects to `host` with `private_key` (OpenSSH format), checking
    /// its host key against `host.host_key`.
    pub async fn connect(host: &Host, private_key: &str) -> Result<SshConnection, FleetError> {
        let dir = tempfile::Builder::new()
            .prefix("gantry-ssh-")
            .tempdir()
            .map_err(FleetError::io("a private directory for ssh"))?;
        let key_path = dir.path().join("key");
        write_private(&key_path, private_key.trim_end().as_bytes(), 0o600)?;
        let config = dir.path().join("config");
        write_private(&config, ssh_config(host, dir.path()).as_bytes(), 0o600)?;
        let known_hosts = dir.path().join("known_hosts");
        let pinned = host.host_key.split_whitespace().take(2).collect::<Vec<_>>();
        write_private(
            &known_hosts,
            format!("{HOST_KEY_ALIAS} {}\n", pinned.join(" ")).as_bytes(),
            0o600,
        )?;
        let mut builder = SessionBuilder::default();
        builder
            .user(host.user.clone())
            .port(host.port)
            .keyfile(&key_path)
            .config_file(&config)
            .user_known_hosts_file(&known_hosts)
            .known_hosts_check(KnownHosts::Strict)
            .control_directory(dir.path())
            .connect_timeout(CONNECT_TIMEOUT)
            .server_alive_interval(Duration::from_secs(2));
        let connected = builder.connect(&host.address).await;
        // The master has authenticated (or failed to): the key is not
        // needed on disk any longer either way.
        let _ = std::fs::remove_file(&key_path);
        match connected {
            Ok(session) => Ok(SshConnection {
                host: host.name.clone(),
                session,
                _dir: dir,
            }),
            Err(error) => Err(connect_error(host, &error.to_string(), &source_text(&error)).await),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Runs `script` with the host user's `sh`, with `stdin` if given, and
    /// returns its standard output. `what` names it in errors.
    pub async fn run(
        &self,
        what: &str,
        script: &str,
        stdin: Option<&[u8]>,
    ) -> Result<Vec<u8>, FleetError> {
        let mut command = self.session.raw_command(script);
        command
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().await.map_err(|e| self.lost(&e))?;
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin().take()) {
            match pipe.write_all(bytes).await {
                Ok(()) => pipe.shutdown().await.ok(),
                // The command ended without reading all of it (it had
                // nothing to do): its exit status tells what happened.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => None,
                Err(e) => return Err(self.remote(what, &format!("sending its input: {e}"))),
            };
        }
        let output = child.wait_with_output().await.map_err(|e| self.lost(&e))?;
        match output.status.code() {
            Some(0) => Ok(output.stdout),
            // ssh itself failed: the connection, not the command.
            Some(255) | None => Err(FleetError::Unreachable {
                host: self.host.clone(),
                cause: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            }),
            Some(code) => Err(self.remote(
                what,
                &format!(
                    "exit status {code}: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            )),
        }
    }

    /// Has the host's sshd listen on its own loopback at some free port
    /// and relay each connection there to `target` on this side (ssh's
    /// `-R`), until [`SshConnection::close_forward`]; returns that port.
    /// The port is on the host's loopback only, never on an address
    /// others reach.
    pub async fn forward_here(&self, target: SocketAddr) -> Result<u16, FleetError> {
        let mut last = String::new();
        for _ in 0..8 {
            let port = rand::Rng::gen_range(&mut rand::thread_rng(), 20_000..60_000);
            match self
                .session
                .request_port_forward(
                    ForwardType::Remote,
                    Socket::new("127.0.0.1", port),
                    Socket::new(target.ip().to_string(), target.port()),
                )
                .await
            {
                Ok(()) => return Ok(port),
                Err(error) => last = format!("{error}{}", source_text(&error)),
            }
        }
        Err(self.remote(
            "forwarding a port of the host's loopback to the server",
            &last,
        ))
    }

    /// Ends a relay [`SshConnection::forward_here`] opened.
    pub async fn close_forward(&self, port: u16, target: SocketAddr) {
        let _ = self
            .session
            .close_port_forward(
                ForwardType::Remote,
                Socket::new("127.0.0.1", port),
                Socket::new(target.ip().to_string(), target.port()),
            )
            .await;
    }

    /// Whether the master connection still answers.
    pub async fn is_alive(&self) -> bool {
        self.session.check().await.is_ok()
    }

    fn lost(&self, error: &openssh::Error) -> FleetError {
        FleetError::Unreachable {
            host: self.host.clone(),
            cause: format!("{error}{}", source_text(error)),
        }
    }

    fn remote(&self, what: &str, cause: &str) -> FleetError {
        FleetError::Remote {
            host: self.host.clone(),
            what: what.to_owned(),
            cause: cause.to_owned(),
        }
    }
}

/// The options of every connection: only the pinned key is trusted, only
/// the given identity is offered, nothing is asked interactively.
fn ssh_config(host: &Host, dir: &Path) -> String {
    let algorithms = match host.host_key.split_whitespace().next() {
        // An RSA key signs with SHA-2 nowadays; the key type stays ssh-rsa.
        Some("ssh-rsa") => "rsa-sha2-512,rsa-sha2-256,ssh-rsa".to_owned(),
        Some(kind) => kind.to_owned(),
        None => "ssh-ed25519".to_owned(),
    };
    format!(
        "Host *\n  HostKeyAlias {HOST_KEY_ALIAS}\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  HostKeyAlgorithms {algorithms}\n  CheckHostIP no\n  UpdateHostKeys no\n  IdentitiesOnly yes\n  IdentityAgent none\n  PasswordAuthentication no\n  KbdInteractiveAuthentication no\n  ServerAliveCountMax 2\n  LogLevel ERROR\n",
        dir.join("known_hosts").display()
    )
}

fn write_private(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FleetError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(FleetError::io(format!("writing {}", path.display())))?;
    file.write_all(bytes)
        .and_then(|()| file.write_all(b"\n"))
        .map_err(FleetError::io(format!("writing {}", path.display())))
}

fn source_text(error: &openssh::Error) -> String {
    std::error::Error::source(error)
        .map(|s| format!(": {s}"))
        .unwrap_or_default()
}

/// Names the cause of a failed connection; a refused host key is told
/// with the fingerprints of the pinned key and of the one presented.
async fn connect_error(host: &Host, error: &str, detail: &str) -> FleetError {
    let text = format!("{error}{detail}");
    if text.contains("Host key verification failed")
        || text.contains("HOST IDENTIFICATION HAS CHANGED")
        || text.contains("No matching host key")
        || text.contains("no matching host key")
    {
        let presented = presented_host_key(host)
            .await
            .map(|key| fingerprint(&key))
            .unwrap_or_else(|| "(none readable with ssh-keyscan)".to_owned());
        return FleetError::HostKeyChanged {
            host: host.name.clone(),
            expected: fingerprint(&host.host_key),
            presented,
        };
    }
    if text.contains("Permission denied") {
        return FleetError::AuthRefused {
            host: host.name.clone(),
            user: host.user.clone(),
        };
    }
    FleetError::Unreachable {
        host: host.name.clone(),
        cause: text.trim().to_owned(),
    }
}

/// The public key the host presents for the pinned key's type (or any
/// type, when it has none of that one).
async fn presented_host_key(host: &Host) -> Option<String> {
    let kind = host
        .host_key
        .split_whitespace()
        .next()
        .unwrap_or("ssh-ed25519");
    for types in [kind, "ed25519,ecdsa,rsa"] {
        let output = tokio::process::Command::new("ssh-keyscan")
            .args([
                "-T",
                "5",
                "-p",
                &host.port.to_string(),
                "-t",
                types,
                &host.address,
            ])
            .stderr(std::process::Stdio::null())
            .output()
            .await
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        if let Some(line) = text
            .lines()
            .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            // "ADDRESS TYPE BASE64": the key is the rest after the address.
            return line.split_once(' ').map(|(_, key)| key.trim().to_owned());
        }
    }
    None
}
