//! The git operations triggers and stages use. `source` arguments are anything `git clone`
//! takes: a hosted repository's path or an external URL.

use std::path::Path;

use crate::command::{self, GitError};
use crate::remote::Remote;

/// One ref of a remote, as `ls-remote` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRef {
    pub name: String,
    pub commit: String,
}

/// Who made a commit and what it says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitInfo {
    /// `Name <email>`.
    pub author: String,
    pub message: String,
}

/// The branches and tags of a remote (peeled: an annotated tag lists the commit it tags).
pub async fn ls_remote(remote: &Remote) -> Result<Vec<RemoteRef>, GitError> {
    let source = remote.url.as_str();
    let out = command::run_remote(
        None,
        remote,
        ["ls-remote", "--heads", "--tags", "--", source],
        &format!("git ls-remote {source}"),
    )
    .await?;
    let mut refs: Vec<RemoteRef> = Vec::new();
    for line in out.lines() {
        let Some((commit, name)) = line.split_once('\t') else {
            continue;
        };
        match name.strip_suffix("^{}") {
            // The peeled line follows its tag and names the commit itself.
            Some(tag) => {
                if let Some(existing) = refs.iter_mut().find(|r| r.name == tag) {
                    existing.commit = commit.to_owned();
                }
            }
            None => refs.push(RemoteRef {
                name: name.to_owned(),
                commit: commit.to_owned(),
            }),
        }
    }
    Ok(refs)
}

/// Author and message of a commit of a local repository.
pub async fn commit_info(repo: &Path, commit: &str) -> Result<CommitInfo, GitError> {
    check_revision(commit)?;
    let out = command::run(
        Some(repo),
        ["log", "-1", "--format=%an <%ae>%x00%B", commit, "--"],
        &format!("reading commit {commit}"),
    )
    .await?;
    let (author, message) = out.split_once('\0').unwrap_or((&out, ""));
    Ok(CommitInfo {
        author: author.trim().to_owned(),
        message: message.trim_end().to_owned(),
    })
}

/// The files a push changed: between `old` and `new`, or all of `new`'s own changes when the
/// ref is new (`old` is zeros), as Cloud Build compares a new branch with nothing.
pub async fn changed_files(repo: &Path, old: &str, new: &str) -> Result<Vec<String>, GitError> {
    check_revision(new)?;
    let created = old.bytes().all(|b| b == b'0');
    let out = if created {
        command::run(
            Some(repo),
            [
                "diff-tree",
                "--no-commit-id",
                "--name-only",
                "-r",
                "--root",
                new,
            ],
            "listing changed files",
        )
        .await?
    } else {
        check_revision(old)?;
        command::run(
            Some(repo),
            ["diff", "--name-only", old, new, "--"],
            "listing changed files",
        )
        .await?
    };
    Ok(out.lines().map(str::to_owned).collect())
}

/// Makes `dest` a checkout of `commit` from `source`. Idempotent: a `dest` that already holds
/// a clone (a resumed execution) is only checked out again.
pub async fn checkout(remote: &Remote, commit: &str, dest: &Path) -> Result<(), GitError> {
    check_revision(commit)?;
    if !dest.join(".git").exists() {
        clone_into(remote, dest).await?;
    }
    command::run(
        Some(dest),
        ["checkout", "--quiet", "--force", "--detach", commit],
        &format!("checking out {commit}"),
    )
    .await?;
    Ok(())
}

/// A file of a local repository at a commit; `None` if the commit has no such file.
pub async fn read_file(repo: &Path, commit: &str, path: &str) -> Result<Option<String>, GitError> {
    check_revision(commit)?;
    let spec = format!("{commit}:{}", path.trim_start_matches("./"));
    let mut cmd = command::git(Some(repo));
    cmd.args(["cat-file", "blob", &spec]);
    let out = cmd.output().await.map_err(GitError::Spawn)?;
    if out.status.success() {
        Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
    } else {
        Ok(None)
    }
}

/// The tags of a local repository whose names start with `prefix`, with the commits they
/// name.
pub async fn tags_with_commits(
    repo: &Path,
    prefix: &str,
) -> Result<Vec<(String, String)>, GitError> {
    let pattern = format!("refs/tags/{prefix}*");
    let out = command::run(
        Some(repo),
        [
            "for-each-ref",
            "--format=%(refname:strip=2) %(*objectname)%(objectname)",
            &pattern,
        ],
        "listing tags",
    )
    .await?;
    Ok(out
        .lines()
        .filter_map(|line| {
            let (name, ids) = line.split_once(' ')?;
            // An annotated tag prints the commit (peeled) then its own id: keep the first.
            Some((name.to_owned(), ids.get(..40).unwrap_or(ids).to_owned()))
        })
        .collect())
}

