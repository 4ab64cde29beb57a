use std::cmp::Ordering;
use std::path::Path;
use std::process::Command;

use crate::{BuildOptions, Compression, DebError, Version, build, inspect, validate_name};

// --- Versions -----------------------------------------------------------

/// Pairs and how the first compares to the second; each is also checked
/// against the real `dpkg --compare-versions`.
const VERSION_TABLE: &[(&str, &str, Ordering)] = &[
    ("1.0", "1.0", Ordering::Equal),
    ("1.0", "1.0-0", Ordering::Equal),
    ("0:1.0", "1.0", Ordering::Equal),
    ("1.0", "1.1", Ordering::Less),
    ("1.2", "1.10", Ordering::Less),
    ("1.0~rc1", "1.0", Ordering::Less),
    ("1.0~~", "1.0~", Ordering::Less),
    ("1.0~", "1.0", Ordering::Less),
    ("1.0", "1.0+b1", Ordering::Less),
    ("1.0", "1.0a", Ordering::Less),
    ("1.0+", "1.0.", Ordering::Less),
    ("1.0+", "1.0.", Ordering::Less),
    ("1:0.1", "2.0", Ordering::Greater),
    ("2:1", "10:0", Ordering::Less),
    ("1.0-1", "1.0-2", Ordering::Less),
    ("1.0-10", "1.0-9", Ordering::Greater),
    ("1.0-1ubuntu1", "1.0-1", Ordering::Greater),
    ("1.0-1~bpo1", "1.0-1", Ordering::Less),
    ("1.001", "1.1", Ordering::Equal),
    ("1.0-a-1", "1.0-a-2", Ordering::Less),
    ("7.6p2-4", "7.6-0", Ordering::Greater),
    ("1.18.36", "1.18.37", Ordering::Less),
    ("1.2.3", "1.2.3.0", Ordering::Less),
    ("0.0.0", "0", Ordering::Greater),
    ("9", "10", Ordering::Less),
    ("1.0+dfsg", "1.0", Ordering::Greater),
    ("1.0~beta2", "1.0~beta10", Ordering::Less),
    ("2.0-1", "2.0~rc1-1", Ordering::Greater),
];

#[test]
fn versions_compare_as_dpkg_compares_them() {
    for &(a, b, expected) in VERSION_TABLE {
        let ours = crate::compare_versions(a, b).unwrap();
        assert_eq!(ours, expected, "{a} vs {b}");
        assert_eq!(
            dpkg_compare(a, b),
            expected,
            "dpkg disagrees with the table on {a} vs {b}"
        );
        assert_eq!(
            crate::compare_versions(b, a).unwrap(),
            expected.reverse(),
            "{b} vs {a}"
        );
    }
}

fn dpkg_compare(a: &str, b: &str) -> Ordering {
    let holds = |op: &str| {
        Command::new("dpkg")
            .args(["--compare-versions", a, op, b])
            .status()
            .expect("run dpkg --compare-versions")
            .success()
    };
    if holds("lt") {
        Ordering::Less
    } else if holds("eq") {
        Ordering::Equal
    } else {
        Ordering::Greater
    }
}

#[test]
fn invalid_versions_are_refused_with_the_reason() {
    let check = |text: &str, reason: &str| {
        let error = Version::parse(text).unwrap_err().to_string();
        assert!(error.contains(reason), "{text:?}: {error}");
    };
    check("", "must not be empty");
    check("a1.0", "must start with a digit");
    check("x:1.0", "epoch must be a number");
    check("1.0/../x", "must not contain '/'");
    check("1.0 2", "whitespace");
    check("1.0\u{7}", "control characters");
    check("1.0-", "revision must not be empty");
    check("1.0-a_b", "revision may contain only");
    check("1.0_1", "upstream version may contain only");
}

