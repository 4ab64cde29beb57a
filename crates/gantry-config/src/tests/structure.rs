//! The document's structure: unknown, wrong and missing fields, duplicates, names,
//! stage types, dependencies, steps, parameters and durations.

use expect_test::expect;

use super::check;

#[test]
fn unknown_fields_everywhere() {
    check(
        r#"
        pipeline:
          - name: p
        pipelines:
          - name: p
            descripton: typo
            colour: blue
            parameters:
              - name: x
                defualt: 1
            stages:
              - id: a
                type: run
                stpes: []
                steps:
                  - script: make
                    workdir: src
              - id: b
                type: wait
                duration: 1s
                steps: []
              - id: c
                type: checkPreconditions
                preconditions:
                  - expression: "true"
                    mesage: hi
              - id: d
                type: nope
                anything: goes
        "#,
        expect![[r#"
            test.yaml:1:1: unknown top-level field "pipeline", did you mean "pipelines"?
            test.yaml:5:5: unknown field "descripton" in pipeline "p", did you mean "description"?
            test.yaml:6:5: unknown field "colour" in pipeline "p"; expected one of: name, application, description, parameters, stages, triggers, concurrency
            test.yaml:9:9: unknown field "defualt" in parameter "x", did you mean "default"?
            test.yaml:13:9: unknown field "stpes" in stage "a", did you mean "steps"?
            test.yaml:16:13: unknown field "workdir" in step 1 of stage "a"; expected one of: name, image, script, command, args, entrypoint, env, dir, timeout, onInterrupt, allowFailure, runsOn, allowExitCodes, secretEnv, volumes, waitFor, id
            test.yaml:20:9: unknown field "steps" in stage "b"; expected one of: id, name, dependsOn, if, timeout, retries, failPipeline, continuePipeline, continueOnFailure, completeOtherBranchesThenFail, type, duration
            test.yaml:25:13: unknown field "mesage" in precondition 1 of stage "c", did you mean "message"?
            test.yaml:27:15: unknown stage type "nope"; known types: run, wait, manualJudgment, pipeline, webhook, checkPreconditions, deploy, resizeServerGroup, enableServerGroup, disableServerGroup, destroyServerGroup, rollbackCluster, scaleDownCluster, release, gitCommit, gitPromote, packageDeb, publishDeb, bake, findImage, pruneImages"#]],
    );
}

#[test]
fn wrong_value_types() {
    check(
        r#"
        pipelines:
          - name: [p]
            parameters: {name: x}
            stages:
              - id: a
                type: run
                retries: three
                failPipeline: yes
                dependsOn: b
                timeout: 30
                env: [A=1]
                steps: echo hi
              - id: b
                type: run
                retries: -1
                steps:
                  - script: [make]
                    env: {A: [1]}
                  - just a string
              - wrong
        "#,
        expect![[r#"
            test.yaml:2:11: "name" must be a string, not a list
            test.yaml:3:17: "parameters" must be a list, not a mapping
            test.yaml:7:18: "retries" must be a whole number from 0 to 4294967295, not the string "three"
            test.yaml:8:23: "failPipeline" must be true or false, not the string "yes"
            test.yaml:9:20: "dependsOn" must be a list, not the string "b"
            test.yaml:10:18: "timeout" must be a duration like 30s, 5m or 1h30m, not the number 30; add a unit, e.g. 30s or 5m
            test.yaml:11:14: "env" must be a mapping of names to values, not a list
            test.yaml:12:16: "steps" must be a list, not the string "echo hi"
            test.yaml:15:18: "retries" must be a whole number from 0 to 4294967295, not the number -1
            test.yaml:17:21: "script" must be a string, not a list
            test.yaml:18:22: "env" value "A" must be a string, not a list
            test.yaml:19:13: step 2 of stage "b" must be a mapping, not the string "just a string"
            test.yaml:20:9: stage 3 must be a mapping, not the string "wrong""#]],
    );
    check(
        "[1, 2]\n",
        expect![
            "test.yaml:1:1: a gantry file is a mapping with pipelines:, repositories:, applications:, loadBalancers:, hosts:, not a list"
        ],
    );
    check(
        "pipelines: {name: p}\n",
        expect![[r#"test.yaml:1:12: "pipelines" must be a list, not a mapping"#]],
    );
}

#[test]
fn unknown_and_missing_stage_types() {
    check(
        r#"
        pipelines:
          - name: p
            stages:
              - {id: a, type: wiat, duration: 1s}
              - {id: b, type: deploy}
              - {id: c}
              - {type: wait, duration: 1s}
              - {id: e, type: 3}
        "#,
        expect![[r#"
            test.yaml:4:23: unknown stage type "wiat", did you mean "wait"?
            test.yaml:5:9: stage "b" is missing "application"
            test.yaml:5:9: stage "b" needs a "command" or an "image"
            test.yaml:6:9: stage "c" is missing "type"
            test.yaml:7:9: stage 4 is missing "id"
            test.yaml:8:23: "type" must be a string, not the number 3"#]],
    );
}

#[test]
fn missing_required_fields() {
    check(
        r#"
        pipelines:
          - stages: []
          - name: q
          - name: r
            parameters:
              - default: x
            stages:
              - {id: w, type: wait}
              - {id: p, type: pipeline}
              - {id: h, type: webhook}
              - {id: r, type: run}
              - {id: c, type: checkPreconditions}
              - {id: d, type: checkPreconditions, preconditions: [{message: m}]}
              - {id: e, type: run, steps: []}
              - {id: f, type: checkPreconditions, preconditions: []}
        "#,
        expect![[r#"
            test.yaml:2:5: pipeline 1 is missing "name"
            test.yaml:2:13: pipeline 1 has no stages
            test.yaml:3:5: pipeline "q" is missing "stages"
            test.yaml:6:9: parameter 1 is missing "name"
            test.yaml:8:9: stage "w" is missing "duration"
            test.yaml:9:9: stage "p" is missing "pipeline"
            test.yaml:10:9: stage "h" is missing "url"
            test.yaml:11:9: stage "r" is missing "steps" (or a Cloud Build file in "config")
            test.yaml:12:9: stage "c" is missing "preconditions"
            test.yaml:13:59: precondition 1 of stage "d" is missing "expression"
            test.yaml:14:35: stage "e" has no steps
            test.yaml:15:58: stage "f" has no preconditions"#]],
    );
}

#[test]
fn duplicates() {
    check(
        r#"
        pipelines:
          - name: p
            parameters:
              - name: x
              - name: x
            stages:
              - {id: a, type: wait, duration: 1s}
              - {id: a, type: wait, duration: 1s}
              - {id: b, type: wait, duration: 1s, dependsOn: [a, a]}
              - {id: c, type: manualJudgment, options: [go, go]}
          - name: p
            stages:
              - {id: a, type: wait, duration: 1s}
        "#,
        expect![[r#"
            test.yaml:5:15: duplicate parameter "x" (first at line 4)
            test.yaml:8:14: duplicate stage id "a" (first at line 7)
            test.yaml:9:58: stage "b" lists "a" twice in dependsOn
            test.yaml:10:53: duplicate option "go"
            test.yaml:11:11: duplicate pipeline name "p" (first at line 2)"#]],
    );
}

#[test]
fn names_must_be_identifiers() {
    check(
        r#"
        pipelines:
          - name: p
            parameters:
              - name: my-param
              - name: 2fast
            stages:
              - {id: build-it, type: wait, duration: 1s}
              - {id: ok_id, type: wait, duration: 1s, dependsOn: [build-it]}
        "#,
        expect![[r#"
            test.yaml:4:15: parameter name "my-param" is not an identifier: use letters, digits and _, not starting with a digit (expressions read it as parameters.my-param, where CEL would take each - as a minus)
            test.yaml:5:15: parameter name "2fast" is not an identifier: use letters, digits and _, not starting with a digit (expressions read it as parameters.2fast)
            test.yaml:7:14: stage id "build-it" is not an identifier: use letters, digits and _, not starting with a digit (expressions read it as stages.build-it, where CEL would take each - as a minus)"#]],
    );
}

#[test]
fn depends_on() {
    check(
        r#"
        pipelines:
          - name: p
            stages:
              - {id: build, type: wait, duration: 1s}
              - {id: test, type: wait, duration: 1s, dependsOn: [bild, test]}
              - {id: deploy, type: wait, duration: 1s, dependsOn: [nothing_like_it]}
        "#,
        expect![[r#"
            test.yaml:5:58: stage "test" depends on unknown stage "bild", did you mean "build"?
            test.yaml:5:64: stage "test" depends on itself
            test.yaml:6:60: stage "deploy" depends on unknown stage "nothing_like_it""#]],
    );
}

#[test]
fn dependency_cycles() {
    check(
        r#"
        pipelines:
          - name: p
            stages:
              - {id: a, type: wait, duration: 1s, dependsOn: [b]}
              - {id: b, type: wait, duration: 1s, dependsOn: [a]}
              - {id: c, type: wait, duration: 1s, dependsOn: [e]}
              - {id: d, type: wait, duration: 1s, dependsOn: [c]}
              - {id: e, type: wait, duration: 1s, dependsOn: [d, a]}
        "#,
        expect![[r#"
            test.yaml:5:55: dependency cycle: a -> b -> a
            test.yaml:7:55: dependency cycle: c -> e -> d -> c"#]],
    );
}

#[test]
fn steps() {
    check(
        r#"
        pipelines:
          - name: p
            stages:
              - id: a
                type: run
                onInterrupt: retry
                steps:
                  - {script: make, command: [make]}
                  - {name: nothing}
                  - {command: []}
                  - {script: "  "}
                  - {name: lint, script: x, onInterrupt: Fail}
        "#,
        expect![[r#"
            test.yaml:6:22: "onInterrupt" must be one of rerun, fail, not "retry"
            test.yaml:8:28: step 1 of stage "a" has both "script" and "command"; give one
            test.yaml:9:13: step "nothing" (step 2 of stage "a") needs a "script" (run by sh -e) or a "command" (a list of arguments)
            test.yaml:10:23: step 3 of stage "a" has an empty command; give the program and its arguments
            test.yaml:11:22: step 4 of stage "a" has an empty script
            test.yaml:12:50: "onInterrupt" must be one of rerun, fail, not "Fail", did you mean "fail"?"#]],
    );
}

#[test]
fn parameter_defaults_and_options() {
    check(
        r#"
        pipelines:
          - name: p
            parameters:
              - {name: env, default: prod, options: [staging, production]}
              - {name: ok, default: staging, options: [staging, production]}
              - {name: free, default: anything}
            stages:
              - {id: a, type: wait, duration: 1s}
        "#,
        expect![[
            r#"test.yaml:4:30: default "prod" is not one of the options: staging, production"#
        ]],
    );
}

#[test]
fn bad_durations() {
    check(
        r#"
        pipelines:
          - name: p
            stages:
              - {id: a, type: wait, duration: soon, timeout: 5 minutes}
              - {id: b, type: wait, duration: 30}
              - id: c
                type: run
                steps: [{script: x, timeout: 1x}]
              - {id: d, type: webhook, url: u, retryDelay: "-1s", pollInterval: "", timeout: 1h30m}
        "#,
        expect![[r#"
            test.yaml:4:39: "duration": bad duration "soon" (expected number at 0); write e.g. 30s, 5m, 1h30m
            test.yaml:5:39: "duration" must be a duration like 30s, 5m or 1h30m, not the number 30; add a unit, e.g. 30s or 5m
            test.yaml:8:38: "timeout": bad duration "1x" (unknown time unit "x", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)); write e.g. 30s, 5m, 1h30m
            test.yaml:9:52: "retryDelay": bad duration "-1s" (expected number at 0); write e.g. 30s, 5m, 1h30m
            test.yaml:9:73: "pollInterval": bad duration "" (value was empty); write e.g. 30s, 5m, 1h30m"#]],
    );
}
