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
    check("step 10: refused", "plain: on runner r1: step 10: refused");
    check(
        "the job is not a step this runner can read",
        "plain: on runner r1: the job is not a step this runner can read",
    );
}

#[tokio::test]
async fn parallel_steps_of_a_stage_share_one_gate_which_closes_with_the_last_of_them() {
    use super::gate_on_runner::RunnerGates;
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("runs/exec/build");
    std::fs::create_dir_all(&run_dir).unwrap();
    let socket = run_dir.join(gantry_container::api_gate::GATE_SOCKET_NAME);
    // Docker's API is its daemon's socket: nothing is started, nothing connects yet.
    let engine = gantry_container::ContainerEngine {
        kind: gantry_container::EngineKind::Docker,
        program: "docker".into(),
        sudo: false,
    };
    let gates = RunnerGates::default();
    let api = dir.path().join("engine-api");
    let first = gates.hold(Some(&engine), &api, &run_dir).await.unwrap();
    let second = gates.hold(Some(&engine), &api, &run_dir).await.unwrap();
    assert_eq!(gates.open_count(), 1);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    drop(first);
    assert!(socket.exists(), "the other step still uses the gate");
    drop(second);
    assert!(!socket.exists(), "the last step closed the gate");
    assert_eq!(gates.open_count(), 0);
    let again = gates.hold(Some(&engine), &api, &run_dir).await.unwrap();
    assert!(socket.exists(), "a later step opens it again");
    drop(again);
}

#[tokio::test]
async fn a_runner_without_an_engine_opens_no_gate_and_says_why() {
    use super::gate_on_runner::RunnerGates;
    let dir = tempfile::tempdir().unwrap();
    let error = RunnerGates::default()
        .hold(None, &dir.path().join("engine-api"), dir.path())
        .await
        .err()
        .unwrap();
    assert_eq!(
        error,
        "the docker builder needs a container engine (podman or docker), and this runner has none"
    );
}

#[test]
fn a_push_job_reads_back_as_a_push_not_as_a_step_or_a_release() {
    use super::wire::{ImageToPush, PushJob, RunnerJob};
    let stage = crate::executor::StageSpec {
        execution: "exec".into(),
        stage: "build".into(),
        workspace: "/w".into(),
        run_dir: "/r".into(),
        volumes: Vec::new(),
        uses_containers: true,
        resumed: false,
    };
    let payload = serde_json::to_value(RunnerJob::Push {
        push: PushJob {
            stage,
            images: vec![ImageToPush {
                image: "127.0.0.1:5000/app:v1".into(),
                tls_verify: false,
            }],
        },
    })
    .unwrap();
    match serde_json::from_value::<RunnerJob>(payload).unwrap() {
        RunnerJob::Push { push } => {
            assert_eq!(push.images[0].image, "127.0.0.1:5000/app:v1");
            assert!(!push.images[0].tls_verify);
        }
        other => panic!("read back as {other:?}"),
    }
}

#[tokio::test]
async fn a_push_job_on_a_runner_without_an_engine_says_so_and_a_bad_account_is_refused() {
    use super::push::PushRun;
    use super::wire::{ImageToPush, PushJob, PushJobResult, REGISTRY_CREDENTIALS};
    let job = PushJob {
        stage: crate::executor::StageSpec {
            execution: "exec".into(),
            stage: "build".into(),
            workspace: "/w".into(),
            run_dir: "/r".into(),
            volumes: Vec::new(),
            uses_containers: true,
            resumed: false,
        },
        images: vec![ImageToPush {
            image: "127.0.0.1:5000/app:v1".into(),
            tls_verify: false,
        }],
    };
    let secrets = |account: &str| {
        gantry_runners::protocol::JobSecrets(
            [(REGISTRY_CREDENTIALS.to_owned(), account.to_owned())].into(),
        )
    };
    let error = PushRun::new(None, job.clone(), &secrets("no-colon"))
        .err()
        .unwrap();
    assert_eq!(
        error,
        "the push job's registry account is not user:password"
    );
    let run = PushRun::new(None, job, &secrets("robot:pw-123456")).unwrap();
    let outcome = run.finish(tokio_util::sync::CancellationToken::new()).await;
    let result: PushJobResult = serde_json::from_value(outcome.result).unwrap();
    assert!(result.pushed.is_empty());
    assert_eq!(
        result.error.as_deref(),
        Some("this runner has no container engine (podman or docker) to push them")
    );
}
