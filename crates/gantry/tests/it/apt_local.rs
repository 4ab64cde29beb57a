//! `gantry apt --local`: the CLI working on a data directory itself, beside
//! a `gantry serve` that uses the same directory and serves what it
//! publishes to a real `apt-get`.

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::apt::{AptClient, build_hello};
use crate::harness::{Backend, Output, Server};

/// `gantry --data-dir DATA apt --local ARGS`, with no server address: it
/// must not need one.
fn local(server: &Server, args: &[&str]) -> Output {
    let data_dir = server.data_dir().display().to_string();
    let mut all = vec!["--data-dir", data_dir.as_str(), "apt", "--local"];
    all.extend_from_slice(args);
    server.cli_with(&all, |command: &mut Command| {
        command
            .env("GANTRY_URL", "http://127.0.0.1:9")
            .env_remove("GANTRY_TOKEN");
    })
}

#[test]
fn a_local_publish_is_served_by_the_server_to_apt_get() {
    let server = Server::start(Backend::Sqlite);
    let v1 = build_hello(&server, "1.0");
    local(&server, &["key", "generate", "Local <local@example.com>"]).ok();
    local(&server, &["repo", "create", "r"]).ok();
    let added = local(&server, &["repo", "add", "r", &v1]).ok().stdout;
    assert!(added.contains("[+] Pamd64 hello 1.0"), "{added}");
    local(
        &server,
        &[
            "publish",
            "repo",
            "r",
            "--distribution",
            "stable",
            "--architectures",
            "amd64",
        ],
    )
    .ok();

    // The server sees what the local command recorded, key included.
    let listed = server.cli(&["apt", "repo", "list"]).ok().stdout;
    assert!(listed.contains("[r] (packages: 1)"), "{listed}");
    let publications = server.cli(&["apt", "publish", "list"]).ok().stdout;
    assert!(publications.contains("./stable [amd64]"), "{publications}");
    let client = AptClient::of_signed_stable(&server, &server.work());
    client.update();
    assert_eq!(client.install("hello"), "#!/bin/sh\necho hello 1.0\n");

    // Mixed: added through the server, published locally, and the other way.
    let v2 = build_hello(&server, "1.1");
    server.cli(&["apt", "repo", "add", "r", &v2]).ok();
    local(&server, &["publish", "update", "stable"]).ok();
    client.update();
    assert_eq!(client.install("hello"), "#!/bin/sh\necho hello 1.1\n");
    let v3 = build_hello(&server, "1.2");
    local(&server, &["repo", "add", "r", &v3]).ok();
    server.cli(&["apt", "publish", "update", "stable"]).ok();
    client.update();
    assert_eq!(client.install("hello"), "#!/bin/sh\necho hello 1.2\n");

    // Errors read the same as through the server.
    local(&server, &["repo", "add", "nowhere", &v1]).fails_with("repository \"nowhere\" not found");
    local(&server, &["repo", "drop", "r"]).fails_with("is published at . stable");
}

/// A package added by `--local` starts the server's `artifact` trigger, as
/// one added through the server does: landings go through the store.
#[test]
fn a_local_add_starts_the_servers_artifact_trigger() {
    let server = Server::start(Backend::Sqlite);
    local(&server, &["repo", "create", "r"]).ok();
    server.apply(
        r#"
pipelines:
  - name: on-artifact
    triggers:
      - type: artifact
        repository: r
        package: hello
    stages:
      - id: record
        type: run
        steps:
          - script: echo '${{ trigger.package }} ${{ trigger.version }}' >> @W@/landed.txt
"#,
    );
    let v1 = build_hello(&server, "1.0");
    local(&server, &["repo", "add", "r", &v1]).ok();
    // The same file again lands nothing.
    local(&server, &["repo", "add", "r", &v1]).ok();
    let landed = server.work().join("landed.txt");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !landed.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        std::fs::read_to_string(&landed).expect("the trigger ran"),
        "hello 1.0\n",
        "one execution for one landing"
    );
}

