//! Listening sockets that outlive the data plane. The data plane binds each
//! load balancer's port itself and gives the proxy a duplicate; it also
//! hands a duplicate of every one to whoever connects to
//! `DATA/deploy/listeners.sock` (`gantry serve`), over `SCM_RIGHTS`, again
//! after every change. When the data plane dies, the sockets stay open in
//! the holder: connections that arrive meanwhile wait in the kernel's
//! accept backlog instead of being refused, and the next data plane,
//! started with the holder's copies inherited (their numbers in
//! `GANTRY_DATAPLANE_LISTENERS`), accepts them. A port no longer wanted is
//! closed in both processes; a graceful stop tells holders to let go.
//!
//! Wire format, one frame per `sendmsg`: a little-endian `u32` length, then
//! a JSON [`Frame`], with the frame's sockets, in the order of its ports,
//! attached to it.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry_proxy::Proxy;
use serde::{Deserialize, Serialize};
use tokio::io::Interest;
use tokio::net::{UnixListener, UnixStream};
use tokio_util::task::TaskTracker;

use super::server::deploy_dir;

/// The environment variable through which a new data plane receives the
/// sockets its predecessor listened on: `PORT:FD,PORT:FD`.
pub const INHERITED_ENV: &str = "GANTRY_DATAPLANE_LISTENERS";

/// The kernel passes at most 253 descriptors in one message.
const PORTS_PER_FRAME: usize = 250;
/// How long a graceful stop waits for holders to close their copies.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(1);

pub fn handoff_socket_path(data_dir: &Path) -> PathBuf {
    deploy_dir(data_dir).join("listeners.sock")
}

/// One message to a holder. A set is complete with its frame whose
/// `complete` is true; the holder then keeps exactly that set.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Frame {
    pub ports: Vec<u16>,
    /// The data plane is stopping on purpose: let go of every socket and
    /// do not start it again.
    pub stopping: bool,
    pub complete: bool,
}

/// The listening sockets of the data plane, by port.
pub(crate) struct Sockets {
    held: Mutex<BTreeMap<u16, std::net::TcpListener>>,
    published: tokio::sync::watch::Sender<Published>,
    holders: TaskTracker,
}

#[derive(Clone, Default)]
pub(super) struct Published {
    pub sockets: Arc<Vec<(u16, OwnedFd)>>,
    pub stopping: bool,
}

impl Sockets {
    /// The sockets inherited from the process that started this one.
    pub fn inherit() -> Sockets {
        let mut held = BTreeMap::new();
        if let Ok(value) = std::env::var(INHERITED_ENV) {
            for entry in value.split(',').filter(|e| !e.is_empty()) {
                match adopt_inherited(entry) {
                    Ok((port, listener)) => {
                        tracing::info!(port, "listening socket inherited");
                        held.insert(port, listener);
                    }
                    Err(error) => tracing::warn!(entry, %error, "inherited socket refused"),
                }
            }
        }
        Sockets {
            held: Mutex::new(held),
            published: tokio::sync::watch::Sender::new(Published::default()),
            holders: TaskTracker::new(),
        }
    }

    /// Keeps a socket for each of `ports` (binding those it lacks), closes
    /// the others, and offers the proxy a copy of each. A port that cannot
    /// be bound is left to the proxy, which reports why.
    pub fn prepare(&self, ports: &[u16], proxy: &Proxy) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.retain(|port, _| ports.contains(port));
        for &port in ports {
            let listener = match held.entry(port) {
                std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::btree_map::Entry::Vacant(entry) => match bind(port) {
                    Ok(listener) => entry.insert(listener),
                    Err(error) => {
                        tracing::debug!(port, %error, "cannot bind a load balancer port");
                        continue;
                    }
                },
            };
            match listener.try_clone() {
                Ok(copy) => proxy.offer_listener(port, copy),
                Err(error) => tracing::warn!(port, %error, "cannot duplicate a listening socket"),
            }
        }
    }

    /// Sends the current set to every holder.
    pub fn publish(&self) {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let sockets = held
            .iter()
            .filter_map(|(port, listener)| {
                Some((*port, listener.as_fd().try_clone_to_owned().ok()?))
            })
            .collect();
        self.published.send_replace(Published {
            sockets: Arc::new(sockets),
            stopping: false,
        });
    }

    /// A graceful stop: every socket closed here, and holders told to let
    /// go of theirs and not to start a data plane again (they have up to
    /// `RELEASE_TIMEOUT` to do so).
    pub async fn release(&self) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.published.send_replace(Published {
            sockets: Arc::new(Vec::new()),
            stopping: true,
        });
        self.holders.close();
        let _ = tokio::time::timeout(RELEASE_TIMEOUT * 2, self.holders.wait()).await;
    }

    /// Serves holders on `path` until the process ends.
    pub fn serve(self: &Arc<Self>, path: &Path) -> std::io::Result<()> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        let sockets = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let rx = sockets.published.subscribe();
                sockets.holders.spawn(serve_holder(stream, rx));
            }
        });
        Ok(())
    }
}