/// The tags of a local repository whose names start with `prefix`.
pub async fn tags_at(repo: &Path, prefix: &str) -> Result<Vec<String>, GitError> {
    let pattern = format!("refs/tags/{prefix}*");
    let out = command::run(
        Some(repo),
        ["for-each-ref", "--format=%(refname:strip=2)", &pattern],
        "listing tags",
    )
    .await?;
    Ok(out.lines().map(str::to_owned).collect())
}

/// Makes `dest` a fresh clone of `source` with `branch` checked out; a branch the remote does
/// not have yet starts empty (an orphan). Returns whether the branch existed.
pub async fn clone_branch(remote: &Remote, branch: &str, dest: &Path) -> Result<bool, GitError> {
    check_revision(branch)?;
    if dest.exists() {
        tokio::fs::remove_dir_all(dest)
            .await
            .map_err(GitError::Spawn)?;
    }
    clone_into(remote, dest).await?;
    let remote_branch = format!("refs/remotes/origin/{branch}");
    let exists = command::run(
        Some(dest),
        ["rev-parse", "--verify", "--quiet", &remote_branch],
        "git rev-parse",
    )
    .await
    .is_ok();
    if exists {
        command::run(
            Some(dest),
            ["checkout", "--quiet", "-B", branch, &remote_branch],
            &format!("checking out {branch}"),
        )
        .await?;
    } else {
        command::run(
            Some(dest),
            ["checkout", "--quiet", "--orphan", branch],
            "git checkout --orphan",
        )
        .await?;
    }
    Ok(exists)
}

/// Clones `remote` into `dest` (created if missing) without checking anything out.
async fn clone_into(remote: &Remote, dest: &Path) -> Result<(), GitError> {
    tokio::fs::create_dir_all(dest)
        .await
        .map_err(GitError::Spawn)?;
    let source = remote.url.as_str();
    command::run_remote(
        Some(dest),
        remote,
        ["clone", "--quiet", "--no-checkout", "--", source, "."],
        &format!("cloning {source}"),
    )
    .await?;
    Ok(())
}

/// Replaces the clone's files by those of `from` (all of them, or only `paths`), so that the
/// next commit records exactly `from`'s content.
pub async fn copy_from(workdir: &Path, from: &str, paths: &[String]) -> Result<(), GitError> {
    check_revision(from)?;
    let resolved = command::run(
        Some(workdir),
        [
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{from}^{{commit}}"),
        ],
        &format!("resolving {from}"),
    )
    .await
    .or(command::run(
        Some(workdir),
        [
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("origin/{from}^{{commit}}"),
        ],
        &format!("resolving {from}"),
    )
    .await)
    .map_err(|_| {
        GitError::Invalid(format!(
            "{from:?} is neither a commit nor a branch of the repository"
        ))
    })?;
    let commit = resolved.trim();
    if paths.is_empty() {
        // Files `from` no longer has must go too.
        command::run(
            Some(workdir),
            ["rm", "-r", "--quiet", "--ignore-unmatch", "--", "."],
            "git rm",
        )
        .await?;
        command::run(
            Some(workdir),
            ["checkout", commit, "--", "."],
            "copying files",
        )
        .await?;
    } else {
        let mut args = vec!["checkout", commit, "--"];
        args.extend(paths.iter().map(String::as_str));
        command::run(Some(workdir), args, "copying files").await?;
    }
    Ok(())
}

/// Commits every change in the clone `workdir`; the new commit, or `None` when nothing changed.
pub async fn commit_all(workdir: &Path, message: &str) -> Result<Option<String>, GitError> {
    command::run(Some(workdir), ["add", "--all"], "staging files").await?;
    let status = command::run(Some(workdir), ["status", "--porcelain"], "git status").await?;
    if status.trim().is_empty() {
        return Ok(None);
    }
    command::run(
        Some(workdir),
        ["commit", "--quiet", "--no-verify", "-m", message],
        "committing",
    )
    .await?;
    let head = command::run(Some(workdir), ["rev-parse", "HEAD"], "git rev-parse").await?;
    Ok(Some(head.trim().to_owned()))
}

