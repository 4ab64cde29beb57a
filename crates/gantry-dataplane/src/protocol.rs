//! The control socket's protocol: one JSON request per line, one JSON
//! answer per line.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use gantry_deploy::model::{Application, ClusterQuery, LoadBalancer, ServerGroupSpec};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Request {
    Status,
    /// A page of clusters, summarised. `provider`: whose groups (`None`:
    /// the data plane's own).
    Clusters {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider: Option<String>,
        query: ClusterQuery,
    },
    /// `Status` of one provider's groups only, of one cluster only when
    /// `cluster` is given (the load balancers then those routing to it).
    /// A data plane older than `name` and `routed` answers without them
    /// applied, so the client applies them again.
    Groups {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
        /// The group of this name only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Only the live groups of the clusters a load balancer routes to.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        routed: bool,
    },
    /// The applications list (`ApplicationIndex`): no group but its
    /// application and cluster.
    Applications {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider: Option<String>,
    },
    /// The live groups' figures (`GroupFigures`), for `/metrics`.
    Figures {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider: Option<String>,
    },
    /// Replaces the applications and load balancers (from `apply`).
    Configure {
        applications: Vec<Application>,
        load_balancers: Vec<LoadBalancer>,
    },
    /// Creates the next version of a cluster, disabled. Idempotent by
    /// `request_id`: the same request returns the group it created.
    Create {
        request_id: String,
        application: String,
        cluster: String,
        spec: ServerGroupSpec,
        size: u32,
        /// Another provider's group (`ssh`): the data plane starts none of
        /// its instances and routes to the targets it is given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider: Option<String>,
    },
    /// Where a remote group's instances listen (replacing the list); the
    /// answer comes once the removed ones have drained.
    Targets {
        name: String,
        targets: Vec<RemoteTarget>,
    },
    Update {
        name: String,
        #[serde(default)]
        size: Option<u32>,
        #[serde(default)]
        enabled: Option<bool>,
        #[serde(default)]
        weight: Option<u32>,
    },
    Destroy {
        name: String,
    },
    /// The load balancer's measurements of a group's recent requests.
    Samples {
        name: String,
        window_ms: u64,
    },
    /// Stops every instance and exits.
    Shutdown,
}

/// How the data plane's answer to a line it cannot read begins (an unknown
/// `op` from a newer server included).
pub(crate) const BAD_REQUEST: &str = "bad request: ";

/// An instance the data plane routes to but does not run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteTarget {
    pub id: String,
    /// The host it runs on, for people.
    pub host: String,
    pub address: std::net::SocketAddr,
}

/// An answer; the client reads `Ok` straight into the type it expects.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Response<T = Value> {
    Ok(T),
    Error { kind: ErrorKind, message: String },
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorKind {
    Invalid,
    NotFound,
    Internal,
}
