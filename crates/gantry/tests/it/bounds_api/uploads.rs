//! Large uploads: streamed to disk, refused over the limit, checked in
//! bounded memory, and removed when left by a crash.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{MIB, PeakSampler, address, mib, rss, server_pid, slow};
use crate::harness::Server;

fn create_repo(server: &Server, name: &str) {
    let (status, answer) = server.api("POST", "/api/v1/apt/repos", Some(json!({ "name": name })));
    assert_eq!(status, 201, "{answer}");
}

/// Sends `body` as a single-file package upload to `repo`; the answer's
/// status and text.
fn upload(
    server: &Server,
    repo: &str,
    query: &str,
    body: reqwest::blocking::Body,
) -> (u16, String) {
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(1800))
        .build()
        .expect("client")
        .post(format!(
            "{}/api/v1/apt/repos/{repo}/packages{query}",
            server.url
        ))
        .bearer_auth(&server.token)
        .header("content-type", "application/vnd.debian.binary-package")
        .body(body)
        .send()
        .expect("upload");
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

/// Runs `work` while sampling the server's memory every 20 ms; what it
/// returned, and the server's memory before (idle) and at its highest.
fn sampling<T: Send>(server: &Server, work: impl FnOnce() -> T + Send) -> (T, u64, u64) {
    let pid = server_pid(server);
    let idle = rss(pid);
    let sampler = PeakSampler::start(pid);
    let result = std::thread::scope(|scope| scope.spawn(work).join().expect("the work"));
    (result, idle, sampler.peak())
}

fn uploads_left(data_dir: &Path) -> usize {
    std::fs::read_dir(data_dir.join("apt/uploads"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

#[test]
fn a_large_upload_streams_to_disk_without_growing_the_server() {
    let size = if slow() { 1 << 30 } else { 256 * MIB };
    let server = Server::start_with_env(&[]);
    create_repo(&server, "big");
    let body = reqwest::blocking::Body::sized(std::io::repeat(b'x').take(size), size);
    let ((status, text), idle, peak) = sampling(&server, || upload(&server, "big", "", body));
    // The bytes are no package: refused once checked, after all of them
    // went to disk.
    assert_eq!(status, 400, "{text}");
    assert!(
        peak < idle + 64 * MIB,
        "a {} MiB upload took the server from {} MiB to {} MiB",
        size / MIB,
        idle / MIB,
        peak / MIB
    );
    assert_eq!(
        uploads_left(&server.data_dir()),
        0,
        "the upload's file was left behind"
    );
}

#[test]
fn an_upload_over_the_limit_is_refused_with_413() {
    let server = Server::start_with_env(&[("GANTRY_UPLOAD_LIMIT", "1MiB")]);
    create_repo(&server, "small");
    // The refusal comes before the body is sent: announce it, then read.
    let mut stream = TcpStream::connect(address(&server)).expect("connect");
    let head = format!(
        "POST /api/v1/apt/repos/small/packages HTTP/1.1\r\nHost: gantry\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
        server.token,
        2 * MIB
    );
    stream.write_all(head.as_bytes()).expect("send the head");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut answer = vec![0u8; 4096];
    let read = stream.read(&mut answer).expect("the answer");
    let text = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.contains("1048576"),
        "the refusal names the limit: {text}"
    );
    assert_eq!(
        uploads_left(&server.data_dir()),
        0,
        "the upload's file was left behind"
    );
}

/// Builds, with `gantry deb build`, a package `huge` whose one file holds
/// `size` bytes that do not compress (from a seeded generator, cheap to
/// make), stored uncompressed: a package file a little over `size` bytes.
fn large_package(server: &Server, size: u64) -> std::path::PathBuf {
    let root = server.work().join("huge-root");
    std::fs::create_dir_all(root.join("opt/huge")).expect("package root");
    let mut out = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(root.join("opt/huge/blob")).expect("blob"),
    );
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            // xorshift64: fast, and nothing deflate could shrink.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let take = left.min(block.len() as u64) as usize;
        out.write_all(&block[..take]).expect("write the blob");
        left -= take as u64;
    }
    out.flush().expect("flush the blob");
    drop(out);
    let deb = server.work().join("huge_1.0_all.deb");
    let root_arg = root.display().to_string();
    let deb_arg = deb.display().to_string();
    let args = [
        "deb",
        "build",
        root_arg.as_str(),
        "--name",
        "huge",
        "--version",
        "1.0",
        "--compression",
        "none",
        "-o",
        deb_arg.as_str(),
    ];
    crate::harness::wait_output(server.cli_spawn(&args), &args, Duration::from_secs(900)).ok();
    std::fs::remove_dir_all(&root).expect("remove the package root");
    deb
}

/// A file's SHA-256 by `sha256sum` (the test binary's own is slow on a
/// gigabyte unoptimised).
fn sha256sum(path: &Path) -> String {
    let output = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_owned()
}

