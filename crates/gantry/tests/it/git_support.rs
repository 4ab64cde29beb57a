//! Helpers for the git tests: a real `git` client working in a scratch clone, and waiting for
//! the executions a push starts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{DEADLINE, Server};

/// A local repository with one remote, driven by the stock `git` binary.
pub struct Clone {
    pub dir: PathBuf,
}

impl Clone {
    /// A fresh repository on branch `main` in `server.work()/NAME`.
    pub fn init(server: &Server, name: &str) -> Clone {
        let dir = server.work().join(name);
        std::fs::create_dir_all(&dir).expect("clone dir");
        let clone = Clone { dir };
        clone
            .git(&["init", "--quiet", "--initial-branch=main"])
            .ok();
        clone
    }

    pub fn git(&self, args: &[&str]) -> GitOutput {
        git_in(&self.dir, args)
    }

    pub fn write(&self, path: &str, text: &str) {
        let path = self.dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        std::fs::write(path, text).expect("write");
    }

    /// Writes the files and commits them; returns the new commit.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, text) in files {
            self.write(path, text);
        }
        self.git(&["add", "--all"]).ok();
        self.git(&["commit", "--quiet", "-m", message]).ok();
        self.head()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
            .ok()
            .stdout
            .trim()
            .to_owned()
    }
}

pub struct GitOutput {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl GitOutput {
    pub fn ok(self) -> GitOutput {
        assert!(
            self.status.success(),
            "git failed:\n{}\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `git` with no user config and no credential prompt.
pub fn git_in(dir: &Path, args: &[&str]) -> GitOutput {
    let out: Output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Ann Author")
        .env("GIT_AUTHOR_EMAIL", "ann@example.com")
        .env("GIT_COMMITTER_NAME", "Ann Author")
        .env("GIT_COMMITTER_EMAIL", "ann@example.com")
        .output()
        .expect("run git");
    GitOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `http://git:TOKEN@HOST/git/NAME.git`, or without credentials when `token` is `None`.
pub fn repo_url(server: &Server, name: &str, token: Option<&str>) -> String {
    let host = server.url.trim_start_matches("http://");
    match token {
        Some(token) => format!("http://git:{token}@{host}/git/{name}.git"),
        None => format!("http://{host}/git/{name}.git"),
    }
}

/// The executions of a pipeline, newest first.
pub fn executions(server: &Server, pipeline: &str) -> Vec<Value> {
    let page = server.get(&format!("/api/v1/executions?pipeline={pipeline}"));
    page["executions"].as_array().cloned().unwrap_or_default()
}

/// Waits until the pipeline has `count` executions; returns them, newest first.
pub fn wait_executions(server: &Server, pipeline: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let found = executions(server, pipeline);
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "pipeline {pipeline}: {} of {count} executions\n{}",
            found.len(),
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that the pipeline still has exactly `count` executions a moment later.
pub fn still_executions(server: &Server, pipeline: &str, count: usize) {
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        executions(server, pipeline).len(),
        count,
        "pipeline {pipeline}"
    );
}

/// Stores a secret through the CLI, the value on standard input (never an argument).
pub fn set_secret(server: &Server, name: &str, value: &str) {
    let input = server.write_file(&format!("secret-{name}"), value);
    server
        .cli_with(&["secret", "set", name], |command| {
            command.stdin(std::fs::File::open(&input).expect("secret input"));
        })
        .ok();
    std::fs::remove_file(&input).expect("remove secret input");
}
