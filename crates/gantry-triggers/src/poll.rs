//! `git` triggers with `poll`: external repositories that cannot send webhooks are listed with
//! `ls-remote` on their interval. A ref whose commit differs from the last one seen (kept in
//! the store, so a restart does not report it again) is dispatched like a push; the per-commit
//! claim makes a commit that a webhook already reported start nothing twice.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gantry_config::Trigger;
use gantry_git::{RefUpdate, Remote};
use tokio_util::sync::CancellationToken;

use crate::Triggers;
use crate::push::{Push, Source, now, repository_name};

/// How often the poller looks for triggers that are due.
const TICK: Duration = Duration::from_millis(500);

pub(crate) async fn run(triggers: Triggers, shutdown: CancellationToken) {
    let mut last: HashMap<String, Instant> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        // One interval per URL: the shortest any trigger on it asks for; the credentials of
        // the first trigger on it that has some.
        let mut due: HashMap<String, (Duration, Option<String>)> = HashMap::new();
        // The watched pipelines as last read: `PipelineWatch::follow` keeps them current.
        for pipeline in triggers.pipelines.latest().iter() {
            for trigger in &pipeline.triggers {
                if let Trigger::Git(git) = trigger
                    && let (Some(url), Some(every)) = (&git.url, git.poll)
                {
                    let entry = due
                        .entry(url.clone())
                        .or_insert((every, git.credentials.clone()));
                    entry.0 = entry.0.min(every);
                    if entry.1.is_none() {
                        entry.1 = git.credentials.clone();
                    }
                }
            }
        }
        for (url, (every, credentials)) in due {
            if last.get(&url).is_some_and(|at| at.elapsed() < every) {
                continue;
            }
            last.insert(url.clone(), Instant::now());
            poll_once(&triggers, &url, credentials.as_deref()).await;
        }
    }
}

async fn poll_once(triggers: &Triggers, url: &str, credentials: Option<&str>) {
    let credentials = match credentials {
        Some(name) => match triggers.credentials(name).await {
            Ok(credentials) => Some(credentials),
            Err(error) => {
                metrics::counter!("gantry_poll_failures_total").increment(1);
                tracing::warn!(%url, %error, "polling failed");
                return;
            }
        },
        None => None,
    };
    let remote = Remote::new(url).with_credentials(credentials);
    let refs = match gantry_git::ls_remote(&remote).await {
        Ok(refs) => refs,
        Err(error) => {
            metrics::counter!("gantry_poll_failures_total").increment(1);
            tracing::warn!(%url, %error, "polling failed");
            return;
        }
    };
    let store = &triggers.store;
    for remote in refs {
        let key = format!("poll:{url}:{}", remote.name);
        let seen = store.trigger_value(&key).await.ok().flatten();
        if seen.as_deref() == Some(remote.commit.as_str()) {
            continue;
        }
        if let Err(error) = store.set_trigger_value(&key, &remote.commit, now()).await {
            tracing::error!(%url, %error, "cannot record a polled ref");
            continue;
        }
        let repository = repository_name(url);
        let push = Push {
            source: Source::Polled(url.to_owned()),
            repository,
            url: Some(url.to_owned()),
            update: RefUpdate {
                old: seen.unwrap_or_else(|| "0".repeat(40)),
                new: remote.commit,
                name: remote.name,
            },
            via: "poll",
            pusher: None,
            author: None,
            message: None,
            changed_files: None,
            delivery_id: None,
        };
        triggers.dispatch(push).await;
    }
}
