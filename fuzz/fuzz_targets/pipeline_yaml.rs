//! A `gantry.yaml` parsed and validated (`gantry_config::parse_document`):
//! any text gives a document or diagnostics, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // `gantry apply` and the triggers' `config:` files only reach the parser
    // as UTF-8 text.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = gantry_config::parse_document("gantry.yaml", text);
    }
});
