//! Who the runners are: registration tokens, registering, authenticating a
//! credential, and the admin's enable/disable/remove.
//!
//! A credential is `RUNNER_ID.SECRET`: the id finds the runner, then the
//! secret's hash is compared with the stored one in constant time, so a
//! refusal names the runner the credential claims to be (for the log) and
//! the comparison leaks nothing about the secret.

use std::time::Duration;

use gantry_store::{Millis, RunnerRecord, RunnerTokenRecord, Store, StoreError};
use serde::Serialize;

use super::dispatcher::Dispatcher;
use super::error::RunnerError;
use super::secret;
use crate::protocol::{PROTOCOL_VERSION, RegisterRequest, RegisterResponse};

pub const ENABLED: &str = "enabled";
pub const DISABLED: &str = "disabled";

/// The runners' registry; cheap to clone.
#[derive(Clone)]
pub struct RunnerRegistry {
    store: Store,
    dispatcher: Dispatcher,
}

/// A registration token as created; `token` is shown this once.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    pub id: String,
    pub token: String,
    pub expires_at: Option<Millis>,
    pub uses_left: Option<i64>,
}

/// A runner as `gantry runner list` shows it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunnerStatus {
    pub id: String,
    pub name: String,
    pub state: String,
    pub labels: Vec<String>,
    pub capacity: i64,
    /// Leases it holds now.
    pub load: usize,
    pub version: String,
    pub created_at: Millis,
    pub last_contact_at: Option<Millis>,
}

impl RunnerRegistry {
    /// The registry of runners whose leases `dispatcher` keeps: disabling
    /// or removing a runner takes its leases back through it.
    pub fn new(store: Store, dispatcher: Dispatcher) -> RunnerRegistry {
        RunnerRegistry { store, dispatcher }
    }

    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// A registration token, valid for `valid_for` (forever if `None`) and
    /// `uses` registrations (unlimited if `None`).
    pub async fn create_token(
        &self,
        now: Millis,
        valid_for: Option<Duration>,
        uses: Option<i64>,
    ) -> Result<CreatedToken, RunnerError> {
        if uses.is_some_and(|n| n < 1) {
            return Err(RunnerError::Invalid(
                "a token's uses must be at least 1".into(),
            ));
        }
        let token = secret::generate("grt_");
        let record = RunnerTokenRecord {
            id: uuid::Uuid::now_v7().to_string(),
            hash: secret::hash(&token),
            created_at: now,
            expires_at: valid_for.map(|d| now.saturating_add(d.as_millis() as i64)),
            uses_left: uses,
        };
        self.store.create_runner_token(&record).await?;
        tracing::info!(token = %record.id, expires_at = ?record.expires_at, uses = ?uses, "runner registration token created");
        Ok(CreatedToken {
            id: record.id,
            token,
            expires_at: record.expires_at,
            uses_left: record.uses_left,
        })
    }

    /// Exchanges a registration token for a new runner and its credential.
    pub async fn register(
        &self,
        request: RegisterRequest,
        now: Millis,
    ) -> Result<RegisterResponse, RunnerError> {
        if request.protocol != PROTOCOL_VERSION {
            return Err(RunnerError::Protocol {
                theirs: request.protocol.to_string(),
                ours: PROTOCOL_VERSION,
            });
        }
        let problems = validate(&request);
        if !problems.is_empty() {
            return Err(RunnerError::Invalid(problems.join("; ")));
        }
        // Checked before the token is used up, so that a name clash does not
        // cost a single-use token.
        if self
            .store
            .runners()
            .await?
            .iter()
            .any(|r| r.name == request.name)
        {
            return Err(RunnerError::NameTaken(request.name));
        }
        if self
            .store
            .use_runner_token(&secret::hash(&request.token), now)
            .await?
            .is_none()
        {
            return Err(RunnerError::TokenRefused);
        }
        let id = uuid::Uuid::now_v7().to_string();
        let credential_secret = secret::generate("grc_");
        let record = RunnerRecord {
            id: id.clone(),
            name: request.name.clone(),
            labels: normalized_labels(&request.labels),
            capacity: i64::from(request.capacity),
            state: ENABLED.into(),
            credential_hash: secret::hash(&credential_secret),
            version: request.version,
            created_at: now,
            last_contact_at: Some(now),
        };
        match self.store.create_runner(&record).await {
            Err(StoreError::Conflict { .. }) => return Err(RunnerError::NameTaken(request.name)),
            other => other?,
        }
        tracing::info!(runner = %record.name, labels = ?record.labels, capacity = record.capacity, "runner registered");
        Ok(RegisterResponse {
            runner_id: id.clone(),
            name: record.name,
            credential: format!("{id}.{credential_secret}"),
            timing: crate::protocol::timing(),
        })
    }

