//! Does a push match a `git` trigger's branch or tag and file filters?

use gantry_config::GitTrigger;

use gantry_config::glob;

/// The branch or tag regex. With neither given, every branch matches and tags do not.
pub(crate) fn ref_matches(trigger: &GitTrigger, ref_name: &str) -> bool {
    let is_match =
        |pattern: &str, name: &str| regex::Regex::new(pattern).is_ok_and(|re| re.is_match(name));
    if let Some(branch) = ref_name.strip_prefix("refs/heads/") {
        match (&trigger.branch, &trigger.tag) {
            (Some(pattern), _) => is_match(pattern, branch),
            (None, Some(_)) => false,
            (None, None) => true,
        }
    } else if let Some(tag) = ref_name.strip_prefix("refs/tags/") {
        trigger
            .tag
            .as_deref()
            .is_some_and(|pattern| is_match(pattern, tag))
    } else {
        false
    }
}

/// Cloud Build's rule: files matching `ignoredFiles` do not count; a push whose every file is
/// ignored does not trigger; with `includedFiles`, one of the files that count must match.
/// `None` (the changed files are not known) passes.
pub(crate) fn files_match(trigger: &GitTrigger, changed: Option<&[String]>) -> bool {
    let Some(changed) = changed else {
        return true;
    };
    if trigger.included_files.is_empty() && trigger.ignored_files.is_empty() {
        return true;
    }
    let ignored: Vec<regex::Regex> = trigger
        .ignored_files
        .iter()
        .filter_map(|g| glob::compile(g))
        .collect();
    let included: Vec<regex::Regex> = trigger
        .included_files
        .iter()
        .filter_map(|g| glob::compile(g))
        .collect();
    let counted: Vec<&String> = changed
        .iter()
        .filter(|path| !glob::matches_any(&ignored, path))
        .collect();
    if !ignored.is_empty() && counted.is_empty() && !changed.is_empty() {
        return false;
    }
    if trigger.included_files.is_empty() {
        return true;
    }
    counted
        .iter()
        .any(|path| glob::matches_any(&included, path))
}
