//! What the control plane asks the agent and what it answers: one JSON
//! request per line, one JSON answer per line, over the stdio of
//! `gantry agent --stdio` (an SSH channel) relayed to the agent's socket.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum AgentRequest {
    Status,
    /// Starts the instance unless one of that id runs (idempotent).
    Start {
        instance: InstanceSpec,
    },
    /// Stops the instance (SIGTERM, SIGKILL after its grace) and forgets it.
    Stop {
        id: String,
    },
    /// Pulls an image with the host's container engine, with `login` for
    /// its registry when given (written only to a private file in memory
    /// for the length of the pull).
    #[serde(rename_all = "camelCase")]
    Pull {
        image: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls_verify: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        login: Option<RegistryLogin>,
    },
}

/// A registry account on its way to a host, inside the SSH channel only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryLogin {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RegistryLogin {{ user: {:?}, password: *** }}",
            self.user
        )
    }
}

/// The agent's answer to `pull`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pulled {
    /// `podman` or `docker`.
    pub engine: String,
    /// The image's manifest digest (`sha256:…`), when the engine tells it.
    #[serde(default)]
    pub digest: Option<String>,
}

/// One instance the agent supervises.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSpec {
    /// `GROUP-iN`, unique on the host.
    pub id: String,
    pub group: String,
    /// The host's address it listens on (in `HOST`).
    pub address: String,
    /// The port it listens on (in `PORT`); 0 asks the agent for a free one.
    pub port: u16,
    /// Run with `sh -c` in `release` (unless `image` is given).
    pub command: String,
    /// An image the host pulled: the instance runs as a container of it,
    /// on the host's network, instead of `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The release directory on the host (absolute).
    pub release: String,
    pub grace_seconds: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AgentResponse {
    Ok(Value),
    Error { message: String },
}

/// The agent's answer to `start`: the instance's port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    pub port: u16,
}

/// The agent's answer to `status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    /// The gantry version the agent runs.
    pub version: String,
    pub pid: u32,
    /// The agent's resident memory, in KiB.
    pub rss_kib: u64,
    /// The part of it that is the agent's own (anonymous) memory; the rest
    /// is pages of the binary, shared and reclaimable.
    #[serde(default)]
    pub private_kib: u64,
    /// The host's 1-minute load average.
    pub load: f64,
    pub instances: Vec<InstanceState>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceState {
    pub id: String,
    pub group: String,
    pub port: u16,
    pub pid: Option<u32>,
    /// `starting`, `running`, `crashed`, `stopping`.
    pub state: String,
    pub restarts: u32,
}
