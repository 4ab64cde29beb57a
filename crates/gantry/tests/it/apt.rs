//! APT repositories end to end: packages built with `gantry deb build`,
//! added and published through the CLI, served by `gantry serve`, and read
//! by a real `apt-get` with an isolated configuration (own sources, state,
//! cache and `signed-by` keyring) and installed by a real `dpkg`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Backend, Server};

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

/// A pipeline builds a package in its workspace and publishes it; the
/// package landing in the repository starts another pipeline through its
/// `artifact` trigger, which sees the package and version.
#[test]
fn a_pipeline_packages_and_publishes_and_the_artifact_trigger_starts_another() {
    let server = Server::start(Backend::Sqlite);
    server.cli(&["apt", "repo", "create", "main-repo"]).ok();
    server
        .cli(&["apt", "key", "generate", "Pipeline <ci@example.com>"])
        .ok();
    // An empty publication, updated by publishDeb.
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
    server.apply(
        r#"
pipelines:
  - name: build-hello
    parameters:
      - name: version
    stages:
      - id: tree
        type: run
        steps:
          - script: |
              mkdir -p pkg/usr/bin
              printf '#!/bin/sh\necho hello %s\n' '${{ parameters.version }}' > pkg/usr/bin/hello
              chmod +x pkg/usr/bin/hello
      - id: package
        type: packageDeb
        dependsOn: [tree]
        directory: pkg
        package: hello
        version: ${{ parameters.version }}
        architecture: amd64
      - id: publish
        type: publishDeb
        dependsOn: [package]
        repository: main-repo
        file: ${{ stages.package.outputs.file }}
  - name: on-artifact
    triggers:
      - type: artifact
        repository: main-repo
        package: hello
    stages:
      - id: record
        type: run
        steps:
          - script: echo '${{ trigger.type }} ${{ trigger.package }} ${{ trigger.version }}' > @W@/landed.txt
"#,
    );
    let id = server.run("build-hello", &["version=1.2.3"]);
    let execution = server.wait_terminal(&id);
    assert_eq!(
        execution["status"],
        "succeeded",
        "{execution:#}\n{:#?}",
        server.logs(&id)
    );
    let publish = crate::harness::stage(&execution, "publish");
    assert_eq!(publish["outputs"]["name"], "hello");
    assert_eq!(publish["outputs"]["version"], "1.2.3");
    let url = publish["outputs"]["url"]
        .as_str()
        .expect("a url output")
        .to_owned();
    assert_eq!(url, "/apt/pool/main/h/hello/hello_1.2.3_amd64.deb");

    // The published file is served and installable.
    let bytes = reqwest::blocking::get(format!("{}{url}", server.url))
        .unwrap()
        .bytes()
        .unwrap();
    let deb = server.work().join("fetched.deb");
    std::fs::write(&deb, &bytes).unwrap();
    let info = Command::new("dpkg-deb")
        .arg("-f")
        .arg(&deb)
        .arg("Version")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&info.stdout).trim(), "1.2.3");
    let client = AptClient::of_signed_stable(&server, &server.work().join("c"));
    client.update();
    assert_eq!(client.install("hello"), "#!/bin/sh\necho hello 1.2.3\n");

    let landed = server.work().join("landed.txt");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !landed.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        std::fs::read_to_string(&landed).unwrap(),
        "artifact hello 1.2.3\n"
    );
}

