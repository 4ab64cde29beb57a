use std::collections::BTreeSet;

use gantry_config::{Document, StageKind, parse_document};

const SAMPLE: &str = include_str!("../../examples/gantry.yaml");

#[test]
fn sample_uses_every_stage_type_and_round_trips() {
    let document =
        parse_document("gantry.yaml", SAMPLE).unwrap_or_else(|diagnostics| panic!("{diagnostics}"));

    let used: BTreeSet<&str> = document
        .pipelines
        .iter()
        .flat_map(|p| &p.stages)
        .map(|stage| stage.kind.type_name())
        .collect();
    let all: BTreeSet<&str> = StageKind::TYPE_NAMES.iter().copied().collect();
    assert_eq!(used, all, "the sample should show every stage type");

    // The model is stored as JSON; what is written must read back the same.
    let json = serde_json::to_string(&document).unwrap();
    let back: Document = serde_json::from_str(&json).unwrap();
    assert_eq!(back, document);
}

#[test]
fn sample_reads_into_the_model() {
    let document = parse_document("gantry.yaml", SAMPLE).unwrap();
    let pipeline = &document.pipelines[0];
    assert_eq!(pipeline.name, "build-and-deploy");
    assert_eq!(pipeline.parameters[1].default.as_deref(), Some("2"));

    let stage = |id: &str| pipeline.stages.iter().find(|s| s.id == id).unwrap();
    let StageKind::Run(build) = &stage("build").kind else {
        panic!("build is a run stage")
    };
    assert_eq!(build.steps.len(), 2);
    assert_eq!(
        build.steps[1].command.as_deref(),
        Some(
            &[
                "ls".to_owned(),
                "-l".to_owned(),
                "target/release".to_owned()
            ][..]
        )
    );
    assert_eq!(
        stage("build").timeout,
        Some(std::time::Duration::from_secs(20 * 60))
    );
    assert!(stage("lint").continue_pipeline);
    assert!(!stage("unit_tests").fail_pipeline);
    assert_eq!(
        stage("approve").condition.as_deref(),
        Some("parameters.environment == 'production'")
    );

    let StageKind::Wait(settle) = &stage("settle").kind else {
        panic!("settle is a wait stage")
    };
    assert_eq!(settle.duration, std::time::Duration::from_secs(30));

    let StageKind::Webhook(smoke) = &stage("smoke").kind else {
        panic!("smoke is a webhook stage")
    };
    assert_eq!(
        smoke.status_url_resolution,
        gantry_config::StatusUrlResolution::WebhookResponse
    );
    assert_eq!(smoke.poll_interval, std::time::Duration::from_secs(10));

    let StageKind::Webhook(notify) = &stage("notify").kind else {
        panic!("notify is a webhook stage")
    };
    assert_eq!(notify.retry_delay, std::time::Duration::from_secs(2));
    assert_eq!(
        notify.body.as_ref().unwrap()["tags"][1],
        "${{ trigger.branch }}"
    );
}
