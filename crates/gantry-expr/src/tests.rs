use expect_test::{Expect, expect};
use serde_json::json;

use crate::{Context, Expression, Template, render_value};

/// Runs one API on `input`, written `api: text`, and compares what it gives with `expected`.
/// - `render: TEXT`: [`Template::render`]
/// - `eval: EXPR`: [`Expression::eval`], the JSON result
/// - `bool: EXPR`: [`Expression::eval_bool`]
/// - `refs: TEXT`: [`Template::references`], one `offset path` a line
/// - `xrefs: EXPR`: [`Expression::references`]
/// - `value: JSON`: [`render_value`]
///
/// Errors print as `error at OFFSET: message` (syntax) or `error: message` (evaluation).
fn check(input: &str, expected: Expect) {
    let (api, text) = input.split_once(": ").expect("input is `api: text`");
    let ctx = context();
    let actual = match api {
        "render" => Template::parse(text)
            .and_then(|t| t.render(&ctx))
            .map(|s| format!("{s:?}")),
        "eval" => Expression::parse(text)
            .and_then(|e| e.eval(&ctx))
            .map(|v| v.to_string()),
        "bool" => Expression::parse(text)
            .and_then(|e| e.eval_bool(&ctx))
            .map(|b| b.to_string()),
        "refs" => Template::parse(text).map(|t| show_refs(&t.references())),
        "xrefs" => Expression::parse(text).map(|e| show_refs(&e.references())),
        "value" => {
            let value: serde_json::Value = serde_json::from_str(text).expect("valid json");
            render_value(&value, &ctx).map(|v| v.to_string())
        }
        other => panic!("unknown api {other:?}"),
    };
    let actual = match actual {
        Ok(text) => text,
        Err(error) => match error.offset() {
            Some(offset) => format!("error at {offset}: {error}"),
            None => format!("error: {error}"),
        },
    };
    expected.assert_eq(&actual);
}

fn show_refs(refs: &[crate::Reference]) -> String {
    refs.iter()
        .map(|r| format!("{} {}", r.offset, r.path.join("/")))
        .collect::<Vec<_>>()
        .join("\n")
}

fn context() -> Context {
    Context::from_json(&json!({
        "parameters": {"env": "prod", "replicas": 3, "ratio": 0.5, "flag": true, "tags": ["a", "b"], "my-key": "x"},
        "trigger": {"branch": "main", "sha": "abc123"},
        "execution": {"id": "e1"},
        "stages": {"build": {"status": "succeeded", "outputs": {"version": "1.2.3", "count": 2}}},
    }))
}

