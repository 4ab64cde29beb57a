//! The typed deploy model: what the checks accept is read once into enums
//! and typed canary steps, and their JSON is the spec the store has always
//! kept.

use std::time::Duration;

use crate::deploy::model::{
    CanaryAnalysis, CanaryPause, CanaryStep, Comparison, DeploySize, DeployStrategy,
    ServerGroupTarget,
};
use crate::{StageKind, parse_document};

fn stage(yaml_fields: &str) -> Result<StageKind, String> {
    let text = format!(
        "pipelines:\n  - name: ship\n    stages:\n      - id: deploy\n        type: deploy\n{}",
        yaml_fields
            .lines()
            .map(|l| format!("        {l}\n"))
            .collect::<String>()
    );
    parse_document("test.yaml", &text)
        .map(|mut doc| doc.pipelines.remove(0).stages.remove(0).kind)
        .map_err(|d| d.to_string())
}

fn deploy(yaml_fields: &str) -> crate::DeployStage {
    match stage(yaml_fields) {
        Ok(StageKind::Deploy(spec)) => spec,
        other => panic!("not a deploy: {other:?}"),
    }
}

#[test]
fn canary_steps_are_read_into_typed_steps() {
    let spec = deploy(
        "application: shop\ncommand: serve\nstrategy: canary\nsteps:\n  - setWeight: 10\n  - pause: 30s\n  - pause: untilPromoted\n  - analysis: {window: 2m, pass: 90}\n",
    );
    assert_eq!(spec.chosen_strategy(), DeployStrategy::Canary);
    assert_eq!(
        spec.steps,
        [
            CanaryStep::SetWeight(10),
            CanaryStep::Pause(CanaryPause::For(Duration::from_secs(30))),
            CanaryStep::Pause(CanaryPause::UntilPromoted),
            CanaryStep::Analysis(CanaryAnalysis {
                window: Duration::from_secs(120),
                marginal: None,
                pass: Some(90),
                max_error_rate_increase: None,
            }),
        ]
    );
    let CanaryStep::Analysis(analysis) = &spec.steps[3] else {
        unreachable!()
    };
    assert_eq!(
        (
            analysis.marginal(),
            analysis.pass(),
            analysis.max_error_rate_increase()
        ),
        (50, 90, 1)
    );
}

#[test]
fn the_typed_deploy_stage_keeps_the_json_the_store_holds() {
    let spec = deploy(
        "application: shop\ncommand: serve\nstrategy: canary\nsteps:\n  - setWeight: 10\n  - pause: untilPromoted\n  - analysis: {window: 5m}\n",
    );
    let json = serde_json::to_value(&spec).expect("encode");
    assert_eq!(json["strategy"], "canary");
    assert_eq!(
        json["steps"],
        serde_json::json!([{"setWeight": 10}, {"pause": "untilPromoted"}, {"analysis": {"window": "5m"}}])
    );
    assert_eq!(
        serde_json::from_value::<crate::DeployStage>(json).expect("decode"),
        spec
    );
}

#[test]
fn an_unnamed_strategy_and_provider_are_the_defaults() {
    let spec = deploy("application: shop\ncommand: serve\n");
    assert_eq!(spec.strategy, None);
    assert_eq!(spec.chosen_strategy(), DeployStrategy::Redblack);
    assert_eq!(spec.provider_name(), "local");
}

#[test]
fn an_unknown_provider_is_reported_with_the_registered_ones() {
    let text = "pipelines:\n  - name: ship\n    stages:\n      - {id: deploy, type: deploy, application: shop, command: serve,\n         provider: kubernetes}\n";
    let error = crate::parse_document_for("test.yaml", text, &["local", "ssh"])
        .expect_err("unknown")
        .to_string();
    assert_eq!(
        error,
        "test.yaml:5:20: \"provider\" must be one of local, ssh, not \"kubernetes\""
    );
}

#[test]
fn a_file_checked_on_its_own_leaves_provider_names_to_the_server() {
    let spec = deploy("application: shop\ncommand: serve\nprovider: kubernetes\n");
    assert_eq!(spec.provider_name(), "kubernetes");
    let error =
        stage("application: shop\ncommand: serve\nprovider: [local]\n").expect_err("a list");
    assert!(error.contains("\"provider\" must be a string"), "{error}");
}

#[test]
fn server_group_targets_and_comparisons_are_enums() {
    let target: ServerGroupTarget = serde_json::from_str("\"previous\"").expect("target");
    assert_eq!(target, ServerGroupTarget::Previous);
    for symbol in Comparison::SYMBOLS {
        let comparison: Comparison =
            serde_json::from_value(serde_json::json!(symbol)).expect("comparison");
        assert_eq!(comparison.symbol(), *symbol);
    }
    assert!(Comparison::LessOrEqual.holds(2, 2) && !Comparison::Greater.holds(2, 2));
    for name in DeployStrategy::NAMES {
        let strategy: DeployStrategy =
            serde_json::from_value(serde_json::json!(name)).expect("strategy");
        assert_eq!(strategy.name(), *name);
    }
}

