//! Webhook delivery bodies, read as the GitHub, GitLab and generic receivers
//! read them once the signature holds: a push, a 400 naming the field, or
//! (generic) whether `payloadConstraints` hold. Never a panic.
//!
//! The first byte picks the receiver. For the generic one, the lines before
//! the first empty line are constraints, `PATH=REGEX` each; the rest is the
//! body.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            let _ = gantry_triggers::read_delivery_body("github", rest, BTreeMap::new());
        }
        1 => {
            let _ = gantry_triggers::read_delivery_body("gitlab", rest, BTreeMap::new());
        }
        _ => {
            let (head, body) = match rest.windows(2).position(|w| w == b"\n\n") {
                Some(at) => (&rest[..at], &rest[at + 2..]),
                None => (&rest[..0], rest),
            };
            let Ok(head) = std::str::from_utf8(head) else {
                return;
            };
            let constraints: BTreeMap<String, String> = head
                .lines()
                .filter_map(|line| line.split_once('='))
                .map(|(path, regex)| (path.to_owned(), regex.to_owned()))
                .collect();
            let _ = gantry_triggers::read_delivery_body("fuzz", body, constraints);
        }
    }
});
