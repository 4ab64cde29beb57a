//! A `cloudbuild.yaml` parsed and, when it is valid, translated into steps
//! with substitutions applied, as a trigger's `config:` file is: errors,
//! never a panic.
#![no_main]

use std::collections::BTreeMap;

use gantry_cloudbuild::{ImageMap, Translation, parse, translate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = parse("cloudbuild.yaml", text) else {
        return;
    };
    let builtins: BTreeMap<String, String> = [
        ("PROJECT_ID", "project"),
        ("BUILD_ID", "0190f2a4-0000-7000-8000-000000000000"),
        ("COMMIT_SHA", "0123456789abcdef0123456789abcdef01234567"),
        ("SHORT_SHA", "0123456"),
        ("BRANCH_NAME", "main"),
        ("REPO_NAME", "app"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let translation = Translation {
        builtins,
        overrides: BTreeMap::new(),
        image_map: ImageMap(
            [(
                "gcr.io/cloud-builders/docker".to_owned(),
                "host:podman".to_owned(),
            )]
            .into_iter()
            .collect(),
        ),
        ..Default::default()
    };
    let _ = translate(&file, &translation);
});
