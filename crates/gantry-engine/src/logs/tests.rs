use super::Masker;

fn check(secrets: &[&str], input: &str, expected: &str) {
    let masker = Masker::new(secrets.iter().map(|s| s.to_string()));
    assert_eq!(masker.mask(input), expected);
}

#[test]
fn masks_every_occurrence() {
    check(&["hunter2"], "pw=hunter2 again hunter2", "pw=*** again ***");
}

#[test]
fn longest_secret_wins() {
    check(&["abc", "abcdef"], "x abcdef y abc", "x *** y ***");
}

#[test]
fn short_values_are_not_masked() {
    check(&["ab"], "ab cab", "ab cab");
}

#[test]
fn nothing_to_mask() {
    check(&[], "plain", "plain");
}

#[test]
fn a_masker_extended_keeps_what_it_had() {
    let masker = Masker::new(["hunter2".to_string()]).with(["s3cr3t".to_string()]);
    assert_eq!(masker.mask("hunter2 and s3cr3t"), "*** and ***");
}
