use gantry_store::{ExecutionCursor, ExecutionFilter, ParentRef, Status, StoreError};
use serde_json::json;

use crate::db::{TestDb, both, new_execution};

both!(
    create_inserts_pending_stages,
    duplicate_id_is_a_conflict,
    duplicate_stage_id_is_a_conflict,
    one_child_per_parent_stage_attempt,
    update_writes_the_lifecycle_columns,
    filters_and_limits,
    active_executions_oldest_first,
    counts_cover_every_status,
    corrupt_rows_are_errors,
);

async fn create_inserts_pending_stages(db: TestDb) {
    let store = &db.store;
    let new = new_execution("e1", "web", &["build", "test", "deploy"], 100);
    let created = store.create_execution(&new).await.unwrap();
    assert_eq!(created.status, Status::Pending);
    assert_eq!(
        (
            created.started_at,
            created.ended_at,
            created.error.as_deref()
        ),
        (None, None, None)
    );
    assert_eq!(store.execution("e1").await.unwrap().unwrap(), created);
    assert_eq!(created.spec, new.spec);
    assert_eq!(created.parameters, new.parameters);
    assert_eq!(created.trigger, new.trigger);

    let stages = store.stages("e1").await.unwrap();
    let ids: Vec<&str> = stages.iter().map(|s| s.stage_id.as_str()).collect();
    assert_eq!(
        ids,
        ["build", "test", "deploy"],
        "file order, not alphabetical"
    );
    for stage in &stages {
        assert_eq!(stage.execution_id, "e1");
        assert_eq!((stage.status, stage.attempt), (Status::Pending, 0));
        assert_eq!(
            (stage.outputs.clone(), stage.state.clone()),
            (json!({}), json!({}))
        );
        assert_eq!(
            (stage.started_at, stage.ended_at, stage.error.as_deref()),
            (None, None, None)
        );
    }
    assert_eq!(store.execution("nope").await.unwrap(), None);
    assert!(store.stages("nope").await.unwrap().is_empty());

    // An execution may have no stage at all.
    store
        .create_execution(&new_execution("e2", "web", &[], 101))
        .await
        .unwrap();
    assert!(store.stages("e2").await.unwrap().is_empty());
}

async fn duplicate_id_is_a_conflict(db: TestDb) {
    let store = &db.store;
    store
        .create_execution(&new_execution("e1", "web", &["build"], 1))
        .await
        .unwrap();
    let again = store
        .create_execution(&new_execution("e1", "other", &["x", "y"], 2))
        .await;
    assert!(
        matches!(&again, Err(StoreError::Conflict { kind: "execution", id }) if id == "e1"),
        "{again:?}"
    );
    assert_eq!(
        store.execution("e1").await.unwrap().unwrap().pipeline,
        "web"
    );
    assert_eq!(store.stages("e1").await.unwrap().len(), 1);
}

async fn duplicate_stage_id_is_a_conflict(db: TestDb) {
    let store = &db.store;
    let result = store
        .create_execution(&new_execution("e1", "web", &["a", "b", "a"], 1))
        .await;
    assert!(
        matches!(&result, Err(StoreError::Conflict { kind: "stage", id }) if id == "a"),
        "{result:?}"
    );
    assert_eq!(store.execution("e1").await.unwrap(), None);
}

async fn one_child_per_parent_stage_attempt(db: TestDb) {
    let store = &db.store;
    store
        .create_execution(&new_execution("parent", "outer", &["child"], 1))
        .await
        .unwrap();
    let parent = ParentRef {
        execution: "parent".into(),
        stage: "child".into(),
        attempt: 1,
    };
    let child = |id: &str, attempt: i64| {
        let mut new = new_execution(id, "inner", &["a", "b"], 2);
        new.parent = Some(ParentRef {
            attempt,
            ..parent.clone()
        });
        new.trigger = json!({ "type": "pipeline", "execution": "parent" });
        new
    };

    let first = store.create_execution(&child("c1", 1)).await.unwrap();
    assert_eq!(first.parent.as_ref(), Some(&parent));
    let again = store.create_execution(&child("c2", 1)).await;
    assert!(
        matches!(&again, Err(StoreError::Conflict { kind: "child execution", id }) if id == "parent/child/1"),
        "{again:?}"
    );
    // Nothing of the refused execution remains.
    assert_eq!(store.execution("c2").await.unwrap(), None);
    assert!(store.stages("c2").await.unwrap().is_empty());

    assert_eq!(
        store.child_execution(&parent).await.unwrap().unwrap(),
        first
    );
    assert_eq!(
        store.execution("c1").await.unwrap().unwrap().parent,
        Some(parent.clone())
    );

    // A restarted stage (a new attempt) starts a new child.
    let retry = ParentRef {
        attempt: 2,
        ..parent.clone()
    };
    assert_eq!(store.child_execution(&retry).await.unwrap(), None);
    store.create_execution(&child("c3", 2)).await.unwrap();
    assert_eq!(
        store.child_execution(&retry).await.unwrap().unwrap().id,
        "c3"
    );
    let other = ParentRef {
        stage: "other".into(),
        ..parent.clone()
    };
    assert_eq!(store.child_execution(&other).await.unwrap(), None);
}

