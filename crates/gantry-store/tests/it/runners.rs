use gantry_store::{JobState, RunnerJobRecord, RunnerRecord, RunnerTokenRecord, StoreError};
use serde_json::json;

use crate::db::{TestDb, both};

both!(
    a_registration_token_is_used_at_most_its_count_and_never_after_it_expires,
    runner_names_are_unique_and_a_runner_can_be_disabled_and_removed,
    two_runners_racing_for_one_job_lease_it_once,
    an_expired_lease_is_lost_and_its_late_reports_are_refused,
    a_lost_job_can_be_queued_again_and_leased_by_another_runner,
    a_canceled_job_refuses_its_runners_reports,
    a_disabled_or_removed_runner_leases_nothing
);

/// Registers `runners` runners, queues `j1` and leases it to `r1` as
/// `lease-1` until 100.
async fn lease_j1_to_r1(store: &gantry_store::Store, runners: usize) {
    register(store, runners).await;
    store.enqueue_job(&job("j1")).await.unwrap();
    store
        .lease_job("j1", "r1", "lease-1", 100)
        .await
        .unwrap()
        .unwrap();
}

/// Registers runners `r0`, `r1`, … `r{count - 1}`.
async fn register(store: &gantry_store::Store, count: usize) {
    for i in 0..count {
        store
            .create_runner(&runner(&format!("r{i}"), &format!("runner-{i}")))
            .await
            .unwrap();
    }
}

fn runner(id: &str, name: &str) -> RunnerRecord {
    RunnerRecord {
        id: id.into(),
        name: name.into(),
        labels: vec!["linux".into()],
        capacity: 2,
        state: "enabled".into(),
        credential_hash: format!("hash-of-{id}"),
        version: "0.0.0".into(),
        created_at: 1,
        last_contact_at: None,
    }
}

fn job(id: &str) -> RunnerJobRecord {
    RunnerJobRecord {
        id: id.into(),
        payload: json!({ "argv": ["true"] }),
        labels: vec!["linux".into()],
        state: JobState::Queued,
        runner_id: None,
        lease_id: None,
        lease_expires_at: None,
        attempt: 0,
        result: None,
        log_acked: 0,
        queued_at: 10,
        ended_at: None,
        reason: None,
    }
}

async fn a_registration_token_is_used_at_most_its_count_and_never_after_it_expires(db: TestDb) {
    let store = &db.store;
    let token = |id: &str, expires_at, uses_left| RunnerTokenRecord {
        id: id.into(),
        hash: format!("hash-of-{id}"),
        created_at: 1,
        expires_at,
        uses_left,
    };
    store
        .create_runner_token(&token("twice", None, Some(2)))
        .await
        .unwrap();
    store
        .create_runner_token(&token("until-100", Some(100), None))
        .await
        .unwrap();
    for _ in 0..2 {
        assert!(
            store
                .use_runner_token("hash-of-twice", 50)
                .await
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(
        store.use_runner_token("hash-of-twice", 50).await.unwrap(),
        None
    );
    assert!(
        store
            .use_runner_token("hash-of-until-100", 99)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .use_runner_token("hash-of-until-100", 100)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.use_runner_token("hash-of-nothing", 1).await.unwrap(),
        None
    );
}

async fn runner_names_are_unique_and_a_runner_can_be_disabled_and_removed(db: TestDb) {
    let store = &db.store;
    store.create_runner(&runner("r1", "alpha")).await.unwrap();
    let taken = store
        .create_runner(&runner("r2", "alpha"))
        .await
        .unwrap_err();
    assert!(
        matches!(taken, StoreError::Conflict { kind: "runner", .. }),
        "{taken}"
    );
    store.touch_runner("r1", 77).await.unwrap();
    let disabled = store
        .set_runner_state("alpha", "disabled")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(disabled.state, "disabled");
    assert_eq!(disabled.last_contact_at, Some(77));
    assert_eq!(
        store.runners().await.unwrap(),
        std::slice::from_ref(&disabled)
    );
    assert_eq!(store.remove_runner("alpha").await.unwrap(), Some(disabled));
    assert_eq!(store.runner("r1").await.unwrap(), None);
    assert_eq!(
        store.set_runner_state("alpha", "enabled").await.unwrap(),
        None
    );
}

async fn two_runners_racing_for_one_job_lease_it_once(db: TestDb) {
    let store = db.store.clone();
    register(&store, 8).await;
    store.enqueue_job(&job("j1")).await.unwrap();
    let race = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .lease_job("j1", &format!("r{i}"), &format!("lease-{i}"), 1_000)
                .await
                .unwrap()
        })
    });
    let winners: Vec<_> = futures::future::join_all(race)
        .await
        .into_iter()
        .filter_map(|leased| leased.unwrap())
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    let leased = store.runner_job("j1").await.unwrap().unwrap();
    assert_eq!(leased.state, JobState::Leased);
    assert_eq!(leased.attempt, 1);
    assert_eq!(leased.lease_id, winners[0].lease_id);
}

