use gantry_config::GitTrigger;

use crate::filters::{files_match, ref_matches};
use crate::glob;
use crate::push::same_repository;
use crate::signature::{github_signature, github_signature_valid, token_valid};

fn trigger(branch: Option<&str>, tag: Option<&str>) -> GitTrigger {
    GitTrigger {
        repository: Some("app".into()),
        branch: branch.map(Into::into),
        tag: tag.map(Into::into),
        ..GitTrigger::default()
    }
}

#[test]
fn refs_match_branch_or_tag_patterns() {
    let check =
        |t: &GitTrigger, r: &str, expected: bool| assert_eq!(ref_matches(t, r), expected, "{r}");
    let main = trigger(Some("^main$"), None);
    check(&main, "refs/heads/main", true);
    check(&main, "refs/heads/main2", false);
    check(&main, "refs/tags/main", false);
    let tags = trigger(None, Some("^v[0-9]+"));
    check(&tags, "refs/tags/v1.2.0", true);
    check(&tags, "refs/tags/x1", false);
    check(&tags, "refs/heads/v1", false);
    let any = trigger(None, None);
    check(&any, "refs/heads/feature/x", true);
    check(&any, "refs/tags/v1", false);
}

#[test]
fn globs_follow_cloud_build() {
    let check = |g: &str, path: &str, expected: bool| {
        assert_eq!(
            glob::compile(g).unwrap().is_match(path),
            expected,
            "{g} {path}"
        )
    };
    check("src/**", "src/a/b.rs", true);
    check("src/*", "src/a/b.rs", false);
    check("src/*", "src/a.rs", true);
    check("**/*.md", "README.md", true);
    check("**/*.md", "docs/x/README.md", true);
    check("docs/?.txt", "docs/a.txt", true);
    check("docs/?.txt", "docs/ab.txt", false);
}

#[test]
fn file_filters_follow_cloud_build() {
    let mut t = trigger(None, None);
    t.included_files = vec!["src/**".into()];
    t.ignored_files = vec!["**/*.md".into()];
    let files = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(files_match(&t, Some(&files(&["src/main.rs"]))));
    assert!(!files_match(&t, Some(&files(&["README.md"]))));
    assert!(!files_match(&t, Some(&files(&["src/notes.md"]))));
    assert!(!files_match(&t, Some(&files(&["Cargo.toml"]))));
    assert!(files_match(&t, None));
    t.included_files.clear();
    assert!(files_match(&t, Some(&files(&["Cargo.toml", "README.md"]))));
    assert!(!files_match(&t, Some(&files(&["README.md"]))));
}

#[test]
fn github_signatures_are_checked() {
    // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
    let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(
        github_signature("It's a Secret to Everybody", b"Hello, World!"),
        expected
    );
    assert!(github_signature_valid(
        "It's a Secret to Everybody",
        b"Hello, World!",
        expected
    ));
    assert!(!github_signature_valid(
        "It's a Secret to Everybody",
        b"Hello, World?",
        expected
    ));
    assert!(!github_signature_valid("other", b"Hello, World!", expected));
    assert!(!github_signature_valid(
        "It's a Secret to Everybody",
        b"Hello, World!",
        "sha1=00"
    ));
    assert!(token_valid("abc", "abc"));
    assert!(!token_valid("abc", "abd"));
    assert!(!token_valid("abc", "ab"));
}

#[test]
fn repository_urls_compare_loosely() {
    assert!(same_repository(
        "https://github.com/Org/App.git",
        "https://github.com/org/app/"
    ));
    assert!(!same_repository(
        "https://github.com/org/app",
        "https://github.com/org/apps"
    ));
}

#[test]
fn cron_occurrences_respect_the_time_zone() {
    use chrono::{TimeZone, Utc};
    let at = |h, m| Utc.with_ymd_and_hms(2026, 1, 15, h, m, 0).unwrap();
    let between = crate::cron::occurrence_between;
    // 09:00 in Paris is 08:00 UTC in January.
    assert_eq!(
        between("0 9 * * *", Some("Europe/Paris"), at(7, 59), at(8, 1)),
        Some(at(8, 0))
    );
    assert_eq!(
        between("0 9 * * *", Some("Europe/Paris"), at(8, 0), at(9, 30)),
        None
    );
    assert_eq!(
        between("*/15 * * * *", None, at(10, 1), at(10, 20)),
        Some(at(10, 15))
    );
}