async fn update_writes_the_lifecycle_columns(db: TestDb) {
    let store = &db.store;
    let mut exec = store
        .create_execution(&new_execution("e1", "web", &["build"], 1))
        .await
        .unwrap();
    exec.status = Status::Canceled;
    exec.started_at = Some(2);
    exec.ended_at = Some(3);
    exec.error = Some("canceled by ana".into());
    exec.canceled_by = Some("ana".into());
    store.update_execution(&exec).await.unwrap();
    assert_eq!(store.execution("e1").await.unwrap().unwrap(), exec);

    exec.status = Status::Running;
    exec.ended_at = None;
    exec.error = None;
    exec.canceled_by = None;
    store.update_execution(&exec).await.unwrap();
    assert_eq!(store.execution("e1").await.unwrap().unwrap(), exec);

    exec.id = "nope".into();
    let missing = store.update_execution(&exec).await;
    assert!(
        matches!(&missing, Err(StoreError::NotFound { kind: "execution", id }) if id == "nope"),
        "{missing:?}"
    );
}

async fn filters_and_limits(db: TestDb) {
    let store = &db.store;
    // (id, pipeline, trigger type, status), created in this order.
    let rows = [
        ("e1", "web", "manual", Status::Succeeded),
        ("e2", "api", "git", Status::Failed),
        ("e3", "web", "git", Status::Running),
        ("e4", "web", "cron", Status::Succeeded),
        ("e5", "api", "manual", Status::Pending),
    ];
    for (i, (id, pipeline, trigger, status)) in rows.into_iter().enumerate() {
        let mut new = new_execution(id, pipeline, &["s"], 1000 + i as i64);
        new.trigger = json!({ "type": trigger });
        let mut exec = store.create_execution(&new).await.unwrap();
        exec.status = status;
        store.update_execution(&exec).await.unwrap();
    }
    // An execution whose trigger has no type matches no trigger filter.
    let mut untyped = new_execution("e6", "web", &[], 999);
    untyped.trigger = json!({ "user": "ana" });
    store.create_execution(&untyped).await.unwrap();

    let check = |filter: ExecutionFilter, expected: &'static [&'static str]| async move {
        let ids: Vec<String> = store
            .executions(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, expected, "{filter:?}");
    };
    check(
        ExecutionFilter::default(),
        &["e5", "e4", "e3", "e2", "e1", "e6"],
    )
    .await;
    check(
        ExecutionFilter {
            pipeline: Some("web".into()),
            ..Default::default()
        },
        &["e4", "e3", "e1", "e6"],
    )
    .await;
    check(
        ExecutionFilter {
            status: Some(Status::Succeeded),
            ..Default::default()
        },
        &["e4", "e1"],
    )
    .await;
    check(
        ExecutionFilter {
            trigger_type: Some("git".into()),
            ..Default::default()
        },
        &["e3", "e2"],
    )
    .await;
    check(
        ExecutionFilter {
            pipeline: Some("web".into()),
            status: Some(Status::Succeeded),
            trigger_type: Some("manual".into()),
            limit: None,
            before: None,
        },
        &["e1"],
    )
    .await;
    check(
        ExecutionFilter {
            pipeline: Some("nope".into()),
            ..Default::default()
        },
        &[],
    )
    .await;
    check(
        ExecutionFilter {
            limit: Some(2),
            ..Default::default()
        },
        &["e5", "e4"],
    )
    .await;
    check(
        ExecutionFilter {
            limit: Some(0),
            ..Default::default()
        },
        &[],
    )
    .await;
    check(
        ExecutionFilter {
            limit: Some(-5),
            ..Default::default()
        },
        &[],
    )
    .await;

    // Without a limit, 100; a limit above 1000 lists everything there is here.
    for i in 0..100 {
        store
            .create_execution(&new_execution(
                &format!("bulk{i:03}"),
                "bulk",
                &[],
                2000 + i,
            ))
            .await
            .unwrap();
    }
    let listed = store.executions(&ExecutionFilter::default()).await.unwrap();
    assert_eq!(listed.len(), 100);
    assert_eq!(
        (listed[0].id.as_str(), listed[99].id.as_str()),
        ("bulk099", "bulk000")
    );
    let all = store
        .executions(&ExecutionFilter {
            limit: Some(1_000_000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 106);

    // Pages follow each other through `before`, with a filter, and without a gap or a repeat.
    let page = |before: Option<ExecutionCursor>| ExecutionFilter {
        pipeline: Some("web".into()),
        limit: Some(2),
        before,
        ..Default::default()
    };
    let first = store.executions(&page(None)).await.unwrap();
    let cursor = |e: &gantry_store::ExecutionRecord| ExecutionCursor {
        created_at: e.created_at,
        id: e.id.clone(),
    };
    let second = store
        .executions(&page(Some(cursor(&first[1]))))
        .await
        .unwrap();
    let third = store
        .executions(&page(Some(cursor(&second[1]))))
        .await
        .unwrap();
    let ids = |page: &[gantry_store::ExecutionRecord]| -> Vec<String> {
        page.iter().map(|e| e.id.clone()).collect()
    };
    assert_eq!(
        (ids(&first), ids(&second), ids(&third)),
        (
            vec!["e4".to_owned(), "e3".to_owned()],
            vec!["e1".to_owned(), "e6".to_owned()],
            vec![]
        )
    );
    // Two executions created in the same millisecond are told apart by their ids.
    let same_ms = ExecutionFilter {
        pipeline: Some("bulk".into()),
        before: Some(ExecutionCursor {
            created_at: 2050,
            id: "bulk050".into(),
        }),
        limit: Some(1),
        ..Default::default()
    };
    store
        .create_execution(&new_execution("bulk049z", "bulk", &[], 2050))
        .await
        .unwrap();
    assert_eq!(
        ids(&store.executions(&same_ms).await.unwrap()),
        ["bulk049z"]
    );
}

async fn active_executions_oldest_first(db: TestDb) {
    let store = &db.store;
    for (i, status) in Status::ALL.into_iter().enumerate() {
        // Created newest first, to show the order comes from created_at.
        let id = format!("e-{status}");
        let mut exec = store
            .create_execution(&new_execution(&id, "web", &[], 100 - i as i64))
            .await
            .unwrap();
        exec.status = status;
        store.update_execution(&exec).await.unwrap();
    }
    let active: Vec<String> = store
        .active_executions()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(active, ["e-waiting", "e-running", "e-pending"]);
}

async fn counts_cover_every_status(db: TestDb) {
    let store = &db.store;
    let zero: Vec<(Status, i64)> = Status::ALL.iter().map(|&s| (s, 0)).collect();
    assert_eq!(store.execution_counts().await.unwrap(), zero);
    for (i, status) in [
        Status::Running,
        Status::Failed,
        Status::Running,
        Status::Pending,
    ]
    .into_iter()
    .enumerate()
    {
        let mut exec = store
            .create_execution(&new_execution(&format!("e{i}"), "web", &[], 1))
            .await
            .unwrap();
        exec.status = status;
        store.update_execution(&exec).await.unwrap();
    }
    let counts = store.execution_counts().await.unwrap();
    assert_eq!(
        counts,
        [
            (Status::Pending, 1),
            (Status::Running, 2),
            (Status::Waiting, 0),
            (Status::Succeeded, 0),
            (Status::Failed, 1),
            (Status::Canceled, 0),
            (Status::Skipped, 0),
        ]
    );
}

async fn corrupt_rows_are_errors(db: TestDb) {
    let store = &db.store;
    store
        .create_execution(&new_execution("e1", "web", &["build"], 1))
        .await
        .unwrap();
    store
        .create_execution(&new_execution("e2", "web", &["build"], 2))
        .await
        .unwrap();

    db.raw("UPDATE executions SET spec = '{not json' WHERE id = 'e1'")
        .await;
    let result = store.execution("e1").await;
    assert!(
        matches!(&result, Err(StoreError::Corrupt { table: "executions", message }) if message.contains("spec")),
        "{result:?}"
    );
    let listed = store.executions(&ExecutionFilter::default()).await;
    assert!(
        matches!(listed, Err(StoreError::Corrupt { .. })),
        "{listed:?}"
    );
    // Other rows still read.
    assert!(store.execution("e2").await.unwrap().is_some());

    db.raw("UPDATE executions SET status = 'exploded' WHERE id = 'e2'")
        .await;
    let result = store.execution("e2").await;
    assert!(
        matches!(&result, Err(StoreError::Corrupt { message, .. }) if message.contains("exploded")),
        "{result:?}"
    );
    assert!(matches!(
        store.execution_counts().await,
        Err(StoreError::Corrupt { .. })
    ));

    db.raw("UPDATE stages SET status = 'exploded' WHERE execution_id = 'e2'")
        .await;
    let result = store.stages("e2").await;
    assert!(
        matches!(
            &result,
            Err(StoreError::Corrupt {
                table: "stages",
                ..
            })
        ),
        "{result:?}"
    );

    db.raw("UPDATE stages SET outputs = '[' WHERE execution_id = 'e1'")
        .await;
    let result = store.stage("e1", "build").await;
    assert!(
        matches!(
            &result,
            Err(StoreError::Corrupt {
                table: "stages",
                ..
            })
        ),
        "{result:?}"
    );

    db.raw("UPDATE executions SET parent_execution = 'x' WHERE id = 'e1'")
        .await;
    db.raw("UPDATE executions SET spec = '{}' WHERE id = 'e1'")
        .await;
    let result = store.execution("e1").await;
    assert!(
        matches!(&result, Err(StoreError::Corrupt { message, .. }) if message.contains("parent")),
        "{result:?}"
    );
}
