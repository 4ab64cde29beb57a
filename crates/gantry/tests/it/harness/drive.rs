//! Driving a server through the real CLI and the HTTP API, and waiting
//! for its executions.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{BIN, DEADLINE, Output, Server, wait_output};

impl Server {
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

/// The stage with this id in an execution view.
pub fn stage<'a>(execution: &'a Value, id: &str) -> &'a Value {
    execution["stages"]
        .as_array()
        .and_then(|stages| stages.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no stage {id} in {execution:#}"))
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
