//! Starting, stopping and restarting a server with its own data directory
//! (and database).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::postgres::PgDatabase;
use super::{BIN, Backend, Server};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

impl Server {
    pub fn start(backend: Backend) -> Server {
        Server::try_start(backend).expect("GANTRY_TEST_POSTGRES_URL is not set")
    }

    /// A server on SQLite whose process also gets `env` (e.g. a container
    /// engine's `DOCKER_HOST`).
    pub fn start_with_env(env: &[(&str, &str)]) -> Server {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Server::launch(None, env, LOOPBACK)
    }

    /// A server on SQLite, or on a fresh PostgreSQL database; `None` (with a
    /// note) for PostgreSQL when `GANTRY_TEST_POSTGRES_URL` is not set.
    pub fn try_start(backend: Backend) -> Option<Server> {
        Server::try_start_with_env(backend, &[])
    }

    /// [`Server::try_start`] with `env` for the server's process.
    pub fn try_start_with_env(backend: Backend, env: &[(&str, &str)]) -> Option<Server> {
        Server::try_start_listening(backend, LOOPBACK, env)
    }

    /// [`Server::try_start_with_env`] listening on `ip` rather than the
    /// loopback address (the host's end of a [`super::NetNs`], for a runner
    /// inside it); its URL is that address too.
    pub fn try_start_listening(
        backend: Backend,
        ip: IpAddr,
        env: &[(&str, &str)],
    ) -> Option<Server> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match backend {
            Backend::Sqlite => Some(Server::launch(None, env, ip)),
            Backend::Postgres => {
                let Ok(admin_url) = std::env::var("GANTRY_TEST_POSTGRES_URL") else {
                    eprintln!(
                        "note: GANTRY_TEST_POSTGRES_URL is not set; the PostgreSQL variant did not run"
                    );
                    return None;
                };
                Some(Server::launch(
                    Some(PgDatabase::create(&admin_url)),
                    env,
                    ip,
                ))
            }
        }
    }

    fn launch(database: Option<PgDatabase>, env: Vec<(String, String)>, ip: IpAddr) -> Server {
        let root = tempfile::Builder::new()
            .prefix("gantry-it-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir_all(root.path().join("work")).expect("work dir");
        // Host steps run as an unprivileged user when the tests run as root:
        // they reach the work directory (never the data directory beside it),
        // and so does the local runner's user.
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |m| std::fs::Permissions::from_mode(m);
            // Listable: the local runner's user confines its steps by listing
            // what is beside its work directory (the data directory is
            // private by its own mode).
            std::fs::set_permissions(root.path(), mode(0o755)).expect("chmod root");
            std::fs::set_permissions(root.path().join("work"), mode(0o1777)).expect("chmod work");
        }
        let mut server = Server {
            child: None,
            url: String::new(),
            token: String::new(),
            port: 0,
            ip,
            root,
            database,
            env,
        };
        // A free port can be taken by someone else between our probe and the
        // server's bind: try a few.
        for _ in 0..5 {
            server.port = free_port();
            server.url = format!("http://{}", SocketAddr::new(ip, server.port));
            if server.spawn_and_wait() {
                server.token = std::fs::read_to_string(server.data_dir().join("admin-token"))
                    .expect("the server wrote DATA_DIR/admin-token")
                    .trim()
                    .to_owned();
                return server;
            }
        }
        panic!("the server did not start:\n{}", server.log_tail());
    }

    /// The PostgreSQL database it runs on, if it does (another server may share it).
    pub fn database_url(&self) -> Option<&str> {
        self.database.as_ref().map(|db| db.url.as_str())
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// The local runner's work directory.
    pub fn local_runner_dir(&self) -> PathBuf {
        self.root.path().join("runner")
    }

    /// A directory for the files a test's steps write.
    pub fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    fn log_path(&self) -> PathBuf {
        self.root.path().join("server.log")
    }

    /// Starts the process and waits for `/healthz`; false if it exited (the
    /// port was taken).
    fn spawn_and_wait(&mut self) -> bool {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--listen"])
            .arg(SocketAddr::new(self.ip, self.port).to_string())
            .arg("--data-dir")
            .arg(self.data_dir())
            .env("RUST_LOG", "info")
            // The local runner's own directory, outside the data directory,
            // removed with the test's.
            .env("GANTRY_LOCAL_RUNNER_DIR", self.local_runner_dir())
            .env_remove("GANTRY_TOKEN")
            .env_remove("GANTRY_URL")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        if let Some(db) = &self.database {
            command.args(["--database", &db.url]);
        }
        let child = command.spawn().expect("start gantry serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().expect("try_wait"))
            {
                eprintln!("gantry serve exited early ({status})");
                self.child = None;
                return false;
            }
            if let Ok(response) = http.get(format!("{}/healthz", self.url)).send()
                && response.status() == 200
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "gantry serve did not answer /healthz within 60 s:\n{}",
            self.log_tail()
        );
    }

    /// SIGKILL: the server gets no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("wait");
        }
    }

    /// SIGTERM, then waits for the exit (at most 20 s).
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the server is running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "gantry serve did not exit within 20 s of SIGTERM:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the server again on the same port, data directory and database.
    pub fn restart(&mut self) {
        assert!(
            self.child.is_none(),
            "stop or kill the server before restarting it"
        );
        assert!(
            self.spawn_and_wait(),
            "the server did not restart:\n{}",
            self.log_tail()
        );
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(80)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- server log ({}) ---\n{}", self.url, self.log_tail());
        }
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}