#[test]
fn a_deploy_without_size_keeps_the_clusters_and_a_size_may_be_an_expression() {
    assert_eq!(deploy("application: shop\ncommand: serve\n").size, None);
    assert_eq!(
        deploy("application: shop\ncommand: serve\nsize: 3\n").size,
        Some(DeploySize::Count(3))
    );
    let text = "pipelines:\n  - name: ship\n    parameters: [{name: replicas, default: \"2\"}]\n    stages:\n      - {id: deploy, type: deploy, application: shop, command: serve, size: \"${{ parameters.replicas }}\"}\n";
    let spec = match parse_document("test.yaml", text)
        .map(|mut d| d.pipelines.remove(0).stages.remove(0).kind)
    {
        Ok(StageKind::Deploy(spec)) => spec,
        other => panic!("not a deploy: {other:?}"),
    };
    assert_eq!(
        spec.size,
        Some(DeploySize::Expression("${{ parameters.replicas }}".into()))
    );
    // Rendered, the expression is text, read as the count it names.
    let mut json = serde_json::to_value(&spec).unwrap();
    json["size"] = serde_json::Value::String("4".into());
    let rendered: crate::DeployStage = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(rendered.size, Some(DeploySize::Count(4)));
    json["size"] = serde_json::Value::String("four".into());
    let error = serde_json::from_value::<crate::DeployStage>(json).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("size must be a whole number, not \"four\""),
        "{error}"
    );
    let zero = stage("application: shop\ncommand: serve\nsize: 0\n").unwrap_err();
    assert!(
        zero.contains("\"size\" of a deploy must be at least 1"),
        "{zero}"
    );
}

#[test]
fn a_rolling_deploy_scales_the_old_group_down_unless_told_otherwise() {
    let rolling =
        "application: shop\ncommand: serve\nstrategy: rolling\ntargetPercentages: [50, 100]\n";
    assert!(deploy(rolling).scales_down());
    assert!(!deploy(&format!("{rolling}scaleDown: false\n")).scales_down());
    assert!(!deploy("application: shop\ncommand: serve\n").scales_down());
    assert!(deploy("application: shop\ncommand: serve\nscaleDown: true\n").scales_down());
}

#[test]
fn a_deploy_names_its_registry_credentials_and_may_overlap() {
    let spec = deploy(
        "application: shop\nimage: 127.0.0.1:5000/shop:1\ncredentials: registry-account\ntlsVerify: false\noverlap: true\n",
    );
    assert!(spec.overlap);
    assert_eq!(
        spec.registry_access().credentials.as_deref(),
        Some("registry-account")
    );
    assert_eq!(spec.registry_access().tls_verify, Some(false));
    assert_eq!(
        StageKind::Deploy(spec).secret_names(),
        crate::SecretName::credentials(Some("registry-account"))
    );
    assert!(!deploy("application: shop\ncommand: serve\n").overlap);
}

#[test]
fn rolling_host_batches_are_read_and_bad_ones_named_where_they_are() {
    let rolling = "application: shop\ncommand: serve\nstrategy: rolling\n";
    let spec = deploy(&format!(
        "{rolling}maxUnavailable: 2\nmaxFailPercentage: 25\n"
    ));
    assert_eq!(spec.max_unavailable, Some(crate::BatchSize::Instances(2)));
    assert_eq!(spec.max_fail_percentage, Some(25));
    let spec = deploy(&format!("{rolling}maxUnavailable: \"25%\"\n"));
    assert_eq!(spec.max_unavailable, Some(crate::BatchSize::Percent(25)));
    let check = |fields: &str, expected: &str| {
        let error = stage(fields).expect_err(fields);
        assert!(error.contains(expected), "{fields}: {error}");
    };
    check(
        &format!("{rolling}maxUnavailable: 0\n"),
        "test.yaml:9:25: \"maxUnavailable\" must be a number of instances (at least 1) or a share such as \"25%\"",
    );
    check(
        &format!("{rolling}maxUnavailable: \"120%\"\n"),
        "\"maxUnavailable\" must be",
    );
    check(
        &format!("{rolling}maxFailPercentage: 101\n"),
        "\"maxFailPercentage\" is a share from 0 to 100, not 101",
    );
    check(
        &format!("{rolling}maxUnavailable: 1\ntargetPercentages: [50, 100]\n"),
        "give \"targetPercentages\" or \"maxUnavailable\", not both",
    );
    check(
        "application: shop\ncommand: serve\nmaxUnavailable: 1\n",
        "\"maxUnavailable\" is for the rolling strategy",
    );
    check(
        rolling,
        "the rolling strategy needs \"targetPercentages\" (e.g. [10, 50, 100]) or \"maxUnavailable\"",
    );
}
