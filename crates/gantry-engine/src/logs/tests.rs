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
fn values_added_to_a_masker_are_masked_by_its_clones() {
    let masker = Masker::new(["hunter2".to_string()]);
    let clone = masker.clone();
    masker.add(["s3cr3t".to_string(), "hunter2".to_string()]);
    assert_eq!(clone.mask("hunter2 and s3cr3t"), "*** and ***");
}
