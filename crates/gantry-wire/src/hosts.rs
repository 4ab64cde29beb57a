//! Fleet hosts (`/api/v1/hosts`): what `gantry host list|show` prints.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A host as the server sees it now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Host {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    pub labels: Vec<String>,
    /// Unschedulable since `gantry host drain`.
    pub drained: bool,
    /// The agent answered over SSH just now.
    pub reachable: bool,
    /// Why it is not reachable (the host named, the cause given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
}

/// The agent of a reachable host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub version: String,
    pub pid: u32,
    /// Its resident memory, in KiB.
    pub rss_kib: u64,
    /// The part of it that is its own (anonymous) memory, in KiB; the rest
    /// is shared, reclaimable pages of the binary.
    pub private_kib: u64,
    /// The host's 1-minute load average.
    pub load: f64,
    pub instances: Vec<HostInstance>,
}

/// An instance an agent supervises.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostInstance {
    pub id: String,
    pub group: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// `starting`, `running`, `crashed`, `stopping`.
    pub state: String,
    pub restarts: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct HostList {
    pub hosts: Vec<Host>,
}

/// What `gantry host bootstrap` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bootstrapped {
    pub host: String,
    /// False when the host already had this exact binary.
    pub copied: bool,
    /// The SHA-256 of the installed binary, checked on the host.
    pub sha256: String,
    pub agent_version: String,
}
