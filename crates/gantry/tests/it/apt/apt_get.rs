//! What a real `apt-get` sees: installs and upgrades, signatures refused
//! or followed, and the same installable set as aptly's.

use std::path::PathBuf;
use std::process::Command;

use super::{AptClient, build_hello, keyring};
use crate::harness::{Backend, Server};

#[test]
fn apt_get_installs_and_upgrades_from_a_published_repository() {
    let server = Server::start(Backend::Sqlite);
    let v1 = build_hello(&server, "1.0");
    server.cli(&["apt", "repo", "create", "main-repo"]).ok();
    server.cli(&["apt", "repo", "add", "main-repo", &v1]).ok();
    // No key yet: publishing signed is refused and leaves nothing behind.
    server
        .cli(&[
            "apt",
            "publish",
            "repo",
            "main-repo",
            "--distribution",
            "stable",
        ])
        .fails_with("no signing key");
    assert!(!server.data_dir().join("apt/public/dists/stable").exists());
    server
        .cli(&["apt", "key", "generate", "Gantry Test <test@example.com>"])
        .ok();
    super::publish_stable(&server);
    let client = AptClient::of_signed_stable(&server, &server.work());
    client.update();
    assert_eq!(client.install("hello"), "#!/bin/sh\necho hello 1.0\n");

    // Served publicly, with Range and If-Modified-Since; the API needs a token.
    let http = reqwest::blocking::Client::new();
    let release = format!("{}/apt/dists/stable/Release", server.url);
    let full = http.get(&release).send().unwrap();
    assert_eq!(full.status(), 200);
    let modified = full.headers()["last-modified"].to_str().unwrap().to_owned();
    let part = http
        .get(&release)
        .header("range", "bytes=0-6")
        .send()
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.text().unwrap(), "Origin:");
    let unchanged = http
        .get(&release)
        .header("if-modified-since", &modified)
        .send()
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    let (status, _) = server.api_as(None, "GET", "/api/v1/apt/repos", None);
    assert_eq!(status, 401);

    // Pool files come from packs, with the same conditional and range
    // answers as files on disk; the server's own files are not served.
    let deb = format!("{}/apt/pool/main/h/hello/hello_1.0_amd64.deb", server.url);
    let whole = http.get(&deb).send().unwrap();
    assert_eq!(whole.status(), 200);
    let etag = whole.headers()["etag"].to_str().unwrap().to_owned();
    let modified = whole.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_owned();
    let whole = whole.bytes().unwrap();
    assert_eq!(&whole[..8], b"!<arch>\n");
    assert_eq!(etag, format!("\"{}\"", hex_sha256(&whole)));
    let part = http.get(&deb).header("range", "bytes=8-23").send().unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 8-23/{}", whole.len()).as_str()
    );
    assert_eq!(part.bytes().unwrap(), whole[8..24]);
    let tail = http.get(&deb).header("range", "bytes=-4").send().unwrap();
    assert_eq!(tail.bytes().unwrap(), whole[whole.len() - 4..]);
    let past = format!("bytes={}-", whole.len());
    let past = http.get(&deb).header("range", past).send().unwrap();
    assert_eq!(past.status(), 416);
    for (name, value) in [("if-none-match", &etag), ("if-modified-since", &modified)] {
        let unchanged = http.get(&deb).header(name, value).send().unwrap();
        assert_eq!(unchanged.status(), 304, "{name}");
    }
    // Names come percent-encoded as apt encodes them (`+` as `%2b`).
    let encoded = deb.replace("hello_1.0", "hello%5f1.0");
    assert_eq!(http.get(&encoded).send().unwrap().bytes().unwrap(), whole);
    let head = http.head(&deb).send().unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        whole.len().to_string().as_str()
    );
    for hidden in ["dists/stable/.pool-map", ".gantry-dists"] {
        let url = format!("{}/apt/{hidden}", server.url);
        assert_eq!(http.get(&url).send().unwrap().status(), 404, "{hidden}");
    }
    let missing = format!("{}/apt/pool/main/h/hello/hello_9.9_amd64.deb", server.url);
    assert_eq!(http.get(&missing).send().unwrap().status(), 404);

    // A newer version, added and published: apt upgrades to it.
    let v2 = build_hello(&server, "1.1");
    server.cli(&["apt", "repo", "add", "main-repo", &v2]).ok();
    server.cli(&["apt", "publish", "update", "stable"]).ok();
    client.update();
    assert_eq!(client.install("hello"), "#!/bin/sh\necho hello 1.1\n");

    // The same name, version and architecture with other contents.
    let tree = server.work().join("tree-other");
    std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
    std::fs::write(tree.join("usr/bin/hello"), "other").unwrap();
    let other = server.work().join("other.deb");
    server
        .cli(&[
            "deb",
            "build",
            tree.to_str().unwrap(),
            "--name",
            "hello",
            "--version",
            "1.1",
            "--arch",
            "amd64",
            "-o",
            other.to_str().unwrap(),
        ])
        .ok();
    server
        .cli(&["apt", "repo", "add", "main-repo", other.to_str().unwrap()])
        .fails_with("already in repository \"main-repo\" with different contents");
    // Not a package at all.
    let junk = server.write_file("junk.deb", "this is not a package");
    server
        .cli(&["apt", "repo", "add", "main-repo", junk.to_str().unwrap()])
        .fails_with("not a Debian package");
    // The spot is taken.
    server
        .cli(&[
            "apt",
            "publish",
            "repo",
            "main-repo",
            "--distribution",
            "stable",
        ])
        .fails_with("already has a publication of distribution \"stable\"");

    // Queries.
    let shown = server
        .cli(&["apt", "repo", "remove", "main-repo", "hello (<< 1.1)"])
        .ok()
        .stdout;
    assert!(shown.contains("Pamd64 hello 1.0"), "{shown}");
}

