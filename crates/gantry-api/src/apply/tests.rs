//! `apply` without HTTP: an engine on a throw-away SQLite store, documents
//! parsed as the handler parses them.

use gantry_engine::{Engine, EngineConfig};
use gantry_store::Store;
use gantry_wire::pipelines::{Applied, Upsert};

use super::apply;

const FILE: &str = r#"
repositories:
  - name: app
pipelines:
  - name: hello
    stages:
      - id: greet
        type: run
        steps:
          - script: echo hello
"#;

struct Fixture {
    engine: Engine,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("gantry.db").display());
    let store = Store::open(&url).await.expect("a store");
    let config = EngineConfig {
        data_dir: dir.path().to_owned(),
        git: gantry_git::Repositories::new(dir.path().join("repos")),
        ..EngineConfig::default()
    };
    let engine = Engine::start(store, config).await.expect("an engine");
    Fixture { engine, _dir: dir }
}

fn document(text: &str) -> gantry_config::Document {
    gantry_config::parse_document("gantry.yaml", text).expect("a valid document")
}

fn applied(name: &str, result: Upsert) -> Applied {
    Applied {
        name: name.to_owned(),
        result,
    }
}

#[tokio::test]
async fn applying_creates_then_leaves_unchanged_then_updates() {
    let fixture = fixture().await;
    let report = apply(&fixture.engine, None, &document(FILE), 1)
        .await
        .unwrap();
    assert_eq!(report.pipelines, vec![applied("hello", Upsert::Created)]);
    assert_eq!(report.repositories, vec![applied("app", Upsert::Created)]);
    assert!(report.applications.is_empty() && report.load_balancers.is_empty());

    let again = apply(&fixture.engine, None, &document(FILE), 2)
        .await
        .unwrap();
    assert_eq!(again.pipelines, vec![applied("hello", Upsert::Unchanged)]);
    assert_eq!(again.repositories, vec![applied("app", Upsert::Unchanged)]);

    let changed = FILE.replace("echo hello", "echo goodbye");
    let updated = apply(&fixture.engine, None, &document(&changed), 3)
        .await
        .unwrap();
    assert_eq!(updated.pipelines, vec![applied("hello", Upsert::Updated)]);
    let stored = fixture.engine.store().pipeline("hello").await.unwrap();
    assert_eq!(stored.expect("the pipeline").version, 2);
}

#[tokio::test]
async fn a_failing_load_balancer_stops_the_apply_before_any_pipeline_is_written() {
    // No deploy controller here: the load balancer cannot be applied, and
    // by the ordering rule neither the repository nor the pipeline is.
    let fixture = fixture().await;
    let file = format!(
        "{FILE}applications:\n  - name: web\nloadBalancers:\n  - {{name: web, port: 18080, cluster: web}}\n"
    );
    let error = apply(&fixture.engine, None, &document(&file), 1)
        .await
        .expect_err("no deploy controller");
    assert!(
        error.message.contains("deploy controller"),
        "{}",
        error.message
    );
    assert!(
        fixture
            .engine
            .store()
            .pipeline("hello")
            .await
            .unwrap()
            .is_none()
    );
    assert!(fixture.engine.store().pipelines().await.unwrap().is_empty());
}