/// A local process and the server change one repository and its
/// publication at the same time, while a reader does what apt does. Every
/// index the reader is shown lists only files it can fetch, and in the end
/// every package of both sides is recorded and published.
#[test]
fn local_and_server_changes_at_once_leave_a_consistent_repository() {
    let server = Server::start(Backend::Sqlite);
    let build = |name: &str| -> String {
        let tree = server.work().join(format!("tree-{name}"));
        std::fs::create_dir_all(tree.join("usr/share/doc")).unwrap();
        std::fs::write(tree.join("usr/share/doc/README"), name).unwrap();
        let out = server.work().join(format!("{name}.deb"));
        server
            .cli(&[
                "deb",
                "build",
                tree.to_str().unwrap(),
                "--name",
                name,
                "--version",
                "1.0",
                "--arch",
                "amd64",
                "-o",
                out.to_str().unwrap(),
            ])
            .ok();
        out.display().to_string()
    };
    const EACH: usize = 12;
    let ours: Vec<String> = (0..EACH).map(|n| build(&format!("local-{n}"))).collect();
    let theirs: Vec<String> = (0..EACH).map(|n| build(&format!("server-{n}"))).collect();
    server.cli(&["apt", "repo", "create", "r"]).ok();
    server
        .cli(&["apt", "repo", "add", "r", &build("first")])
        .ok();
    server
        .cli(&[
            "apt",
            "publish",
            "repo",
            "r",
            "--distribution",
            "stable",
            "--architectures",
            "amd64",
            "--skip-signing",
        ])
        .ok();

    let done = AtomicBool::new(false);
    let problems = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut problems = Vec::new();
            let mut rounds = 0;
            while !done.load(Ordering::SeqCst) || rounds == 0 {
                problems.extend(unfetchable(&server.url));
                rounds += 1;
            }
            problems
        });
        let local_side = scope.spawn(|| {
            for deb in &ours {
                local(&server, &["repo", "add", "r", deb]).ok();
                local(&server, &["publish", "update", "stable"]).ok();
            }
        });
        for deb in &theirs {
            server.cli(&["apt", "repo", "add", "r", deb]).ok();
            server.cli(&["apt", "publish", "update", "stable"]).ok();
        }
        local_side.join().unwrap();
        done.store(true, Ordering::SeqCst);
        reader.join().unwrap()
    });
    assert!(problems.is_empty(), "{problems:#?}");

    // Whichever publish came last listed everything recorded before it;
    // one more publish is certain to have everything.
    local(&server, &["publish", "update", "stable"]).ok();
    let listed = server.cli(&["apt", "repo", "list"]).ok().stdout;
    assert!(
        listed.contains(&format!("[r] (packages: {})", 2 * EACH + 1)),
        "{listed}"
    );
    let packages = index_entries(&server.url).expect("the published index");
    assert_eq!(packages.len(), 2 * EACH + 1, "{packages:?}");
    assert!(unfetchable(&server.url).is_empty());
    let client = AptClient::new(
        &server.work(),
        &format!("deb [trusted=yes] {}/apt stable main", server.url),
    );
    client.update();
}

/// What apt does after `Release`: fetch the index, then its files. Returns
/// what could not be fetched or had the wrong size.
fn unfetchable(url: &str) -> Vec<String> {
    // Two publishes between our reading `Release` and fetching the index
    // it names retire that index (one generation back is kept): apt would
    // retry too. Missing three times in a row is a problem.
    let Some(entries) = (0..3).find_map(|_| index_entries(url)) else {
        return vec!["the index is missing".to_owned()];
    };
    let http = reqwest::blocking::Client::new();
    let mut problems = Vec::new();
    for (filename, size) in entries {
        match http.get(format!("{url}/apt/{filename}")).send() {
            Ok(response) if response.status() == 200 => {
                let body = response.bytes().unwrap_or_default();
                if body.len().to_string() != size {
                    problems.push(format!(
                        "{filename}: {} bytes, index says {size}",
                        body.len()
                    ));
                }
            }
            Ok(response) => problems.push(format!("{filename}: {}", response.status())),
            Err(error) => problems.push(format!("{filename}: {error}")),
        }
    }
    problems
}

