//! The agent's HTTP client for the runner protocol.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::protocol::{
    FinishRequest, FinishResponse, HeartbeatRequest, HeartbeatResponse, LeaseRequest,
    LeaseResponse, LogAck, LogBatch, PROTOCOL_HEADER, PROTOCOL_VERSION, Refusal, RegisterRequest,
    RegisterResponse, Timing, WorkspaceUploaded,
};

/// A workspace transfer may take this long (a large workspace on a slow link).
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Every call but the long poll gets this long to answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Connection {
    http: reqwest::Client,
    base: String,
    credential: Option<String>,
}

#[derive(Debug)]
pub(crate) enum CallError {
    /// No answer (server down, network away, timeout): try again later.
    Unreachable(String),
    /// 401: the credential (or registration token) was refused.
    Refused(String),
    /// 409: the lease is not this runner's any more.
    LeaseGone(String),
    /// Any other refusal; trying again will not help.
    Rejected(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(m) => write!(f, "server unreachable: {m}"),
            CallError::Refused(m) | CallError::LeaseGone(m) | CallError::Rejected(m) => {
                f.write_str(m)
            }
        }
    }
}

impl Connection {
    pub(crate) fn new(url: &str, credential: Option<String>) -> Connection {
        Connection {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            base: url.trim_end_matches('/').to_owned(),
            credential,
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.base
    }

    pub(crate) async fn register(
        &self,
        request: &RegisterRequest,
    ) -> Result<RegisterResponse, CallError> {
        self.call("register", request, CALL_TIMEOUT).await
    }

    /// Waits up to the server's long poll for a job.
    pub(crate) async fn lease(
        &self,
        free_slots: u32,
        timing: &Timing,
    ) -> Result<LeaseResponse, CallError> {
        let wait = Duration::from_millis(timing.long_poll_ms) + CALL_TIMEOUT;
        self.call("lease", &LeaseRequest { free_slots }, wait).await
    }

    pub(crate) async fn heartbeat(
        &self,
        request: &HeartbeatRequest,
    ) -> Result<HeartbeatResponse, CallError> {
        self.call("heartbeat", request, CALL_TIMEOUT).await
    }

    pub(crate) async fn logs(&self, batch: &LogBatch) -> Result<LogAck, CallError> {
        self.call("logs", batch, CALL_TIMEOUT).await
    }

    pub(crate) async fn finish(
        &self,
        request: &FinishRequest,
    ) -> Result<FinishResponse, CallError> {
        self.call("finish", request, CALL_TIMEOUT).await
    }

    /// Writes the workspace snapshot `sha256` of the lease's job to `dest`.
    pub(crate) async fn download_workspace(
        &self,
        lease: &str,
        sha256: &str,
        dest: &std::path::Path,
    ) -> Result<(), CallError> {
        use tokio::io::AsyncWriteExt;
        let request = self
            .http
            .get(format!("{}/api/v1/runners/workspace/{sha256}", self.base))
            .query(&[("lease", lease)]);
        let mut response = self.send(request, "workspace", TRANSFER_TIMEOUT).await?;
        let unreachable =
            |e: std::io::Error| CallError::Unreachable(format!("{}: {e}", dest.display()));
        let mut file = tokio::fs::File::create(dest).await.map_err(unreachable)?;
        while let Some(piece) = response
            .chunk()
            .await
            .map_err(|e| CallError::Unreachable(e.to_string()))?
        {
            file.write_all(&piece).await.map_err(unreachable)?;
        }
        file.flush().await.map_err(unreachable)
    }

    /// Sends the file `src` as the lease's job's new workspace snapshot.
    pub(crate) async fn upload_workspace(
        &self,
        lease: &str,
        src: &std::path::Path,
    ) -> Result<WorkspaceUploaded, CallError> {
        let file = tokio::fs::File::open(src)
            .await
            .map_err(|e| CallError::Unreachable(format!("{}: {e}", src.display())))?;
        let request = self
            .http
            .put(format!("{}/api/v1/runners/workspace", self.base))
            .query(&[("lease", lease)])
            .body(file);
        let response = self.send(request, "workspace", TRANSFER_TIMEOUT).await?;
        response
            .json()
            .await
            .map_err(|e| CallError::Unreachable(format!("workspace: unreadable answer: {e}")))
    }

    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
        what: &str,
        timeout: Duration,
    ) -> Result<reqwest::Response, CallError> {
        request = request
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
            .timeout(timeout);
        if let Some(credential) = &self.credential {
            request = request.bearer_auth(credential);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CallError::Unreachable(e.to_string()))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(refusal(what, response).await)
    }

    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        what: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let request = self
            .http
            .post(format!("{}/api/v1/runners/{what}", self.base))
            .json(body);
        self.send(request, what, timeout)
            .await?
            .json()
            .await
            .map_err(|e| CallError::Unreachable(format!("{what}: unreadable answer: {e}")))
    }
}

/// What a refused call means for the agent.
async fn refusal(what: &str, response: reqwest::Response) -> CallError {
    let status = response.status();
    let message = match response.json::<Refusal>().await {
        Ok(refusal) => refusal.error,
        Err(_) => format!("{what}: {status}"),
    };
    match status {
        StatusCode::UNAUTHORIZED => CallError::Refused(message),
        StatusCode::CONFLICT => CallError::LeaseGone(message),
        // A server restarting behind a proxy, or out of capacity.
        s if s.is_server_error() => CallError::Unreachable(message),
        _ => CallError::Rejected(message),
    }
}
