//! One case per rule. Each input is a whole file; `check` shows its diagnostics, or `ok` and
//! the model as JSON.

use expect_test::{Expect, expect};

use crate::{Diagnostic, Diagnostics, StageKind, parse_document};

/// Parses `input` as `test.yaml` and compares the diagnostics (one per line), or `ok` and the
/// model's JSON when the file is clean.
fn check(input: &str, expected: Expect) {
    let actual = match parse_document("test.yaml", &unindent(input)) {
        Ok(document) => format!("ok {}", serde_json::to_string(&document).unwrap()),
        Err(diagnostics) => diagnostics.to_string(),
    };
    expected.assert_eq(&actual);
}

/// Lets cases be written indented inside raw strings.
fn unindent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    text.lines()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn minimal_pipeline() {
    check(
        r#"
        pipelines:
          - name: p
            stages:
              - {id: a, type: wait, duration: 1m30s}
        "#,
        expect![[
            r#"ok {"pipelines":[{"name":"p","stages":[{"id":"a","retries":0,"failPipeline":true,"continuePipeline":false,"completeOtherBranchesThenFail":false,"type":"wait","duration":"1m 30s"}]}]}"#
        ]],
    );
    check("", expect![[r#"ok {"pipelines":[]}"#]]);
    check("# only a comment\n", expect![[r#"ok {"pipelines":[]}"#]]);
    check("pipelines:\n", expect![[r#"ok {"pipelines":[]}"#]]);
}

#[test]
fn scalars_become_text_where_text_is_expected() {
    check(
        r#"
        pipelines:
          - name: p
            parameters:
              - {name: n, default: 3, options: [1, 2, 3]}
            stages:
              - id: a
                type: run
                if: true
                env: {PORT: 8080, HEX: 0x1F, RATIO: 1.50, ON: true, EMPTY:}
                steps:
                  - command: [sleep, 5]
                continueOnFailure: true
        "#,
        expect![[
            r#"ok {"pipelines":[{"name":"p","parameters":[{"name":"n","default":"3","options":["1","2","3"],"required":false,"secret":false}],"stages":[{"id":"a","if":"true","retries":0,"failPipeline":true,"continuePipeline":true,"completeOtherBranchesThenFail":false,"type":"run","env":{"EMPTY":"","HEX":"0x1F","ON":"true","PORT":"8080","RATIO":"1.50"},"onInterrupt":"rerun","steps":[{"command":["sleep","5"]}]}]}]}"#
        ]],
    );
}

#[test]
fn malformed_yaml() {
    check(
        "pipelines: [\n  - a\n",
        expect![[r#"test.yaml:2:3: "-" is only valid inside a block"#]],
    );
    check(
        "pipelines:\n  - name: p\n   stages: []\n",
        expect![
            "test.yaml:3:4: while parsing a block collection, did not find expected '-' indicator"
        ],
    );
    check(
        "a: 'unterminated\n",
        expect!["test.yaml:1:4: unclosed quote"],
    );
    check("\tpipelines: []\n", expect![[r#"ok {"pipelines":[]}"#]]);
    check(
        "pipelines: []\n---\npipelines: []\n",
        expect![
            "test.yaml:2:1: a gantry file holds one yaml document; remove this `---` or split the file"
        ],
    );
    check(
        "pipelines: *nothing\n",
        expect!["test.yaml:1:12: while parsing node, found unknown anchor"],
    );
}

#[test]
fn yaml_keys_tags_and_merges() {
    check(
        "pipelines: []\npipelines: []\n",
        expect![[r#"test.yaml:2:1: duplicate key "pipelines" (first at line 1)"#]],
    );
    check(
        "pipelines: !!str x\n",
        expect![[r#"test.yaml:1:18: "pipelines" must be a list, not the string "x""#]],
    );
    check(
        "pipelines: !custom []\n",
        expect!["test.yaml:1:20: unsupported yaml tag !custom"],
    );
    check(
        "? [a]\n: 1\n",
        expect!["test.yaml:1:3: a mapping key must be a plain value, not a list or a mapping"],
    );
    check(
        "defaults: {}\n",
        expect![[
            r#"test.yaml:1:1: unknown top-level field "defaults"; a gantry file has pipelines:, repositories:, applications:, loadBalancers: (and x-… keys of your own, e.g. for anchors)"#
        ]],
    );
    check(
        r#"
        x-defaults: &defaults
          type: run
          retries: 2
        pipelines:
          - name: p
            stages:
              - <<: *defaults
                id: a
                steps: [{script: make}]
        "#,
        expect![[
            r#"ok {"pipelines":[{"name":"p","stages":[{"id":"a","retries":2,"failPipeline":true,"continuePipeline":false,"completeOtherBranchesThenFail":false,"type":"run","onInterrupt":"rerun","steps":[{"script":"make"}]}]}]}"#
        ]],
    );
    check(
        r#"
        pipelines:
          - name: p
            stages:
              - &build
                <<: {type: run, retries: 2, timeout: 5m}
                id: build
                retries: 3
                steps: [{script: make}]
              - <<: *build
                id: again
                dependsOn: [build]
        "#,
        expect![[
            r#"ok {"pipelines":[{"name":"p","stages":[{"id":"build","timeout":"5m","retries":3,"failPipeline":true,"continuePipeline":false,"completeOtherBranchesThenFail":false,"type":"run","onInterrupt":"rerun","steps":[{"script":"make"}]},{"id":"again","dependsOn":["build"],"timeout":"5m","retries":3,"failPipeline":true,"continuePipeline":false,"completeOtherBranchesThenFail":false,"type":"run","onInterrupt":"rerun","steps":[{"script":"make"}]}]}]}"#
        ]],
    );
}

#[test]
fn alias_bombs_are_refused() {
    let mut text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n".to_owned();
    for i in 1..8 {
        let prev = i - 1;
        text.push_str(&format!("a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
    }
    check(
        &text,
        expect!["test.yaml:5:45: the file expands to more than 100000 values (through aliases?)"],
    );
}

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
            test.yaml:16:13: unknown field "workdir" in step 1 of stage "a"; expected one of: name, image, script, command, args, entrypoint, env, dir, timeout, onInterrupt, allowFailure, allowExitCodes, secretEnv, volumes, waitFor, id
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
            "test.yaml:1:1: a gantry file is a mapping with pipelines:, repositories:, applications:, loadBalancers:, not a list"
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

#[test]
fn malformed_expressions_in_any_string() {
    check(
        r#"
        pipelines:
          - name: p
            stages:
              - id: a
                type: run
                env:
                  A: x ${{ 1 + }}
                  B: "${{ parameters. }}"
                  C: 'ok ${{ "quoted" + }}'
                steps:
                  - script: |
                      echo start
                      echo ${{ trigger.sha +* 2 }}
                  - command: [echo, "${{ unterminated"]
                  - script: >
                      folded ${{ ( }}
                      text
              - id: b
                type: webhook
                url: http://x/${{ }}
                headers: {X: "${{ '' }} ${{ [1, }}"}
                body:
                  nested:
                    - deep: ${{ a b }}
        "#,
        expect![[r#"
            test.yaml:7:24: invalid expression: unexpected end of expression
            test.yaml:8:31: invalid expression: incomplete or malformed expression
            test.yaml:9:33: invalid expression: unexpected end of expression
            test.yaml:13:37: invalid expression: unexpected '*'
            test.yaml:14:30: invalid expression: unterminated `${{`: no `}}` closes it
            test.yaml:16:28: invalid expression: unexpected end of expression
            test.yaml:20:26: invalid expression: empty expression
            test.yaml:21:41: invalid expression: missing ']'
            test.yaml:24:27: invalid expression: unexpected 'b'"#]],
    );
}

#[test]
fn expression_positions_inside_strings() {
    // Escapes before the expression: the position is found from the `${{` in the source.
    check(
        r#"
        pipelines:
          - name: p
            stages:
              - id: a
                type: run
                steps:
                  - script: "a\tb ${{ 1 + }}"
                  - script: 'it''s ${{ 2 + }}'
                  - script: "two ${{ 1 }} and ${{ ) }}"
                  - script: plain
                      continued ${{ ( }}
        "#,
        expect![[r#"
            test.yaml:7:35: invalid expression: unexpected end of expression
            test.yaml:8:36: invalid expression: unexpected end of expression
            test.yaml:9:43: invalid expression: unexpected ')'
            test.yaml:11:31: invalid expression: unexpected end of expression"#]],
    );
}

#[test]
fn pipeline_names() {
    check(
        r#"
        pipelines:
          - {name: "a/b", stages: [{id: a, type: wait, duration: 1s}]}
          - {name: " ", stages: [{id: a, type: wait, duration: 1s}]}
        "#,
        expect![[r#"
            test.yaml:2:12: pipeline name "a/b" cannot hold / or control characters
            test.yaml:3:12: a pipeline name cannot be empty"#]],
    );
}

#[test]
fn shell_syntax_is_not_an_expression() {
    check(
        r#"
        pipelines:
          - name: p
            stages:
              - id: a
                type: run
                steps:
                  - script: echo ${HOME} $PATH ${X:-y} $${{ parameters.x }}
        "#,
        expect![[
            r#"test.yaml:7:53: unknown parameter "x" in parameters.x; the pipeline declares no parameters"#
        ]],
    );
}

#[test]
fn references() {
    check(
        r#"
        pipelines:
          - name: p
            parameters:
              - name: env
            stages:
              - id: build
                type: run
                steps:
                  - script: echo ${{ parameters.env }} ${{ parameters.enw }} ${{ parameters['region'] }}
              - id: test
                type: run
                steps:
                  - script: echo ${{ stages.build.outputs.v }} ${{ stages.deploy.outputs.v }}
              - id: deploy
                type: run
                dependsOn: [test]
                if: stages.deploy.status == 'succeeded'
                steps:
                  - script: echo ${{ stages.build.outputs.v }} ${{ stages.buidl.outputs.v }} ${{ stages.test.result }}
                  - script: echo ${{ params.env }} ${{ secrets.x }} ${{ trigger.anything.goes }} ${{ execution.id }}
                  - script: echo ${{ [1, 2].map(x, x + 1) }} ${{ parameters.env.startsWith('p') }}
        "#,
        expect![[r#"
            test.yaml:9:52: unknown parameter "enw" in parameters.enw, did you mean "env"?
            test.yaml:9:74: unknown parameter "region" in parameters.region; the pipeline declares env
            test.yaml:13:30: stage "test" reads stages.build, but "build" is not upstream of it, so it may not have run yet; add "build" to dependsOn
            test.yaml:13:60: stage "test" reads stages.deploy, but "deploy" is not upstream of it, so it may not have run yet; add "deploy" to dependsOn
            test.yaml:17:13: stage "deploy" reads its own stages.deploy, which only exists once the stage has ended
            test.yaml:19:30: stage "deploy" reads stages.build, but "build" is not upstream of it, so it may not have run yet; add "build" to dependsOn
            test.yaml:19:60: unknown stage "buidl" in stages.buidl, did you mean "build"?
            test.yaml:19:90: stages.test has "outputs" and "status", not "result"
            test.yaml:20:30: unknown name "params" in expression; expressions read parameters, trigger, execution, stages
            test.yaml:20:48: unknown name "secrets" in expression; expressions read parameters, trigger, execution, stages"#]],
    );
    check(
        r#"
        pipelines:
          - name: p
            stages:
              - id: a
                type: run
                steps: [{script: "${{ parameters.x }}"}]
        "#,
        expect![[
            r#"test.yaml:6:31: unknown parameter "x" in parameters.x; the pipeline declares no parameters"#
        ]],
    );
}

#[test]
fn conditions() {
    check(
        r#"
        pipelines:
          - name: p
            stages:
              - id: a
                type: wait
                duration: 1s
                if: parameters.x ==
              - id: b
                type: wait
                duration: 1s
                if: ${{ true }} && ${{ false }}
              - id: c
                type: checkPreconditions
                dependsOn: [a]
                preconditions:
                  - expression: stages.a.status == 'succeeded'
                  - expression: "stages.a.status = 'x'"
                    message: one equals sign
                  - expression: ${{ stages.c.status }}
        "#,
        expect![[r#"
            test.yaml:7:28: invalid expression: unexpected end of expression
            test.yaml:11:13: invalid expression: a condition is either bare CEL or one `${{ … }}` holding all of it
            test.yaml:17:42: invalid expression: unexpected character '='
            test.yaml:19:29: stage "c" reads its own stages.c, which only exists once the stage has ended"#]],
    );
}

#[test]
fn webhook_rules() {
    check(
        r#"
        pipelines:
          - name: p
            stages:
              - {id: a, type: webhook, url: u, method: post}
              - {id: b, type: webhook, url: u, method: FETCH}
              - {id: c, type: webhook, url: u, method: "${{ parameters.m }}"}
              - {id: d, type: webhook, url: u, statusUrlResolution: webhookResponse}
              - {id: e, type: webhook, url: u, waitForCompletion: true}
              - {id: f, type: webhook, url: u, waitForCompletion: true, statusJsonPath: $.s, successStatuses: []}
              - {id: g, type: webhook, url: u, statusUrlResolution: body}
              - {id: h, type: webhook, url: u, maxRetries: 1.5, body: .inf}
        "#,
        expect![[r#"
            test.yaml:4:48: "post" is not an http method; write "POST"
            test.yaml:5:48: "FETCH" is not an http method; use one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS
            test.yaml:6:53: unknown parameter "m" in parameters.m; the pipeline declares no parameters
            test.yaml:7:61: statusUrlResolution: webhookResponse needs "statusUrlJsonPath", where the status url is in the response
            test.yaml:8:40: waitForCompletion: true needs "statusJsonPath", where the status is in the polled response
            test.yaml:8:40: waitForCompletion: true needs at least one of successStatuses, canceledStatuses, terminalStatuses
            test.yaml:9:40: waitForCompletion: true needs at least one of successStatuses, canceledStatuses, terminalStatuses
            test.yaml:10:61: "statusUrlResolution" must be one of getMethod, locationHeader, webhookResponse, not "body"
            test.yaml:11:52: "maxRetries" must be a whole number from 0 to 4294967295, not the number 1.5
            test.yaml:11:63: this number (an infinity or nan) has no json form"#]],
    );
}

#[test]
fn stage_types_match_the_model() {
    let names: Vec<&str> = crate::stages::STAGE_TYPES.iter().map(|t| t.name).collect();
    assert_eq!(names, StageKind::TYPE_NAMES);
}

#[test]
fn diagnostics_serialize_as_json() {
    let diagnostics = Diagnostics(vec![Diagnostic {
        file: "gantry.yaml".to_owned(),
        line: 3,
        column: 7,
        message: "stage \"deploy\" depends on unknown stage \"bild\"".to_owned(),
    }]);
    expect![[r#"[{"file":"gantry.yaml","line":3,"column":7,"message":"stage \"deploy\" depends on unknown stage \"bild\""}]"#]]
        .assert_eq(&serde_json::to_string(&diagnostics).unwrap());
    expect![[r#"gantry.yaml:3:7: stage "deploy" depends on unknown stage "bild""#]]
        .assert_eq(&diagnostics.to_string());
}

#[test]
fn registry_access_of_a_run_stage_needs_a_cloud_build_file() {
    check(
        r#"
        pipelines:
          - name: p
            stages:
              - {id: a, type: run, config: cloudbuild.yaml, credentials: LOGIN, tlsVerify: false}
              - {id: b, type: run, steps: [{script: "true"}], credentials: LOGIN, substitutions: {_X: y}}
        "#,
        expect![[r#"
            test.yaml:5:55: stage "b": "credentials" only applies with "config"
            test.yaml:5:75: stage "b": "substitutions" only applies with "config""#]],
    );
}