/// The Jenkins → deb → aptly → deploy chain: a pipeline packages and
/// publishes version 1.2.3; the artifact trigger starts a deploy pipeline
/// whose server group takes that package from the repository; the load
/// balancer then serves the new version.
#[test]
fn a_published_package_is_deployed_by_its_artifact_trigger() {
    let server = Server::start(Backend::Sqlite);
    server.cli(&["apt", "repo", "create", "main-repo"]).ok();
    let app = crate::deploy_support::testapp();
    let port = crate::deploy_support::free_port();
    server.apply(&format!(
        r#"applications:
  - name: shop
loadBalancers:
  - name: shop
    port: {port}
    cluster: shop-web
    healthCheck: {{path: /health, interval: 200ms, timeout: 1s, healthyThreshold: 2, unhealthyThreshold: 2}}
pipelines:
  - name: build
    parameters:
      - name: version
    stages:
      - id: tree
        type: run
        steps:
          - script: mkdir -p pkg/app && echo '${{{{ parameters.version }}}}' > pkg/app/version
      - id: package
        type: packageDeb
        dependsOn: [tree]
        directory: pkg
        package: shop
        version: ${{{{ parameters.version }}}}
      - id: publish
        type: publishDeb
        dependsOn: [package]
        repository: main-repo
        file: ${{{{ stages.package.outputs.file }}}}
  - name: deploy
    triggers:
      - type: artifact
        repository: main-repo
        package: shop
    stages:
      - id: deploy
        type: deploy
        application: shop
        stack: web
        package: shop (= ${{{{ trigger.version }}}})
        repository: main-repo
        command: env VERSION=$(cat app/version) {app}
        size: 1
        strategy: highlander
        healthTimeout: 20s
        gracePeriod: 1s
"#,
        app = app.display()
    ));
    for version in ["1.2.3", "1.2.4"] {
        let id = server.run("build", &[&format!("version={version}")]);
        let execution = server.wait_terminal(&id);
        assert_eq!(execution["status"], "succeeded", "{execution:#}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let answer = reqwest::blocking::get(format!("http://127.0.0.1:{port}/"))
                .ok()
                .and_then(|r| r.text().ok())
                .unwrap_or_default();
            if answer.starts_with(&format!("{version} ")) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the load balancer never served {version} (last answer {answer:?})\n{}\n{}",
                server.log_tail(),
                instance_logs(&server.data_dir())
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

/// The deployed instances' output, for failure messages.
fn instance_logs(dir: &Path) -> String {
    let mut out = String::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("instance-"))
            {
                out.push_str(&format!(
                    "{}:\n{}\n",
                    path.display(),
                    std::fs::read_to_string(&path).unwrap_or_default()
                ));
            }
        }
    }
    out
}

#[test]
fn bad_package_inputs_and_stage_specs_are_reported() {
    let server = Server::start(Backend::Sqlite);
    let tree = server.work().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let tree = tree.to_str().unwrap();
    server
        .cli(&[
            "deb",
            "build",
            tree,
            "--name",
            "../evil",
            "--version",
            "1.0",
        ])
        .fails_with("invalid package name \"../evil\"");
    server
        .cli(&["deb", "build", tree, "--name", "ok", "--version", "v1"])
        .fails_with("invalid version \"v1\": upstream version must start with a digit");
    server
        .cli(&["apt", "repo", "create", "bad/name"])
        .fails_with("invalid repository name \"bad/name\"");
    server
        .cli(&["apt", "repo", "add", "missing", tree])
        .fails_with("no package files found");
    let junk = server.write_file("junk.deb", "junk");
    server
        .cli(&["apt", "repo", "add", "missing", junk.to_str().unwrap()])
        .fails_with("repository \"missing\" not found");
    server
        .cli(&[
            "apt",
            "publish",
            "snapshot",
            "nope",
            "--distribution",
            "d",
            "--skip-signing",
        ])
        .fails_with("snapshot \"nope\" not found");

    let path = server.write_file(
        "bad.yaml",
        "pipelines:\n  - name: p\n    triggers:\n      - type: artifact\n    stages:\n      - id: a\n        type: packageDeb\n        directory: x\n        version: '1'\n      - id: b\n        type: publishDeb\n        repository: r\n",
    );
    let out = server
        .cli(&["validate", path.to_str().unwrap()])
        .fails_with("bad.yaml:");
    for expected in ["\"repository\"", "\"package\"", "\"file\""] {
        assert!(out.stderr.contains(expected), "{expected}: {}", out.stderr);
    }
}