/// The repository's packages as `gantry apt repo show --with-packages`
/// lists them.
fn listed_packages(server: &Server, repo: &str) -> String {
    server
        .cli(&["apt", "repo", "show", "--with-packages", repo])
        .ok()
        .stdout
}

#[test]
fn a_large_package_upload_is_checked_and_stored_in_bounded_memory() {
    let size = if slow() { 1 << 30 } else { 256 * MIB };
    let server = Server::start_with_env(&[]);
    create_repo(&server, "big");
    let deb = large_package(&server, size);
    let length = std::fs::metadata(&deb).expect("the package").len();

    let started = Instant::now();
    let ((status, text), idle, peak) = sampling(&server, || {
        let file = std::fs::File::open(&deb).expect("the package");
        let body = reqwest::blocking::Body::sized(file, length);
        upload(&server, "big", "?filename=huge_1.0_all.deb", body)
    });
    eprintln!(
        "figure: a {:.0} MiB package uploaded alone: server VmRSS idle {:.1} MiB, peak {:.1} MiB (+{:.1} MiB), {:.1} s",
        mib(length),
        mib(idle),
        mib(peak),
        mib(peak.saturating_sub(idle)),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(status, 200, "{text}");
    assert!(
        peak < idle + 64 * MIB,
        "a {:.0} MiB package took the server from {:.1} MiB to {:.1} MiB",
        mib(length),
        mib(idle),
        mib(peak)
    );
    let listed = listed_packages(&server, "big");
    assert!(listed.contains("Pall huge 1.0"), "{listed}");
    // Recorded with the file's size and digest, and stored whole.
    let sha256 = sha256sum(&deb);
    let packages = server.get("/api/v1/apt/repos/big/packages");
    let package = &packages["packages"][0];
    assert_eq!(package["sha256"], sha256.as_str(), "{packages}");
    assert_eq!(package["size"], length, "{packages}");
    let stored: Vec<String> = std::fs::read_dir(server.data_dir().join("apt/packs"))
        .expect("packs")
        .map(|entry| sha256sum(&entry.expect("a pack").path()))
        .collect();
    assert_eq!(
        stored,
        [sha256],
        "the pack does not hold the package's bytes"
    );
    assert_eq!(
        uploads_left(&server.data_dir()),
        0,
        "the upload's file was left behind"
    );
}

#[test]
fn a_large_package_in_an_uploaded_tar_is_checked_in_bounded_memory() {
    let size = if slow() { 1 << 30 } else { 256 * MIB };
    let server = Server::start_with_env(&[]);
    create_repo(&server, "bigtar");
    let deb = large_package(&server, size);
    let length = std::fs::metadata(&deb).expect("the package").len();

    // `gantry apt repo add` sends its files as one tar stream.
    let deb_arg = deb.display().to_string();
    let args = ["apt", "repo", "add", "bigtar", deb_arg.as_str()];
    let started = Instant::now();
    let (added, idle, peak) = sampling(&server, || {
        crate::harness::wait_output(server.cli_spawn(&args), &args, Duration::from_secs(1800))
    });
    eprintln!(
        "figure: a {:.0} MiB package uploaded in a tar: server VmRSS idle {:.1} MiB, peak {:.1} MiB (+{:.1} MiB), {:.1} s",
        mib(length),
        mib(idle),
        mib(peak),
        mib(peak.saturating_sub(idle)),
        started.elapsed().as_secs_f64()
    );
    let added = added.ok();
    assert!(added.stdout.contains("[+] Pall huge 1.0"), "{added:?}");
    assert!(
        peak < idle + 64 * MIB,
        "a {:.0} MiB package in a tar took the server from {:.1} MiB to {:.1} MiB",
        mib(length),
        mib(idle),
        mib(peak)
    );
    let listed = listed_packages(&server, "bigtar");
    assert!(listed.contains("Pall huge 1.0"), "{listed}");
    let packages = server.get("/api/v1/apt/repos/bigtar/packages");
    assert_eq!(
        packages["packages"][0]["sha256"],
        sha256sum(&deb).as_str(),
        "{packages}"
    );
    assert_eq!(
        uploads_left(&server.data_dir()),
        0,
        "the tar entry's file was left behind"
    );
}

#[test]
fn uploads_left_by_a_crash_are_removed_when_the_server_starts() {
    let mut server = Server::start_with_env(&[]);
    let uploads = server.data_dir().join("apt/uploads");
    std::fs::create_dir_all(&uploads).expect("uploads directory");
    let leftover = uploads.join("0190b3a5c2f87e3c9d4a1b2c3d4e5f60.upload");
    std::fs::write(&leftover, vec![b'x'; 1 << 20]).expect("a leftover upload");
    server.kill9();
    server.restart();
    assert!(
        !leftover.exists(),
        "an upload left by a crash is still in {}",
        uploads.display()
    );
}
