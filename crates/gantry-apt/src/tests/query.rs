//! Queries, as aptly documents them.

use crate::Query;

fn check(query: &str, name: &str, version: &str, arch: &str, expected: bool) {
    let parsed = Query::parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    let priority = |field: &str| (field == "Priority").then(|| "optional".to_owned());
    let candidate = crate::Candidate {
        name,
        version,
        architecture: arch,
        field: &priority,
    };
    assert_eq!(
        parsed.matches(&candidate),
        expected,
        "{query} on {name} {version} {arch}"
    );
}

#[test]
fn queries_match_as_aptly_documents_them() {
    check("hello", "hello", "1.0", "amd64", true);
    check("hello", "hello-doc", "1.0", "amd64", false);
    check("hello (>= 1.2)", "hello", "1.10", "amd64", true);
    check("hello (>= 1.2)", "hello", "1.2~rc1", "amd64", false);
    check("hello (= 1:1.0)", "hello", "1:1.0", "amd64", true);
    check("hello (<< 1.0)", "hello", "1.0", "amd64", false);
    check("hello (>> 1.0)", "hello", "1.0+b1", "amd64", true);
    check("hello {i386}", "hello", "1.0", "amd64", false);
    check("$Architecture (= amd64)", "x", "1", "amd64", true);
    check("$Version (>= 2)", "x", "10", "all", true);
    check("Priority (optional)", "x", "1", "all", true);
    check("hello | world", "world", "1", "all", true);
    check(
        "hello, $Architecture (= i386)",
        "hello",
        "1",
        "amd64",
        false,
    );
    check(
        "hello, $Architecture (= i386) | world",
        "world",
        "1",
        "amd64",
        true,
    );
    check("!hello", "world", "1", "amd64", true);
    check(
        "(hello | world), !$Architecture (= all)",
        "world",
        "1",
        "all",
        false,
    );
}

#[test]
fn bad_queries_say_where() {
    for (query, expected) in [
        ("hello (>= 1.2", "expected ')'"),
        ("", "expected a package name"),
        ("hello |", "expected a package name"),
        ("$Architecture", "needs a (value)"),
        ("hello ) x", "unexpected text"),
    ] {
        let error = Query::parse(query).unwrap_err().to_string();
        assert!(
            error.contains(expected) && error.contains("column"),
            "{query:?}: {error}"
        );
    }
}