/// `Filename` → `Size` of each paragraph of the published amd64 index,
/// fetched the way apt does: the index whose hash `Release` names, by hash.
fn index_entries(url: &str) -> Option<HashMap<String, String>> {
    let http = reqwest::blocking::Client::new();
    let release = http
        .get(format!("{url}/apt/dists/stable/Release"))
        .send()
        .ok()?
        .text()
        .ok()?;
    let sha256 = release
        .split("SHA256:\n")
        .nth(1)?
        .lines()
        .find(|line| line.ends_with(" main/binary-amd64/Packages"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let index = http
        .get(format!(
            "{url}/apt/dists/stable/main/binary-amd64/by-hash/SHA256/{sha256}"
        ))
        .timeout(Duration::from_secs(10))
        .send()
        .ok()?;
    if index.status() != 200 {
        return None;
    }
    let text = index.text().ok()?;
    let mut entries = HashMap::new();
    for paragraph in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let field = |name: &str| {
            paragraph
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{name}: ")))
                .map(str::to_owned)
        };
        entries.insert(field("Filename")?, field("Size")?);
    }
    Some(entries)
}

/// `gantry apt db cleanup`: an old version removed from the repository and
/// published away twice (so the previous generation no longer serves it
/// either) is deleted with its pack, through the server (dry) and
/// `--local`, while a real `apt-get` still installs the version left.
#[test]
fn db_cleanup_frees_an_old_version_and_apt_get_still_installs_the_new_one() {
    let server = Server::start(Backend::Sqlite);
    let v1 = build_hello(&server, "1.0");
    let v2 = build_hello(&server, "1.1");
    local(&server, &["key", "generate", "Local <local@example.com>"]).ok();
    local(&server, &["repo", "create", "r"]).ok();
    // Two adds: a pack each.
    local(&server, &["repo", "add", "r", &v1]).ok();
    local(&server, &["repo", "add", "r", &v2]).ok();
    let publish = ["publish", "repo", "r", "--distribution", "stable"];
    local(&server, &publish).ok();
    let packs = server.data_dir().join("apt/packs");
    let pack_bytes = || -> Vec<u64> {
        let mut sizes: Vec<u64> = std::fs::read_dir(&packs)
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .collect();
        sizes.sort();
        sizes
    };
    let v1_size = std::fs::metadata(&v1).unwrap().len();
    let v2_size = std::fs::metadata(&v2).unwrap().len();
    let mut before = vec![v1_size, v2_size];
    before.sort();
    assert_eq!(pack_bytes(), before);

    local(&server, &["repo", "remove", "r", "hello (= 1.0)"]).ok();
    local(&server, &["publish", "update", "stable"]).ok();
    // The previous generation still names 1.0: nothing goes.
    let kept = server
        .cli(&["apt", "db", "cleanup", "--dry-run"])
        .ok()
        .stdout;
    assert!(
        kept.contains("Would delete unreferenced packages (0)..."),
        "{kept}"
    );
    local(&server, &["publish", "update", "stable"]).ok();

    let dry = server
        .cli(&["apt", "db", "cleanup", "--dry-run", "--verbose"])
        .ok()
        .stdout;
    assert!(
        dry.contains("Would delete unreferenced packages (1)...")
            && dry.contains("[-] Pamd64 hello 1.0 ")
            && dry.contains("Dry run: nothing was changed."),
        "{dry}"
    );
    assert_eq!(pack_bytes(), before, "a dry run changed packs");

    let done = local(&server, &["db", "cleanup", "--verbose"]).ok().stdout;
    assert!(
        done.contains("Deleting unreferenced packages (1)...")
            && done.contains("[-] Pamd64 hello 1.0 ")
            && done.contains("Deleting unreferenced files: 1 pack(s), 0 pool file(s)")
            && done.contains(&format!("Disk space freed: {v1_size} bytes")),
        "{done}"
    );
    assert_eq!(pack_bytes(), [v2_size], "the old version's pack stayed");
    let again = server.cli(&["apt", "db", "cleanup"]).ok().stdout;
    assert!(
        again.contains("Deleting unreferenced packages (0)...")
            && again.contains("Disk space freed: 0 bytes"),
        "{again}"
    );

    let gone = reqwest::blocking::get(format!(
        "{}/apt/pool/main/h/hello/hello_1.0_amd64.deb",
        server.url
    ))
    .unwrap();
    assert_eq!(gone.status(), 404);
    let client = AptClient::of_signed_stable(&server, &server.work());
    client.update();
    assert_eq!(client.install("hello"), "#!/bin/sh\necho hello 1.1\n");
}
