use std::process::Command;

use crate::{Access, Sandbox, SandboxConfig, clean_environment};

fn sandbox(protected: &std::path::Path) -> Sandbox {
    Sandbox::prepare(SandboxConfig {
        user: None,
        protected: vec![protected.to_owned()],
    })
    .expect("sandbox")
}

/// Runs `script` confined with `writable` given; its exit status and output.
fn run(sandbox: &Sandbox, writable: &std::path::Path, script: &str) -> (bool, String) {
    let mut command = Command::new("sh");
    command.arg("-c").arg(script);
    clean_environment(&mut command, writable);
    sandbox
        .confine(
            &mut command,
            &Access {
                writable: vec![writable.to_owned()],
            },
        )
        .expect("confine");
    let output = command.output().expect("run sh");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn a_confined_process_cannot_read_a_protected_directory_but_writes_what_it_is_given() {
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("data");
    let work = data.join("workspaces").join("one");
    std::fs::create_dir_all(&work).expect("workspace");
    std::fs::write(data.join("secret"), "s3cret").expect("secret");
    let sandbox = sandbox(&data);
    if !sandbox.isolates() {
        eprintln!("note: neither root nor Landlock here; nothing to check");
        return;
    }
    sandbox.hand_over(&work).expect("hand over");
    if sandbox.identity().is_some() {
        // The step user traverses the data directory to its workspace.
        use std::os::unix::fs::PermissionsExt;
        for dir in [root.path(), &data, &data.join("workspaces")] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
        }
    }
    let (read, text) = run(
        &sandbox,
        &work,
        &format!("cat {}", data.join("secret").display()),
    );
    assert!(!read, "read the protected file: {text}");
    let (wrote, text) = run(
        &sandbox,
        &work,
        "echo ok > \"$HOME/file\" && cat \"$HOME/file\"",
    );
    assert!(wrote, "{text}");
    assert_eq!(text.trim(), "ok");
    let (_, text) = run(&sandbox, &work, "echo \"[$GANTRY_DATA_DIR]\"");
    assert_eq!(text.trim(), "[]");
}

#[test]
fn the_runner_user_gets_the_first_subordinate_ids_above_every_range() {
    use crate::identity::{first_free_subordinate_id, subordinate_range};
    let text = "alice:100000:65536\nbob:165536:65536\n# comment\nbroken line\n";
    assert_eq!(subordinate_range(text, "bob"), Some((165536, 65536)));
    assert_eq!(subordinate_range(text, "bo"), None);
    assert_eq!(first_free_subordinate_id(text), 231072);
    assert_eq!(first_free_subordinate_id(""), 100_000);
    // A range below 100000 does not pull the start down.
    assert_eq!(first_free_subordinate_id("x:10:5\n"), 100_000);
}
