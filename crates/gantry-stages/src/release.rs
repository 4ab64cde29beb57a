//! `release`: semantic version tags. The newest `vX.Y.Z[-suffix]` tag is bumped by the
//! strongest marker (`[major]` > `[minor]` > `[patch]`) and the commit is tagged
//! `vX.Y.Z-<short sha>`. The marker is read, first found wins: in the stage's `message`; in
//! the title of a pull request the trigger's webhook payload carries (a merged pull request
//! says what it is as a whole); in the messages of every commit since the last version tag
//! (a push of several commits is released once, by the strongest of them, whichever is at the
//! tip).
//!
//! Two releases racing never take the same version: the tag is created together with a
//! version ref (`refs/gantry/versions/vX.Y.Z`) in one ref transaction that fails if either
//! exists, and the loser reads the tags again and takes the next version. A commit that already
//! carries a release tag (a resumed or repeated stage) gets that tag back, not a second one.

use gantry_config::{Bump, ReleaseStage};
use gantry_store::{Cause, GitPush, PipelineCause, TriggerData};
use serde_json::{Map, Value, json};

use super::{StageContext, StageFailure, StageResult, StageRunner};

/// How often a release that lost a race tries the next version.
const ATTEMPTS: usize = 20;

impl StageRunner for gantry_config::stages::git::Release {
    async fn run(ctx: &StageContext, spec: &gantry_config::ReleaseStage) -> StageResult {
        run(ctx, spec).await
    }
}

pub(crate) async fn run(ctx: &StageContext, spec: &ReleaseStage) -> StageResult {
    let trigger = ctx.trigger().await;
    let push = trigger.as_ref().and_then(TriggerData::git);
    let from_push =
        |field: fn(GitPush) -> String| push.clone().map(field).filter(|s| !s.is_empty());
    let Some(repository) = spec
        .repository
        .clone()
        .or_else(|| from_push(|p| p.repository))
    else {
        return Err(StageFailure::Failed(
            "release: no repository: give \"repository\" or run from a git trigger".to_owned(),
        ));
    };
    let Some(commit) = spec.commit.clone().or_else(|| from_push(|p| p.commit)) else {
        return Err(StageFailure::Failed(
            "release: no commit: give \"commit\" or run from a git trigger".to_owned(),
        ));
    };
    let repos = ctx.git();
    let path = match repos.existing(&repository) {
        Ok(path) => path,
        Err(error) => return Err(StageFailure::Failed(format!("release: {error}"))),
    };
    let title = trigger.as_ref().and_then(pull_request_title);
    let initial = match Version::parse(&spec.initial_version) {
        Some(version) => version,
        None => {
            return Err(StageFailure::Failed(format!(
                "release: initialVersion {:?} is not MAJOR.MINOR.PATCH",
                spec.initial_version
            )));
        }
    };
    let short = commit.get(..7).unwrap_or(&commit).to_owned();
    let pusher = format!("execution {}", ctx.execution_id);

    for _ in 0..ATTEMPTS {
        let tags = match gantry_git::tags_with_commits(&path, &spec.prefix).await {
            Ok(tags) => tags,
            Err(error) => return Err(StageFailure::Failed(format!("release: {error}"))),
        };
        let versions: Vec<(Version, &str, &str)> = tags
            .iter()
            .filter_map(|(name, target)| {
                Some((
                    Version::parse(name.strip_prefix(&spec.prefix)?)?,
                    name.as_str(),
                    target.as_str(),
                ))
            })
            .collect();
        if let Some((version, tag, _)) = versions
            .iter()
            .find(|(_, tag, target)| *target == commit && tag.ends_with(&format!("-{short}")))
        {
            let previous = versions
                .iter()
                .map(|(v, _, _)| *v)
                .filter(|v| v < version)
                .max();
            ctx.log
                .system(&format!("commit {short} is already released as {tag}"))
                .await;
            return released(*version, tag, previous, &spec.prefix);
        }
        let previous = versions.iter().map(|(v, _, _)| *v).max();
        let released_commits: Vec<String> =
            versions.iter().map(|(_, _, c)| (*c).to_owned()).collect();
        let found =
            match find_marker(&path, &commit, spec, title.as_deref(), &released_commits).await {
                Ok(found) => found,
                Err(error) => return Err(StageFailure::Failed(format!("release: {error}"))),
            };
        let bump = match (&found, spec.default_bump) {
            (Some((bump, source)), _) => {
                ctx.log
                    .system(&format!("{} bump: {source}", bump_name(*bump)))
                    .await;
                Some(*bump)
            }
            (None, Some(bump)) => {
                ctx.log
                    .system(&format!(
                        "no marker found: the default {} bump",
                        bump_name(bump)
                    ))
                    .await;
                Some(bump)
            }
            (None, None) => None,
        };
        let Some(bump) = bump else {
            ctx.log
                .system(
                    "no [major], [minor] or [patch] marker in the commits since the last release: no release",
                )
                .await;
            let mut outputs = Map::new();
            outputs.insert("released".into(), json!(false));
            if let Some(previous) = previous {
                outputs.insert("previous".into(), json!(previous.tag(&spec.prefix)));
            }
            return Ok(outputs);
        };
        let version = match previous {
            None => initial,
            Some(previous) => previous.bump(bump),
        };
        let tag = format!("{}{}-{short}", spec.prefix, version.text());
        let refs = [
            (format!("refs/tags/{tag}"), commit.clone()),
            (
                format!("refs/gantry/versions/{}", version.tag(&spec.prefix)),
                commit.clone(),
            ),
        ];
        match repos.create_refs(&repository, &refs, &pusher).await {
            Ok(true) => {
                ctx.log
                    .system(&format!("tagged {short} as {tag} in {repository}"))
                    .await;
                let mut outcome = released(version, &tag, previous, &spec.prefix);
                if let Ok(outputs) = &mut outcome {
                    outputs.insert("bump".into(), json!(bump_name(bump)));
                }
                return outcome;
            }
            Ok(false) => {
                ctx.log
                    .system(&format!(
                        "version {} was taken meanwhile; trying again",
                        version.text()
                    ))
                    .await;
            }
            Err(error) => return Err(StageFailure::Failed(format!("release: {error}"))),
        }
    }
    Err(StageFailure::Failed(format!(
        "release: lost the race for a version {ATTEMPTS} times in a row"
    )))
}

