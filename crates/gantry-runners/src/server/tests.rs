//! The server half against a real store (SQLite in a temporary directory).

use std::time::{Duration, Instant};

use gantry_store::{JobState, RunnerRecord, Store};
use serde_json::{Value, json};

use super::*;
use crate::protocol::{
    FinishRequest, HeartbeatRequest, HeldLease, LogBatch, PROTOCOL_VERSION, RegisterRequest, Timing,
};

struct Fixture {
    registry: RunnerRegistry,
    store: Store,
    _dir: tempfile::TempDir,
}

async fn fixture(timing: Timing) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("g.db").display()))
        .await
        .unwrap();
    let dispatcher = Dispatcher::start(store.clone(), timing).await.unwrap();
    Fixture {
        registry: RunnerRegistry::new(store.clone(), dispatcher),
        store,
        _dir: dir,
    }
}

impl Fixture {
    async fn runner(&self, name: &str, labels: &[&str]) -> (RunnerRecord, String) {
        let token = self.registry.create_token(0, None, Some(1)).await.unwrap();
        let registered = self
            .registry
            .register(
                RegisterRequest {
                    protocol: PROTOCOL_VERSION,
                    token: token.token,
                    name: name.into(),
                    labels: labels.iter().map(|l| l.to_string()).collect(),
                    capacity: 2,
                    version: "test".into(),
                },
                1,
            )
            .await
            .unwrap();
        let runner = self
            .registry
            .authenticate(&registered.credential)
            .await
            .unwrap();
        (runner, registered.credential)
    }

    fn dispatcher(&self) -> &Dispatcher {
        self.registry.dispatcher()
    }

