//! The pages of what surrounds pipelines: `/triggers` (each trigger with
//! the executions it started, and the recent webhook deliveries, refused
//! ones with why), `/repositories` (hosted git repositories
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

/// Webhook deliveries shown, newest first.
const RECENT_DELIVERIES: usize = 30;

#[derive(Template)]
#[template(path = "triggers.html")]
struct TriggersPage {
    layout: Layout,
    triggers: Vec<TriggerRow>,
    deliveries: Vec<DeliveryRow>,
}

struct DeliveryRow {
    received: String,
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
        DeliveryRow {
            received: format::when(&entry.received_at),
            sender: match entry.source {
                Some(source) => format!("{} {source}", entry.provider),
                None => entry.provider,
            },
            badge: match entry.outcome.as_str() {
                "started" => ("st-succeeded", "✓", entry.outcome.clone()),
                "ignored" | "duplicate" => ("st-skipped", "–", entry.outcome.clone()),
                refused => ("st-failed", "✗", format!("refused: {refused}")),
            },
            outcome: entry.outcome,
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
}

struct TriggerRow {
    pipeline: String,
    pipeline_href: String,
    kind: String,
    watches: String,
    started: Vec<RunCell>,
}

pub async fn triggers(State(api): State<Api>, session: Session) -> PageResult {
    let deliveries_path = format!("/api/v1/webhook-deliveries?limit={RECENT_DELIVERIES}");
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
    let mut triggers = Vec::new();
    for (trigger, started) in list.triggers.into_iter().zip(started) {
        triggers.push(TriggerRow {
            pipeline_href: format!("/pipelines/{}", encode(&trigger.pipeline)),
            started: started?.executions.iter().map(RunCell::of).collect(),
            pipeline: trigger.pipeline,
            kind: trigger.kind,
            watches: trigger.watches,
        });
    }
    html(&TriggersPage {
        layout: Layout::new("Triggers", "triggers", session),
        triggers,
        deliveries: deliveries
            .deliveries
            .into_iter()
            .map(DeliveryRow::of)
            .collect(),
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