fn released(version: Version, tag: &str, previous: Option<Version>, prefix: &str) -> StageResult {
    let mut outputs = Map::new();
    outputs.insert("released".into(), json!(true));
    outputs.insert("version".into(), json!(version.text()));
    outputs.insert("tag".into(), json!(tag));
    outputs.insert(
        "previous".into(),
        json!(previous.map(|p| p.tag(prefix)).unwrap_or_default()),
    );
    Ok(outputs)
}

/// The strongest marker and where it was found (for the log): the stage's `message`, else a
/// pull request's `title`, else the commits of `commit` since the `released` ones.
async fn find_marker(
    repo: &std::path::Path,
    commit: &str,
    spec: &ReleaseStage,
    title: Option<&str>,
    released: &[String],
) -> Result<Option<(Bump, String)>, gantry_git::GitError> {
    if let Some(message) = &spec.message {
        return Ok(marker(message).map(|bump| (bump, "the stage's message".to_owned())));
    }
    if let Some(title) = title
        && let Some(bump) = marker(title)
    {
        return Ok(Some((bump, format!("the pull request's title {title:?}"))));
    }
    let messages = gantry_git::commit_messages_since(repo, commit, released).await?;
    let count = messages.len();
    // The newest of the strongest, for the log.
    let mut strongest: Option<(Bump, &String)> = None;
    for message in &messages {
        if let Some(bump) = marker(message)
            && strongest.is_none_or(|(best, _)| bump > best)
        {
            strongest = Some((bump, message));
        }
    }
    Ok(strongest.map(|(bump, message)| {
            let subject = message.lines().next().unwrap_or_default();
            let plural = if count == 1 { "" } else { "s" };
            (
                bump,
                format!("the strongest marker of {count} commit{plural} since the last release, in {subject:?}"),
            )
        }))
}

