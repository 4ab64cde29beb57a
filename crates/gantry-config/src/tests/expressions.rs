//! Expressions in strings: malformed ones, their positions, shell syntax that is not one,
//! references and conditions.

use expect_test::expect;

use super::check;

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
