//! One reported push, matched against every pipeline's `git` triggers. Whoever reports a
//! commit first (the git server, a webhook, a poller) starts the pipeline; the others find the
//! claim `commit:PIPELINE:SHA` taken.

use gantry_config::{GitTrigger, Pipeline, Trigger};
use gantry_git::{RefUpdate, Remote};
use gantry_store::{Cause, GitPush, TriggerData};
use serde::Serialize;

use crate::deliveries::{Outcome, Seen};
use crate::filters::{files_match, ref_matches};
use crate::kinds::TriggerKind;
use crate::{ManualRefError, StartRequest, Triggers};

/// Where a push happened.
#[derive(Clone, Debug)]
pub enum Source {
    /// A repository Gantry hosts, by name.
    Hosted(String),
    /// An external repository reported by a webhook: its URLs (clone, web, ssh), and the
    /// trigger secret that verified the delivery, which a trigger must hold to match.
    Webhook { urls: Vec<String>, secret: String },
    /// An external repository found changed by a poller.
    Polled(String),
}

#[derive(Clone, Debug)]
pub struct Push {
    pub source: Source,
    /// A short name for `REPO_NAME` (the hosted name, or the last segment of the URL).
    pub repository: String,
    /// What clones it: the URL recorded in the trigger and used for the workspace.
    pub url: Option<String>,
    pub update: RefUpdate,
    /// `github`, `gitlab`, `git` (a push to a hosted repository), `poll`.
    pub via: &'static str,
    pub pusher: Option<String>,
    pub author: Option<String>,
    pub message: Option<String>,
    /// Files the push changed, when the reporter knows them.
    pub changed_files: Option<Vec<String>>,
    pub delivery_id: Option<String>,
}

/// An execution a push started.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub pipeline: String,
    pub execution: String,
}

impl Triggers {
    /// Starts every pipeline whose `git` trigger matches the push, once per commit. What
    /// became of a push to a hosted or polled repository is added to the delivery log for
    /// each pipeline with a trigger on that repository (a webhook's push is logged as its
    /// delivery).
    pub async fn dispatch(&self, mut push: Push) -> Vec<Started> {
        if push.update.is_delete() {
            return Vec::new();
        }
        let mut started = Vec::new();
        let commit = push.update.new.clone();
        let logged = !matches!(push.source, Source::Webhook { .. });
        let short = commit.get(..7).unwrap_or(&commit);
        let seen_source = format!("{} {} {short}", push.repository, push.update.name);
        let via = push.via;
        for pipeline in self.pipelines().await.iter() {
            let seen = || Seen {
                kind: crate::git::GitKind.name(),
                via,
                source: seen_source.clone(),
                pipeline: &pipeline.name,
            };
            let mut matched = None;
            let mut passed_by = None;
            for trigger in &pipeline.triggers {
                let Trigger::Git(trigger) = trigger else {
                    continue;
                };
                if !self.source_matches(trigger, &push.source).await {
                    continue;
                }
                if !ref_matches(trigger, &push.update.name) {
                    passed_by = Some(ref_mismatch(trigger, &push.update.name));
                    continue;
                }
                if has_file_filters(trigger) && push.changed_files.is_none() {
                    push.changed_files = self.changed_files(&push).await;
                }
                if files_match(trigger, push.changed_files.as_deref()) {
                    matched = Some(trigger);
                    break;
                }
                passed_by = Some("no changed file is one the trigger watches".to_owned());
            }
            let Some(trigger) = matched else {
                if let (true, Some(why)) = (logged, passed_by) {
                    self.log_seen(seen(), Outcome::Ignored(why)).await;
                }
                continue;
            };
            let key = format!("commit:{}:{commit}", pipeline.name);
            match self.store.claim_trigger(&key, push.via, now()).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::debug!(pipeline = %pipeline.name, %commit, via = push.via, "commit already triggered this pipeline");
                    if logged {
                        let why = format!("commit {short} already started this pipeline");
                        self.log_seen(seen(), Outcome::Duplicate(why)).await;
                    }
                    continue;
                }
                Err(error) => {
                    tracing::error!(pipeline = %pipeline.name, %error, "cannot claim the trigger");
                    if logged {
                        let why = format!("cannot claim the commit: {error}");
                        self.log_seen(seen(), Outcome::Failed(why)).await;
                    }
                    continue;
                }
            }
            if push.author.is_none() || push.message.is_none() {
                self.fill_commit_info(&mut push).await;
            }
            let request = self.request(pipeline, trigger, &push).await;
            let outcome = match self.orchestrator.start(request).await {
                Ok(execution) => {
                    tracing::info!(pipeline = %pipeline.name, %execution, %commit, ref_name = %push.update.name, via = push.via, "push triggered an execution");
                    started.push(Started {
                        pipeline: pipeline.name.clone(),
                        execution: execution.clone(),
                    });
                    Outcome::Started(execution)
                }
                Err(error) => {
                    tracing::error!(pipeline = %pipeline.name, %error, "push trigger cannot start the pipeline");
                    Outcome::Failed(error.to_string())
                }
            };
            if logged {
                self.log_seen(seen(), outcome).await;
            }
        }
        started
    }

    /// The execution a push starts through `trigger`: its context, and the pipeline file the
    /// trigger names read at the commit (or why it cannot run, for the execution to fail with).
    async fn request(
        &self,
        pipeline: &Pipeline,
        trigger: &GitTrigger,
        push: &Push,
    ) -> StartRequest {
        let mut context = git_push(push);
        // The name only: the workspace checkout reads the value from the store.
        context.credentials = trigger.credentials.clone();
        context.config = trigger.config.clone();
        let spec = match self.pipeline_at_commit(pipeline, trigger, push).await {
            Ok(spec) => spec,
            Err(reason) => {
                tracing::warn!(pipeline = %pipeline.name, commit = %push.update.new, %reason, "the trigger's pipeline file cannot run");
                context.config_error = Some(reason);
                None
            }
        };
        let spec = crate::config::with_substitutions(spec, pipeline, &trigger.substitutions);
        StartRequest {
            pipeline: pipeline.name.clone(),
            trigger: TriggerData::new(Cause::Git(context)),
            spec,
            parameters: trigger.parameters.clone(),
        }
    }

    async fn changed_files(&self, push: &Push) -> Option<Vec<String>> {
        let Source::Hosted(name) = &push.source else {
            return None;
        };
        let path = self.repos.existing(name).ok()?;
        gantry_git::changed_files(&path, &push.update.old, &push.update.new)
            .await
            .ok()
    }

    async fn fill_commit_info(&self, push: &mut Push) {
        let Source::Hosted(name) = &push.source else {
            return;
        };
        let Ok(path) = self.repos.existing(name) else {
            return;
        };
        if let Ok(info) = gantry_git::commit_info(&path, &push.update.new).await {
            push.author.get_or_insert(info.author);
            push.message.get_or_insert(info.message);
        }
    }
}