/// A pull request's title, when the trigger carries one: a GitHub `pull_request` event or a
/// GitLab merge request event delivered to a generic webhook, or an upstream execution's
/// trigger that carried one (its fields are passed on as they were).
fn pull_request_title(trigger: &TriggerData) -> Option<String> {
    let fields = match &trigger.cause {
        Cause::Webhook { payload, .. } => json!({ "payload": payload }),
        Cause::Pipeline(PipelineCause::Upstream(upstream)) => {
            Value::Object(upstream.inherited.clone())
        }
        _ => return None,
    };
    let text = |pointer: &str| {
        fields
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|title| !title.is_empty())
            .map(str::to_owned)
    };
    text("/pullRequest/title")
        .or_else(|| text("/payload/pull_request/title"))
        .or_else(|| {
            (text("/payload/object_kind").as_deref() == Some("merge_request"))
                .then(|| text("/payload/object_attributes/title"))
                .flatten()
        })
}

fn bump_name(bump: Bump) -> &'static str {
    match bump {
        Bump::Major => "major",
        Bump::Minor => "minor",
        Bump::Patch => "patch",
    }
}

/// The strongest marker in the message.
fn marker(message: &str) -> Option<Bump> {
    let lower = message.to_lowercase();
    [
        ("[major]", Bump::Major),
        ("[minor]", Bump::Minor),
        ("[patch]", Bump::Patch),
    ]
    .into_iter()
    .find(|(text, _)| lower.contains(text))
    .map(|(_, bump)| bump)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Version(u64, u64, u64);

impl Version {
    /// `1.2.3` or `1.2.3-anything`.
    fn parse(text: &str) -> Option<Version> {
        let core = text.split_once('-').map_or(text, |(core, _)| core);
        let mut parts = core.split('.');
        let version = Version(
            parts.next()?.parse().ok()?,
            parts.next()?.parse().ok()?,
            parts.next()?.parse().ok()?,
        );
        parts.next().is_none().then_some(version)
    }

    fn bump(self, bump: Bump) -> Version {
        match bump {
            Bump::Major => Version(self.0 + 1, 0, 0),
            Bump::Minor => Version(self.0, self.1 + 1, 0),
            Bump::Patch => Version(self.0, self.1, self.2 + 1),
        }
    }

    fn text(self) -> String {
        format!("{}.{}.{}", self.0, self.1, self.2)
    }

    fn tag(self, prefix: &str) -> String {
        format!("{prefix}{}", self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_markers() {
        assert_eq!(Version::parse("1.2.3-abc1234"), Some(Version(1, 2, 3)));
        assert_eq!(Version::parse("1.2"), None);
        assert_eq!(Version::parse("1.2.3.4"), None);
        assert_eq!(Version(1, 2, 3).bump(Bump::Minor), Version(1, 3, 0));
        assert_eq!(Version(1, 2, 3).bump(Bump::Major), Version(2, 0, 0));
        assert_eq!(marker("fix: x [Patch]"), Some(Bump::Patch));
        assert_eq!(marker("big [minor] and [major]"), Some(Bump::Major));
        assert_eq!(marker("nothing"), None);
        assert!(Version(1, 10, 0) > Version(1, 9, 9));
    }

    #[test]
    fn pull_request_titles_of_github_and_gitlab_payloads() {
        let check = |trigger: Value, expected: Option<&str>| {
            let typed = TriggerData::from_stored(&trigger).unwrap();
            assert_eq!(pull_request_title(&typed).as_deref(), expected, "{trigger}");
        };
        let webhook =
            |payload: Value| json!({"type": "webhook", "source": "hook", "payload": payload});
        check(
            webhook(json!({"action": "closed", "pull_request": {"title": "Login [minor]"}})),
            Some("Login [minor]"),
        );
        check(
            webhook(
                json!({"object_kind": "merge_request", "object_attributes": {"title": "x [major]"}}),
            ),
            Some("x [major]"),
        );
        // A GitLab push event has `object_attributes` of another kind.
        check(
            webhook(json!({"object_kind": "note", "object_attributes": {"title": "[major]"}})),
            None,
        );
        check(
            json!({"type": "git", "via": "git", "repository": "app", "ref": "refs/heads/main",
                   "commit": "c", "before": "b", "message": "[major]"}),
            None,
        );
        let upstream = json!({"pipeline": "build", "execution": "e", "status": "succeeded"});
        check(
            json!({"type": "pipeline", "upstream": upstream, "pullRequest": {"title": "  "}}),
            None,
        );
        check(
            json!({"type": "pipeline", "upstream": upstream,
                   "payload": {"pull_request": {"title": "Passed on [patch]"}}}),
            Some("Passed on [patch]"),
        );
    }
}
