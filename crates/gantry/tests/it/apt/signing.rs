//! Signing keys: an imported key, and the passphrase in the secret store.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{AptClient, build_hello, keyring};
use crate::harness::{Backend, Server};

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
    let published = server
        .cli(&["apt", "publish", "repo", "r", "--distribution", "one"])
        .ok();
    // The sources line names the server, not a placeholder.
    let line = format!("deb {}/apt/ one main", server.url.trim_end_matches('/'));
    assert!(published.stdout.contains(&line), "{}", published.stdout);
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
