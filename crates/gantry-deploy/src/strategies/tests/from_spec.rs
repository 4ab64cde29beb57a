//! Each registered strategy is built from the checked `deploy` stage, with
//! the defaults the config documents.

use gantry_config::{DeployStage, DeployStrategy, StageKind};

use super::super::for_spec;

/// The `deploy` stage of a checked file with these extra fields.
fn spec(fields: &str) -> DeployStage {
    let text = format!(
        "pipelines:\n  - name: ship\n    stages:\n      - {{id: deploy, type: deploy, application: shop, command: serve{fields}}}\n"
    );
    let mut document = gantry_config::parse_document("test.yaml", &text).expect("a valid file");
    match document.pipelines.remove(0).stages.remove(0).kind {
        StageKind::Deploy(spec) => spec,
        other => panic!("not a deploy: {other:?}"),
    }
}

fn built(fields: &str) -> String {
    format!("{:?}", for_spec(&spec(fields)))
}

#[test]
fn every_registered_strategy_name_builds_its_own_strategy() {
    for name in DeployStrategy::NAMES {
        let fields = match *name {
            "rolling" => ", strategy: rolling, targetPercentages: [50, 100]".to_owned(),
            "canary" => ", strategy: canary, steps: [{setWeight: 10}]".to_owned(),
            other => format!(", strategy: {other}"),
        };
        let strategy = built(&fields);
        let expected = match *name {
            "redblack" => "RedBlack",
            "highlander" => "Highlander",
            "rolling" => "Rolling",
            "canary" => "Canary",
            "none" => "NoStrategy",
            other => panic!("strategy {other} has no expectation here: add one"),
        };
        assert!(
            strategy.starts_with(expected),
            "{name} built {strategy}, not {expected}"
        );
    }
}

#[test]
fn a_deploy_without_strategy_is_red_black_keeping_the_old_groups_warm() {
    assert_eq!(
        built(""),
        "RedBlack { options: RedBlackOptions { scale_down: false, max_remaining_server_groups: 0, \
         delay_before_disable: 0ns, delay_before_scale_down: 0ns } }"
    );
}

#[test]
fn rolling_scales_down_by_default_and_reads_its_steps_from_the_spec() {
    assert_eq!(
        built(", strategy: rolling, targetPercentages: [25, 100], pauseBetween: 2s"),
        "Rolling { options: RollingOptions { target_percentages: [25, 100], pause_between: 2s, \
         scale_down: true, wait_for_promotion: false, judgment_between_steps: false, \
         max_unavailable: None, max_fail_percentage: None } }"
    );
}

#[test]
fn canary_steps_take_the_documented_analysis_defaults() {
    let strategy = built(
        ", strategy: canary, steps: [{setWeight: 10}, {pause: untilPromoted}, {analysis: {window: 1m}}]",
    );
    assert!(
        strategy.contains(
            "steps: [SetWeight(10), PauseUntilPromoted, Analysis(AnalysisConfig { window: 60s, \
             marginal: 50.0, pass: 100.0, max_error_rate_increase: 1.0"
        ),
        "{strategy}"
    );
}
