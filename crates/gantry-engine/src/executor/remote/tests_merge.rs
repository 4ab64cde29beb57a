//! Bringing steps' snapshots home (`snapshot::bring_home`, `merge`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::snapshot::{bring_home, pack};

/// A server's workspace and the stage's snapshot directory.
struct Place {
    _root: tempfile::TempDir,
    workspace: PathBuf,
    snapshots: PathBuf,
}

impl Place {
    fn new(files: &[(&str, &str)]) -> Place {
        let root = tempfile::tempdir().unwrap();
        let workspace = root.path().join("workspaces").join("execution");
        let snapshots = root.path().join("snapshots");
        std::fs::create_dir_all(&snapshots).unwrap();
        write_tree(&workspace, files);
        Place {
            workspace,
            snapshots,
            _root: root,
        }
    }

    /// A snapshot of `tree` (a step's copy as it left it).
    fn snapshot_of(&self, tree: &Path) -> PathBuf {
        let temporary = self.snapshots.join(format!(".{}", uuid::Uuid::now_v7()));
        let sha256 = pack(tree, &temporary).unwrap();
        let named = self.snapshots.join(format!("{sha256}.tar"));
        std::fs::rename(&temporary, &named).unwrap();
        named
    }

    /// What a runner does with a step: a copy of `base`'s tree, changed.
    fn step(&self, base: &Path, change: impl FnOnce(&Path)) -> PathBuf {
        let copy = self
            ._root
            .path()
            .join(format!("copy-{}", uuid::Uuid::now_v7()));
        super::snapshot::unpack(base, &copy).unwrap();
        change(&copy);
        self.snapshot_of(&copy)
    }

    fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.workspace.join(name)).ok()
    }
}

