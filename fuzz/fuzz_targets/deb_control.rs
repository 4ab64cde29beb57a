//! Debian control text (deb822 paragraphs: a package's `control`, an APT
//! `Packages` index) and the versions in it: errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(paragraphs) = gantry_deb::parse_paragraphs(text) else {
        return;
    };
    for paragraph in &paragraphs {
        let _ = paragraph.to_text();
        if let Some(name) = paragraph.get("Package") {
            let _ = gantry_deb::validate_name(name);
        }
        if let Some(architecture) = paragraph.get("Architecture") {
            let _ = gantry_deb::validate_architecture(architecture);
        }
        if let Some(version) = paragraph.get("Version") {
            let _ = gantry_deb::compare_versions(version, "1:2.3-4~rc1");
        }
    }
});
