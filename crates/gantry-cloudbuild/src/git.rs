//! The built-in substitutions that come from the source's git checkout.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// `COMMIT_SHA`, `SHORT_SHA`, `REVISION_ID`, `BRANCH_NAME`, `TAG_NAME`,
/// `REF_NAME` and `REPO_NAME` of the checkout at `dir`; empty where git has
/// no answer (not a checkout, a detached head, no tag, no remote).
pub fn git_substitutions(dir: &Path) -> BTreeMap<String, String> {
    let git = |args: &[&str]| -> String {
        // The checkout may belong to another user (steps run confined under
        // their own account): these read-only plumbing commands are safe
        // in it, so git's ownership check is lifted for them alone, and no
        // fsmonitor the repository configures is started.
        Command::new("git")
            .args(["-c", "safe.directory=*", "-c", "core.fsmonitor=false"])
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let commit = git(&["rev-parse", "HEAD"]);
    let branch = git(&["symbolic-ref", "--short", "-q", "HEAD"]);
    let tag = if commit.is_empty() {
        String::new()
    } else {
        git(&["describe", "--tags", "--exact-match", "HEAD"])
    };
    let remote = git(&["config", "--get", "remote.origin.url"]);
    let top = git(&["rev-parse", "--show-toplevel"]);
    let repo_source = if remote.is_empty() { top } else { remote };
    let repo_name = repo_source
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or_default()
        .trim_end_matches(".git")
        .to_owned();
    let short: String = commit.chars().take(7).collect();
    let ref_name = if branch.is_empty() {
        tag.clone()
    } else {
        branch.clone()
    };
    BTreeMap::from([
        ("COMMIT_SHA".to_owned(), commit.clone()),
        ("REVISION_ID".to_owned(), commit),
        ("SHORT_SHA".to_owned(), short),
        ("BRANCH_NAME".to_owned(), branch),
        ("TAG_NAME".to_owned(), tag),
        ("REF_NAME".to_owned(), ref_name),
        ("REPO_NAME".to_owned(), repo_name),
    ])
}