/// Connections the kernel queues for a listener: the proxy's own backlog
/// (`gantry-proxy` `listener.rs`), which also has to hold what arrives
/// while a data plane is being replaced.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds a load balancer's port on loopback, as the proxy would.
fn bind(port: u16) -> std::io::Result<std::net::TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(LISTEN_BACKLOG)?.into_std()
}

/// `PORT:FD` from the environment: the descriptor must be open and a TCP
/// socket listening on that port. It is made close-on-exec again, so that
/// instances never inherit it.
fn adopt_inherited(entry: &str) -> std::io::Result<(u16, std::net::TcpListener)> {
    let invalid = || std::io::Error::other(format!("bad entry {entry:?}"));
    let (port, fd) = entry.split_once(':').ok_or_else(invalid)?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    let fd: RawFd = fd.parse().map_err(|_| invalid())?;
    if fd <= 2 {
        return Err(invalid());
    }
    // SAFETY: fcntl on a descriptor number; fails harmlessly when closed.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor is open (fcntl succeeded) and was passed to
    // this process for it alone to own.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    let bound = listener.local_addr()?.port();
    if bound != port {
        // Not ours after all: give the descriptor up without closing it.
        let _ = std::os::fd::IntoRawFd::into_raw_fd(listener);
        return Err(std::io::Error::other(format!(
            "descriptor {fd} listens on port {bound}, not {port}"
        )));
    }
    Ok((port, listener))
}

/// Sends the set to one holder on every change; after a stop, waits for
/// the holder to close the connection (it then holds nothing).
async fn serve_holder(stream: UnixStream, mut rx: tokio::sync::watch::Receiver<Published>) {
    loop {
        let published = rx.borrow_and_update().clone();
        if let Err(error) = send_set(&stream, &published).await {
            tracing::debug!(%error, "a socket holder went away");
            return;
        }
        if published.stopping {
            let _ = tokio::time::timeout(RELEASE_TIMEOUT, wait_closed(&stream)).await;
            return;
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            () = wait_closed(&stream) => return,
        }
    }
}

async fn wait_closed(stream: &UnixStream) {
    let mut buffer = [0u8; 64];
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        match stream.try_read(&mut buffer) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        }
    }
}

