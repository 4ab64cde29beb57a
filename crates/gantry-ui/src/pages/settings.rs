//! The pages of what surrounds pipelines: `/triggers` (each trigger with
//! the executions it started and its recent deliveries, and the log of
//! recent deliveries of every kind, refused or ignored ones with why), `/repositories` (hosted git repositories
//! with their clone URLs, and the APT repositories, snapshots and
//! publications) and `/tokens` (API tokens; an admin sees and manages all,
//! anyone else only their own, as the API decides).

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use gantry_wire::apt::{PublicationList, RepoList, SnapshotList};
use gantry_wire::git::{RepositoryList, TriggerList, WebhookDeliveryEntry, WebhookDeliveryLog};
use gantry_wire::tokens::TokenList;

use crate::api_client::Api;
use crate::error::{PageResult, html};
use crate::format;
use crate::layout::Layout;
use crate::pages::encode;
use crate::pages::pipelines::{RunCell, executions_of};
use crate::session::Session;

/// Executions shown per trigger.
const DELIVERIES: usize = 5;

/// Deliveries shown in the log, newest first.
const RECENT_DELIVERIES: usize = 30;

/// Deliveries read to find each trigger's latest ones (the log keeps 500).
const READ_DELIVERIES: usize = 200;

/// Deliveries shown per trigger, newest first.
const TRIGGER_DELIVERIES: usize = 3;

#[derive(Template)]
#[template(path = "triggers.html")]
struct TriggersPage {
    layout: Layout,
    triggers: Vec<TriggerRow>,
    deliveries: Vec<DeliveryRow>,
}

#[derive(Clone)]
struct DeliveryRow {
    received: String,
    /// The trigger kind (`webhook`, `git`, `cron`, `artifact`).
    kind: String,
    /// The pipeline it is about, for the kinds other than webhooks.
    pipeline: Option<String>,
    sender: String,
    outcome: String,
    /// `(colour class, symbol, word)`: started, accepted without starting
    /// anything, or refused (the sender was answered with an error).
    badge: (&'static str, &'static str, String),
    reason: String,
    /// `(label, href)` of each execution it started.
    started: Vec<(String, String)>,
}

impl DeliveryRow {
    fn of(entry: WebhookDeliveryEntry) -> DeliveryRow {
        let webhook = entry.kind == "webhook";
        DeliveryRow {
            received: format::when(&entry.received_at),
            sender: match entry.source {
                Some(source) if webhook => format!("{} {source}", entry.provider),
                Some(source) => format!("{} {source}", entry.kind),
                None => entry.provider,
            },
            badge: match entry.outcome.as_str() {
                "started" => ("st-succeeded", "✓", entry.outcome.clone()),
                "ignored" | "duplicate" => ("st-skipped", "–", entry.outcome.clone()),
                // A trigger that could not start its pipeline refused nobody.
                "failed" if !webhook => ("st-failed", "✗", entry.outcome.clone()),
                refused => ("st-failed", "✗", format!("refused: {refused}")),
            },
            outcome: entry.outcome,
            kind: entry.kind,
            pipeline: entry.pipeline,
            reason: entry.reason.unwrap_or_default(),
            started: entry
                .started
                .into_iter()
                .map(|s| {
                    let href = format!("/executions/{}", encode(&s.execution));
                    (s.pipeline, href)
                })
                .collect(),
        }
    }

    /// Whether this delivery is one of the trigger's: about its pipeline, of its kind (a
    /// webhook delivery: one that started its pipeline).
    fn is_of(&self, pipeline: &str, kind: &str) -> bool {
        match &self.pipeline {
            Some(of) => of == pipeline && self.kind == kind,
            None => {
                self.kind == "webhook"
                    && matches!(kind, "webhook" | "git")
                    && self.started.iter().any(|(label, _)| label == pipeline)
            }
        }
    }
}

struct TriggerRow {
    pipeline: String,
    pipeline_href: String,
    kind: String,
    watches: String,
    started: Vec<RunCell>,
    /// Its latest deliveries, newest first.
    deliveries: Vec<DeliveryRow>,
}

