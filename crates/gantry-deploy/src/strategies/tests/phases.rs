//! Every strategy's phases against the fake provider: what each asks of
//! the instances and the traffic, what an abort restores, and how a
//! rollout resumed from its journal goes on from the step it reached.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use super::super::canary::Canary;
use super::super::highlander::Highlander;
use super::super::none::NoStrategy;
use super::super::redblack::RedBlack;
use super::super::rolling::Rolling;
use super::super::{
    CanaryOptions, CanaryStep, RedBlackOptions, RollingOptions, RolloutRecord, Strategy,
};
use crate::analysis::{AnalysisConfig, Measurement};
use crate::controller::{DeployController, DeployRequest};
use crate::error::DeployError;
use crate::model::ServerGroupSpec;
use crate::providers::ProviderRegistry;
use crate::testing::{Call, FakeProvider, MemoryJournal, NoPeople};
use gantry_wire::deploy::CanaryVerdict;

const CLUSTER: &str = "shop-prod";

/// A cluster with one running group (`shop-prod-v000`, 2 instances).
pub(super) fn cluster() -> (FakeProvider, DeployController) {
    let fake = FakeProvider::new();
    fake.running("shop", CLUSTER, 2);
    let controller = DeployController::new(ProviderRegistry::new().register(fake.provider()));
    (fake, controller)
}

pub(super) fn request(strategy: Arc<dyn Strategy>, previous: &[&str]) -> DeployRequest {
    DeployRequest {
        provider: FakeProvider::NAME.to_owned(),
        request_id: "execution-1-deploy-1".to_owned(),
        application: "shop".to_owned(),
        cluster: CLUSTER.to_owned(),
        spec: ServerGroupSpec {
            command: Some("serve".to_owned()),
            ..Default::default()
        },
        size: 4,
        strategy,
        health_timeout: Duration::from_millis(20),
        previous: previous.iter().map(|s| s.to_string()).collect(),
    }
}

pub(super) async fn deploy(
    controller: &DeployController,
    request: &DeployRequest,
    journal: &MemoryJournal,
    approve: bool,
) -> Result<String, DeployError> {
    let cancel = CancellationToken::new();
    let people = NoPeople { approve };
    let progress = |_: String| {};
    controller
        .deploy(request, &cancel, &people, journal, &progress)
        .await
        .map(|group| group.name)
}

/// The traffic calls of the log, as `(group, enabled, weight)`.
fn traffic(fake: &FakeProvider) -> Vec<(String, Option<bool>, Option<u32>)> {
    fake.calls()
        .into_iter()
        .filter_map(|call| match call {
            Call::Traffic {
                name,
                enabled,
                weight,
            } => Some((name, enabled, weight)),
            _ => None,
        })
        .collect()
}

pub(super) fn state(fake: &FakeProvider, name: &str) -> (bool, u32, u32, bool) {
    let g = fake.group(name).expect("group");
    (g.enabled, g.weight, g.size, g.is_live())
}

fn t(
    name: &str,
    enabled: Option<bool>,
    weight: Option<u32>,
) -> (String, Option<bool>, Option<u32>) {
    (name.to_owned(), enabled, weight)
}

#[tokio::test]
async fn red_black_enables_the_new_group_at_full_weight_then_disables_the_old_one() {
    let (fake, controller) = cluster();
    let request = request(
        Arc::new(RedBlack {
            options: RedBlackOptions::default(),
        }),
        &["shop-prod-v000"],
    );
    let new = deploy(&controller, &request, &MemoryJournal::default(), true)
        .await
        .expect("deploy");
    assert_eq!(new, "shop-prod-v001");
    assert_eq!(
        traffic(&fake),
        [
            t("shop-prod-v001", Some(true), Some(100)),
            t("shop-prod-v000", Some(false), None)
        ]
    );
    // Kept warm for a rollback: disabled, still at its size.
    assert_eq!(state(&fake, "shop-prod-v000"), (false, 100, 2, true));
    assert_eq!(state(&fake, "shop-prod-v001"), (true, 100, 4, true));
}

#[tokio::test]
async fn red_black_with_scale_down_and_max_remaining_groups_cleans_up_the_old_ones() {
    let (fake, controller) = cluster();
    fake.running("shop", CLUSTER, 2);
    let options = RedBlackOptions {
        scale_down: true,
        max_remaining_server_groups: 2,
        ..Default::default()
    };
    let request = request(Arc::new(RedBlack { options }), &["shop-prod-v001"]);
    deploy(&controller, &request, &MemoryJournal::default(), true)
        .await
        .expect("deploy");
    assert_eq!(state(&fake, "shop-prod-v001"), (false, 100, 0, true));
    // Two remain: the new one and the one before it.
    assert!(
        !state(&fake, "shop-prod-v000").3,
        "the oldest group is destroyed"
    );
}

