//! The engine runs a stage only through the stage types it was given: a `wait` of an hour
//! ends at once when the given dispatch does not wait, and fails, saying why, when none was
//! given.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use gantry_config::StageKind;
use gantry_store::{Status, Store};

use crate::{
    Engine, EngineConfig, RunRequest, StageContext, StageRegistry, StageResult, StageTypes,
};

/// Records the type of every stage it is asked to run, and succeeds at once.
#[derive(Clone, Default)]
struct RecordingStageTypes(Arc<Mutex<Vec<&'static str>>>);

impl StageTypes for RecordingStageTypes {
    fn run<'a>(
        &'a self,
        _ctx: &'a Arc<StageContext>,
        kind: &'a StageKind,
    ) -> BoxFuture<'a, StageResult> {
        self.0.lock().unwrap().push(kind.type_name());
        Box::pin(async { Ok(Default::default()) })
    }
}

/// An engine on a fresh SQLite store holding pipeline `p` (one hour-long `wait`), run
/// through `stage_types`; the directory holds its store and data.
async fn engine_with_one_wait(stage_types: StageRegistry) -> (tempfile::TempDir, Store, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gantry.db").display());
    let store = Store::open(&url).await.unwrap();
    let text =
        "pipelines:\n  - name: p\n    stages:\n      - {id: pause, type: wait, duration: 1h}\n";
    let pipeline = gantry_config::parse_document("gantry.yaml", text)
        .unwrap()
        .pipelines
        .remove(0);
    let spec = serde_json::to_value(&pipeline).unwrap();
    store.upsert_pipeline("p", None, &spec, 1).await.unwrap();
    let config = EngineConfig {
        data_dir: dir.path().to_owned(),
        git: gantry_git::Repositories::new(dir.path().join("repos")),
        stage_types,
        ..EngineConfig::default()
    };
    let engine = Engine::start(store.clone(), config).await.unwrap();
    (dir, store, engine)
}

/// Runs a pipeline of one hour-long `wait` and returns how its stage ended.
async fn run_an_hour_long_wait(stage_types: StageRegistry) -> (Status, Option<String>) {
    let (_dir, store, engine) = engine_with_one_wait(stage_types).await;
    let request = RunRequest {
        pipeline: "p".to_owned(),
        ..Default::default()
    };
    let execution = engine.run(request).await.unwrap();
    for _ in 0..400 {
        let stage = store.stages(&execution.id).await.unwrap().remove(0);
        if stage.status.is_terminal() {
            engine.shutdown().await;
            return (stage.status, stage.error);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the stage did not end within 10 s");
}

#[tokio::test]
async fn the_engine_runs_stages_through_the_stage_types_it_was_given() {
    let recording = RecordingStageTypes::default();
    let (status, _) = run_an_hour_long_wait(StageRegistry::new(recording.clone())).await;
    assert_eq!(status, Status::Succeeded);
    assert_eq!(*recording.0.lock().unwrap(), ["wait"]);
}

#[tokio::test]
async fn an_engine_given_no_stage_types_fails_each_stage_saying_so() {
    let (status, error) = run_an_hour_long_wait(StageRegistry::default()).await;
    assert_eq!(status, Status::Failed);
    assert_eq!(
        error.as_deref(),
        Some("this engine was built without stage types: it cannot run a wait stage")
    );
}

/// Logs a line as its last act, then succeeds.
#[derive(Clone, Default)]
struct LastWords;

impl StageTypes for LastWords {
    fn run<'a>(
        &'a self,
        ctx: &'a Arc<StageContext>,
        _kind: &'a StageKind,
    ) -> BoxFuture<'a, StageResult> {
        Box::pin(async move {
            ctx.log.system("last words").await;
            Ok(Default::default())
        })
    }
}

/// A stage's lines are stored before it is seen ended (log lines are batched, and a batch
/// may wait 15 ms for more): a reader who looks once, as soon as the stage shows ended,
/// finds its last line.
#[tokio::test]
async fn a_stages_last_line_is_stored_before_the_stage_shows_ended() {
    let (_dir, store, engine) = engine_with_one_wait(StageRegistry::new(LastWords)).await;
    for round in 0..20 {
        let request = RunRequest {
            pipeline: "p".to_owned(),
            ..Default::default()
        };
        let execution = engine.run(request).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let stage = store.stages(&execution.id).await.unwrap().remove(0);
            if stage.status.is_terminal() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the stage did not end"
            );
            tokio::task::yield_now().await;
        }
        let lines = store.logs(&execution.id, None, 0, 100).await.unwrap();
        assert!(
            lines.iter().any(|l| l.line == "last words"),
            "round {round}: the stage showed ended before its last line was stored: {:?}",
            lines.iter().map(|l| &l.line).collect::<Vec<_>>()
        );
    }
    engine.shutdown().await;
}
