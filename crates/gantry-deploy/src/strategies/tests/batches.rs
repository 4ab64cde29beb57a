//! The rolling strategy's host batches and failure allowance.

use std::time::Duration;

use crate::strategies::{Batch, RollingOptions};

fn options(batch: Option<Batch>, percentages: &[u32], max_fail: Option<u32>) -> RollingOptions {
    RollingOptions {
        target_percentages: percentages.to_vec(),
        pause_between: Duration::ZERO,
        scale_down: true,
        wait_for_promotion: false,
        judgment_between_steps: false,
        max_unavailable: batch,
        max_fail_percentage: max_fail,
    }
}

#[test]
fn batches_of_hosts_become_steps_with_their_share_of_traffic() {
    let check = |batch, target, expected: &[(u32, u32)]| {
        assert_eq!(
            options(Some(batch), &[], None).plan(target),
            expected,
            "{batch:?} of {target}"
        );
    };
    check(Batch::Instances(1), 3, &[(1, 34), (2, 67), (3, 100)]);
    check(Batch::Instances(2), 5, &[(2, 40), (4, 80), (5, 100)]);
    check(Batch::Instances(10), 3, &[(3, 100)]);
    check(
        Batch::Percent(25),
        8,
        &[(2, 25), (4, 50), (6, 75), (8, 100)],
    );
    check(Batch::Percent(50), 3, &[(2, 67), (3, 100)]);
}

#[test]
fn target_percentages_keep_their_steps() {
    assert_eq!(
        options(None, &[34, 67, 100], None).plan(3),
        [(2, 34), (3, 67), (3, 100)]
    );
}

#[test]
fn max_fail_percentage_is_a_share_of_the_whole_group() {
    let check = |max_fail, size, target, needed| {
        assert_eq!(
            options(Some(Batch::Instances(1)), &[], max_fail).needed(size, target),
            needed,
            "{max_fail:?}: {size} of {target}"
        );
    };
    check(None, 3, 3, 3);
    check(Some(30), 3, 3, 3);
    check(Some(34), 3, 3, 2);
    check(Some(34), 1, 3, 1);
    check(Some(50), 10, 10, 5);
    check(Some(100), 4, 4, 1);
}
