//! `examples/gantry.yaml` is what a newcomer copies from: it must show every
//! field of every kind of mapping the format has, and stay valid.

use crate::check::field_coverage;
use crate::parse_document;

const EXAMPLE: &str = include_str!("../../examples/gantry.yaml");

#[test]
fn the_example_file_shows_every_field_of_every_kind_of_mapping() {
    let coverage = field_coverage::record(|| {
        if let Err(diagnostics) = parse_document("examples/gantry.yaml", EXAMPLE) {
            panic!("the example file is invalid:\n{diagnostics}");
        }
    });
    let mut missing = Vec::new();
    for (kind, (known, used)) in &coverage {
        let unused: Vec<&str> = known
            .iter()
            .copied()
            .filter(|field| !used.contains(*field))
            .collect();
        if !unused.is_empty() {
            missing.push(format!("{kind}: {}", unused.join(", ")));
        }
    }
    assert!(
        missing.is_empty(),
        "fields the example file does not show (kind of mapping: its unused fields):\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_example_file_shows_every_top_level_kind() {
    let missing: Vec<&str> = crate::document::kind_names()
        .into_iter()
        .filter(|kind| {
            !EXAMPLE
                .lines()
                .any(|line| line.starts_with(&format!("{kind}:")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "top-level kinds the example file does not show: {missing:?}"
    );
}