#[test]
fn names_are_checked() {
    for good in ["hello", "libc6", "g++", "x-y.z"] {
        validate_name(good).unwrap();
    }
    for (bad, reason) in [
        ("a", "at least two"),
        ("../etc", "'/' or '..'"),
        ("a/b", "'/' or '..'"),
        ("a..b", "'/' or '..'"),
        ("Hello", "must start with"),
        ("he_llo", "may contain only"),
        ("he\nllo", "control characters"),
    ] {
        let error = validate_name(bad).unwrap_err().to_string();
        assert!(error.contains(reason), "{bad:?}: {error}");
    }
}

// --- Building and reading -------------------------------------------------

fn sample_tree(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::create_dir_all(root.join("usr/share/hello")).unwrap();
    std::fs::write(root.join("usr/bin/hello"), "#!/bin/sh\necho hello 1.0\n").unwrap();
    std::fs::set_permissions(
        root.join("usr/bin/hello"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    std::fs::write(root.join("usr/share/hello/greeting"), "hi\n".repeat(1000)).unwrap();
    std::os::unix::fs::symlink("../bin/hello", root.join("usr/share/hello/link")).unwrap();
}

fn sample_options() -> BuildOptions {
    let mut options = BuildOptions::new("hello", "1:1.0-1");
    options.architecture = "amd64".into();
    options.depends = vec!["libc6 (>= 2.3)".into()];
    options.description = "says hello\nA longer description.\n\nSecond paragraph.".into();
    options.scripts = vec![(
        "postinst".into(),
        b"#!/bin/sh\nset -e\necho \"$1\" > \"$DPKG_ROOT/postinst-ran\"\n".to_vec(),
    )];
    options
}

#[test]
fn the_same_inputs_build_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let first = build(dir.path(), &sample_options()).unwrap();
    let second = build(dir.path(), &sample_options()).unwrap();
    assert_eq!(first, second);
    let mut xz = sample_options();
    xz.compression = Compression::Xz;
    assert_eq!(
        build(dir.path(), &xz).unwrap(),
        build(dir.path(), &xz).unwrap()
    );
}

#[test]
fn dpkg_deb_reads_and_dpkg_installs_built_packages() {
    for compression in [Compression::Gzip, Compression::Xz] {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        sample_tree(&tree);
        let mut options = sample_options();
        options.compression = compression;
        let deb = dir.path().join("hello.deb");
        crate::build_to_file(&tree, &options, &deb).unwrap();

        let info = run(Command::new("dpkg-deb").arg("-I").arg(&deb));
        for expected in [
            "Package: hello",
            "Version: 1:1.0-1",
            "Architecture: amd64",
            "Depends: libc6 (>= 2.3)",
            "Installed-Size: 9",
            " Second paragraph.",
            "postinst",
            "md5sums",
        ] {
            assert!(
                info.contains(expected),
                "dpkg-deb -I lacks {expected:?}:\n{info}"
            );
        }
        let contents = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
        assert!(
            contents.contains("-rwxr-xr-x root/root        25 1970-01-01 00:00 ./usr/bin/hello"),
            "{contents}"
        );
        assert!(
            contents.contains("./usr/share/hello/link -> ../bin/hello"),
            "{contents}"
        );

        let root = dir.path().join("root");
        let admin = dir.path().join("admin");
        for sub in ["updates", "info", "triggers"] {
            std::fs::create_dir_all(admin.join(sub)).unwrap();
        }
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(admin.join("status"), "").unwrap();
        run(Command::new("dpkg")
            .arg(format!("--instdir={}", root.display()))
            .arg(format!("--admindir={}", admin.display()))
            .args([
                "--force-not-root",
                "--force-script-chrootless",
                "--force-depends",
                "--log=/dev/null",
                "-i",
            ])
            .arg(&deb)
            .env("DPKG_ROOT", &root));
        assert_eq!(
            std::fs::read_to_string(root.join("usr/bin/hello")).unwrap(),
            "#!/bin/sh\necho hello 1.0\n"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("postinst-ran")).unwrap(),
            "configure\n"
        );
        let status = std::fs::read_to_string(admin.join("status")).unwrap();
        assert!(status.contains("Status: install ok installed"), "{status}");

        let package = crate::inspect_file(&deb).unwrap();
        assert_eq!(package.name, "hello");
        assert_eq!(package.version.as_str(), "1:1.0-1");
        assert_eq!(package.architecture, "amd64");
        assert_eq!(package.control.get("Installed-Size"), Some("9"));
    }
}

