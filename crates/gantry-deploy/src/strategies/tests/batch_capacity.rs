//! Rolling in batches (`maxUnavailable`): each batch's new instances, once
//! healthy, take as many old ones down; an aborted rollout gives the old
//! groups their size back.

use std::sync::Arc;
use std::time::Duration;

use super::phases::{cluster, deploy, request, state};
use crate::providers::ServerGroupUpdate;
use crate::strategies::rolling::Rolling;
use crate::strategies::{Batch, RollingOptions, RolloutRecord, Strategy};
use crate::testing::{Call, FakeProvider, MemoryJournal};

fn in_batches_of_one() -> Arc<dyn Strategy> {
    Arc::new(Rolling {
        options: RollingOptions {
            target_percentages: Vec::new(),
            pause_between: Duration::ZERO,
            scale_down: false,
            wait_for_promotion: false,
            judgment_between_steps: false,
            max_unavailable: Some(Batch::Instances(1)),
            max_fail_percentage: None,
        },
    })
}

/// The sizes each group was given, in order, as `(group, size)`.
fn resizes(fake: &FakeProvider) -> Vec<(String, u32)> {
    fake.calls()
        .into_iter()
        .filter_map(|call| match call {
            Call::Create { name, size } | Call::Resize { name, size } => Some((name, size)),
            _ => None,
        })
        .collect()
}

fn r(name: &str, size: u32) -> (String, u32) {
    (name.to_owned(), size)
}

#[tokio::test]
async fn each_batch_takes_as_many_old_instances_down_once_its_new_ones_are_healthy() {
    // The old group runs the deploy's size, 2.
    let (fake, controller) = cluster();
    let mut request = request(in_batches_of_one(), &["shop-prod-v000"]);
    request.size = 2;
    deploy(&controller, &request, &MemoryJournal::default(), true)
        .await
        .expect("deploy");
    assert_eq!(
        resizes(&fake),
        [
            r("shop-prod-v001", 1),
            r("shop-prod-v001", 1),
            r("shop-prod-v000", 1),
            r("shop-prod-v001", 2),
            r("shop-prod-v000", 0),
        ]
    );
}

#[tokio::test]
async fn an_aborted_batch_rollout_gives_the_old_group_its_size_back() {
    // Resumed after the first batch took the old group down to 1; the
    // second batch never becomes healthy.
    let (fake, controller) = cluster();
    controller
        .update(
            "shop-prod-v000",
            ServerGroupUpdate {
                size: Some(1),
                ..Default::default()
            },
        )
        .await
        .expect("the first batch's resize");
    fake.never_healthy("shop-prod");
    let mut request = request(in_batches_of_one(), &["shop-prod-v000"]);
    request.size = 2;
    let journal = MemoryJournal::at(RolloutRecord {
        step: 1,
        ..Default::default()
    });
    deploy(&controller, &request, &journal, true)
        .await
        .expect_err("the second batch never becomes healthy");
    assert_eq!(state(&fake, "shop-prod-v000"), (true, 100, 2, true));
    assert!(
        !state(&fake, "shop-prod-v001").3,
        "the new group is removed"
    );
}