async fn an_expired_lease_is_lost_and_its_late_reports_are_refused(db: TestDb) {
    let store = &db.store;
    lease_j1_to_r1(store, 2).await;
    let renewed = store.renew_lease("lease-1", "r1", 90, 200).await.unwrap();
    assert_eq!(renewed.unwrap().lease_expires_at, Some(200));
    assert_eq!(
        store.renew_lease("lease-1", "r2", 90, 300).await.unwrap(),
        None,
        "another runner cannot renew it"
    );
    assert_eq!(
        store
            .ack_job_logs("lease-1", "r1", 150, 0, 5)
            .await
            .unwrap()
            .unwrap()
            .log_acked,
        5
    );
    assert_eq!(
        store
            .ack_job_logs("lease-1", "r1", 150, 0, 3)
            .await
            .unwrap(),
        None,
        "a batch from a sequence the server is past is not taken"
    );
    assert!(store.lose_expired_leases(200).await.unwrap().is_empty());
    // Past the expiry, even before the sweep, nothing of the runner's is taken.
    assert_eq!(
        store.renew_lease("lease-1", "r1", 201, 300).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .finish_job("lease-1", "r1", 201, &json!({}))
            .await
            .unwrap(),
        None
    );
    let lost = store.lose_expired_leases(201).await.unwrap();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].state, JobState::Lost);
    assert_eq!(lost[0].reason.as_deref(), Some("lease expired"));
    assert_eq!(
        store
            .ack_job_logs("lease-1", "r1", 150, 5, 9)
            .await
            .unwrap(),
        None
    );
}

async fn a_lost_job_can_be_queued_again_and_leased_by_another_runner(db: TestDb) {
    let store = &db.store;
    lease_j1_to_r1(store, 3).await;
    assert_eq!(
        store
            .lose_leases_of("r1", 50, "runner r1 removed")
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store.requeue_lost_job("j1").await.unwrap());
    assert!(
        !store.requeue_lost_job("j1").await.unwrap(),
        "it is queued now"
    );
    let again = store
        .lease_job("j1", "r2", "lease-2", 500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.attempt, again.log_acked), (2, 0));
    assert_eq!(
        store
            .finish_job("lease-1", "r1", 60, &json!({}))
            .await
            .unwrap(),
        None
    );
    let done = store
        .finish_job("lease-2", "r2", 60, &json!({ "exitCode": 0 }))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, JobState::Finished);
    assert_eq!(done.result, Some(json!({ "exitCode": 0 })));
}

async fn a_canceled_job_refuses_its_runners_reports(db: TestDb) {
    let store = &db.store;
    lease_j1_to_r1(store, 2).await;
    store.enqueue_job(&job("j2")).await.unwrap();
    let canceled = store
        .cancel_job("j1", 20, "canceled by alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(canceled.runner_id.as_deref(), Some("r1"));
    assert_eq!(
        store.renew_lease("lease-1", "r1", 30, 200).await.unwrap(),
        None
    );
    assert_eq!(store.cancel_job("j1", 40, "again").await.unwrap(), None);
    let unfinished = store
        .lose_unfinished_jobs(50, "server restarted")
        .await
        .unwrap();
    assert_eq!(
        unfinished.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["j2"]
    );
    assert!(
        store
            .runner_jobs_in(&[JobState::Queued, JobState::Leased])
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_disabled_or_removed_runner_leases_nothing(db: TestDb) {
    let store = &db.store;
    register(store, 2).await;
    store.enqueue_job(&job("j1")).await.unwrap();
    store
        .set_runner_state("runner-0", "disabled")
        .await
        .unwrap();
    store.remove_runner("runner-1").await.unwrap();
    assert_eq!(
        store.lease_job("j1", "r0", "lease-0", 100).await.unwrap(),
        None
    );
    assert_eq!(
        store.lease_job("j1", "r1", "lease-1", 100).await.unwrap(),
        None
    );
    store.set_runner_state("runner-0", "enabled").await.unwrap();
    assert!(
        store
            .lease_job("j1", "r0", "lease-2", 100)
            .await
            .unwrap()
            .is_some()
    );
}