fn write_tree(root: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(root).unwrap();
    for (name, text) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// Two parallel stages' steps start from one snapshot and come back at
/// once: each one's new files are in the workspace afterwards, and neither
/// fails (a plain swap of whole trees lost one, or failed "Directory not
/// empty" when both renamed at once).
#[test]
fn parallel_steps_brought_home_at_once_keep_each_others_files() {
    for round in 0..20 {
        let place = Place::new(&[("shared", "base\n")]);
        let base = place.snapshot_of(&place.workspace);
        let first = place.step(&base, |copy| write_tree(copy, &[("first", "1\n")]));
        let second = place.step(&base, |copy| write_tree(copy, &[("second", "2\n")]));
        std::thread::scope(|scope| {
            for tar in [&first, &second] {
                let (base, workspace) = (&base, &place.workspace);
                scope.spawn(move || bring_home(tar, Some(base), workspace).unwrap());
            }
        });
        for (name, text) in [("first", "1\n"), ("second", "2\n"), ("shared", "base\n")] {
            assert_eq!(
                place.read(name).as_deref(),
                Some(text),
                "round {round}: {name}"
            );
        }
    }
}

/// What the step changed wins; what it left as it found it takes the
/// workspace's later version, additions and removals alike.
#[test]
fn a_steps_changes_win_and_others_changes_stay_where_it_changed_nothing() {
    let place = Place::new(&[
        ("both", "base\n"),
        ("theirs-changed", "base\n"),
        ("theirs-removed", "base\n"),
        ("mine-removed", "base\n"),
        ("dir/kept", "base\n"),
    ]);
    let base = place.snapshot_of(&place.workspace);
    let mine = place.step(&base, |copy| {
        write_tree(copy, &[("both", "mine\n"), ("mine-added", "mine\n")]);
        std::fs::remove_file(copy.join("mine-removed")).unwrap();
    });
    // Another step came home first.
    write_tree(
        &place.workspace,
        &[
            ("both", "theirs\n"),
            ("theirs-changed", "theirs\n"),
            ("theirs-added/deep/file", "theirs\n"),
        ],
    );
    std::fs::remove_file(place.workspace.join("theirs-removed")).unwrap();
    let merged = bring_home(&mine, Some(&base), &place.workspace).unwrap();
    assert_eq!(place.read("both").as_deref(), Some("mine\n"));
    assert_eq!(place.read("mine-added").as_deref(), Some("mine\n"));
    assert_eq!(place.read("theirs-changed").as_deref(), Some("theirs\n"));
    assert_eq!(
        place.read("theirs-added/deep/file").as_deref(),
        Some("theirs\n")
    );
    assert_eq!(place.read("dir/kept").as_deref(), Some("base\n"));
    assert_eq!(place.read("theirs-removed"), None);
    assert_eq!(place.read("mine-removed"), None);
    // The workspace is now neither snapshot: its own was packed, for the
    // next step to start from.
    let merged = merged.expect("a new snapshot of the merged workspace");
    assert!(place.snapshots.join(format!("{merged}.tar")).is_file());
    let again = place.snapshot_of(&place.workspace);
    assert_eq!(again, place.snapshots.join(format!("{merged}.tar")));
}

/// A step that replaced a directory by a link out of the workspace cannot
/// have another step's file in that directory written through its link.
#[test]
fn anothers_file_is_never_written_through_a_link_the_step_left() {
    let outside = tempfile::tempdir().unwrap();
    let place = Place::new(&[("dir/old", "base\n")]);
    let base = place.snapshot_of(&place.workspace);
    let target = outside.path().to_path_buf();
    let mine = place.step(&base, move |copy| {
        std::fs::remove_dir_all(copy.join("dir")).unwrap();
        std::os::unix::fs::symlink(&target, copy.join("dir")).unwrap();
    });
    write_tree(&place.workspace, &[("dir/planted", "theirs\n")]);
    bring_home(&mine, Some(&base), &place.workspace).unwrap();
    assert!(
        !outside.path().join("planted").exists(),
        "written through the step's link"
    );
    assert!(
        std::fs::symlink_metadata(place.workspace.join("dir"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

/// Without a base (a step re-run after the server restarted) the step's
/// tree replaces the workspace, as before.
#[test]
fn without_a_base_the_steps_tree_replaces_the_workspace() {
    let place = Place::new(&[("old", "base\n")]);
    let base = place.snapshot_of(&place.workspace);
    let mine = place.step(&base, |copy| {
        std::fs::remove_file(copy.join("old")).unwrap();
        write_tree(copy, &[("new", "mine\n")]);
    });
    write_tree(&place.workspace, &[("theirs", "theirs\n")]);
    assert_eq!(bring_home(&mine, None, &place.workspace).unwrap(), None);
    assert_eq!(place.read("new").as_deref(), Some("mine\n"));
    assert_eq!(place.read("old"), None);
    assert_eq!(place.read("theirs"), None);
}

/// Directories: one another step removed goes whole (not left empty), unless
/// the step wrote beneath it; one whose mode another step changed keeps
/// what is in it.
#[test]
fn directories_others_removed_or_changed_keep_what_the_step_wrote_in_them() {
    let place = Place::new(&[
        ("gone/a", "base\n"),
        ("gone/deep/b", "base\n"),
        ("mine-inside/a", "base\n"),
        ("private/a", "base\n"),
    ]);
    let base = place.snapshot_of(&place.workspace);
    let mine = place.step(&base, |copy| {
        write_tree(copy, &[("mine-inside/new", "mine\n")]);
    });
    for dir in ["gone", "mine-inside"] {
        std::fs::remove_dir_all(place.workspace.join(dir)).unwrap();
    }
    std::fs::set_permissions(
        place.workspace.join("private"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    bring_home(&mine, Some(&base), &place.workspace).unwrap();
    assert!(
        !place.workspace.join("gone").exists(),
        "a removed directory came back"
    );
    assert_eq!(place.read("mine-inside/new").as_deref(), Some("mine\n"));
    assert_eq!(place.read("mine-inside/a"), None);
    assert_eq!(place.read("private/a").as_deref(), Some("base\n"));
    let mode = std::fs::metadata(place.workspace.join("private"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

/// The shortcut past the merge: a step whose base is the snapshot the
/// workspace was last packed as (nothing came home since) swaps its tree in
/// whole. Seen here through a file written behind the server's back, which
/// only a merge would have kept.
#[test]
fn a_step_whose_base_the_workspace_still_holds_comes_home_without_a_merge() {
    let place = Place::new(&[("kept", "base\n")]);
    let name = super::snapshot::pack_workspace(&place.workspace, &place.snapshots).unwrap();
    let base = place.snapshots.join(format!("{name}.tar"));
    let mine = place.step(&base, |copy| write_tree(copy, &[("mine", "mine\n")]));
    write_tree(&place.workspace, &[("behind", "unseen\n")]);
    assert_eq!(
        bring_home(&mine, Some(&base), &place.workspace).unwrap(),
        None
    );
    assert_eq!(place.read("mine").as_deref(), Some("mine\n"));
    assert_eq!(place.read("behind"), None);
    // What came home is now what the workspace holds: the next step from it
    // also skips the merge, and one from the old base merges again.
    let next = place.step(&mine, |copy| write_tree(copy, &[("next", "next\n")]));
    let stale = place.step(&base, |copy| write_tree(copy, &[("stale", "stale\n")]));
    assert_eq!(
        bring_home(&next, Some(&mine), &place.workspace).unwrap(),
        None
    );
    assert!(
        bring_home(&stale, Some(&base), &place.workspace)
            .unwrap()
            .is_some()
    );
    for name in ["mine", "next", "stale", "kept"] {
        assert!(place.read(name).is_some(), "{name} lost");
    }
}
