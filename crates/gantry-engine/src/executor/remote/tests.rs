use std::os::unix::fs::PermissionsExt;

use super::snapshot::{pack, unpack};

#[test]
fn a_snapshot_unpacks_to_the_same_tree_and_packs_again_to_the_same_name() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("workspace");
    std::fs::create_dir_all(workspace.join("src/deep")).unwrap();
    std::fs::write(workspace.join("src/deep/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(workspace.join("run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        workspace.join("run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/passwd", workspace.join("out")).unwrap();
    let first = pack(&workspace, &dir.path().join("a.tar")).unwrap();

    let copy = dir.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::write(copy.join("stale"), "gone after the unpack").unwrap();
    unpack(&dir.path().join("a.tar"), &copy).unwrap();
    assert_eq!(
        std::fs::read_to_string(copy.join("src/deep/main.rs")).unwrap(),
        "fn main() {}\n"
    );
    assert!(!copy.join("stale").exists());
    let mode = std::fs::metadata(copy.join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    // A link stays a link; nothing is read through it.
    assert_eq!(
        std::fs::read_link(copy.join("out")).unwrap(),
        std::path::Path::new("/etc/passwd")
    );
    let again = pack(&copy, &dir.path().join("b.tar")).unwrap();
    assert_eq!(first, again);

    std::fs::write(copy.join("new"), "changed").unwrap();
    let changed = pack(&copy, &dir.path().join("c.tar")).unwrap();
    assert_ne!(first, changed);
}

#[test]
fn a_runners_refusal_that_names_the_step_is_kept_whole_and_others_are_prefixed() {
    use super::handle::{Outcome, runner_error};
    let check = |error: &str, expected: &str| match runner_error("step 1", "r1", error.to_owned()) {
        Outcome::FailedNamed(message) => assert_eq!(format!("named: {message}"), expected),
        Outcome::Failed(message) => assert_eq!(format!("plain: {message}"), expected),
        _ => panic!("not a failure"),
    };
    check(
        "step 1: podman image x: not found locally",
        "named: step 1: podman image x: not found locally (on runner r1)",
    );
    check(
        "step 1 runs in image \"x\" but no container engine is installed",
        "named: step 1 runs in image \"x\" but no container engine is installed (on runner r1)",
    );
    // Another step's name is not this one's.
    check(
        "step 10: refused",
        "plain: on runner r1: step 10: refused",
    );
    check(
        "the job is not a step this runner can read",
        "plain: on runner r1: the job is not a step this runner can read",
    );
}
