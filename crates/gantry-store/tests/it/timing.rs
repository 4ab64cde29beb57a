//! How long the engine's write pattern takes, printed (`--nocapture`) and
//! checked against limits several times the targets (300 transitions of a
//! 100-stage pipeline in 1 s, 200 10-stage executions in 10 s, log lines at
//! 100 000 a second or more), loose enough
//! for a busy CI machine yet tight enough to catch a lost index or a
//! statement too many.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry_store::{LogStream, NewLogLine, Status, Store};
use serde_json::json;

use crate::db::{TestDb, both, new_execution};

both!(
    sequential_100_stage_pipeline,
    concurrent_200_executions_of_10_stages,
    log_lines_in_batches
);

/// Runs an execution's stages one after the other, three writes per stage:
/// started, one log line, succeeded with outputs. Returns the number of writes.
async fn run_pipeline(store: &Store, id: &str, stage_count: usize) -> usize {
    let stage_ids: Vec<String> = (0..stage_count).map(|i| format!("stage-{i:03}")).collect();
    let stage_refs: Vec<&str> = stage_ids.iter().map(String::as_str).collect();
    let mut exec = store
        .create_execution(&new_execution(id, "bench", &stage_refs, 1))
        .await
        .unwrap();
    let mut writes = 1;
    exec.status = Status::Running;
    exec.started_at = Some(1);
    store.update_execution(&exec).await.unwrap();
    writes += 1;
    for mut stage in store.stages(id).await.unwrap() {
        stage.status = Status::Running;
        stage.attempt += 1;
        stage.started_at = Some(2);
        store.update_stage(&stage).await.unwrap();
        let line = NewLogLine {
            execution_id: id.into(),
            stage_id: stage.stage_id.clone(),
            step: 0,
            ts: 3,
            stream: LogStream::Stdout,
            line: "building".into(),
        };
        store.append_logs(&[line]).await.unwrap();
        stage.status = Status::Succeeded;
        stage.ended_at = Some(4);
        stage.outputs = json!({ "artifact": format!("{id}/{}", stage.stage_id) });
        store.update_stage(&stage).await.unwrap();
        writes += 3;
    }
    exec.status = Status::Succeeded;
    exec.ended_at = Some(5);
    store.update_execution(&exec).await.unwrap();
    writes + 1
}

fn report(db: &TestDb, what: &str, writes: usize, elapsed: Duration, limit: Duration) {
    let backend = format!("{:?}", db.store.backend());
    println!(
        "{backend}: {what}: {writes} writes in {:.0} ms ({:.2} ms per write)",
        elapsed.as_secs_f64() * 1000.0,
        elapsed.as_secs_f64() * 1000.0 / writes as f64
    );
    assert!(
        elapsed < limit,
        "{backend}: {what} took {elapsed:?}, more than {limit:?}"
    );
}

async fn sequential_100_stage_pipeline(db: TestDb) {
    let start = Instant::now();
    let writes = run_pipeline(&db.store, "e1", 100).await;
    report(
        &db,
        "one 100-stage pipeline",
        writes,
        start.elapsed(),
        Duration::from_secs(3),
    );
    let stages = db.store.stages("e1").await.unwrap();
    assert!(stages.iter().all(|s| s.status == Status::Succeeded));
}

async fn concurrent_200_executions_of_10_stages(db: TestDb) {
    let store = Arc::new(db.store.clone());
    let start = Instant::now();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { run_pipeline(&store, &format!("e{i:03}"), 10).await })
        })
        .collect();
    let mut writes = 0;
    for task in tasks {
        writes += task.await.unwrap();
    }
    report(
        &db,
        "200 concurrent 10-stage pipelines",
        writes,
        start.elapsed(),
        Duration::from_secs(30),
    );
    let counts = db.store.execution_counts().await.unwrap();
    assert!(counts.contains(&(Status::Succeeded, 200)), "{counts:?}");
}

/// 100 000 lines in batches of 1000, as the engine's log writer sends them
/// from a step that prints as fast as it can.
async fn log_lines_in_batches(db: TestDb) {
    db.store
        .create_execution(&new_execution("e1", "bench", &["build"], 1))
        .await
        .unwrap();
    let batch: Vec<NewLogLine> = (0..1000)
        .map(|n| NewLogLine {
            execution_id: "e1".into(),
            stage_id: "build".into(),
            step: 0,
            ts: 1_700_000_000_000 + n,
            stream: LogStream::Stdout,
            line: format!(
                "[{n:04}] compiling crate number {n} of the dependency graph, which takes a while"
            ),
        })
        .collect();
    let start = Instant::now();
    for _ in 0..100 {
        db.store.append_logs(&batch).await.unwrap();
    }
    report(
        &db,
        "100 000 log lines in batches of 1000",
        100,
        start.elapsed(),
        Duration::from_secs(5),
    );
    let last = db.store.logs("e1", Some("build"), 0, 10_000).await.unwrap();
    assert_eq!(last.len(), 10_000);
}