#[tokio::test]
async fn highlander_destroys_every_older_group() {
    let (fake, controller) = cluster();
    fake.running("shop", CLUSTER, 1);
    let request = request(
        Arc::new(Highlander {
            redblack: RedBlack {
                options: RedBlackOptions::default(),
            },
        }),
        &["shop-prod-v001"],
    );
    deploy(&controller, &request, &MemoryJournal::default(), true)
        .await
        .expect("deploy");
    assert!(!state(&fake, "shop-prod-v000").3);
    assert!(!state(&fake, "shop-prod-v001").3);
    assert_eq!(state(&fake, "shop-prod-v002"), (true, 100, 4, true));
}

#[tokio::test]
async fn none_enables_the_new_group_and_touches_nothing_else() {
    let (fake, controller) = cluster();
    let request = request(Arc::new(NoStrategy), &["shop-prod-v000"]);
    deploy(&controller, &request, &MemoryJournal::default(), true)
        .await
        .expect("deploy");
    assert_eq!(traffic(&fake), [t("shop-prod-v001", Some(true), Some(100))]);
    assert_eq!(state(&fake, "shop-prod-v000"), (true, 100, 2, true));
}

fn rolling(judgment: bool) -> Arc<dyn Strategy> {
    Arc::new(Rolling {
        options: RollingOptions {
            target_percentages: vec![25, 50, 100],
            pause_between: Duration::ZERO,
            scale_down: true,
            wait_for_promotion: true,
            judgment_between_steps: judgment,
            max_unavailable: None,
            max_fail_percentage: None,
        },
    })
}

#[tokio::test]
async fn rolling_grows_the_new_group_and_shifts_traffic_step_by_step() {
    let (fake, controller) = cluster();
    let request = request(rolling(true), &["shop-prod-v000"]);
    let journal = MemoryJournal::default();
    deploy(&controller, &request, &journal, true)
        .await
        .expect("deploy");
    assert_eq!(
        fake.calls(),
        [
            Call::Create {
                name: "shop-prod-v001".into(),
                size: 1
            },
            Call::Resize {
                name: "shop-prod-v001".into(),
                size: 1
            },
            Call::Traffic {
                name: "shop-prod-v001".into(),
                enabled: Some(true),
                weight: Some(25)
            },
            Call::Traffic {
                name: "shop-prod-v000".into(),
                enabled: None,
                weight: Some(75)
            },
            Call::Resize {
                name: "shop-prod-v001".into(),
                size: 2
            },
            Call::Traffic {
                name: "shop-prod-v001".into(),
                enabled: Some(true),
                weight: Some(50)
            },
            Call::Traffic {
                name: "shop-prod-v000".into(),
                enabled: None,
                weight: Some(50)
            },
            Call::Resize {
                name: "shop-prod-v001".into(),
                size: 4
            },
            Call::Traffic {
                name: "shop-prod-v001".into(),
                enabled: Some(true),
                weight: Some(100)
            },
            Call::Traffic {
                name: "shop-prod-v000".into(),
                enabled: Some(false),
                weight: None
            },
            Call::Resize {
                name: "shop-prod-v000".into(),
                size: 0
            },
        ]
    );
    assert_eq!(journal.record().step, 2);
}

#[tokio::test]
async fn a_rejected_rolling_step_aborts_and_gives_the_traffic_back() {
    let (fake, controller) = cluster();
    let request = request(rolling(true), &["shop-prod-v000"]);
    let error = deploy(&controller, &request, &MemoryJournal::default(), false)
        .await
        .expect_err("rejected");
    assert!(matches!(error, DeployError::Rejected(_)), "{error}");
    assert_eq!(state(&fake, "shop-prod-v000"), (true, 100, 2, true));
    assert!(
        !state(&fake, "shop-prod-v001").3,
        "the new group is removed"
    );
}

#[tokio::test]
async fn a_resumed_rolling_deploy_goes_on_from_the_step_its_journal_reached() {
    let (fake, controller) = cluster();
    let request = request(rolling(false), &["shop-prod-v000"]);
    let journal = MemoryJournal::at(RolloutRecord {
        step: 2,
        ..Default::default()
    });
    deploy(&controller, &request, &journal, true)
        .await
        .expect("deploy");
    let resized: Vec<u32> = fake
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Resize { name, size } if name == "shop-prod-v001" => Some(size),
            _ => None,
        })
        .collect();
    assert_eq!(resized, [4], "steps 1 and 2 are not run again");
}