#[test]
fn apt_refuses_unsigned_and_wrongly_signed_publications_and_follows_snapshot_switches() {
    let server = Server::start(Backend::Sqlite);
    server.cli(&["apt", "repo", "create", "r"]).ok();
    let v1 = build_hello(&server, "1.0");
    server.cli(&["apt", "repo", "add", "r", &v1]).ok();
    server
        .cli(&["apt", "snapshot", "create", "s1", "from", "repo", "r"])
        .ok();
    let v2 = build_hello(&server, "2.0");
    server.cli(&["apt", "repo", "add", "r", &v2]).ok();
    server
        .cli(&["apt", "repo", "remove", "r", "hello (= 1.0)"])
        .ok();
    server
        .cli(&["apt", "snapshot", "create", "s2", "from", "repo", "r"])
        .ok();
    let diff = server
        .cli(&["apt", "snapshot", "diff", "s1", "s2"])
        .ok()
        .stdout;
    assert!(
        diff.contains("! Pamd64 hello 1.0") && diff.contains("-> Pamd64 hello 2.0"),
        "{diff}"
    );

    server
        .cli(&["apt", "key", "generate", "Signer <signer@example.com>"])
        .ok();
    let right = keyring(&server);
    server
        .cli(&[
            "apt",
            "publish",
            "snapshot",
            "s1",
            "--distribution",
            "snap",
            "--architectures",
            "amd64",
        ])
        .ok();
    server
        .cli(&[
            "apt",
            "publish",
            "snapshot",
            "s1",
            "unsigned",
            "--distribution",
            "snap",
            "--architectures",
            "amd64",
            "--skip-signing",
        ])
        .ok();

    // Unsigned: refused by apt.
    let unsigned = AptClient::new(
        &server.work().join("u"),
        &format!(
            "deb [signed-by={}] {}/apt/unsigned snap main",
            right.display(),
            server.url
        ),
    );
    let out = unsigned.apt_get(&["update"]);
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("is not signed"), "{text}");

    // Signed by a key the client does not trust: refused by apt.
    let wrong_home = tempfile::tempdir().unwrap();
    let gpg = |args: &[&str]| {
        let status = Command::new("gpg")
            .env("GNUPGHOME", wrong_home.path())
            .args(["--batch", "--yes", "--passphrase", ""])
            .args(args)
            .status()
            .unwrap();
        assert!(status.success());
    };
    gpg(&[
        "--quick-generate-key",
        "Other <other@example.com>",
        "ed25519",
        "sign",
        "never",
    ]);
    let wrong = server.work().join("wrong.gpg");
    gpg(&["--export", "-o", wrong.to_str().unwrap()]);
    let mistrusting = AptClient::new(
        &server.work().join("w"),
        &format!(
            "deb [signed-by={}] {}/apt snap main",
            wrong.display(),
            server.url
        ),
    );
    let out = mistrusting.apt_get(&["update"]);
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("NO_PUBKEY") || text.contains("not signed"),
        "{text}"
    );

    // Correctly signed: installs 1.0, and 2.0 after the switch.
    let client = AptClient::new(
        &server.work().join("c"),
        &format!(
            "deb [signed-by={}] {}/apt snap main",
            right.display(),
            server.url
        ),
    );
    client.update();
    assert_eq!(client.install("hello"), "#!/bin/sh\necho hello 1.0\n");
    // A client that read the indexes just before the switch can still
    // fetch what they name: the previous generation's pool is kept until
    // the next publish of the distribution.
    let old_file = format!("{}/apt/pool/main/h/hello/hello_1.0_amd64.deb", server.url);
    let status = |url: &str| reqwest::blocking::get(url).unwrap().status();
    assert_eq!(status(&old_file), 200);
    server.cli(&["apt", "publish", "switch", "snap", "s2"]).ok();
    assert_eq!(status(&old_file), 200);
    client.update();
    assert_eq!(client.install("hello"), "#!/bin/sh\necho hello 2.0\n");
    server.cli(&["apt", "publish", "switch", "snap", "s2"]).ok();
    assert_eq!(status(&old_file), 404);

    // A published snapshot cannot be dropped.
    server
        .cli(&["apt", "snapshot", "drop", "s2"])
        .fails_with("is published");
}

