use gantry_store::{Status, StepRecord, StoreError};
use serde_json::json;

use crate::db::{TestDb, both, new_execution};

both!(
    update_stage_writes_every_column,
    stages_and_execution_change_together,
    steps_are_put_listed_and_cleared,
    a_step_needs_its_stage,
);

async fn update_stage_writes_every_column(db: TestDb) {
    let store = &db.store;
    store
        .create_execution(&new_execution("e1", "web", &["build", "deploy"], 1))
        .await
        .unwrap();
    let mut stage = store.stage("e1", "deploy").await.unwrap().unwrap();
    stage.status = Status::Failed;
    stage.attempt = 3;
    stage.started_at = Some(10);
    stage.ended_at = Some(20);
    stage.outputs = json!({ "version": "1.2.3", "url": "http://x" });
    stage.error = Some("exit status 1".into());
    stage.state = json!({ "deadline": 12345, "judgment": { "by": "ana" } });
    store.update_stage(&stage).await.unwrap();
    assert_eq!(store.stage("e1", "deploy").await.unwrap().unwrap(), stage);
    // The other stage is untouched.
    assert_eq!(
        store.stage("e1", "build").await.unwrap().unwrap().status,
        Status::Pending
    );

    stage.error = None;
    stage.ended_at = None;
    stage.status = Status::Running;
    store.update_stage(&stage).await.unwrap();
    assert_eq!(store.stages("e1").await.unwrap()[1], stage);

    assert_eq!(store.stage("e1", "nope").await.unwrap(), None);
    stage.stage_id = "nope".into();
    let missing = store.update_stage(&stage).await;
    assert!(
        matches!(&missing, Err(StoreError::NotFound { kind: "stage", id }) if id == "e1/nope"),
        "{missing:?}"
    );
}

async fn stages_and_execution_change_together(db: TestDb) {
    let store = &db.store;
    let mut exec = store
        .create_execution(&new_execution("e1", "web", &["a", "b", "c"], 1))
        .await
        .unwrap();
    let mut stages = store.stages("e1").await.unwrap();
    for stage in &mut stages[..2] {
        stage.status = Status::Running;
        stage.attempt = 1;
        stage.started_at = Some(5);
    }
    exec.status = Status::Running;
    exec.started_at = Some(5);
    store
        .update_stages_and_execution(&stages[..2], &exec)
        .await
        .unwrap();
    assert_eq!(store.stages("e1").await.unwrap(), stages);
    assert_eq!(store.execution("e1").await.unwrap().unwrap(), exec);

    // A missing stage rolls back everything, the stages before it included.
    let before = stages.clone();
    stages[0].status = Status::Succeeded;
    let mut missing = stages[1].clone();
    missing.stage_id = "nope".into();
    let mut changed = exec.clone();
    changed.status = Status::Succeeded;
    let result = store
        .update_stages_and_execution(&[stages[0].clone(), missing], &changed)
        .await;
    assert!(
        matches!(result, Err(StoreError::NotFound { kind: "stage", .. })),
        "{result:?}"
    );
    assert_eq!(store.stages("e1").await.unwrap(), before);
    assert_eq!(store.execution("e1").await.unwrap().unwrap(), exec);

    // So does a missing execution.
    let mut other = exec.clone();
    other.id = "nope".into();
    let result = store
        .update_stages_and_execution(&stages[..1], &other)
        .await;
    assert!(
        matches!(
            result,
            Err(StoreError::NotFound {
                kind: "execution",
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(store.stages("e1").await.unwrap(), before);

    // No stage at all just updates the execution.
    exec.status = Status::Waiting;
    store.update_stages_and_execution(&[], &exec).await.unwrap();
    assert_eq!(
        store.execution("e1").await.unwrap().unwrap().status,
        Status::Waiting
    );
}

fn step(stage: &str, step: i64) -> StepRecord {
    StepRecord {
        execution_id: "e1".into(),
        stage_id: stage.into(),
        step,
        status: Status::Running,
        started_at: Some(100 + step),
        ended_at: None,
        exit_code: None,
        pgid: Some(4242),
        proc_start: Some(987654321),
        interruptions: 0,
        error: None,
    }
}

async fn steps_are_put_listed_and_cleared(db: TestDb) {
    let store = &db.store;
    store
        .create_execution(&new_execution("e1", "web", &["build", "test"], 1))
        .await
        .unwrap();
    assert!(store.steps("e1", "build").await.unwrap().is_empty());
    for i in [2, 0, 1] {
        store.put_step(&step("build", i)).await.unwrap();
    }
    store.put_step(&step("test", 0)).await.unwrap();
    let steps = store.steps("e1", "build").await.unwrap();
    assert_eq!(
        steps,
        [step("build", 0), step("build", 1), step("build", 2)]
    );

    // Put again replaces the row.
    let mut done = step("build", 1);
    done.status = Status::Failed;
    done.ended_at = Some(200);
    done.exit_code = Some(2);
    done.pgid = None;
    done.proc_start = None;
    done.interruptions = 1;
    done.error = Some("exit status 2".into());
    store.put_step(&done).await.unwrap();
    assert_eq!(
        store.steps("e1", "build").await.unwrap(),
        [step("build", 0), done, step("build", 2)]
    );

    store.clear_steps("e1", "build").await.unwrap();
    assert!(store.steps("e1", "build").await.unwrap().is_empty());
    assert_eq!(store.steps("e1", "test").await.unwrap(), [step("test", 0)]);
    // Clearing nothing is fine.
    store.clear_steps("e1", "build").await.unwrap();
}

async fn a_step_needs_its_stage(db: TestDb) {
    let store = &db.store;
    store
        .create_execution(&new_execution("e1", "web", &["build"], 1))
        .await
        .unwrap();
    let result = store.put_step(&step("nope", 0)).await;
    assert!(
        matches!(&result, Err(StoreError::NotFound { kind: "stage", id }) if id == "e1/nope"),
        "{result:?}"
    );
}
