//! The control plane's side of the agent: each request is one channel on
//! the host's SSH connection running `gantry agent --stdio`.

use serde::de::DeserializeOwned;

use super::AGENT_BINARY;
use super::protocol::{AgentRequest, AgentResponse, AgentStatus};
use crate::error::FleetError;
use crate::ssh::SshConnection;

/// Sends `request` to the agent of the connection's host and decodes its
/// answer.
pub async fn call<T: DeserializeOwned>(
    connection: &SshConnection,
    request: &AgentRequest,
) -> Result<T, FleetError> {
    let mut line = serde_json::to_vec(request)
        .map_err(|e| FleetError::Invalid(format!("cannot encode an agent request: {e}")))?;
    line.push(b'\n');
    let script = format!("exec \"$HOME/{AGENT_BINARY}\" agent --stdio");
    let output = connection.run("the agent", &script, Some(&line)).await?;
    let text = String::from_utf8_lossy(&output);
    let answer = text.lines().next().unwrap_or_default();
    let agent_error = |message: String| FleetError::Agent {
        host: connection.host().to_owned(),
        message,
    };
    match serde_json::from_str::<AgentResponse>(answer) {
        Ok(AgentResponse::Ok(value)) => serde_json::from_value(value)
            .map_err(|e| agent_error(format!("unexpected answer: {e}"))),
        Ok(AgentResponse::Error { message }) => Err(agent_error(message)),
        Err(e) => Err(agent_error(format!("unreadable answer {answer:?}: {e}"))),
    }
}

pub async fn status(connection: &SshConnection) -> Result<AgentStatus, FleetError> {
    call(connection, &AgentRequest::Status).await
}