/// Why a push of `ref_name` passed a trigger by, for the delivery log.
fn ref_mismatch(trigger: &GitTrigger, ref_name: &str) -> String {
    match (&trigger.branch, &trigger.tag) {
        (Some(branch), _) => format!("{ref_name} does not match the trigger's branch {branch}"),
        (None, Some(tag)) => format!("{ref_name} does not match the trigger's tag {tag}"),
        (None, None) => format!("{ref_name} is not a branch"),
    }
}

fn has_file_filters(trigger: &GitTrigger) -> bool {
    !trigger.included_files.is_empty() || !trigger.ignored_files.is_empty()
}

impl Triggers {
    /// Whether the trigger watches where the push happened; a webhook's push only matches
    /// triggers on its repository whose secret verified the delivery.
    async fn source_matches(&self, trigger: &GitTrigger, source: &Source) -> bool {
        match source {
            Source::Hosted(name) => trigger.repository.as_deref() == Some(name.as_str()),
            Source::Webhook { urls, secret } => {
                let on_repository = trigger
                    .url
                    .as_deref()
                    .is_some_and(|url| urls.iter().any(|u| same_repository(u, url)));
                on_repository
                    && self
                        .webhook_secret(trigger.secret.as_deref(), trigger.secret_from.as_deref())
                        .await
                        .is_some_and(|value| &value == secret)
            }
            Source::Polled(url) => {
                trigger.poll.is_some()
                    && trigger
                        .url
                        .as_deref()
                        .is_some_and(|t| same_repository(t, url))
            }
        }
    }
}

/// `https://Host/org/app.git/` and `https://host/org/app` name one repository.
pub(crate) fn same_repository(a: &str, b: &str) -> bool {
    fn normal(url: &str) -> String {
        let url = url.trim().trim_end_matches('/');
        url.strip_suffix(".git").unwrap_or(url).to_lowercase()
    }
    normal(a) == normal(b)
}

