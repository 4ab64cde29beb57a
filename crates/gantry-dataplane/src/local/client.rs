//! The control plane's end of the data plane's socket. The data plane is
//! started on first use and outlives the server; a restarted server finds
//! it again through the socket. A data plane is started with the listening
//! sockets its predecessor handed over (see `watch.rs`).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::Mutex;

use super::LocalConfig;
use crate::protocol::{ErrorKind, Request, Response};
use crate::{INHERITED_ENV, socket_path};
use gantry_deploy::DeployError;

pub struct DataplaneClient {
    config: LocalConfig,
    /// Serializes starting the data plane.
    starting: Mutex<()>,
    /// Copies of the data plane's listening sockets, by port: they keep
    /// each port's backlog while no data plane runs, and the next one
    /// inherits them.
    held: std::sync::Mutex<Vec<(u16, OwnedFd)>>,
}

impl DataplaneClient {
    pub fn new(config: LocalConfig) -> DataplaneClient {
        DataplaneClient {
            config,
            starting: Mutex::new(()),
            held: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn config(&self) -> &LocalConfig {
        &self.config
    }

    /// Keeps exactly these sockets (the others are closed).
    pub(crate) fn hold(&self, sockets: Vec<(u16, OwnedFd)>) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = sockets;
    }

    /// Starts the data plane unless one answers; returns once it does.
    pub(crate) async fn ensure_running(&self) -> Result<(), DeployError> {
        self.connect().await.map(drop)
    }

    pub async fn request(&self, request: &Request) -> Result<Value, DeployError> {
        self.request_as(request).await
    }

    /// Sends `request` and reads its answer straight into `T`, with no
    /// `Value` between (a snapshot of many groups is large).
    pub async fn request_as<T: serde::de::DeserializeOwned>(
        &self,
        request: &Request,
    ) -> Result<T, DeployError> {
        let stream = self.connect().await?;
        let (read, mut write) = stream.into_split();
        let mut line = serde_json::to_vec(request)
            .map_err(|e| DeployError::Dataplane(format!("cannot encode request: {e}")))?;
        line.push(b'\n');
        write
            .write_all(&line)
            .await
            .map_err(|e| DeployError::Dataplane(format!("cannot send request: {e}")))?;
        let mut answer = String::new();
        BufReader::new(read)
            .read_line(&mut answer)
            .await
            .map_err(|e| DeployError::Dataplane(format!("cannot read answer: {e}")))?;
        match serde_json::from_str::<Response<T>>(&answer) {
            Ok(Response::Ok(value)) => Ok(value),
            Ok(Response::Error { kind, message }) => Err(match kind {
                ErrorKind::Invalid => DeployError::Invalid(message),
                ErrorKind::NotFound => DeployError::NotFound(message),
                ErrorKind::Internal => DeployError::Dataplane(message),
            }),
            Err(e) => Err(DeployError::Dataplane(format!(
                "bad answer {:?}: {e}",
                answer.chars().take(200).collect::<String>()
            ))),
        }
    }

    /// Connects, starting the data plane when none answers.
    async fn connect(&self) -> Result<UnixStream, DeployError> {
        let socket = socket_path(&self.config.data_dir);
        if let Ok(stream) = UnixStream::connect(&socket).await {
            return Ok(stream);
        }
        let _guard = self.starting.lock().await;
        if let Ok(stream) = UnixStream::connect(&socket).await {
            return Ok(stream);
        }
        self.start()?;
        // Polled often: connections wait in the backlog meanwhile.
        for _ in 0..1000 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if let Ok(stream) = UnixStream::connect(&socket).await {
                return Ok(stream);
            }
        }
        Err(DeployError::Dataplane(format!(
            "the data plane did not open {} (see {})",
            socket.display(),
            self.log_path().display()
        )))
    }

    fn log_path(&self) -> std::path::PathBuf {
        crate::deploy_dir(&self.config.data_dir).join("dataplane.log")
    }

    /// Starts the data plane in its own session, so that it survives the
    /// server (and signals sent to the server's process group).
    fn start(&self) -> Result<(), DeployError> {
        let [program, args @ ..] = self.config.dataplane_command.as_slice() else {
            return Err(DeployError::Dataplane(
                "no data plane command configured".into(),
            ));
        };
        let dir = crate::deploy_dir(&self.config.data_dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| DeployError::Dataplane(format!("cannot create {}: {e}", dir.display())))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| DeployError::Dataplane(format!("cannot open its log: {e}")))?;
        let mut command = std::process::Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(|e| DeployError::Dataplane(e.to_string()))?,
            )
            .stderr(log);
        // Held until the child has its copies.
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let inherited: Vec<RawFd> = held.iter().map(|(_, fd)| fd.as_raw_fd()).collect();
        let listed: Vec<String> = held
            .iter()
            .map(|(port, fd)| format!("{port}:{}", fd.as_raw_fd()))
            .collect();
        command.env(INHERITED_ENV, listed.join(","));
        // SAFETY: setsid and fcntl are async-signal-safe. The held sockets
        // are close-on-exec here; only the data plane inherits them.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                libc::setsid();
                for &fd in &inherited {
                    if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let spawned = command.spawn();
        drop(held);
        let mut child =
            spawned.map_err(|e| DeployError::Dataplane(format!("cannot start {program}: {e}")))?;
        tracing::info!(
            pid = child.id(),
            sockets = listed.len(),
            "data plane started"
        );
        // Reap it if it exits while we live; it is not ours to wait for otherwise.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        Ok(())
    }
}