/// Pushes `refspec` from the clone `workdir` to `remote`. A refused push fails with git's
/// answer (the remote's own message included).
pub async fn push(workdir: &Path, remote: &Remote, refspec: &str) -> Result<(), GitError> {
    command::run_remote(
        Some(workdir),
        remote,
        ["push", "--quiet", "--porcelain", "--", &remote.url, refspec],
        &format!("pushing {refspec} to {}", remote.url),
    )
    .await?;
    Ok(())
}

/// Makes sure the bare repository `cache` (created if missing) holds `commit` of `remote`,
/// fetching `reference` (where a push reported it), or the commit itself when the ref has
/// moved on since. Repeated reads of one commit fetch nothing.
pub async fn fetch_commit(
    cache: &Path,
    remote: &Remote,
    reference: &str,
    commit: &str,
) -> Result<(), GitError> {
    check_revision(commit)?;
    if !cache.join("HEAD").is_file() {
        tokio::fs::create_dir_all(cache)
            .await
            .map_err(GitError::Spawn)?;
        command::run(Some(cache), ["init", "--quiet", "--bare"], "git init").await?;
    }
    if has_commit(cache, commit).await {
        return Ok(());
    }
    let source = remote.url.as_str();
    let what = format!("fetching {commit} from {source}");
    let mut wanted = vec![commit];
    if !reference.is_empty() && check_revision(reference).is_ok() {
        wanted.insert(0, reference);
    }
    let mut last = None;
    for want in wanted {
        let fetched = command::run_remote(
            Some(cache),
            remote,
            [
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--",
                source,
                want,
            ],
            &what,
        )
        .await;
        match fetched {
            Ok(_) if has_commit(cache, commit).await => return Ok(()),
            Ok(_) => {}
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or(GitError::Failed {
        what,
        stderr: "the remote does not have it".to_owned(),
    }))
}

async fn has_commit(repo: &Path, commit: &str) -> bool {
    command::run(
        Some(repo),
        ["cat-file", "-e", &format!("{commit}^{{commit}}")],
        "git cat-file",
    )
    .await
    .is_ok()
}

/// The messages of the commits reachable from `commit` and from none of `excluded` (the
/// commits of earlier release tags), newest first: what a release reads its markers from.
/// Merge commits are included, so a merged pull request's title counts.
pub async fn commit_messages_since(
    repo: &Path,
    commit: &str,
    excluded: &[String],
) -> Result<Vec<String>, GitError> {
    check_revision(commit)?;
    for revision in excluded {
        check_revision(revision)?;
    }
    let mut args = vec!["log", "--format=%B%x00", commit];
    if !excluded.is_empty() {
        args.push("--not");
        args.extend(excluded.iter().map(String::as_str));
    }
    args.push("--");
    let out = command::run(
        Some(repo),
        args,
        &format!("reading the commits of {commit}"),
    )
    .await?;
    Ok(out
        .split('\0')
        .map(str::trim)
        .filter(|message| !message.is_empty())
        .map(str::to_owned)
        .collect())
}

/// The commit a branch of the clone's `origin` is at; `None` when it has no such branch.
pub async fn remote_branch(workdir: &Path, branch: &str) -> Option<String> {
    check_revision(branch).ok()?;
    command::run(
        Some(workdir),
        [
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/remotes/origin/{branch}^{{commit}}"),
        ],
        "git rev-parse",
    )
    .await
    .ok()
    .map(|s| s.trim().to_owned())
}

/// Whether the repository (or clone) holds the commit.
pub async fn contains_commit(repo: &Path, commit: &str) -> bool {
    check_revision(commit).is_ok() && has_commit(repo, commit).await
}

/// The commit `HEAD` of a clone is at, if any.
pub async fn head(workdir: &Path) -> Option<String> {
    command::run(
        Some(workdir),
        ["rev-parse", "--verify", "--quiet", "HEAD"],
        "git rev-parse",
    )
    .await
    .ok()
    .map(|s| s.trim().to_owned())
}

/// Commits and refs reach `git` as arguments: refuse anything that could be read as an option.
fn check_revision(revision: &str) -> Result<(), GitError> {
    if revision.is_empty() || revision.starts_with('-') || revision.contains(char::is_whitespace) {
        return Err(GitError::Invalid(format!(
            "{revision:?} is not a commit or ref"
        )));
    }
    Ok(())
}