/// The execution's `trigger` for a push: what `${{ trigger.* }}` and the step environment read.
fn git_push(push: &Push) -> GitPush {
    GitPush {
        via: push.via.to_owned(),
        repository: push.repository.clone(),
        url: push.url.clone(),
        reference: push.update.name.clone(),
        branch: push.update.branch().map(str::to_owned),
        tag: push.update.tag().map(str::to_owned),
        commit: push.update.new.clone(),
        before: push.update.old.clone(),
        author: push.author.clone(),
        message: push.message.clone(),
        pusher: push.pusher.clone(),
        delivery_id: push.delivery_id.clone(),
        credentials: None,
        config: None,
        config_error: None,
    }
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Dispatches the pushes stages make to hosted repositories (release tags, GitOps commits).
pub(crate) async fn follow_local_pushes(
    triggers: Triggers,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use tokio::sync::broadcast::error::RecvError;
    let mut pushes = triggers.repos.subscribe();
    loop {
        let push = tokio::select! {
            _ = shutdown.cancelled() => return,
            push = pushes.recv() => push,
        };
        match push {
            Ok(local) => {
                let push = Push {
                    source: Source::Hosted(local.repository.clone()),
                    repository: local.repository,
                    url: None,
                    update: local.update,
                    via: "git",
                    pusher: Some(local.pusher),
                    author: None,
                    message: None,
                    changed_files: None,
                    delivery_id: None,
                };
                let triggers = triggers.clone();
                tokio::spawn(async move { triggers.dispatch(push).await });
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "git triggers fell behind Gantry's own pushes")
            }
            Err(RecvError::Closed) => return,
        }
    }
}

impl Triggers {
    /// A run by hand on `reference` (a branch or tag) of the repository the pipeline's first
    /// `git` trigger watches: the same context (and `config:` file) a push of it would give.
    /// `user` is who asked.
    pub async fn manual_ref(
        &self,
        pipeline: &Pipeline,
        reference: &str,
        user: &str,
    ) -> Result<StartRequest, ManualRefError> {
        let git = pipeline
            .triggers
            .iter()
            .find_map(|t| match t {
                Trigger::Git(git) => Some(git),
                _ => None,
            })
            .ok_or_else(|| ManualRefError::NoGitTrigger {
                pipeline: pipeline.name.clone(),
                reference: reference.to_owned(),
            })?;
        let (remote, repository, url) = match (&git.repository, &git.url) {
            (Some(name), _) => {
                let path = self
                    .repos
                    .existing(name)
                    .map_err(|e| ManualRefError::Repository(e.to_string()))?;
                (Remote::new(path.to_string_lossy()), name.clone(), None)
            }
            (None, Some(url)) => {
                let credentials = match &git.credentials {
                    Some(name) => Some(
                        self.credentials(name)
                            .await
                            .map_err(ManualRefError::Repository)?,
                    ),
                    None => None,
                };
                (
                    Remote::new(url.as_str()).with_credentials(credentials),
                    repository_name(url),
                    Some(url.clone()),
                )
            }
            (None, None) => return Err(ManualRefError::NoRepository),
        };
        let refs = gantry_git::ls_remote(&remote)
            .await
            .map_err(|e| ManualRefError::Repository(e.to_string()))?;
        let wanted = [
            reference.to_owned(),
            format!("refs/heads/{reference}"),
            format!("refs/tags/{reference}"),
        ];
        let found = wanted
            .iter()
            .find_map(|name| refs.iter().find(|r| &r.name == name))
            .ok_or_else(|| ManualRefError::NoSuchRef {
                repository: repository.clone(),
                reference: reference.to_owned(),
            })?;
        let source = match &url {
            Some(url) => Source::Polled(url.clone()),
            None => Source::Hosted(repository.clone()),
        };
        let mut push = Push {
            source,
            repository,
            url,
            update: RefUpdate {
                old: "0".repeat(40),
                new: found.commit.clone(),
                name: found.name.clone(),
            },
            via: "manual",
            pusher: None,
            author: None,
            message: None,
            changed_files: None,
            delivery_id: None,
        };
        if push.url.is_none() {
            self.fill_commit_info(&mut push).await;
        }
        let mut request = self.request(pipeline, git, &push).await;
        // The push it would have been, recorded as a run by hand.
        if let Cause::Git(source) = request.trigger.cause {
            request.trigger.cause = Cause::Manual {
                user: Some(user.to_owned()),
                source: Some(source),
            };
        }
        Ok(request)
    }
}

/// The last segment of a URL without `.git`: `REPO_NAME` for an external repository.
pub(crate) fn repository_name(url: &str) -> String {
    url.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(url)
        .trim_end_matches(".git")
        .to_owned()
}
