//! Starts and stops real `gantry serve` processes and drives them.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_gantry");
/// How long an execution may take to reach the state a test waits for.
pub const DEADLINE: Duration = Duration::from_secs(90);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named scenario `fn NAME(server: &mut Server)` once per backend:
/// `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let mut server = $crate::harness::Server::start($crate::harness::Backend::Sqlite);
                    super::$name(&mut server);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(mut server) =
                        $crate::harness::Server::try_start($crate::harness::Backend::Postgres)
                    {
                        super::$name(&mut server);
                    }
                }
            )*
        }
    };
}

/// A running server with its own data directory (and database).
pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub token: String,
    port: u16,
    root: tempfile::TempDir,
    database: Option<PgDatabase>,
    /// Extra environment of `gantry serve` (kept across restarts).
    env: Vec<(String, String)>,
}

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
        Server::launch(None, env)
    }

    /// A server on SQLite, or on a fresh PostgreSQL database; `None` (with a
    /// note) for PostgreSQL when `GANTRY_TEST_POSTGRES_URL` is not set.
    pub fn try_start(backend: Backend) -> Option<Server> {
        match backend {
            Backend::Sqlite => Some(Server::launch(None, Vec::new())),
            Backend::Postgres => {
                let Ok(admin_url) = std::env::var("GANTRY_TEST_POSTGRES_URL") else {
                    eprintln!(
                        "note: GANTRY_TEST_POSTGRES_URL is not set; the PostgreSQL variant did not run"
                    );
                    return None;
                };
                Some(Server::launch(
                    Some(PgDatabase::create(&admin_url)),
                    Vec::new(),
                ))
            }
        }
    }

    fn launch(database: Option<PgDatabase>, env: Vec<(String, String)>) -> Server {
        let root = tempfile::Builder::new()
            .prefix("gantry-it-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir_all(root.path().join("work")).expect("work dir");
        // Host steps run as an unprivileged user when the tests run as root:
        // they reach the work directory (never the data directory beside it).
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |m| std::fs::Permissions::from_mode(m);
            std::fs::set_permissions(root.path(), mode(0o711)).expect("chmod root");
            std::fs::set_permissions(root.path().join("work"), mode(0o1777)).expect("chmod work");
        }
        let mut server = Server {
            child: None,
            url: String::new(),
            token: String::new(),
            port: 0,
            root,
            database,
            env,
        };
        // A free port can be taken by someone else between our probe and the
        // server's bind: try a few.
        for _ in 0..5 {
            server.port = free_port();
            server.url = format!("http://127.0.0.1:{}", server.port);
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
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--data-dir")
            .arg(self.data_dir())
            .env("RUST_LOG", "info")
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

    // --- The CLI -------------------------------------------------------

    /// Runs `gantry ARGS` against this server with the admin token.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with(args, |_| {})
    }

    /// Like [`Server::cli`], with changes to the command (environment, …).
    pub fn cli_with(&self, args: &[&str], adjust: impl FnOnce(&mut Command)) -> Output {
        let child = self.cli_spawn_with(args, adjust);
        wait_output(child, args, Duration::from_secs(120))
    }

    /// Starts `gantry ARGS` without waiting for it.
    pub fn cli_spawn(&self, args: &[&str]) -> Child {
        self.cli_spawn_with(args, |_| {})
    }

    fn cli_spawn_with(&self, args: &[&str], adjust: impl FnOnce(&mut Command)) -> Child {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("GANTRY_URL", &self.url)
            .env("GANTRY_TOKEN", &self.token)
            .env("GANTRY_DATA_DIR", self.root.path().join("no-data-dir"))
            .current_dir(self.work())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        adjust(&mut command);
        command.spawn().expect("run the gantry CLI")
    }

    // --- The API -------------------------------------------------------

    /// `METHOD PATH` with the admin token; returns the status and the JSON
    /// body (a string `Value` when the body is not JSON).
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.api_as(Some(&self.token), method, path, body)
    }

    pub fn api_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.api_raw(token, method, path, body.map(|b| b.to_string()))
    }

    /// Sends `body` as is (for malformed JSON).
    pub fn api_raw(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> (u16, Value) {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = http.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request
            .send()
            .unwrap_or_else(|e| panic!("{path}: {e}\n{}", self.log_tail()));
        let status = response.status().as_u16();
        let text = response.text().expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// `GET` that must succeed.
    pub fn get(&self, path: &str) -> Value {
        let (status, body) = self.api("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    // --- Pipelines and executions ---------------------------------------

    /// Applies `yaml` (with `@W@` replaced by the work directory) through the CLI.
    pub fn apply(&self, yaml: &str) {
        let path = self.write_file("gantry.yaml", &self.expand(yaml));
        self.cli(&["apply", "-f", path.to_str().expect("utf-8 path")])
            .ok();
    }

    pub fn expand(&self, text: &str) -> String {
        text.replace("@W@", self.work().to_str().expect("utf-8 path"))
    }

    pub fn write_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.work().join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }

    /// Starts an execution through the CLI; returns its id.
    pub fn run(&self, pipeline: &str, params: &[&str]) -> String {
        let mut args = vec!["run", pipeline];
        for p in params {
            args.extend(["-p", p]);
        }
        let out = self.cli(&args).ok();
        let id = out
            .stdout
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        assert!(!id.is_empty(), "gantry run printed no id: {out:?}");
        id
    }

    pub fn execution(&self, id: &str) -> Value {
        self.get(&format!("/api/v1/executions/{id}"))
    }

    /// Polls the execution until `done` holds for it.
    pub fn wait_for(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let execution = self.execution(id);
            if done(&execution) {
                return execution;
            }
            if Instant::now() > deadline {
                panic!(
                    "execution {id}: gave up waiting for {what}; last seen:\n{execution:#}\nserver log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for a terminal status and returns the execution.
    pub fn wait_terminal(&self, id: &str) -> Value {
        self.wait_for(id, "a terminal status", |e| {
            matches!(
                e["status"].as_str(),
                Some("succeeded" | "failed" | "canceled" | "skipped")
            )
        })
    }

    /// Waits for the execution to reach `status` exactly.
    pub fn wait_status(&self, id: &str, status: &str) -> Value {
        self.wait_for(id, &format!("status {status}"), |e| e["status"] == status)
    }

    pub fn wait_stage(&self, id: &str, stage_id: &str, status: &str) -> Value {
        self.wait_for(id, &format!("stage {stage_id} {status}"), |e| {
            stage(e, stage_id)["status"] == status
        })
    }

    /// Every stored log line of an execution (through the API).
    pub fn logs(&self, id: &str) -> Vec<Value> {
        let mut lines = Vec::new();
        let mut after = 0;
        loop {
            let page = self.get(&format!("/api/v1/executions/{id}/logs?after={after}"));
            let batch = page["lines"].as_array().cloned().unwrap_or_default();
            if batch.is_empty() {
                return lines;
            }
            after = page["next"].as_i64().expect("next");
            lines.extend(batch);
        }
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

/// The stage with this id in an execution view.
pub fn stage<'a>(execution: &'a Value, id: &str) -> &'a Value {
    execution["stages"]
        .as_array()
        .and_then(|stages| stages.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no stage {id} in {execution:#}"))
}

/// What a CLI run printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Asserts exit status 0.
    #[track_caller]
    pub fn ok(self) -> Output {
        assert!(self.status.success(), "the command failed: {self:#?}");
        self
    }

    /// Asserts exit status 1 with a clean message (no panic, no debug dump)
    /// containing `needle`.
    #[track_caller]
    pub fn fails_with(self, needle: &str) -> Output {
        assert_eq!(
            self.status.code(),
            Some(1),
            "expected exit status 1: {self:#?}"
        );
        assert!(
            self.stderr.contains(needle),
            "stderr should contain {needle:?}: {self:#?}"
        );
        assert!(
            !self.stderr.contains("panicked"),
            "the CLI panicked: {self:#?}"
        );
        assert!(
            !self.stderr.contains("Error {") && !self.stderr.contains("{ kind:"),
            "the CLI printed a debug dump: {self:#?}"
        );
        self
    }
}

/// Waits for a CLI process (reading its output as it comes, so a full pipe
/// never blocks it); kills it and fails the test after `limit`.
pub fn wait_output(mut child: Child, what: &[&str], limit: Duration) -> Output {
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gantry {what:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Polls until `path` exists.
pub fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + DEADLINE;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The lines of a file the steps append to (empty if it does not exist).
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Reads a pid written by a step.
pub fn read_pid(path: &Path) -> i32 {
    wait_for_file(path);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(pid) = std::fs::read_to_string(path)
            .unwrap_or_default()
            .trim()
            .parse()
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "{} holds no pid", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True while the process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    state != Some('Z')
}

/// Milliseconds since the epoch of an RFC 3339 field.
pub fn millis(value: &Value, field: &str) -> i64 {
    let text = value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a timestamp in {value:#}"));
    let at = humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("{field} = {text:?}: {e}"));
    at.duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A PostgreSQL database made for one test and dropped after it.
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    fn create(admin_url: &str) -> PgDatabase {
        let name = format!("gantry_it_{}", uuid::Uuid::now_v7().simple());
        let url = with_database(admin_url, &name);
        pg_execute(admin_url, &format!("CREATE DATABASE {name}"));
        PgDatabase {
            admin_url: admin_url.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for PgDatabase {
    /// Dropping is cleanup, never a verdict on the test: `WITH (FORCE)`
    /// cannot end an autovacuum worker that happens to be in the database (a
    /// superuser process), so it is tried a few times, then left with a note.
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let mut outcome = Ok(());
        for _ in 0..20 {
            outcome = try_pg_execute(&self.admin_url, &sql);
            if outcome.is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        if let Err(error) = outcome {
            eprintln!("note: test database {} left behind: {error}", self.name);
        }
    }
}

fn pg_execute(url: &str, sql: &str) {
    try_pg_execute(url, sql).unwrap_or_else(|e| panic!("{e}"));
}

fn try_pg_execute(url: &str, sql: &str) -> Result<(), String> {
    use sqlx::Connection;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .map_err(|e| format!("connect to {url}: {e}"))?;
        let result = sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .map_err(|e| format!("{sql}: {e}"));
        let _ = conn.close().await;
        result.map(|_| ())
    })
}

/// The URL with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}