    async fn enqueue(&self, labels: &[&str]) -> JobHandle {
        self.dispatcher()
            .enqueue(JobSpec {
                payload: json!({ "argv": ["true"] }),
                labels: labels.iter().map(|l| l.to_string()).collect(),
                secrets: Default::default(),
                workspace: None,
            })
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_credential_is_refused_once_wrong_disabled_or_removed_and_a_token_is_single_use() {
    let f = fixture(crate::protocol::timing()).await;
    let (runner, credential) = f.runner("alpha", &["linux"]).await;
    let wrong = format!("{}.grc_0000", runner.id);
    let refused = f.registry.authenticate(&wrong).await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        "runner credential refused for runner \"alpha\": wrong secret"
    );
    f.registry.disable("alpha", 5).await.unwrap();
    let refused = f.registry.authenticate(&credential).await.unwrap_err();
    assert!(refused.to_string().contains("disabled"), "{refused}");
    f.registry.enable("alpha").await.unwrap();
    f.registry.authenticate(&credential).await.unwrap();
    f.registry.remove("alpha", 6).await.unwrap();
    assert!(f.registry.authenticate(&credential).await.is_err());

    let token = f.registry.create_token(0, None, Some(1)).await.unwrap();
    let request = |name: &str| RegisterRequest {
        protocol: PROTOCOL_VERSION,
        token: token.token.clone(),
        name: name.into(),
        labels: vec![],
        capacity: 1,
        version: "test".into(),
    };
    let reserved = f.registry.register(request("jobs"), 1).await.unwrap_err();
    assert!(reserved.to_string().contains("reserved"), "{reserved}");
    f.registry.register(request("beta"), 1).await.unwrap();
    let again = f.registry.register(request("gamma"), 1).await.unwrap_err();
    assert!(matches!(again, RunnerError::TokenRefused), "{again}");
}

#[tokio::test]
async fn a_waiting_lease_request_is_woken_at_once_by_a_job_with_matching_labels() {
    let f = fixture(crate::protocol::timing()).await;
    let (linux, _) = f.runner("linux", &["linux"]).await;
    let (arm, _) = f.runner("arm", &["arm", "linux"]).await;
    let dispatcher = f.dispatcher().clone();
    let waiting_linux = {
        let dispatcher = dispatcher.clone();
        tokio::spawn(async move { dispatcher.lease(&linux, 1, Duration::from_secs(3)).await })
    };
    let waiting_arm = {
        let dispatcher = dispatcher.clone();
        tokio::spawn(async move { dispatcher.lease(&arm, 1, Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let job = f.enqueue(&["arm"]).await;
    let leased = waiting_arm
        .await
        .unwrap()
        .unwrap()
        .expect("the arm runner gets the job");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(leased.job_id, job.id);
    assert_eq!(
        waiting_linux.await.unwrap().unwrap(),
        None,
        "linux lacks the arm label"
    );
}

#[tokio::test]
async fn a_job_no_runner_has_the_labels_for_is_reported_as_such() {
    let f = fixture(crate::protocol::timing()).await;
    f.runner("linux", &["linux"]).await;
    let job = f.enqueue(&["gpu"]).await;
    let sets = f.registry.enabled_label_sets().await.unwrap();
    let queued = f.dispatcher().queued(&sets);
    assert_eq!(queued.len(), 1);
    assert_eq!(
        (queued[0].id.as_str(), queued[0].placeable),
        (job.id.as_str(), false)
    );
}

#[tokio::test]
async fn logs_are_taken_once_in_order_and_late_reports_of_a_lost_lease_are_refused() {
    let timing = Timing {
        heartbeat_ms: 100,
        lease_ttl_ms: 400,
        long_poll_ms: 1_000,
    };
    let f = fixture(timing).await;
    let (runner, _) = f.runner("alpha", &[]).await;
    let mut job = f.enqueue(&[]).await;
    let leased = f
        .dispatcher()
        .lease(&runner, 1, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (leased.job_id.as_str(), f.dispatcher().load_of(&runner.id)),
        (job.id.as_str(), 1)
    );
    let batch = |first: u64, lines: &[&str]| LogBatch {
        lease_id: leased.lease_id.clone(),
        first,
        lines: lines.iter().map(|l| l.to_string()).collect(),
    };
    let logs = |b| f.dispatcher().logs(&runner, b);
    assert_eq!(logs(batch(0, &["a", "b"])).await.unwrap().acked, 2);
    assert_eq!(
        logs(batch(1, &["b", "c"])).await.unwrap().acked,
        3,
        "a resend overlapping"
    );
    assert_eq!(
        logs(batch(5, &["f"])).await.unwrap().acked,
        3,
        "a gap is not taken"
    );
    let beat = HeartbeatRequest {
        leases: vec![HeldLease {
            lease_id: leased.lease_id.clone(),
            log_lines: 3,
        }],
    };
    let renewed = f.dispatcher().heartbeat(&runner, &beat).await.unwrap();
    assert_eq!(renewed.renewed[0].log_acked, 3);

    let mut events = Vec::new();
    let lost = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            let event = job.events.recv().await.unwrap();
            let done = matches!(event, JobEvent::Lost { .. });
            events.push(event);
            if done {
                break;
            }
        }
    })
    .await;
    assert!(
        lost.is_ok(),
        "the lease is lost within TTL + a tick: {events:?}"
    );
    assert_eq!(
        events,
        [
            JobEvent::Leased {
                runner: "alpha".into(),
                attempt: 1
            },
            JobEvent::Log {
                first: 0,
                lines: vec!["a".into(), "b".into()]
            },
            JobEvent::Log {
                first: 2,
                lines: vec!["c".into()]
            },
            JobEvent::Lost {
                runner: "alpha".into(),
                reason: "runner alpha lost: no heartbeat for 400ms".into()
            },
        ]
    );
    assert!(matches!(
        logs(batch(3, &["late"])).await,
        Err(RunnerError::LeaseGone(_))
    ));
    let late = f
        .dispatcher()
        .finish(
            &runner,
            FinishRequest {
                lease_id: leased.lease_id.clone(),
                result: json!({}),
                private: Value::Null,
            },
        )
        .await;
    assert!(matches!(late, Err(RunnerError::LeaseGone(_))));
    let answer = f.dispatcher().heartbeat(&runner, &beat).await.unwrap();
    assert_eq!(answer.cancel, std::slice::from_ref(&leased.lease_id));

    // The owner runs it again: another lease, attempt 2, logs from 0.
    assert!(f.dispatcher().retry(&job.id).await.unwrap());
    let again = f
        .dispatcher()
        .lease(&runner, 1, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.attempt, 2);
    f.dispatcher()
        .finish(
            &runner,
            FinishRequest {
                lease_id: again.lease_id,
                result: json!({ "exitCode": 0 }),
                private: Value::Null,
            },
        )
        .await
        .unwrap();
    let record = f.store.runner_job(&job.id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Finished);
}

#[tokio::test]
async fn disabling_a_runner_hands_its_jobs_back_and_capacity_bounds_its_leases() {
    let f = fixture(crate::protocol::timing()).await;
    let (runner, _) = f.runner("alpha", &[]).await;
    let mut jobs = Vec::new();
    for _ in 0..3 {
        jobs.push(f.enqueue(&[]).await);
    }
    let d = f.dispatcher();
    assert!(d.lease(&runner, 2, Duration::ZERO).await.unwrap().is_some());
    assert!(d.lease(&runner, 1, Duration::ZERO).await.unwrap().is_some());
    assert_eq!(
        d.lease(&runner, 1, Duration::ZERO).await.unwrap(),
        None,
        "capacity is 2"
    );
    assert_eq!(f.registry.list().await.unwrap()[0].load, 2);
    f.registry.disable("alpha", 10).await.unwrap();
    assert_eq!(d.load_of(&runner.id), 0);
    for job in &mut jobs[..2] {
        let _leased = job.events.recv().await.unwrap();
        let lost = job.events.recv().await.unwrap();
        assert_eq!(
            lost,
            JobEvent::Lost {
                runner: "alpha".into(),
                reason: "runner alpha disabled".into()
            }
        );
    }
    assert!(d.cancel(&jobs[2].id, "not needed").await.unwrap());
    assert_eq!(
        jobs[2].events.recv().await.unwrap(),
        JobEvent::Canceled {
            reason: "not needed".into()
        }
    );
}

/// A runner cut off by the network may have a lease request waiting on the
/// server from before: the job its lost lease hands back must not go to it
/// (the answer would never arrive, and the job would be lost twice), but to
/// a runner that is heard from; once it heartbeats again it leases as before.
#[tokio::test]
async fn a_runner_that_lost_a_lease_for_silence_gets_no_job_until_it_heartbeats_again() {
    let timing = Timing {
        heartbeat_ms: 100,
        lease_ttl_ms: 300,
        long_poll_ms: 1_000,
    };
    let f = fixture(timing).await;
    let (silent, _) = f.runner("silent", &[]).await;
    let mut job = f.enqueue(&[]).await;
    f.dispatcher()
        .lease(&silent, 1, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    loop {
        match job.events.recv().await.unwrap() {
            JobEvent::Lost { runner, .. } => break assert_eq!(runner, "silent"),
            _ => continue,
        }
    }
    assert!(f.dispatcher().retry(&job.id).await.unwrap());
    let waited = f
        .dispatcher()
        .lease(&silent, 1, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(waited.is_none(), "a silent runner was handed the job again");
    f.dispatcher()
        .heartbeat(&silent, &HeartbeatRequest { leases: Vec::new() })
        .await
        .unwrap();
    let leased = f
        .dispatcher()
        .lease(&silent, 1, Duration::ZERO)
        .await
        .unwrap()
        .expect("heard from again, the runner leases");
    assert_eq!((leased.job_id, leased.attempt), (job.id, 2));
}
