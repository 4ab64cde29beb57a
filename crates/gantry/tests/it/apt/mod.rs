//! APT repositories end to end: packages built with `gantry deb build`,
//! added and published through the CLI, served by `gantry serve`, and read
//! by a real `apt-get` with an isolated configuration (own sources, state,
//! cache and `signed-by` keyring) and installed by a real `dpkg`.
//!
//! This file holds the apt client and the package helpers the tests
//! share; the tests live one area to a file.

mod apt_get;
mod operations;
mod pipelines;
mod signing;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::Server;

/// `main-repo` with a signing key for `signer`, published empty as `stable` for amd64: where
/// a pipeline's `publishDeb` lands and what a host's apt-get reads.
pub(crate) fn publish_empty_stable(server: &Server, signer: &str) {
    server.cli(&["apt", "repo", "create", "main-repo"]).ok();
    server.cli(&["apt", "key", "generate", signer]).ok();
    publish_stable(server);
}

/// Publishes `main-repo` as `stable` for amd64 (its key must exist).
pub(crate) fn publish_stable(server: &Server) {
    server
        .cli(&[
            "apt",
            "publish",
            "repo",
            "main-repo",
            "--distribution",
            "stable",
            "--architectures",
            "amd64",
        ])
        .ok();
}

/// An apt client of its own: nothing of the machine's configuration is used.
pub(crate) struct AptClient {
    dir: PathBuf,
}

impl AptClient {
    pub(crate) fn new(root: &Path, source_line: &str) -> AptClient {
        let dir = root.join("apt-client");
        for sub in [
            "etc/apt.conf.d",
            "etc/preferences.d",
            "state/lists/partial",
            "cache/archives/partial",
            "root",
            "admin/updates",
            "admin/info",
        ] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(dir.join("etc/sources.list"), format!("{source_line}\n")).unwrap();
        std::fs::write(dir.join("admin/status"), "").unwrap();
        AptClient { dir }
    }

    /// A client of `server`'s default prefix, distribution `stable`,
    /// component `main`, trusting only the server's signing key; its files
    /// under `root`.
    pub(crate) fn of_signed_stable(server: &Server, root: &Path) -> AptClient {
        let keyring = keyring(server);
        AptClient::new(
            root,
            &format!(
                "deb [signed-by={}] {}/apt stable main",
                keyring.display(),
                server.url
            ),
        )
    }

    pub(crate) fn apt_get(&self, args: &[&str]) -> std::process::Output {
        let d = |sub: &str| self.dir.join(sub).display().to_string();
        Command::new("apt-get")
            .args(["-q", "-y"])
            .arg(format!("-oDir::Etc::sourcelist={}", d("etc/sources.list")))
            .arg("-oDir::Etc::sourceparts=-")
            .arg(format!("-oDir::Etc::parts={}", d("etc/apt.conf.d")))
            .arg(format!(
                "-oDir::Etc::preferencesparts={}",
                d("etc/preferences.d")
            ))
            .arg(format!("-oDir::State={}", d("state")))
            .arg(format!("-oDir::State::status={}", d("admin/status")))
            .arg(format!("-oDir::Cache={}", d("cache")))
            .arg("-oAPT::Architecture=amd64")
            .arg("-oAPT::Architectures::=amd64")
            .arg("-oDebug::NoLocking=1")
            .arg("-oAcquire::Languages=none")
            .args(args)
            .output()
            .expect("run apt-get")
    }

    pub(crate) fn update(&self) -> String {
        let out = self.apt_get(&["update"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && !text.contains("W: ") && !text.contains("E: "),
            "apt-get update failed:\n{text}"
        );
        text
    }

    /// `apt-get install` resolves and downloads; dpkg installs into our own
    /// root (apt's dpkg call would need the real root).
    pub(crate) fn install(&self, package: &str) -> String {
        let out = self.apt_get(&["install", "--download-only", package]);
        assert!(
            out.status.success(),
            "apt-get install failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut debs: Vec<PathBuf> = std::fs::read_dir(self.dir.join("cache/archives"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "deb"))
            .collect();
        debs.sort();
        let deb = debs.pop().unwrap_or_else(|| {
            panic!(
                "apt-get downloaded no package:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let status = Command::new("dpkg")
            .arg(format!("--instdir={}", self.dir.join("root").display()))
            .arg(format!("--admindir={}", self.dir.join("admin").display()))
            .args([
                "--force-not-root",
                "--force-script-chrootless",
                "--log=/dev/null",
                "-i",
            ])
            .arg(&deb)
            .status()
            .unwrap();
        assert!(status.success(), "dpkg -i {}", deb.display());
        for deb in debs {
            std::fs::remove_file(deb).unwrap();
        }
        let _ = std::fs::remove_file(&deb);
        std::fs::read_to_string(self.dir.join("root/usr/bin/hello")).unwrap()
    }
}

pub(crate) fn build_hello(server: &Server, version: &str) -> String {
    let tree = server.work().join(format!("tree-{version}"));
    std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
    std::fs::write(
        tree.join("usr/bin/hello"),
        format!("#!/bin/sh\necho hello {version}\n"),
    )
    .unwrap();
    let out = server.work().join(format!("hello_{version}.deb"));
    server
        .cli(&[
            "deb",
            "build",
            tree.to_str().unwrap(),
            "--name",
            "hello",
            "--version",
            version,
            "--arch",
            "amd64",
            "-o",
            out.to_str().unwrap(),
        ])
        .ok();
    out.display().to_string()
}

pub(crate) fn keyring(server: &Server) -> PathBuf {
    let armored = server.cli(&["apt", "key", "export-public"]).ok().stdout;
    let asc = server.work().join("key.asc");
    std::fs::write(&asc, armored).unwrap();
    let keyring = server.work().join("keyring.gpg");
    let status = Command::new("gpg")
        .args(["--batch", "--yes", "--dearmor", "-o"])
        .arg(&keyring)
        .arg(&asc)
        .status()
        .unwrap();
    assert!(status.success());
    keyring
}
