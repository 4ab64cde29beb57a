//! `BuiltInStages` behind a real engine, on a throw-away SQLite store: stages run with the
//! services they were built with, and say which one is missing when it is.

use std::time::Duration;

use gantry_engine::{Engine, EngineConfig, RunRequest, StageRegistry};
use gantry_store::{Status, Store};

use crate::{BuiltInStages, StageServices};

/// Runs a pipeline of one stage (`stage`, a YAML flow mapping) on an engine given
/// `BuiltInStages` built with `services`, and returns how the stage ended.
async fn run_one_stage(stage: &str, services: StageServices) -> (Status, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gantry.db").display());
    let store = Store::open(&url).await.unwrap();
    let text = format!("pipelines:\n  - name: p\n    stages:\n      - {stage}\n");
    let pipeline = gantry_config::parse_document("gantry.yaml", &text)
        .unwrap()
        .pipelines
        .remove(0);
    let spec = serde_json::to_value(&pipeline).unwrap();
    store.upsert_pipeline("p", None, &spec, 1).await.unwrap();
    let config = EngineConfig {
        data_dir: dir.path().to_owned(),
        git: gantry_git::Repositories::new(dir.path().join("repos")),
        stage_types: StageRegistry::new(BuiltInStages::new(services).unwrap()),
        ..EngineConfig::default()
    };
    let engine = Engine::start(store.clone(), config).await.unwrap();
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
async fn a_stage_runs_through_built_in_stages_with_the_engine_s_context() {
    let stage =
        "{id: check, type: checkPreconditions, preconditions: [{expression: \"1 + 1 == 2\"}]}";
    let (status, error) = run_one_stage(stage, StageServices::default()).await;
    assert_eq!((status, error), (Status::Succeeded, None));
}

#[tokio::test]
async fn a_deploy_family_stage_without_a_deploy_controller_fails_saying_so() {
    let stage =
        "{id: more, type: resizeServerGroup, cluster: shop-web, target: newest, scaleUp: 1}";
    let (status, error) = run_one_stage(stage, StageServices::default()).await;
    assert_eq!(status, Status::Failed);
    assert_eq!(
        error.as_deref(),
        Some("this server has no deploy controller (deploy stages need `gantry serve`)")
    );
}
