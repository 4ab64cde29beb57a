use std::sync::Arc;

use gantry_store::{ExecutionFilter, LogStream, NewLogLine, Status, Store};

use crate::db::{TestDb, both, new_execution};

both!(many_concurrent_writers, two_stores_on_one_database);

/// One execution's life in three transactions: created with its stages, the
/// stages and the execution updated together, a log line appended.
async fn run_one(store: &Store, id: String) {
    let mut exec = store
        .create_execution(&new_execution(&id, "web", &["a", "b", "c"], 1))
        .await
        .unwrap();
    let mut stages = store.stages(&id).await.unwrap();
    for stage in &mut stages {
        stage.status = Status::Succeeded;
        stage.attempt = 1;
    }
    exec.status = Status::Succeeded;
    store
        .update_stages_and_execution(&stages, &exec)
        .await
        .unwrap();
    let line = NewLogLine {
        execution_id: id.clone(),
        stage_id: "a".into(),
        step: 0,
        ts: 1,
        stream: LogStream::Stdout,
        line: format!("hello from {id}"),
    };
    store.append_logs(&[line]).await.unwrap();
}

/// 200 tasks on a multi-threaded runtime write at once; on SQLite none may
/// fail with SQLITE_BUSY.
async fn many_concurrent_writers(db: TestDb) {
    let store = Arc::new(db.store.clone());
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { run_one(&store, format!("e{i:03}")).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    check_all_done(&db.store, 200).await;
}

/// Two stores on the same database (as two processes would be) writing at
/// once: on SQLite their writers meet in the busy handler.
async fn two_stores_on_one_database(db: TestDb) {
    let stores = [Arc::new(db.store.clone()), Arc::new(db.reopen().await)];
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = stores[i % 2].clone();
            tokio::spawn(async move { run_one(&store, format!("e{i:03}")).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    check_all_done(&db.store, 200).await;
}

async fn check_all_done(store: &Store, n: i64) {
    let all = store
        .executions(&ExecutionFilter {
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len() as i64, n);
    assert!(all.iter().all(|e| e.status == Status::Succeeded));
    let counts = store.execution_counts().await.unwrap();
    assert!(counts.contains(&(Status::Succeeded, n)), "{counts:?}");
    for exec in &all {
        let stages = store.stages(&exec.id).await.unwrap();
        assert!(
            stages
                .iter()
                .all(|s| s.status == Status::Succeeded && s.attempt == 1)
        );
        assert_eq!(store.logs(&exec.id, None, 0, 10).await.unwrap().len(), 1);
    }
}