pub async fn triggers(State(api): State<Api>, session: Session) -> PageResult {
    let deliveries_path = format!("/api/v1/trigger-deliveries?limit={READ_DELIVERIES}");
    let (list, deliveries) = futures::join!(
        api.get::<TriggerList>(&session, "/api/v1/triggers"),
        api.get::<WebhookDeliveryLog>(&session, &deliveries_path),
    );
    let (list, deliveries) = (list?, deliveries?);
    let started = executions_of(
        &api,
        &session,
        list.triggers.iter().map(|t| {
            format!(
                "/api/v1/executions?pipeline={}&trigger={}&limit={DELIVERIES}",
                encode(&t.pipeline),
                encode(&t.kind)
            )
        }),
    )
    .await;
    let deliveries: Vec<DeliveryRow> = deliveries
        .deliveries
        .into_iter()
        .map(DeliveryRow::of)
        .collect();
    let mut triggers = Vec::new();
    for (trigger, started) in list.triggers.into_iter().zip(started) {
        triggers.push(TriggerRow {
            pipeline_href: format!("/pipelines/{}", encode(&trigger.pipeline)),
            started: started?.executions.iter().map(RunCell::of).collect(),
            deliveries: deliveries
                .iter()
                .filter(|d| d.is_of(&trigger.pipeline, &trigger.kind))
                .take(TRIGGER_DELIVERIES)
                .cloned()
                .collect(),
            pipeline: trigger.pipeline,
            kind: trigger.kind,
            watches: trigger.watches,
        });
    }
    html(&TriggersPage {
        layout: Layout::new("Triggers", "triggers", session),
        triggers,
        deliveries: deliveries.into_iter().take(RECENT_DELIVERIES).collect(),
    })
}

#[derive(Template)]
#[template(path = "repositories.html")]
struct RepositoriesPage {
    layout: Layout,
    git: Vec<(String, bool, String)>,
    apt_repos: RepoList,
    snapshots: Vec<(String, String, String, usize)>,
    publications: Vec<(String, String, String, String)>,
}

pub async fn repositories(
    State(api): State<Api>,
    session: Session,
    headers: HeaderMap,
) -> PageResult {
    let (git, repos, snapshots, publications) = futures::join!(
        api.get::<RepositoryList>(&session, "/api/v1/repos"),
        api.get::<RepoList>(&session, "/api/v1/apt/repos"),
        api.get::<SnapshotList>(&session, "/api/v1/apt/snapshots"),
        api.get::<PublicationList>(&session, "/api/v1/apt/publish"),
    );
    // The clone URL as the browser reached this server.
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    html(&RepositoriesPage {
        layout: Layout::new("Repositories", "repositories", session),
        git: git?
            .repositories
            .into_iter()
            .map(|r| {
                let url = format!("{scheme}://{host}/git/{}.git", encode(&r.name));
                (r.name, r.public, url)
            })
            .collect(),
        apt_repos: repos?,
        snapshots: snapshots?
            .snapshots
            .into_iter()
            .map(|s| {
                let count = s.packages.as_ref().map_or(0, Vec::len);
                (
                    s.name,
                    s.description,
                    format::when_millis(s.created_at),
                    count,
                )
            })
            .collect(),
        publications: publications?
            .publications
            .into_iter()
            .map(|p| {
                let sources = p
                    .sources
                    .iter()
                    .map(|s| format!("{} ({})", s.name, s.component))
                    .collect::<Vec<_>>()
                    .join(", ");
                let prefix = if p.prefix.is_empty() {
                    ".".to_owned()
                } else {
                    p.prefix
                };
                (prefix, p.distribution, sources, p.architectures.join(", "))
            })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    layout: Layout,
    tokens: TokenList,
}

pub async fn tokens(State(api): State<Api>, session: Session) -> PageResult {
    let tokens: TokenList = api.get(&session, "/api/v1/tokens").await?;
    html(&TokensPage {
        layout: Layout::new("Tokens", "tokens", session),
        tokens,
    })
}

impl TokensPage {
    fn revoke_api(&self, id: &str) -> String {
        format!("DELETE /api/v1/tokens/{}", encode(id))
    }

    fn when(&self, at: &str) -> String {
        format::when(at)
    }
}