fn canary(analysis_passes: bool, fake: &FakeProvider) -> Arc<dyn Strategy> {
    let good: Vec<Measurement> = (0..200)
        .map(|i| Measurement {
            micros: 1_000 + (i % 50) * 10,
            error: false,
            ago_ms: i * 5,
        })
        .collect();
    let canary_samples = if analysis_passes {
        good.clone()
    } else {
        good.iter()
            .map(|m| Measurement { error: true, ..*m })
            .collect()
    };
    fake.set_samples("shop-prod-v000", good);
    fake.set_samples("shop-prod-v001", canary_samples);
    Arc::new(Canary {
        options: CanaryOptions {
            steps: vec![
                CanaryStep::SetWeight(10),
                CanaryStep::Pause(Duration::from_millis(1)),
                CanaryStep::PauseUntilPromoted,
                CanaryStep::Analysis(AnalysisConfig {
                    window: Duration::from_millis(1),
                    marginal: 50.0,
                    pass: 100.0,
                    max_error_rate_increase: 1.0,
                    latency_tolerance: 0.2,
                }),
                CanaryStep::SetWeight(50),
            ],
            scale_down: false,
        },
    })
}

#[tokio::test]
async fn a_canary_that_passes_its_analysis_is_promoted() {
    let (fake, controller) = cluster();
    let request = request(canary(true, &fake), &["shop-prod-v000"]);
    let journal = MemoryJournal::default();
    deploy(&controller, &request, &journal, true)
        .await
        .expect("deploy");
    assert_eq!(
        traffic(&fake),
        [
            t("shop-prod-v001", Some(true), Some(10)),
            t("shop-prod-v000", None, Some(90)),
            t("shop-prod-v001", Some(true), Some(50)),
            t("shop-prod-v000", None, Some(50)),
            t("shop-prod-v001", Some(true), Some(100)),
            t("shop-prod-v000", None, Some(0)),
            t("shop-prod-v000", Some(false), None),
        ]
    );
    assert_eq!(journal.record().step, 5);
    assert_eq!(journal.record().pauses.len(), 2, "{:?}", journal.record());
    let [analysis] = &journal.record().analyses[..] else {
        panic!("one analysis recorded: {:?}", journal.record())
    };
    assert_eq!(
        (analysis.step, analysis.verdict, analysis.score),
        (4, CanaryVerdict::Pass, 100.0)
    );
    assert_eq!(
        (analysis.canary.as_str(), analysis.baseline.as_str()),
        ("shop-prod-v001", "shop-prod-v000")
    );
}

#[tokio::test]
async fn a_canary_that_fails_its_analysis_is_removed_and_the_baseline_takes_all_traffic() {
    let (fake, controller) = cluster();
    let request = request(canary(false, &fake), &["shop-prod-v000"]);
    let journal = MemoryJournal::default();
    let error = deploy(&controller, &request, &journal, true)
        .await
        .expect_err("analysis fails");
    assert!(error.to_string().contains("failed its analysis"), "{error}");
    let analyses = journal.record().analyses;
    assert_eq!(
        analyses.len(),
        1,
        "the failed analysis is kept for people to see"
    );
    assert_eq!(analyses[0].verdict, CanaryVerdict::Marginal);
    assert_eq!(analyses[0].metrics[0].judgment, "high", "{:?}", analyses[0]);
    assert_eq!(state(&fake, "shop-prod-v000"), (true, 100, 2, true));
    assert!(!state(&fake, "shop-prod-v001").3);
}

#[tokio::test]
async fn a_resumed_canary_skips_the_steps_done_before_the_restart() {
    let (fake, controller) = cluster();
    let request = request(canary(true, &fake), &["shop-prod-v000"]);
    // The first attempt got to the 50% step: the analysis is not run again.
    fake.set_samples("shop-prod-v001", Vec::new());
    let journal = MemoryJournal::at(RolloutRecord {
        step: 4,
        ..Default::default()
    });
    deploy(&controller, &request, &journal, true)
        .await
        .expect("deploy");
    assert_eq!(traffic(&fake)[0], t("shop-prod-v001", Some(true), Some(50)));
}

#[tokio::test]
async fn a_group_that_never_becomes_healthy_fails_the_deploy_and_is_removed() {
    let (fake, controller) = cluster();
    fake.never_healthy(CLUSTER);
    let request = request(
        Arc::new(RedBlack {
            options: RedBlackOptions::default(),
        }),
        &["shop-prod-v000"],
    );
    let error = deploy(&controller, &request, &MemoryJournal::default(), true)
        .await
        .expect_err("unhealthy");
    assert!(
        error.to_string().contains("did not become healthy"),
        "{error}"
    );
    assert!(!state(&fake, "shop-prod-v001").3);
    assert_eq!(traffic(&fake), [t("shop-prod-v000", Some(true), Some(100))]);
}
