//! Choosing the newest of a repository's tags by a pattern, ordering
//! versions the way people read them: semantic versions by their numbers
//! (a pre-release before its release), anything else by its runs of digits
//! as numbers (`build-10` after `build-9`).

use std::cmp::Ordering;

/// The tag whose version is newest among those `pattern` matches, with that
/// version (the pattern's first group, else the whole tag).
pub fn newest_tag<'t>(
    tags: impl IntoIterator<Item = &'t str>,
    pattern: &regex::Regex,
) -> Option<(&'t str, String)> {
    tags.into_iter()
        .filter_map(|tag| {
            let captures = pattern.captures(tag)?;
            let version = captures.get(1).map_or(tag, |m| m.as_str());
            Some((tag, version.to_owned()))
        })
        .max_by(|a, b| compare_versions(&a.1, &b.1).then_with(|| a.0.cmp(b.0)))
}

/// Semantic versions (an optional `v`, `MAJOR.MINOR.PATCH`, an optional
/// `-pre-release` and `+build`) rank above other strings, which compare
/// naturally.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (semver(a), semver(b)) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => natural(a, b),
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct SemVer {
    numbers: [u64; 3],
    /// `None` (a release) sorts after any pre-release.
    release: Release,
}

#[derive(PartialEq, Eq)]
enum Release {
    Pre(Vec<PreId>),
    Final,
}

impl PartialOrd for Release {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Release {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Release::Final, Release::Final) => Ordering::Equal,
            (Release::Final, Release::Pre(_)) => Ordering::Greater,
            (Release::Pre(_), Release::Final) => Ordering::Less,
            (Release::Pre(a), Release::Pre(b)) => a.cmp(b),
        }
    }
}

/// A pre-release identifier: numeric ones sort before alphanumeric ones.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum PreId {
    Number(u64),
    Text(String),
}

fn semver(text: &str) -> Option<SemVer> {
    let text = text.strip_prefix('v').unwrap_or(text);
    let text = text.split_once('+').map_or(text, |(v, _)| v);
    let (core, pre) = match text.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (text, None),
    };
    let mut parts = core.split('.');
    let mut numbers = [0; 3];
    for number in &mut numbers {
        let part = parts.next()?;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *number = part.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    let release = match pre {
        None => Release::Final,
        Some(pre) => Release::Pre(
            pre.split('.')
                .map(|id| match id.parse() {
                    Ok(n) if id.bytes().all(|b| b.is_ascii_digit()) => PreId::Number(n),
                    _ => PreId::Text(id.to_owned()),
                })
                .collect(),
        ),
    };
    Some(SemVer { numbers, release })
}

/// Compares runs of digits as numbers and everything else as text.
fn natural(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        let (run_a, rest_a) = split_run(a);
        let (run_b, rest_b) = split_run(b);
        let order = match (run_a.parse::<u128>(), run_b.parse::<u128>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => run_a.cmp(run_b),
        };
        if order != Ordering::Equal {
            return order;
        }
        a = rest_a;
        b = rest_b;
    }
}

/// The leading run of digits, or of non-digits.
fn split_run(text: &str) -> (&str, &str) {
    let digits = text.starts_with(|c: char| c.is_ascii_digit());
    let end = text
        .find(|c: char| c.is_ascii_digit() != digits)
        .unwrap_or(text.len());
    text.split_at(end)
}