/// `(Package, Version, Architecture, SHA256)` of every package apt sees.
fn installable(client: &AptClient) -> Vec<(String, String, String, String)> {
    let out = Command::new("apt-cache")
        .arg(format!(
            "-oDir::State={}",
            client.dir.join("state").display()
        ))
        .arg(format!(
            "-oDir::State::status={}",
            client.dir.join("admin/status").display()
        ))
        .arg(format!(
            "-oDir::Cache={}",
            client.dir.join("cache").display()
        ))
        .arg(format!(
            "-oDir::Etc::sourcelist={}",
            client.dir.join("etc/sources.list").display()
        ))
        .arg("-oDir::Etc::sourceparts=-")
        .arg("-oAPT::Architecture=amd64")
        .arg("dumpavail")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut set: Vec<_> = text
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|paragraph| {
            let field = |name: &str| {
                paragraph
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .unwrap_or_default()
                    .to_owned()
            };
            (
                field("Package"),
                field("Version"),
                field("Architecture"),
                field("SHA256"),
            )
        })
        .collect();
    set.sort();
    set
}

#[test]
fn aptly_and_gantry_publish_the_same_installable_set() {
    let server = Server::start(Backend::Sqlite);
    let mut debs = vec![
        build_hello(&server, "1.0"),
        build_hello(&server, "1.1"),
        build_hello(&server, "1:0.9"),
    ];
    let tree = server.work().join("tree-world");
    std::fs::create_dir_all(tree.join("usr/share/world")).unwrap();
    std::fs::write(tree.join("usr/share/world/data"), "world").unwrap();
    let world = server.work().join("world.deb");
    server
        .cli(&[
            "deb",
            "build",
            tree.to_str().unwrap(),
            "--name",
            "world",
            "--version",
            "2.0~rc1",
            "-o",
            world.to_str().unwrap(),
        ])
        .ok();
    debs.push(world.display().to_string());

    // Gantry.
    server.cli(&["apt", "repo", "create", "r"]).ok();
    for deb in &debs {
        server.cli(&["apt", "repo", "add", "r", deb]).ok();
    }
    server
        .cli(&[
            "apt",
            "repo",
            "remove",
            "r",
            "hello (<< 1.1), $Architecture (= amd64)",
        ])
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
    let ours = AptClient::new(
        &server.work().join("ours"),
        &format!("deb [trusted=yes] {}/apt stable main", server.url),
    );
    ours.apt_get(&["update"]);

    // aptly, the same operations.
    let aptly_root = server.work().join("aptly");
    let config = server.work().join("aptly.conf");
    std::fs::write(
        &config,
        format!(
            "{{\"rootDir\": \"{}\", \"architectures\": [\"amd64\"]}}",
            aptly_root.display()
        ),
    )
    .unwrap();
    let aptly = |args: &[&str]| {
        let out = Command::new("aptly")
            .arg(format!("-config={}", config.display()))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "aptly {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    aptly(&["repo", "create", "-distribution=stable", "r"]);
    for deb in &debs {
        aptly(&["repo", "add", "r", deb]);
    }
    aptly(&[
        "repo",
        "remove",
        "r",
        "hello (<< 1.1), $Architecture (= amd64)",
    ]);
    aptly(&[
        "publish",
        "repo",
        "-skip-signing",
        "-architectures=amd64",
        "r",
    ]);
    let theirs = AptClient::new(
        &server.work().join("theirs"),
        &format!(
            "deb [trusted=yes] file:{} stable main",
            aptly_root.join("public").display()
        ),
    );
    theirs.apt_get(&["update"]);

    let ours = installable(&ours);
    assert_eq!(ours, installable(&theirs));
    let names: Vec<_> = ours.iter().map(|p| format!("{} {}", p.0, p.1)).collect();
    // The epoch makes 1:0.9 the newest hello.
    assert_eq!(names, ["hello 1:0.9", "world 2.0~rc1"]);

    // Every package of the indexes, not only apt's candidates.
    let index = |path: PathBuf| {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut entries: Vec<String> = text
            .split("\n\n")
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                let mut keep: Vec<&str> = p
                    .lines()
                    .filter(|l| {
                        ["Package:", "Version:", "Architecture:", "SHA256:", "Size:"]
                            .iter()
                            .any(|f| l.starts_with(f))
                    })
                    .collect();
                keep.sort();
                keep.join(" ")
            })
            .collect();
        entries.sort();
        entries
    };
    let packages = "dists/stable/main/binary-amd64/Packages";
    let ours = index(server.data_dir().join("apt/public").join(packages));
    assert_eq!(ours.len(), 3, "{ours:?}");
    assert_eq!(ours, index(aptly_root.join("public").join(packages)));
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