/// Repositories, snapshots and publications on PostgreSQL (when
/// `GANTRY_TEST_POSTGRES_URL` is set, as `scripts/test` does).
#[test]
fn repositories_snapshots_and_publications_on_postgres() {
    let Some(server) = Server::try_start(Backend::Postgres) else {
        return;
    };
    let v1 = build_hello(&server, "1.0");
    let v2 = build_hello(&server, "2.0");
    server
        .cli(&["apt", "repo", "create", "r", "--comment", "pg"])
        .ok();
    server.cli(&["apt", "repo", "create", "copy"]).ok();
    server.cli(&["apt", "repo", "add", "r", &v1, &v2]).ok();
    server.cli(&["apt", "repo", "add", "r", &v1]).ok();
    server
        .cli(&["apt", "repo", "copy", "r", "copy", "hello (>= 2.0)"])
        .ok();
    server
        .cli(&["apt", "snapshot", "create", "s1", "from", "repo", "r"])
        .ok();
    server
        .cli(&["apt", "snapshot", "create", "s2", "from", "repo", "copy"])
        .ok();
    server
        .cli(&["apt", "snapshot", "merge", "m", "s1", "s2", "--latest"])
        .ok();
    let shown = server.cli(&["apt", "snapshot", "show", "m"]).ok().stdout;
    assert!(
        shown.contains("Number of packages: 1") && shown.contains("hello 2.0"),
        "{shown}"
    );
    server
        .cli(&[
            "apt",
            "publish",
            "snapshot",
            "s1",
            "--distribution",
            "d",
            "--skip-signing",
        ])
        .ok();
    server
        .cli(&[
            "apt",
            "publish",
            "snapshot",
            "s1",
            "--distribution",
            "d",
            "--skip-signing",
        ])
        .fails_with("already has a publication");
    server.cli(&["apt", "publish", "switch", "d", "m"]).ok();
    let packages = std::fs::read_to_string(
        server
            .data_dir()
            .join("apt/public/dists/d/main/binary-amd64/Packages"),
    )
    .unwrap();
    assert_eq!(packages.matches("Package: hello").count(), 1, "{packages}");
    assert!(packages.contains("Version: 2.0"), "{packages}");
    let list = server.cli(&["apt", "publish", "list"]).ok().stdout;
    assert!(list.contains("./d [amd64] publishes {main: [m]}"), "{list}");
    server.cli(&["apt", "repo", "drop", "copy"]).ok();
    server.cli(&["apt", "publish", "drop", "d"]).ok();
    server.cli(&["apt", "snapshot", "drop", "m"]).ok();
    assert!(!server.data_dir().join("apt/public/dists/d").exists());
    let dropped = format!("{}/apt/pool/main/h/hello/hello_2.0_amd64.deb", server.url);
    assert_eq!(reqwest::blocking::get(&dropped).unwrap().status(), 404);

    // `gantry apt --local --database URL` works on the server's PostgreSQL
    // database and data directory: the server sees what it publishes.
    let data_dir = server.data_dir().display().to_string();
    let database = server.database_url().expect("a PostgreSQL server");
    let local = |args: &[&str]| {
        let mut all = vec![
            "--data-dir",
            data_dir.as_str(),
            "apt",
            "--local",
            "--database",
            database,
        ];
        all.extend_from_slice(args);
        server.cli(&all)
    };
    let listed = local(&["repo", "list"]).ok().stdout;
    assert!(listed.contains("[r] (packages: 2)"), "{listed}");
    local(&[
        "publish",
        "repo",
        "r",
        "local",
        "--distribution",
        "d",
        "--skip-signing",
    ])
    .ok();
    let list = server.cli(&["apt", "publish", "list"]).ok().stdout;
    assert!(
        list.contains("local/d [amd64] publishes {main: [r]}"),
        "{list}"
    );
    let packages = reqwest::blocking::get(format!(
        "{}/apt/local/dists/d/main/binary-amd64/Packages",
        server.url
    ))
    .unwrap()
    .text()
    .unwrap();
    assert_eq!(packages.matches("Package: hello").count(), 2, "{packages}");
}

