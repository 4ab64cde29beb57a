use expect_test::expect;
use gantry_config::parse_document;

/// A file with many different mistakes in different places: every one is reported, each at
/// the key or value it is about, in file order.
#[test]
fn every_problem_is_reported_with_its_position() {
    let text = r#"pipelines:
  - name: release
    parameters:
      - name: env
        default: prod
        options: [staging, production]
      - name: dry-run
    stages:
      - id: build
        type: run
        timout: 10m
        steps:
          - script: make
            command: [make]
      - id: test
        type: run
        dependsOn: [bild]
        steps:
          - script: |
              echo testing ${{ stages.deploy.outputs.url }}
              ./test --env ${{ parameters.enviroment }}
      - id: deploy
        type: deplyo
        dependsOn: [test, verify]
      - id: verify
        type: wait
        duration: 5 mins please
        dependsOn: [deploy]
      - id: notify
        type: webhook
        url: https://hooks.example.com/${{ stages.build.outputs.version + }}
        method: SEND
        if: ${{ stages.verify.status == 'succeeded' }}
        waitForCompletion: true
  - name: release
    stages: []
"#;
    let diagnostics = parse_document("gantry.yaml", text).unwrap_err();
    expect![[r#"
        gantry.yaml:5:18: default "prod" is not one of the options: staging, production
        gantry.yaml:7:15: parameter name "dry-run" is not an identifier: use letters, digits and _, not starting with a digit (expressions read it as parameters.dry-run, where CEL would take each - as a minus)
        gantry.yaml:11:9: unknown field "timout" in stage "build", did you mean "timeout"?
        gantry.yaml:14:13: step 1 of stage "build" has both "script" and "command"; give one
        gantry.yaml:17:21: stage "test" depends on unknown stage "bild", did you mean "build"?
        gantry.yaml:20:32: stage "test" reads stages.deploy, but "deploy" is not upstream of it, so it may not have run yet; add "deploy" to dependsOn
        gantry.yaml:21:32: unknown parameter "enviroment" in parameters.enviroment; the pipeline declares env, dry-run
        gantry.yaml:23:15: unknown stage type "deplyo", did you mean "deploy"?
        gantry.yaml:27:19: "duration": bad duration "5 mins please" (expected number at 7); write e.g. 30s, 5m, 1h30m
        gantry.yaml:28:21: dependency cycle: deploy -> verify -> deploy
        gantry.yaml:31:75: invalid expression: unexpected end of expression
        gantry.yaml:32:17: "SEND" is not an http method; use one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS
        gantry.yaml:33:17: stage "notify" reads stages.verify, but "verify" is not upstream of it, so it may not have run yet; add "verify" to dependsOn
        gantry.yaml:34:9: waitForCompletion: true needs "statusJsonPath", where the status is in the polled response
        gantry.yaml:34:9: waitForCompletion: true needs at least one of successStatuses, canceledStatuses, terminalStatuses
        gantry.yaml:35:11: duplicate pipeline name "release" (first at line 2)
        gantry.yaml:36:13: pipeline "release" has no stages"#]].assert_eq(&diagnostics.to_string());
}

/// Messages follow the house style: lowercase, no trailing period.
#[test]
fn messages_are_lowercase_without_a_period() {
    let text = "pipelines:\n  - name: x\n    stages:\n      - {id: a, type: run, steps: [{script: '${{ 1 + }}'}], Bad: 1}\n  - [\n";
    let diagnostics = parse_document("f.yaml", text).unwrap_err();
    for diagnostic in &diagnostics.0 {
        let first = diagnostic.message.chars().next().unwrap();
        assert!(
            !first.is_uppercase() && !diagnostic.message.ends_with('.'),
            "{diagnostic}"
        );
    }
}