fn run(command: &mut Command) -> String {
    let out = command.output().expect("run command");
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn packages_built_by_dpkg_deb_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(tree.join("opt")).unwrap();
    std::fs::write(tree.join("opt/x"), "x").unwrap();
    std::fs::write(
        tree.join("DEBIAN/control"),
        "Package: other\nVersion: 2.0~rc1\nArchitecture: all\nMaintainer: x <x@y>\nDescription: d\n",
    )
    .unwrap();
    let deb = dir.path().join("other.deb");
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zxz", "-b"])
        .arg(&tree)
        .arg(&deb));
    let package = crate::inspect_file(&deb).unwrap();
    assert_eq!(
        (package.name.as_str(), package.version.as_str()),
        ("other", "2.0~rc1")
    );
}

#[test]
fn bad_packages_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let good = build(dir.path(), &sample_options()).unwrap();
    let check = |bytes: &[u8], expected: &str| {
        let error = inspect("x.deb", bytes).unwrap_err().to_string();
        assert!(
            error.contains(expected),
            "expected {expected:?} in {error:?}"
        );
    };
    check(
        b"hello world, this is text",
        "x.deb: not a Debian package (no ar archive header)",
    );
    check(&good[..4], "x.deb: truncated archive");
    check(&good[..good.len() / 2], "x.deb: truncated archive");
    check(&good[..100], "x.deb: truncated archive");
    let mut corrupt = good.clone();
    let len = corrupt.len();
    for byte in &mut corrupt[len - 200..len - 100] {
        *byte ^= 0x5a;
    }
    check(&corrupt, "x.deb: corrupt archive");

    // A control file without Version, from dpkg-deb itself (which builds
    // it with --nocheck).
    let tree = dir.path().join("noversion");
    std::fs::create_dir_all(tree.join("DEBIAN")).unwrap();
    std::fs::write(
        tree.join("DEBIAN/control"),
        "Package: nov\nArchitecture: all\nMaintainer: x\nDescription: d\n",
    )
    .unwrap();
    let deb = dir.path().join("nov.deb");
    run(Command::new("dpkg-deb")
        .args(["--nocheck", "-b"])
        .arg(&tree)
        .arg(&deb));
    let error = crate::inspect_file(&deb).unwrap_err();
    assert!(
        matches!(
            error,
            DebError::MissingField {
                field: "Version",
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .ends_with("control file is missing the Version field"),
        "{error}"
    );
}

/// A `.deb` whose members are well formed as far as `ar` goes, but whose
/// uncompressed `data.tar` ends inside its one entry's padding: the tar
/// stream is cut, though every header read so far was whole.
#[test]
fn a_data_tar_cut_inside_its_padding_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let good = build(dir.path(), &sample_options()).unwrap();
    let members = crate::ar::read_members(&good).unwrap();

    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(100);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "./usr/share/doc/file", &[7u8; 100][..])
        .unwrap();
    let mut data_tar = tar.into_inner().unwrap();
    // Header, 100 bytes of data, then 10 of the 412 bytes of padding.
    data_tar.truncate(512 + 100 + 10);

    let mut deb = b"!<arch>\n".to_vec();
    for (name, bytes) in [
        ("debian-binary", members[0].data),
        (members[1].name.as_str(), members[1].data),
        ("data.tar", &data_tar[..]),
    ] {
        deb.extend_from_slice(
            format!(
                "{name:<16}0           0     0     100644  {:<10}`\n",
                bytes.len()
            )
            .as_bytes(),
        );
        deb.extend_from_slice(bytes);
        if bytes.len() % 2 == 1 {
            deb.push(b'\n');
        }
    }
    let error = inspect("cut.deb", &deb).unwrap_err().to_string();
    assert!(
        error.starts_with("cut.deb: corrupt archive") && error.contains("data.tar"),
        "{error}"
    );
}