#[test]
fn templates() {
    check("render: plain text", expect![[r#""plain text""#]]);
    check("render: ", expect![[r#""""#]]);
    check(
        "render: deploy ${{ parameters.env }} now",
        expect![[r#""deploy prod now""#]],
    );
    check(
        "render: ${{parameters.env}}${{ parameters.replicas }}",
        expect![[r#""prod3""#]],
    );
    check(
        "render: v${{ stages.build.outputs.version }}",
        expect![[r#""v1.2.3""#]],
    );
    check(
        "render: ${{ parameters.ratio }} ${{ parameters.flag }}",
        expect![[r#""0.5 true""#]],
    );
    check(
        "render: ${{ parameters.tags }}",
        expect![[r#""[\"a\",\"b\"]""#]],
    );
    check(
        "render: ${{ {'b': 1, 'a': [true]} }}",
        expect![[r#""{\"a\":[true],\"b\":1}""#]],
    );
    check("render: ${{ null }}", expect![[r#""null""#]]);
    check("render: ${{ '}}' + \"}}\" }}", expect![[r#""}}}}""#]]);
    check("render: ${{ '${{' }} x }}", expect![[r#""${{ x }}""#]]);
    check("render: ${{ r'\\' }}", expect![[r#""\\""#]]);
}

#[test]
fn shell_syntax_is_plain_text() {
    check(
        "render: echo ${HOME} $PATH $$ ${ {x} } $",
        expect![[r#""echo ${HOME} $PATH $$ ${ {x} } $""#]],
    );
    check(
        "render: echo ${{ trigger.branch }} ${BRANCH:-x}",
        expect![[r#""echo main ${BRANCH:-x}""#]],
    );
}

#[test]
fn template_syntax_errors() {
    check(
        "render: abc ${{ parameters.env",
        expect![[r#"error at 4: unterminated `${{`: no `}}` closes it"#]],
    );
    check(
        "render: ${{ 'oops }}",
        expect![[r#"error at 0: unterminated `${{`: no `}}` closes it"#]],
    );
    check(
        "render: ok ${{ }}",
        expect![[r#"error at 6: empty expression"#]],
    );
    check(
        "render: ab ${{ parameters. }}",
        expect!["error at 19: incomplete or malformed expression"],
    );
    check(
        "render: ab ${{ 1 + }}",
        expect![[r#"error at 11: unexpected end of expression"#]],
    );
    check(
        "render: ${{ a b }}",
        expect![[r#"error at 6: unexpected 'b'"#]],
    );
    check(
        "render: ü ${{ 'é' + # }}",
        expect!["error at 14: unexpected character '#'"],
    );
}

#[test]
fn expressions() {
    check("eval: 1 + 2", expect!["3"]);
    check("eval: ${{ parameters.replicas * 2 }}", expect!["6"]);
    check("eval:   ${{ parameters.env }}  ", expect![[r#""prod""#]]);
    check("eval: parameters['my-key']", expect![[r#""x""#]]);
    check(
        "eval: parameters.tags.map(t, t + '!')",
        expect![[r#"["a!","b!"]"#]],
    );
    check(
        "eval: 18446744073709551615u",
        expect!["18446744073709551615"],
    );
    check(
        "eval: stages.build",
        expect![[r#"{"outputs":{"count":2,"version":"1.2.3"},"status":"succeeded"}"#]],
    );
    check(
        "eval: b'abc'",
        expect![[r#"error: `b'abc'`: a bytes value has no json form"#]],
    );
    check(
        "eval: 1.0 / 0.0",
        expect![[r#"error: `1.0 / 0.0`: the result inf has no json form"#]],
    );
    check(
        "eval: ${{ a }} && ${{ b }}",
        expect![[
            r#"error at 0: a condition is either bare CEL or one `${{ … }}` holding all of it"#
        ]],
    );
    check(
        "eval: x ${{ a }}",
        expect![[
            r#"error at 2: a condition is either bare CEL or one `${{ … }}` holding all of it"#
        ]],
    );
}

#[test]
fn missing_keys_name_the_key() {
    check(
        "eval: parameters.nope",
        expect![[r#"error: `parameters.nope`: no such key "nope""#]],
    );
    check(
        "render: x ${{ stages.build.outputs.missing }}",
        expect![[r#"error: `stages.build.outputs.missing`: no such key "missing""#]],
    );
    check(
        "eval: stages.deploy.status",
        expect![[r#"error: `stages.deploy.status`: no such key "deploy""#]],
    );
    check(
        "eval: nothing",
        expect![[r#"error: `nothing`: unknown name "nothing""#]],
    );
    check("bool: has(stages.build.outputs.missing)", expect!["false"]);
}

#[test]
fn conditions() {
    check("bool: parameters.env == 'prod'", expect!["true"]);
    check("bool: ${{ trigger.branch != 'main' }}", expect!["false"]);
    check(
        "bool: stages.build.status == 'succeeded' && parameters.flag",
        expect!["true"],
    );
    check(
        "bool: parameters.env",
        expect![[r#"error: `parameters.env`: a condition must be a bool, this one is string"#]],
    );
    check(
        "bool: parameters.replicas",
        expect![[r#"error: `parameters.replicas`: a condition must be a bool, this one is int"#]],
    );
    check("bool: parameters.env == 1", expect!["false"]);
    check(
        "bool: parameters.env > 1",
        expect![[
            r#"error: `parameters.env > 1`: found no matching overload for '_>_' applied to '(string, int)'"#
        ]],
    );
    check("bool: ", expect![[r#"error at 0: empty expression"#]]);
}

#[test]
fn functions_for_pipelines() {
    check("bool: trigger.branch.startsWith('ma')", expect!["true"]);
    check("bool: trigger.branch.endsWith('in')", expect!["true"]);
    check("bool: trigger.sha.contains('c1')", expect!["true"]);
    check("bool: trigger.sha.matches('^[a-f0-9]+$')", expect!["true"]);
    check("eval: size(parameters.tags) + size('abc')", expect!["5"]);
    check(
        "eval: 'Prod'.lowerAscii() + ' ' + 'a-b'.replace('-', '_')",
        expect![[r#""prod a_b""#]],
    );
    check("eval: 'a,b'.split(',')", expect![[r#"["a","b"]"#]]);
    check(
        "eval: string(parameters.replicas) + 'x'",
        expect![[r#""3x""#]],
    );
    check("bool: 'prod' in ['prod', 'staging']", expect!["true"]);
    check(
        "eval: parameters.env == 'prod' ? 'p' : 'o'",
        expect![[r#""p""#]],
    );
}

#[test]
fn references() {
    check("refs: no expressions", expect![""]);
    check(
        "refs: x ${{ stages.build.outputs.version }} ${{ parameters['env'] }}",
        expect![[r#"
            6 stages/build/outputs/version
            42 parameters/env"#]],
    );
    check(
        "refs: ${{ a.b[0].c + size(d) }}",
        expect![[r#"
        4 a/b/0/c
        20 d"#]],
    );
    check(
        "refs: ${{ parameters[trigger.branch].x }}",
        expect![[r#"
        4 parameters
        15 trigger/branch"#]],
    );
    check(
        "refs: ${{ parameters.tags.map(t, t + stages.x.outputs.y) }}",
        expect![[r#"
        4 parameters/tags
        31 stages/x/outputs/y"#]],
    );
    check(
        "refs: ${{ parameters.env.startsWith(trigger.branch) }}",
        expect![[r#"
        4 parameters/env
        30 trigger/branch"#]],
    );
    check(
        "refs: ${{ has(stages.a.outputs.k) }}",
        expect!["8 stages/a/outputs/k"],
    );
    check(
        "refs: ${{ strings.quote(parameters.env) }}",
        expect!["18 parameters/env"],
    );
    check("refs: ${{ 'é' + a }}", expect!["11 a"]);
    check(
        "xrefs: parameters.x || trigger.y",
        expect![[r#"
        0 parameters/x
        16 trigger/y"#]],
    );
    check("xrefs:  ${{ execution.id }}", expect!["5 execution/id"]);
}

#[test]
fn values_keep_their_json_type() {
    check(
        r#"value: {"n": "${{ parameters.replicas }}", "s": "n=${{ parameters.replicas }}"}"#,
        expect![[r#"{"n":3,"s":"n=3"}"#]],
    );
    check(
        r#"value: ["${{ parameters.flag }}", "${{ parameters.tags }}", 7, null, "${HOME}"]"#,
        expect![[r#"[true,["a","b"],7,null,"${HOME}"]"#]],
    );
    check(
        r#"value: {"${{ x }}": {"deep": ["${{ stages.build.outputs }}"]}}"#,
        expect![[r#"{"${{ x }}":{"deep":[{"count":2,"version":"1.2.3"}]}}"#]],
    );
    check(
        r#"value: {"a": " ${{ parameters.replicas }}"}"#,
        expect![[r#"{"a":" 3"}"#]],
    );
    check(
        r#"value: {"a": "${{ parameters.nope }}"}"#,
        expect![[r#"error: `parameters.nope`: no such key "nope""#]],
    );
    check(
        r#"value: "${{ 1 +""#,
        expect![[r#"error at 0: unterminated `${{`: no `}}` closes it"#]],
    );
}

#[test]
fn context_defaults_and_numbers() {
    let ctx = Context::default();
    let expression = Expression::parse("parameters.x").unwrap();
    expect![[r#"`parameters.x`: no such key "x""#]]
        .assert_eq(&expression.eval(&ctx).unwrap_err().to_string());

    let ctx = Context::from_json(
        &json!({"parameters": {"big": 18446744073709551615u64, "neg": -1, "f": 1.5}}),
    );
    let expression = Expression::parse("[parameters.big, parameters.neg, parameters.f]").unwrap();
    expect!["[18446744073709551615,-1,1.5]"].assert_eq(&expression.eval(&ctx).unwrap().to_string());
}

#[test]
fn nothing_panics_on_odd_input() {
    let deep = format!("${{{{ {}1{} }}}}", "(".repeat(500), ")".repeat(500));
    let inputs = [
        deep.as_str(),
        "${{",
        "${{}}",
        "${{ '",
        "${{ \"\"\" }}",
        "${{ r'",
        "${{ {{{{ }}",
        "${{ \u{0} }}",
        "${{ 1 }}}}}",
        "}}${{ 1 }}",
        "${{ [1,2][5] }}",
        "${{ 1 / 0 }}",
        "${{ 9223372036854775807 + 1 }}",
        "${{ 'a'[0] }}",
        "${{ ÿ }}",
    ];
    for input in inputs {
        if let Ok(template) = Template::parse(input) {
            let _ = template.render(&context());
            let _ = template.references();
        }
        let _ = Expression::parse(input);
    }
}

#[test]
fn types_cross_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
    assert_send_sync::<Expression>();
    assert_send_sync::<Context>();
}

#[test]
fn limits() {
    let deep = format!("${{{{ {}1{} }}}}", "(".repeat(200), ")".repeat(200));
    check(
        &format!("render: {deep}"),
        expect!["error at 3: expression nests too deeply"],
    );
    let long = format!("${{{{ {} }}}}", vec!["1"; 1000].join("+"));
    check(
        &format!("render: {long}"),
        expect!["error at 3: expression is longer than 2000 bytes"],
    );
    let sum = vec!["1"; 990].join("+");
    check(&format!("eval: {sum}"), expect!["990"]);
}

#[test]
fn slow_expressions_are_given_up() {
    // 20^6 iterations: minutes of work, given up after the (test) limit of 2s.
    let list = format!(
        "[{}]",
        (0..20).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
    );
    let slow = format!(
        "{list}.map(a, {list}.map(b, {list}.map(c, {list}.map(d, {list}.map(e, {list}.map(f, a))))))"
    );
    let error = Expression::parse(&slow)
        .unwrap()
        .eval(&context())
        .unwrap_err();
    expect!["gave up after 2s"].assert_eq(error.message());
    // The pool still answers.
    check("eval: 1 + 1", expect!["2"]);
}
