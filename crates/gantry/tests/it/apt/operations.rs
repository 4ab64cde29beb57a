//! Repository operations: bad inputs reported, and the whole set on
//! PostgreSQL.

use super::build_hello;
use crate::harness::{Backend, Server};

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
