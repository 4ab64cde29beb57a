//! The seam without a server: host steps through [`LocalExecutor`], with no
//! container engine and no sandbox.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gantry_store::LogStream;

use super::local::LocalConfig;
use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    stage: StageSpec,
    executor: LocalExecutor,
}

fn fixture(config: LocalConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let stage = StageSpec {
        execution: "e1".into(),
        stage: "build".into(),
        workspace: dir.path().join("workspace"),
        run_dir: dir.path().join("run"),
        volumes: Vec::new(),
        uses_containers: false,
        resumed: false,
    };
    std::fs::create_dir_all(&stage.workspace).unwrap();
    std::fs::create_dir_all(&stage.run_dir).unwrap();
    let config = LocalConfig {
        data_dir: dir.path().to_owned(),
        ..config
    };
    Fixture {
        _dir: dir,
        stage,
        executor: LocalExecutor::new(config),
    }
}

fn script_step(script: &str) -> StepSpec {
    StepSpec {
        index: 0,
        name: "step 1 (test)".into(),
        script: Some(script.into()),
        ..StepSpec::default()
    }
}

async fn collect(mut lines: tokio::sync::mpsc::Receiver<LogLine>) -> Vec<(LogStream, String)> {
    let mut all = Vec::new();
    while let Some(line) = lines.recv().await {
        all.push((line.stream, line.text));
    }
    all
}

#[tokio::test]
async fn a_host_step_streams_its_lines_and_yields_its_outputs() {
    let f = fixture(LocalConfig::default());
    let mut step = script_step(
        "echo one\necho two >&2\necho \"greeting=$GREETING\" >> \"$GANTRY_OUTPUT\"\necho \"token=$TOKEN\" >> \"$GANTRY_OUTPUT\"\n",
    );
    step.env = BTreeMap::from([("GREETING".to_owned(), "hello".to_owned())]);
    step.secret_env = vec!["TOKEN".into()];
    f.executor.prepare(&f.stage).await.unwrap();
    let secrets = StepSecrets(BTreeMap::from([("TOKEN".to_owned(), "s3cret".to_owned())]));
    let (mut handle, lines) = f.executor.spawn(&f.stage, &step, secrets).await.unwrap();
    let lines = tokio::spawn(collect(lines));
    assert!(handle.left_behind().is_some());
    let exit = handle.wait().await.unwrap();
    handle.drain().await;
    assert_eq!(
        exit,
        StepExit {
            code: Some(0),
            signal: None
        }
    );
    let mut lines = lines.await.unwrap();
    lines.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        lines,
        [
            (LogStream::Stdout, "one".to_owned()),
            (LogStream::Stderr, "two".to_owned())
        ]
    );
    let outputs = handle.outputs().await.unwrap();
    assert_eq!(outputs["greeting"], "hello");
    assert_eq!(outputs["token"], "s3cret");
    handle.finish().await.unwrap();
    assert!(!f.stage.run_dir.join("step-0.outputs").exists());
    f.executor.release(&f.stage).await.unwrap();
}

#[tokio::test]
async fn a_killed_step_ends_within_the_grace_period_with_its_whole_group() {
    let f = fixture(LocalConfig::default());
    let step = script_step("sleep 60 &\nsleep 60\n");
    let (mut handle, lines) = f
        .executor
        .spawn(&f.stage, &step, StepSecrets::default())
        .await
        .unwrap();
    let left = handle.left_behind().unwrap();
    let started = Instant::now();
    handle.kill().await;
    let exit = handle.wait().await.unwrap();
    handle.drain().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(exit.code, None, "{exit:?}");
    assert!(exit.signal.is_some());
    assert!(collect(lines).await.is_empty());
    assert_eq!(
        running_in_group(left.pgid),
        0,
        "nothing of the group is left"
    );
}

/// Processes of group `pgid` that are not zombies (a killed process stays
/// one until its parent, or init, waits for it).
fn running_in_group(pgid: i64) -> usize {
    let entries = std::fs::read_dir("/proc").unwrap();
    entries
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| {
            let Some(rest) = stat.rsplit(") ").next() else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.first() != Some(&"Z") && fields.get(2) == Some(&pgid.to_string().as_str())
        })
        .count()
}

#[tokio::test]
async fn reap_kills_what_a_step_left_when_the_server_stopped_under_it() {
    let f = fixture(LocalConfig::default());
    let step = script_step("sleep 60 &\nsleep 60\n");
    let (handle, _lines) = f
        .executor
        .spawn(&f.stage, &step, StepSecrets::default())
        .await
        .unwrap();
    let left = handle.left_behind().unwrap();
    // The server stops: nobody waits for the step any more, its record
    // keeps what `left_behind` said.
    drop(handle);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reaped = f.executor.reap(&f.stage, 0, Some(left)).await;
    assert!(reaped.killed_processes >= 2, "{reaped:?}");
    assert!(reaped.errors.is_empty());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(running_in_group(left.pgid), 0);
}

#[tokio::test]
async fn a_step_that_cannot_run_here_is_refused_before_it_starts() {
    let f = fixture(LocalConfig {
        host_steps: crate::engine::HostSteps::Off,
        ..LocalConfig::default()
    });
    let refused = f
        .executor
        .spawn(&f.stage, &script_step("true"), StepSecrets::default())
        .await
        .err()
        .unwrap();
    assert!(matches!(refused, ExecutorError::Refused(_)));
    assert_eq!(
        refused.to_string(),
        "step 1 (test) runs on the host, which this server refuses (gantry serve --host-steps off): give it an image"
    );
    let mut in_image = script_step("true");
    in_image.image = Some("busybox".into());
    let refused = f
        .executor
        .spawn(&f.stage, &in_image, StepSecrets::default())
        .await
        .err()
        .unwrap();
    assert_eq!(
        refused.to_string(),
        "step 1 (test) runs in image \"busybox\" but no container engine is installed (podman or docker)"
    );
}

#[test]
fn a_step_spec_is_plain_data_and_its_secrets_travel_apart() {
    let mut step = script_step("make");
    step.secret_env = vec!["TOKEN".into()];
    step.timeout = Some(Duration::from_secs(90));
    step.confinement = Confinement::EngineCli(
        local::engine_cli::check(&["podman".into(), "build".into(), ".".into()]).unwrap(),
    );
    let text = serde_json::to_string(&step).unwrap();
    let back: StepSpec = serde_json::from_str(&text).unwrap();
    assert_eq!(back, step);
    let secrets = StepSecrets(BTreeMap::from([("TOKEN".to_owned(), "s3cret".to_owned())]));
    assert_eq!(format!("{secrets:?}"), "[\"TOKEN\"]");
}
