mod from_spec;
mod phases;

use std::time::Duration;

use super::RolloutRecord;
use super::journal::{now_millis, until};

#[test]
fn a_pause_keeps_the_deadline_recorded_when_it_began() {
    let mut record = RolloutRecord::default();
    let (first, new) = record.deadline("pause at step 2", Duration::from_secs(6));
    assert!(new);
    let now = now_millis();
    assert!(first > now && first <= now + 6_000, "{first} vs {now}");
    // Read back after a restart (through JSON, as the stage keeps it).
    let mut resumed: RolloutRecord =
        serde_json::from_value(serde_json::to_value(&record).expect("encode")).expect("decode");
    let (again, new) = resumed.deadline("pause at step 2", Duration::from_secs(6));
    assert_eq!((again, new), (first, false));
    let (other, new) = resumed.deadline("pause at step 4", Duration::from_secs(1));
    assert!(new && other < first);
}

#[test]
fn a_passed_deadline_leaves_nothing_to_wait() {
    assert_eq!(until(now_millis().saturating_sub(1_000)), Duration::ZERO);
    assert!(until(now_millis() + 2_000) > Duration::from_millis(1_500));
}

#[test]
fn an_empty_stage_state_is_a_first_attempt() {
    let record: RolloutRecord = serde_json::from_value(serde_json::json!({})).expect("decode");
    assert_eq!(record, RolloutRecord::default());
    assert_eq!(record.step, 0);
}

mod batch_capacity;
mod batches;
