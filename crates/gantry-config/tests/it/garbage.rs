//! No input makes `parse_document` panic: every truncation of the sample, and random edits of
//! it, give a document or diagnostics that point inside the file.

use gantry_config::parse_document;

const SAMPLE: &str = include_str!("../../examples/gantry.yaml");

fn check_no_panic(text: &str) {
    if let Err(diagnostics) = parse_document("g.yaml", text) {
        assert!(!diagnostics.0.is_empty());
        let lines = text.lines().count() + 1;
        for diagnostic in &diagnostics.0 {
            assert!(
                diagnostic.line >= 1 && diagnostic.line <= lines,
                "{diagnostic} (of {lines} lines)"
            );
            assert!(diagnostic.column >= 1, "{diagnostic}");
            assert!(!diagnostic.message.is_empty());
        }
    }
}

#[test]
fn truncated_files() {
    let boundaries: Vec<usize> = (0..=SAMPLE.len())
        .filter(|&i| SAMPLE.is_char_boundary(i))
        .collect();
    // Every 3rd cut keeps the test quick while still cutting inside every token kind.
    for &cut in boundaries.iter().step_by(3) {
        check_no_panic(&SAMPLE[..cut]);
    }
}

#[test]
fn garbled_files() {
    // A small xorshift generator: deterministic, so a failure can be replayed.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    const NOISE: &[&str] = &[
        ":", "-", " ", "\n", "\t", "[", "]", "{", "}", "&a", "*a", "<<:", "${{", "}}", "'", "\"",
        "#", "|", ">", "!!", "é", "\u{0}", "---", "?",
    ];
    for _ in 0..400 {
        let mut text = SAMPLE.to_owned();
        for _ in 0..1 + next(6) {
            let mut at = next(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            match next(3) {
                0 => text.insert_str(at, NOISE[next(NOISE.len())]),
                1 => {
                    let mut end = (at + 1 + next(20)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(at..end, "");
                }
                _ => {
                    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                    text.insert_str(line_start, "  ");
                }
            }
        }
        check_no_panic(&text);
    }
}

#[test]
fn odd_inputs() {
    let deep = "[".repeat(10_000);
    let deep_maps = "a: ".repeat(1_000) + "b";
    let long_expression = format!(
        "pipelines: [{{name: p, stages: [{{id: a, type: wait, duration: 1s, if: '{}'}}]}}]",
        "(".repeat(300)
    );
    for text in [
        "",
        "\u{feff}pipelines: []",
        "\0",
        ":",
        "- - -",
        "pipelines: [[[]]]",
        "pipelines: [{stages: [{steps: [{command: [[]]}]}]}]",
        "pipelines: [{name: p, stages: [{id: a, type: run, steps: [{script: '${{'}]}]}]",
        &deep,
        &deep_maps,
        &long_expression,
    ] {
        check_no_panic(text);
    }
}