/// `gpg` on a keyring of the test's own (never the user's).
fn gpg_in(home: &Path, args: &[&str]) -> String {
    let out = Command::new("gpg")
        .env("GNUPGHOME", home)
        .args(["--batch", "--yes", "--pinentry-mode", "loopback"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gpg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn private_gnupg_home(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir.to_path_buf()
}

fn first_fingerprint(home: &Path) -> String {
    gpg_in(home, &["--with-colons", "--list-secret-keys"])
        .lines()
        .find(|l| l.starts_with("fpr:"))
        .and_then(|l| l.split(':').nth(9))
        .unwrap()
        .to_owned()
}

/// `gpgv` with only `keyring` trusted: whether `InRelease` and
/// `Release.gpg` of a publication verify.
fn gpgv_verifies(server: &Server, distribution: &str, keyring: &Path) -> bool {
    let dists = server
        .data_dir()
        .join("apt/public/dists")
        .join(distribution);
    let home = private_gnupg_home(&server.work().join("gpgv-home"));
    let run = |args: &[&Path]| {
        Command::new("gpgv")
            .env("GNUPGHOME", &home)
            .arg("--keyring")
            .arg(keyring)
            .args(args)
            .output()
            .unwrap()
            .status
            .success()
    };
    let inline = run(&[&dists.join("InRelease")]);
    let detached = run(&[&dists.join("Release.gpg"), &dists.join("Release")]);
    assert_eq!(inline, detached, "InRelease and Release.gpg disagree");
    inline
}

/// A key made elsewhere is imported and signs a publication that gpgv and
/// apt verify with its public half; files that hold no secret key are
/// refused with the reason.
#[test]
fn an_imported_key_signs_what_gpgv_and_apt_verify() {
    let server = Server::start(Backend::Sqlite);
    let elsewhere = private_gnupg_home(&server.work().join("elsewhere"));
    gpg_in(
        &elsewhere,
        &[
            "--passphrase",
            "",
            "--quick-generate-key",
            "Imported <imported@example.com>",
            "ed25519",
            "sign",
            "never",
        ],
    );
    let fingerprint = first_fingerprint(&elsewhere);
    let secret = server.work().join("secret.asc");
    std::fs::write(
        &secret,
        gpg_in(
            &elsewhere,
            &[
                "--passphrase",
                "",
                "--armor",
                "--export-secret-keys",
                &fingerprint,
            ],
        ),
    )
    .unwrap();
    let public = server.work().join("public.asc");
    std::fs::write(
        &public,
        gpg_in(&elsewhere, &["--armor", "--export", &fingerprint]),
    )
    .unwrap();
    let imported_keyring = server.work().join("imported.gpg");
    gpg_in(
        &elsewhere,
        &[
            "--export",
            "--output",
            imported_keyring.to_str().unwrap(),
            &fingerprint,
        ],
    );

    // Not keys, or no secret one: refused, the keyring unchanged.
    let junk = server.write_file("junk.asc", "this is not a key\n");
    server
        .cli(&["apt", "key", "import", junk.to_str().unwrap()])
        .fails_with("key file: not an armored OpenPGP secret key");
    server
        .cli(&["apt", "key", "import", public.to_str().unwrap()])
        .fails_with("key file: not an armored OpenPGP secret key");
    let cut = std::fs::read_to_string(&secret).unwrap();
    let cut = server.write_file("cut.asc", &cut[..cut.len() / 2]);
    server
        .cli(&["apt", "key", "import", cut.to_str().unwrap()])
        .fails_with("key file: ");
    assert_eq!(server.cli(&["apt", "key", "list"]).ok().stdout, "");

    // The server's own key is the default; the imported one is named.
    server
        .cli(&["apt", "key", "generate", "Own <own@example.com>"])
        .ok();
    let own_keyring = keyring(&server);
    let out = server
        .cli(&["apt", "key", "import", secret.to_str().unwrap()])
        .ok()
        .stdout;
    assert_eq!(out.trim(), fingerprint);
    let listed = server.cli(&["apt", "key", "list"]).ok().stdout;
    assert!(listed.contains(&fingerprint), "{listed}");

    let v1 = build_hello(&server, "1.0");
    server.cli(&["apt", "repo", "create", "r"]).ok();
    server.cli(&["apt", "repo", "add", "r", &v1]).ok();
    server
        .cli(&[
            "apt",
            "publish",
            "repo",
            "r",
            "--distribution",
            "imported",
            "--architectures",
            "amd64",
            "--gpg-key",
            &fingerprint,
        ])
        .ok();
    assert!(gpgv_verifies(&server, "imported", &imported_keyring));
    assert!(!gpgv_verifies(&server, "imported", &own_keyring));
    let client = AptClient::new(
        &server.work(),
        &format!(
            "deb [signed-by={}] {}/apt imported main",
            imported_keyring.display(),
            server.url
        ),
    );
    client.update();
    assert_eq!(client.install("hello"), "#!/bin/sh\necho hello 1.0\n");
}

/// The signing keys' passphrase is in the secret store, sealed: a data
/// directory that kept it in `apt/gnupg-passphrase` has it moved there at
/// the next start (the file removed), and its keys still sign, across
/// restarts, with nothing in the data directory holding it in the clear.
#[test]
fn the_signing_passphrase_moves_into_the_secret_store() {
    let mut server = Server::start(Backend::Sqlite);
    assert!(!server.data_dir().join("apt/gnupg-passphrase").exists());
    server.stop();

    // What an older server left: a key protected by the passphrase in a file.
    let passphrase = "0123456789abcdef-old-passphrase-fedcba9876543210";
    let home = server.data_dir().join("apt/gnupg");
    gpg_in(
        &home,
        &[
            "--passphrase",
            passphrase,
            "--quick-generate-key",
            "Old <old@example.com>",
            "ed25519",
            "sign",
            "never",
        ],
    );
    // Its agent would remember the passphrase and hide a failed move.
    Command::new("gpgconf")
        .env("GNUPGHOME", &home)
        .args(["--kill", "gpg-agent"])
        .status()
        .unwrap();
    let file = server.data_dir().join("apt/gnupg-passphrase");
    std::fs::write(&file, passphrase).unwrap();

    server.restart();
    assert!(!file.exists(), "the passphrase file is still there");
    // The passphrase is the server's own secret: not listed, and neither
    // readable by a pipeline nor deletable by a person.
    let secrets = server.cli(&["secret", "list"]).ok().stdout;
    assert!(!secrets.contains("_gantry."), "{secrets}");
    server
        .cli(&["secret", "delete", "_gantry.apt.signing-passphrase"])
        .fails_with("secret name \"_gantry.apt.signing-passphrase\" is reserved");
    let v1 = build_hello(&server, "1.0");
    server.cli(&["apt", "repo", "create", "r"]).ok();
    server.cli(&["apt", "repo", "add", "r", &v1]).ok();
    server
        .cli(&["apt", "publish", "repo", "r", "--distribution", "one"])
        .ok();
    let keyring = keyring(&server);
    assert!(gpgv_verifies(&server, "one", &keyring));

    // After a restart (its agent stopped with it) the key still unlocks.
    server.stop();
    server.restart();
    server.cli(&["apt", "publish", "update", "one"]).ok();
    assert!(gpgv_verifies(&server, "one", &keyring));

    let mut pending = vec![server.data_dir()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                pending.push(path);
            } else if entry.file_type().unwrap().is_file() {
                let bytes = std::fs::read(&path).unwrap_or_default();
                assert!(
                    !bytes
                        .windows(passphrase.len())
                        .any(|w| w == passphrase.as_bytes()),
                    "{} holds the passphrase in the clear",
                    path.display()
                );
            }
        }
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