    /// The enabled runner a credential belongs to.
    pub async fn authenticate(&self, credential: &str) -> Result<RunnerRecord, RunnerError> {
        let refused = |runner: Option<&RunnerRecord>, why: &str| RunnerError::CredentialRefused {
            runner: runner.map(|r| r.name.clone()),
            why: why.into(),
        };
        let Some((id, secret)) = credential.split_once('.') else {
            return Err(refused(None, "malformed credential"));
        };
        let Some(runner) = self.store.runner(id).await? else {
            return Err(refused(None, "no such runner (removed?)"));
        };
        if !secret::matches(secret, &runner.credential_hash) {
            return Err(refused(Some(&runner), "wrong secret"));
        }
        if runner.state != ENABLED {
            return Err(refused(Some(&runner), "the runner is disabled"));
        }
        Ok(runner)
    }

    /// Every runner with its load now.
    pub async fn list(&self) -> Result<Vec<RunnerStatus>, RunnerError> {
        let runners = self.store.runners().await?;
        Ok(runners
            .into_iter()
            .map(|r| RunnerStatus {
                load: self.dispatcher.load_of(&r.id),
                id: r.id,
                name: r.name,
                state: r.state,
                labels: r.labels,
                capacity: r.capacity,
                version: r.version,
                created_at: r.created_at,
                last_contact_at: r.last_contact_at,
            })
            .collect())
    }

    /// Refuses the runner's credential from now on and takes its leases
    /// back (their jobs go back to their owners as lost).
    pub async fn disable(&self, name: &str, now: Millis) -> Result<RunnerRecord, RunnerError> {
        let runner = self.store.set_runner_state(name, DISABLED).await?;
        self.revoked(runner, name, now, "disabled").await
    }

    pub async fn enable(&self, name: &str) -> Result<RunnerRecord, RunnerError> {
        let runner = self
            .store
            .set_runner_state(name, ENABLED)
            .await?
            .ok_or_else(|| RunnerError::NoSuchRunner(name.into()))?;
        tracing::info!(runner = %runner.name, "runner enabled");
        Ok(runner)
    }

    /// Forgets the runner (its credential with it) and takes its leases back.
    pub async fn remove(&self, name: &str, now: Millis) -> Result<RunnerRecord, RunnerError> {
        let runner = self.store.remove_runner(name).await?;
        self.revoked(runner, name, now, "removed").await
    }

    /// Takes back the leases of a runner whose credential the store now
    /// refuses (`what` it became: disabled, removed).
    async fn revoked(
        &self,
        runner: Option<RunnerRecord>,
        name: &str,
        now: Millis,
        what: &str,
    ) -> Result<RunnerRecord, RunnerError> {
        let runner = runner.ok_or_else(|| RunnerError::NoSuchRunner(name.into()))?;
        let reason = format!("runner {} {what}", runner.name);
        self.dispatcher
            .take_back_leases_of(&runner, now, &reason)
            .await?;
        tracing::info!(runner = %runner.name, "{reason}");
        Ok(runner)
    }

    /// A job as the store has it.
    pub async fn job(
        &self,
        id: &str,
    ) -> Result<Option<gantry_store::RunnerJobRecord>, RunnerError> {
        Ok(self.store.runner_job(id).await?)
    }

    /// The enabled runners' label sets, to tell a job no runner can take.
    pub async fn enabled_label_sets(&self) -> Result<Vec<Vec<String>>, RunnerError> {
        Ok(self
            .store
            .runners()
            .await?
            .into_iter()
            .filter(|r| r.state == ENABLED)
            .map(|r| r.labels)
            .collect())
    }
}

/// Path segments under `/api/v1/runners/` that a runner's name would
/// shadow.
const RESERVED_NAMES: &[&str] = &[
    "register",
    "lease",
    "heartbeat",
    "logs",
    "finish",
    "tokens",
    "jobs",
    "debug",
];

/// Every problem of a registration at once.
fn validate(request: &RegisterRequest) -> Vec<String> {
    let mut problems = Vec::new();
    let word = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !word(&request.name) {
        problems.push(format!(
            "runner name {:?} must be 1 to 64 letters, digits or - _ .",
            request.name
        ));
    }
    if RESERVED_NAMES.contains(&request.name.as_str()) {
        problems.push(format!(
            "runner name {:?} is reserved (it names a route under /api/v1/runners)",
            request.name
        ));
    }
    for label in &request.labels {
        if !word(label) {
            problems.push(format!(
                "label {label:?} must be 1 to 64 letters, digits or - _ ."
            ));
        }
    }
    if request.labels.len() > 64 {
        problems.push("at most 64 labels".into());
    }
    if !(1..=256).contains(&request.capacity) {
        problems.push(format!(
            "capacity {} must be between 1 and 256",
            request.capacity
        ));
    }
    problems
}

fn normalized_labels(labels: &[String]) -> Vec<String> {
    let mut labels = labels.to_vec();
    labels.sort();
    labels.dedup();
    labels
}