#[test]
fn bad_build_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let check = |options: BuildOptions, expected: &str| {
        let error = build(dir.path(), &options).unwrap_err().to_string();
        assert!(
            error.contains(expected),
            "expected {expected:?} in {error:?}"
        );
    };
    check(BuildOptions::new("../x", "1.0"), "invalid package name");
    check(BuildOptions::new("ok", "one"), "invalid version");
    let mut options = BuildOptions::new("ok", "1.0");
    options.architecture = "amd/64".into();
    check(options, "invalid architecture");
    let mut options = BuildOptions::new("ok", "1.0");
    options.maintainer = "a\u{1b}[31m".into();
    check(options, "control characters");
    let mut options = BuildOptions::new("ok", "1.0");
    options.scripts = vec![("evil".into(), vec![])];
    check(options, "is not a maintainer script");
}

// --- gzip members ---------------------------------------------------------

fn gunzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    crate::gzip::GzMember::new(data)?.read_to_end(&mut out)?;
    Ok(out)
}

fn gzip(data: &[u8], builder: flate2::GzBuilder) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = builder.write(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Members with every optional header field read back whole, one after
/// another on the same thread (the inflater is reused), also after a
/// member that failed half-way.
#[test]
fn gzip_members_read_back_with_a_reused_inflater() {
    let data: Vec<u8> = (0..200_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect();
    let plain = gzip(&data, flate2::GzBuilder::new());
    let decorated = gzip(
        &data,
        flate2::GzBuilder::new()
            .filename("data.tar")
            .comment("made for a test")
            .extra(vec![1, 2, 3, 4]),
    );
    // FHCRC: the flag and two bytes of header CRC after the other fields
    // (gzip never checks them, neither do we).
    let mut with_header_crc = plain.clone();
    with_header_crc[3] |= 0x02;
    with_header_crc.splice(10..10, [0xab, 0xcd]);

    let mut damaged = plain.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;

    for member in [&plain, &decorated, &with_header_crc] {
        assert_eq!(gunzip(member).unwrap(), data);
        assert!(gunzip(&damaged).is_err());
    }
}

#[test]
fn bad_gzip_members_are_refused_with_the_reason() {
    let plain = gzip(b"hello, world\n", flate2::GzBuilder::new());
    let error = |bytes: &[u8]| gunzip(bytes).unwrap_err().to_string();
    let len = plain.len();

    let mut wrong_crc = plain.clone();
    wrong_crc[len - 8] ^= 1;
    assert_eq!(error(&wrong_crc), "gzip CRC-32 mismatch");
    let mut wrong_length = plain.clone();
    wrong_length[len - 4] ^= 1;
    assert_eq!(error(&wrong_length), "gzip length mismatch");
    assert_eq!(error(&plain[..len - 3]), "the gzip trailer is cut");
    assert_eq!(error(&plain[..len - 12]), "the deflate stream is cut");
    assert_eq!(error(&plain[..6]), "the gzip header is cut");
    assert_eq!(
        error(b"BZh91AY&SY"),
        "not gzip data (or not deflate-compressed)"
    );
    let mut reserved = plain.clone();
    reserved[3] |= 0x80;
    assert_eq!(error(&reserved), "reserved gzip header flags are set");
    let mut named_without_end = plain[..10].to_vec();
    named_without_end[3] |= 0x08;
    named_without_end.extend_from_slice(b"data.tar");
    assert_eq!(error(&named_without_end), "the gzip header is cut");
}
