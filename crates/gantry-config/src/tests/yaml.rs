//! The YAML layer: scalars, malformed input, keys, tags, merges and aliases.

use expect_test::expect;

use super::check;

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
            r#"test.yaml:1:1: unknown top-level field "defaults"; a gantry file has pipelines:, repositories:, applications:, loadBalancers:, hosts: (and x-… keys of your own, e.g. for anchors)"#
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
