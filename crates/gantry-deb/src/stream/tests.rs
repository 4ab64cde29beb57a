//! The streaming check against the in-memory one: the same package, or the
//! same refusal, for good packages and for every way of damaging them.

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use crate::{BuildOptions, Compression, build, inspect, inspect_reader};

fn tree(root: &Path) {
    std::fs::create_dir_all(root.join("usr/share/big")).unwrap();
    // Some of it compressible, some not, so that the data member spans
    // many reads of the stream.
    let noise: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(root.join("usr/share/big/noise"), noise).unwrap();
    std::fs::write(root.join("usr/share/big/text"), "big\n".repeat(50_000)).unwrap();
}

fn package(compression: Compression) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let mut options = BuildOptions::new("big", "2.0-1");
    options.compression = compression;
    build(dir.path(), &options).unwrap()
}

/// Both checks of `bytes` agree: the same package with the same digests,
/// or a refusal of the same kind (the same message where `exact`).
fn agree(bytes: &[u8], exact: bool) {
    let in_memory = inspect("x.deb", bytes);
    let streamed = inspect_reader("x.deb", Cursor::new(bytes));
    match (in_memory, streamed) {
        (Ok(a), Ok(b)) => {
            assert_eq!(
                (a.name, a.version.to_string(), a.size, a.sha256, a.md5),
                (b.name, b.version.to_string(), b.size, b.sha256, b.md5)
            );
            assert_eq!(a.control.to_text(), b.control.to_text());
        }
        (Err(a), Err(b)) if exact => assert_eq!(a.to_string(), b.to_string()),
        (Err(a), Err(b)) => {
            let kind = |e: &crate::DebError| std::mem::discriminant(e);
            assert_eq!(kind(&a), kind(&b), "{a} / {b}");
        }
        (a, b) => panic!(
            "the checks disagree: in memory {:?}, streamed {:?}",
            a.map(|p| p.name),
            b.map(|p| p.name)
        ),
    }
}

#[test]
fn a_streamed_check_reads_the_same_package() {
    for compression in [Compression::Gzip, Compression::Xz, Compression::None] {
        let deb = package(compression);
        agree(&deb, true);
        let streamed = inspect_reader("x.deb", Cursor::new(&deb)).unwrap();
        assert_eq!(streamed.sha256, crate::Digests::of(&deb).sha256);
        assert_eq!(streamed.size, deb.len() as u64);
    }
}

#[test]
fn a_streamed_check_reads_packages_built_by_dpkg_deb() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    tree(&root);
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        "Package: other\nVersion: 2.0~rc1\nArchitecture: all\nMaintainer: x <x@y>\nDescription: d\n",
    )
    .unwrap();
    for z in ["-Zxz", "-Zgzip", "-Znone"] {
        let deb = dir.path().join("other.deb");
        let status = Command::new("dpkg-deb")
            .args(["--root-owner-group", z, "-b"])
            .arg(&root)
            .arg(&deb)
            .output()
            .unwrap();
        assert!(status.status.success(), "{status:?}");
        let bytes = std::fs::read(&deb).unwrap();
        agree(&bytes, true);
        let file = std::fs::File::open(&deb).unwrap();
        assert_eq!(inspect_reader("other.deb", file).unwrap().name, "other");
    }
}

#[test]
fn a_streamed_check_refuses_what_the_in_memory_check_refuses() {
    let deb = package(Compression::Gzip);
    agree(b"hello world, this is text", true);
    agree(b"", true);
    agree(&deb[..4], true);
    // Cut everywhere in the headers and the control member, then at
    // steps through the data member.
    for end in (0..600).chain((600..deb.len()).step_by(997)) {
        agree(&deb[..end], end < 500);
    }
    // A byte changed anywhere, a few at a time.
    for at in (0..deb.len()).step_by(331) {
        let mut damaged = deb.clone();
        damaged[at] ^= 0x5a;
        agree(&damaged, false);
    }
    let mut extra_member = deb.clone();
    extra_member
        .extend_from_slice(b"junk            0           0     0     100644  3         `\nabc\n");
    agree(&extra_member, true);
    let mut bad_extra = deb.clone();
    bad_extra
        .extend_from_slice(b"junk            0           0     0     100644  300       `\nabc\n");
    agree(&bad_extra, true);
}

#[test]
fn a_streamed_check_refuses_an_oversized_control_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    let mut control =
        "Package: huge\nVersion: 1\nArchitecture: all\nMaintainer: x <x@y>\nDescription: d\n"
            .to_owned();
    for _ in 0..(5 << 20) / 64 {
        control.push_str(" a line of a description far longer than any real one...........\n");
    }
    std::fs::write(root.join("DEBIAN/control"), control).unwrap();
    let deb = dir.path().join("huge.deb");
    let status = Command::new("dpkg-deb")
        .args(["--nocheck", "-Zgzip", "-b"])
        .arg(&root)
        .arg(&deb)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let error = inspect_reader("huge.deb", std::fs::File::open(&deb).unwrap())
        .unwrap_err()
        .to_string();
    assert!(error.contains("larger than 4 MiB"), "{error}");
}