pub(super) async fn send_set(stream: &UnixStream, published: &Published) -> std::io::Result<()> {
    let chunks: Vec<&[(u16, OwnedFd)]> = if published.sockets.is_empty() {
        vec![&[]]
    } else {
        published.sockets.chunks(PORTS_PER_FRAME).collect()
    };
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let frame = Frame {
            ports: chunk.iter().map(|(port, _)| *port).collect(),
            stopping: published.stopping,
            complete: i == last,
        };
        let json = serde_json::to_vec(&frame).map_err(std::io::Error::other)?;
        let mut bytes = (json.len() as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(&json);
        let fds: Vec<RawFd> = chunk.iter().map(|(_, fd)| fd.as_raw_fd()).collect();
        loop {
            stream.writable().await?;
            match stream.try_io(Interest::WRITABLE, || {
                send_with_fds(stream.as_raw_fd(), &bytes, &fds)
            }) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// What a holder reads: complete sets, one at a time.
pub(crate) struct FrameReader {
    bytes: Vec<u8>,
    fds: std::collections::VecDeque<OwnedFd>,
    pending: Vec<(u16, OwnedFd)>,
}

/// A complete set received by a holder.
pub(crate) struct Received {
    pub sockets: Vec<(u16, OwnedFd)>,
    pub stopping: bool,
}

impl FrameReader {
    pub fn new() -> FrameReader {
        FrameReader {
            bytes: Vec::new(),
            fds: Default::default(),
            pending: Vec::new(),
        }
    }

    /// The next complete set; `Ok(None)` when the data plane closed the
    /// connection (it stopped or died).
    pub async fn next(&mut self, stream: &UnixStream) -> std::io::Result<Option<Received>> {
        loop {
            if let Some(received) = self.parse()? {
                return Ok(Some(received));
            }
            stream.readable().await?;
            let mut buffer = [0u8; 4096];
            let read = stream.try_io(Interest::READABLE, || {
                receive_with_fds(stream.as_raw_fd(), &mut buffer)
            });
            match read {
                Ok((0, _)) => return Ok(None),
                Ok((n, fds)) => {
                    self.bytes.extend_from_slice(&buffer[..n]);
                    self.fds.extend(fds);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn parse(&mut self) -> std::io::Result<Option<Received>> {
        loop {
            let Some(length) = self.bytes.get(..4) else {
                return Ok(None);
            };
            let length = u32::from_le_bytes([length[0], length[1], length[2], length[3]]) as usize;
            if self.bytes.len() < 4 + length {
                return Ok(None);
            }
            let frame: Frame = serde_json::from_slice(&self.bytes[4..4 + length])
                .map_err(|e| std::io::Error::other(format!("bad frame: {e}")))?;
            self.bytes.drain(..4 + length);
            for port in frame.ports {
                let fd = self
                    .fds
                    .pop_front()
                    .ok_or_else(|| std::io::Error::other("a frame without its sockets"))?;
                self.pending.push((port, fd));
            }
            if frame.complete {
                return Ok(Some(Received {
                    sockets: std::mem::take(&mut self.pending),
                    stopping: frame.stopping,
                }));
            }
        }
    }
}

fn send_with_fds(socket: RawFd, bytes: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let data_len = std::mem::size_of_val(fds) as u32;
    // SAFETY: CMSG_SPACE is arithmetic.
    let space = unsafe { libc::CMSG_SPACE(data_len) } as usize;
    // u64 words keep the control buffer aligned for `cmsghdr`.
    let mut control = vec![0u64; space.div_ceil(8).max(1)];
    // SAFETY: an all-zero msghdr is valid; the pointers set below outlive
    // the sendmsg call.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    if !fds.is_empty() {
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = space as _;
        // SAFETY: the control buffer holds CMSG_SPACE(data_len) bytes, so
        // the first header and its data fit.
        unsafe {
            let header = libc::CMSG_FIRSTHDR(&message);
            (*header).cmsg_level = libc::SOL_SOCKET;
            (*header).cmsg_type = libc::SCM_RIGHTS;
            (*header).cmsg_len = libc::CMSG_LEN(data_len) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(header),
                data_len as usize,
            );
        }
    }
    // SAFETY: `message` points at live buffers.
    let sent = unsafe { libc::sendmsg(socket, &message, libc::MSG_NOSIGNAL) };
    if sent < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if sent as usize != bytes.len() {
        // A frame of a few hundred bytes on a unix socket is sent whole or
        // not at all; anything else leaves the holder out of step.
        return Err(std::io::Error::other("short write to a socket holder"));
    }
    Ok(())
}

fn receive_with_fds(socket: RawFd, buffer: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    // SAFETY: CMSG_SPACE is arithmetic.
    let space = unsafe { libc::CMSG_SPACE((PORTS_PER_FRAME * std::mem::size_of::<RawFd>()) as u32) }
        as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: an all-zero msghdr is valid; the pointers set below outlive
    // the recvmsg call.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = space as _;
    // SAFETY: `message` points at live buffers; received descriptors are
    // close-on-exec so that no other child of the holder inherits them.
    let read = unsafe { libc::recvmsg(socket, &mut message, libc::MSG_CMSG_CLOEXEC) };
    if read < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    // SAFETY: walking the control messages the kernel wrote, within
    // `msg_controllen`.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(header);
                let count = ((*header).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            header = libc::CMSG_NXTHDR(&message, header);
        }
    }
    Ok((read as usize, fds))
}
