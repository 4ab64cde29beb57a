use std::os::unix::fs::symlink;

use super::*;

fn tree() -> (tempfile::TempDir, tempfile::TempDir, Beneath) {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secrets.key"), b"KEY").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("pkg/usr/bin")).unwrap();
    for dir in ["pkg/usr", "pkg/usr/bin"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root.join(dir), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(root.join("pkg/usr/bin/tool"), b"tool").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        root.join("pkg/usr/bin/tool"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(root.join("plain"), b"plain").unwrap();
    symlink("plain", root.join("inner-link")).unwrap();
    symlink(
        outside.path().join("secrets.key"),
        root.join("absolute-out"),
    )
    .unwrap();
    symlink(
        "../../../../../../../../etc/hostname",
        root.join("relative-out"),
    )
    .unwrap();
    symlink("/", root.join("pkg/root-link")).unwrap();
    symlink("/proc/self/root/etc/hostname", root.join("magic")).unwrap();
    let fifo = std::ffi::CString::new(root.join("fifo").into_os_string().into_vec()).unwrap();
    // SAFETY: a valid path string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let beneath = Beneath::workspace(root).unwrap();
    (outside, dir, beneath)
}

fn check_refused(beneath: &Beneath, path: &str, expected: &str) {
    let error = beneath.read(path, 1 << 20).unwrap_err().to_string();
    assert!(error.contains(expected), "{path}: {error}");
    assert!(!error.contains("KEY"), "{error}");
}

#[test]
fn files_inside_are_read_and_links_inside_are_followed() {
    let (_outside, _dir, beneath) = tree();
    assert_eq!(beneath.read("plain", 100).unwrap(), b"plain");
    assert_eq!(beneath.read("./inner-link", 100).unwrap(), b"plain");
    assert_eq!(beneath.read("pkg/usr/bin/tool", 100).unwrap(), b"tool");
}

#[test]
fn links_out_of_the_directory_and_special_files_are_refused() {
    let (_outside, _dir, beneath) = tree();
    check_refused(
        &beneath,
        "absolute-out",
        "absolute-out leads outside the workspace",
    );
    check_refused(
        &beneath,
        "relative-out",
        "relative-out leads outside the workspace",
    );
    check_refused(
        &beneath,
        "pkg/root-link/etc/hostname",
        "leads outside the workspace",
    );
    check_refused(&beneath, "magic", "magic leads outside the workspace");
    check_refused(
        &beneath,
        "../plain",
        "must be a relative path inside the workspace",
    );
    check_refused(
        &beneath,
        "/etc/hostname",
        "must be a relative path inside the workspace",
    );
    check_refused(&beneath, "fifo", "fifo is not a regular file");
    check_refused(&beneath, "pkg", "pkg is not a regular file");
    check_refused(&beneath, "missing", "missing is not in the workspace");
    assert!(matches!(
        beneath.read("plain", 2),
        Err(WorkspaceFileError::TooLarge { .. })
    ));
}

#[test]
fn a_walk_lists_links_as_links_and_never_enters_them() {
    let (_outside, _dir, beneath) = tree();
    let entries: Vec<_> = beneath
        .walk("pkg")
        .unwrap()
        .into_iter()
        .map(|e| (e.relative.display().to_string(), e.kind))
        .collect();
    assert_eq!(
        entries,
        vec![
            ("root-link".to_owned(), EntryKind::Symlink("/".into())),
            ("usr".to_owned(), EntryKind::Dir { mode: 0o755 }),
            ("usr/bin".to_owned(), EntryKind::Dir { mode: 0o755 }),
            ("usr/bin/tool".to_owned(), EntryKind::File { mode: 0o755 }),
        ]
    );
    assert!(matches!(
        beneath.walk("pkg/root-link"),
        Err(WorkspaceFileError::Outside { .. })
    ));
}

/// Where `openat2` is missing, the open descriptor's real path decides.
#[test]
fn the_fallback_without_openat2_refuses_the_same_links() {
    let (_outside, _dir, beneath) = tree();
    let open = |path: &str| {
        let clean = beneath.check_relative(path).unwrap();
        beneath.resolve_by_proc(path, &clean, libc::O_RDONLY | libc::O_NONBLOCK)
    };
    assert!(open("plain").is_ok());
    assert!(open("inner-link").is_ok());
    for path in ["absolute-out", "relative-out", "pkg/root-link/etc"] {
        assert!(
            matches!(open(path), Err(WorkspaceFileError::Outside { .. })),
            "{path}"
        );
    }
    assert!(matches!(
        open("missing"),
        Err(WorkspaceFileError::Missing { .. })
    ));
}
