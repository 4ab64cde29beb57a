//! An uploaded `.deb` read back (`gantry_deb::inspect`: the `ar` archive,
//! its compressed control and data members, the control paragraph): a
//! package or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gantry_deb::inspect("fuzz.deb", data);
});
