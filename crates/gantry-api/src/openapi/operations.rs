//! What the document says of each operation beyond its types: summary,
//! query parameters, the statuses it answers with. One entry per route of
//! [`crate::routes()`], matched by method and path (a route without one
//! fails the document's build, and so its tests).

use axum::http::Method;
use gantry_wire::{
    DataplaneStopped, Deleted, Revoked, deploy, executions, git, hosts, pipelines, secrets, tokens,
};
use serde_json::{Value, json};

use super::{Schemas, schema};

mod apt_operations;
mod runners;

type SchemaFn = fn(&mut Schemas) -> Value;

pub(super) struct Operation {
    pub method: Method,
    pub path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: Option<&'static str>,
    query: Vec<Value>,
    body: Option<Body>,
    answers: Vec<(u16, Answer)>,
    errors: Vec<(u16, Option<&'static str>)>,
}

enum Body {
    Json(SchemaFn),
    /// JSON that may be left out (an empty body counts as `{}`).
    OptionalJson(SchemaFn),
    /// Bytes of these media types (package uploads).
    Raw(&'static [&'static str]),
}

enum Answer {
    Json(&'static str, SchemaFn),
    Text(&'static str, Option<&'static str>),
    EventStream(&'static str),
    /// A file's bytes, streamed.
    Binary(&'static str),
    AnyObject(&'static str),
    Empty(&'static str),
}

fn op(
    method: Method,
    path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
) -> Operation {
    Operation {
        method,
        path,
        id,
        tag,
        summary,
        description: None,
        query: Vec::new(),
        body: None,
        answers: Vec::new(),
        errors: Vec::new(),
    }
}

impl Operation {
    fn description(mut self, text: &'static str) -> Operation {
        self.description = Some(text);
        self
    }

    fn query(mut self, name: &str, description: &str, schema: Value) -> Operation {
        self.query.push(json!({
            "name": name,
            "in": "query",
            "required": false,
            "description": description,
            "schema": schema,
        }));
        self
    }

    fn body(mut self, schema: SchemaFn) -> Operation {
        self.body = Some(Body::Json(schema));
        self
    }

    fn optional_body(mut self, schema: SchemaFn) -> Operation {
        self.body = Some(Body::OptionalJson(schema));
        self
    }

    fn raw_body(mut self, media_types: &'static [&'static str]) -> Operation {
        self.body = Some(Body::Raw(media_types));
        self
    }

    fn answers(mut self, status: u16, description: &'static str, schema: SchemaFn) -> Operation {
        self.answers
            .push((status, Answer::Json(description, schema)));
        self
    }

    fn text(
        mut self,
        status: u16,
        description: &'static str,
        exactly: Option<&'static str>,
    ) -> Operation {
        self.answers
            .push((status, Answer::Text(description, exactly)));
        self
    }

    fn binary(mut self, status: u16, description: &'static str) -> Operation {
        self.answers.push((status, Answer::Binary(description)));
        self
    }

    fn event_stream(mut self, status: u16, description: &'static str) -> Operation {
        self.answers
            .push((status, Answer::EventStream(description)));
        self
    }

    fn any_object(mut self, status: u16, description: &'static str) -> Operation {
        self.answers.push((status, Answer::AnyObject(description)));
        self
    }

    fn answer_without_body(mut self, status: u16, description: &'static str) -> Operation {
        self.answers.push((status, Answer::Empty(description)));
        self
    }

    /// Errors answered with the API's error body (`components/responses/E…`).
    fn errors(mut self, statuses: &[u16]) -> Operation {
        self.errors
            .extend(statuses.iter().map(|status| (*status, None)));
        self
    }

    /// An error answered without the API's error body (git's 401).
    fn plain_error(mut self, status: u16, description: &'static str) -> Operation {
        self.errors.push((status, Some(description)));
        self
    }

    pub(super) fn render(&self, schemas: &mut Schemas) -> Value {
        let mut parameters: Vec<Value> = path_parameters(self.path)
            .map(|name| {
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
            })
            .collect();
        parameters.extend(self.query.iter().cloned());
        let mut operation = json!({
            "operationId": self.id,
            "summary": self.summary,
            "tags": [self.tag],
        });
        if let Some(description) = self.description {
            operation["description"] = json!(description);
        }
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        match &self.body {
            Some(Body::Json(schema)) => {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": {"application/json": {"schema": schema(schemas)}},
                });
            }
            Some(Body::OptionalJson(schema)) => {
                operation["requestBody"] = json!({
                    "required": false,
                    "content": {"application/json": {"schema": schema(schemas)}},
                });
            }
            Some(Body::Raw(media_types)) => {
                let content: serde_json::Map<String, Value> = media_types
                    .iter()
                    .map(|t| {
                        (
                            (*t).to_owned(),
                            json!({"schema": {"type": "string", "format": "binary"}}),
                        )
                    })
                    .collect();
                operation["requestBody"] = json!({"required": true, "content": content});
            }
            None => {}
        }
        let mut responses = serde_json::Map::new();
        for (status, answer) in &self.answers {
            responses.insert(status.to_string(), answer.render(schemas));
        }
        for (status, description) in &self.errors {
            let response = match description {
                None => json!({"$ref": format!("#/components/responses/E{status}")}),
                Some(description) => json!({"description": description}),
            };
            responses.insert(status.to_string(), response);
        }
        operation["responses"] = Value::Object(responses);
        operation
    }
}

impl Answer {
    fn render(&self, schemas: &mut Schemas) -> Value {
        match self {
            Answer::Json(description, schema) => json!({
                "description": description,
                "content": {"application/json": {"schema": schema(schemas)}},
            }),
            Answer::Text(description, exactly) => {
                let mut schema = json!({"type": "string"});
                if let Some(text) = exactly {
                    schema["const"] = json!(text);
                }
                json!({"description": description, "content": {"text/plain": {"schema": schema}}})
            }
            Answer::EventStream(description) => json!({
                "description": description,
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }),
            Answer::Binary(description) => json!({
                "description": description,
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            }),
            Answer::AnyObject(description) => json!({
                "description": description,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }),
            Answer::Empty(description) => json!({"description": description}),
        }
    }
}

/// The names of a path's parameters (`{name}`, and axum's catch-all `{*path}`).
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('{')
        .skip(1)
        .filter_map(|piece| piece.split_once('}').map(|(name, _)| name))
}

/// Every operation, in the order of the route table.
pub(super) fn all() -> Vec<Operation> {
    let mut all = vec![
        // GET /healthz
        op(Method::GET, "/healthz", "healthz", "system", "Liveness check; answers `ok` without a token")
            .text(200, "the server is up", Some("ok")),
        // POST /api/v1/dataplane/stop
        op(Method::POST, "/api/v1/dataplane/stop", "stopDataplane", "system", "Stop the server's data plane gracefully (listeners close, requests in flight finish, instances get SIGTERM); server groups are kept")
            .answers(200, "whether a data plane was running", schema::<DataplaneStopped>)
            .errors(&[401, 403, 404]),
        // GET /metrics
        op(Method::GET, "/metrics", "metrics", "system", "Prometheus metrics (text exposition format)")
            .text(200, "metrics", None)
            .errors(&[401, 403]),
        // GET /api/v1/openapi.json
        op(Method::GET, "/api/v1/openapi.json", "openapi", "system", "This document")
            .any_object(200, "the OpenAPI document")
            .errors(&[401, 403]),
        // POST /api/v1/validate
        op(Method::POST, "/api/v1/validate", "validate", "pipelines", "Validate a pipeline file without storing anything")
            .body(schema::<pipelines::FileBody>)
            .answers(200, "the file is valid", schema::<pipelines::ValidateReport>)
            .errors(&[400, 401, 403]),
        // POST /api/v1/apply
        op(Method::POST, "/api/v1/apply", "apply", "pipelines", "Create or update everything a pipeline file declares; nothing is stored if the file has problems")
            .body(schema::<pipelines::FileBody>)
            .answers(200, "what changed", schema::<pipelines::ApplyReport>)
            .errors(&[400, 401, 403]),
        // GET /api/v1/pipelines
        op(Method::GET, "/api/v1/pipelines", "listPipelines", "pipelines", "List pipelines")
            .query("name", "only the pipeline of this name, with its spec (for a name a path cannot carry, such as ..)", json!({"type": "string"}))
            .answers(200, "pipelines", schema::<pipelines::PipelineList>)
            .errors(&[401, 403]),
        // DELETE /api/v1/pipelines
        op(Method::DELETE, "/api/v1/pipelines", "deletePipelineByName", "pipelines", "Delete the pipeline named in the body (for a name a path cannot carry)")
            .body(schema::<pipelines::DeleteBody>)
            .answers(200, "deleted", schema::<Deleted>)
            .errors(&[400, 401, 403, 404]),
        // GET /api/v1/pipelines/{name}
        op(Method::GET, "/api/v1/pipelines/{name}", "getPipeline", "pipelines", "One pipeline with its spec")
            .answers(200, "the pipeline", schema::<pipelines::Pipeline>)
            .errors(&[401, 403, 404]),
        // DELETE /api/v1/pipelines/{name}
        op(Method::DELETE, "/api/v1/pipelines/{name}", "deletePipeline", "pipelines", "Delete a pipeline (its executions are kept)")
            .answers(200, "deleted", schema::<Deleted>)
            .errors(&[401, 403, 404]),
        // POST /api/v1/pipelines/{name}/executions
        op(Method::POST, "/api/v1/pipelines/{name}/executions", "runPipeline", "executions", "Start an execution of a pipeline")
            .body(schema::<pipelines::RunBody>)
            .answers(201, "the new execution", schema::<executions::Execution>)
            .errors(&[400, 401, 403, 404]),
        // GET /api/v1/executions
        op(Method::GET, "/api/v1/executions", "listExecutions", "executions", "List executions, newest first")
            .query("pipeline", "only this pipeline", json!({"type": "string"}))
            .query("status", "only this status", json!({"type": "string"}))
            .query("trigger", "only this trigger type (manual, pipeline, …)", json!({"type": "string"}))
            .query("limit", "at most this many (1-1000, default 100)", json!({"type": "integer"}))
            .query("before", "only executions older than this one (the `next` of the previous page)", json!({"type": "string"}))
            .answers(200, "executions (without stages)", schema::<executions::ExecutionList>)
            .errors(&[400, 401, 403]),
        // GET /api/v1/executions/{id}
        op(Method::GET, "/api/v1/executions/{id}", "getExecution", "executions", "One execution with its stages")
            .answers(200, "the execution", schema::<executions::Execution>)
            .errors(&[401, 403, 404]),
        // GET /api/v1/executions/{id}/artifacts
        op(Method::GET, "/api/v1/executions/{id}/artifacts", "listArtifacts", "executions", "Files the execution's stages kept in the artifact store (a Cloud Build file's artifacts.objects)")
            .answers(200, "artifacts", schema::<executions::ArtifactList>)
            .errors(&[401, 403, 404]),
        // GET /api/v1/executions/{id}/artifacts/{stage}/{name}
        op(Method::GET, "/api/v1/executions/{id}/artifacts/{stage}/{name}", "downloadArtifact", "executions", "Download one kept file")
            .binary(200, "the file")
            .errors(&[401, 403, 404]),
        // POST /api/v1/executions/{id}/cancel
        op(Method::POST, "/api/v1/executions/{id}/cancel", "cancelExecution", "executions", "Cancel an execution; running steps are killed")
            .answers(200, "the execution", schema::<executions::Execution>)
            .errors(&[400, 401, 403, 404]),
        // POST /api/v1/executions/{id}/rerun
        op(Method::POST, "/api/v1/executions/{id}/rerun", "rerunExecution", "executions", "Start a new execution with this one's pipeline spec, parameters and trigger (a rollback re-runs an earlier deploy)")
            .answers(201, "the new execution", schema::<executions::Execution>)
            .errors(&[401, 403, 404]),
        // POST /api/v1/executions/{id}/judgment
        op(Method::POST, "/api/v1/executions/{id}/judgment", "judge", "executions", "Continue or stop a manual judgment")
            .body(schema::<executions::JudgmentBody>)
            .answers(200, "the execution", schema::<executions::Execution>)
            .errors(&[400, 401, 403, 404]),
        // POST /api/v1/executions/{id}/skip
        op(Method::POST, "/api/v1/executions/{id}/skip", "skipWait", "executions", "End a running wait stage now")
            .body(schema::<executions::SkipBody>)
            .answers(200, "the execution", schema::<executions::Execution>)
            .errors(&[400, 401, 403, 404]),
        // POST /api/v1/executions/{id}/stages/{stage}/restart
        op(Method::POST, "/api/v1/executions/{id}/stages/{stage}/restart", "restartStage", "executions", "Run a failed or canceled stage again, with everything downstream")
            .answers(200, "the execution", schema::<executions::Execution>)
            .errors(&[400, 401, 403, 404]),
        // POST /api/v1/executions/{id}/stages/{stage}/skip
        op(Method::POST, "/api/v1/executions/{id}/stages/{stage}/skip", "skipStage", "executions", "End this running wait stage now")
            .answers(200, "the execution", schema::<executions::Execution>)
            .errors(&[400, 401, 403, 404]),
        // GET /api/v1/executions/{id}/logs
        op(Method::GET, "/api/v1/executions/{id}/logs", "getLogs", "executions", "Stored log lines, oldest first")
            .query("stage", "only this stage", json!({"type": "string"}))
            .query("after", "only lines with a greater seq", json!({"type": "integer"}))
            .query("limit", "at most this many (1-10000, default 1000)", json!({"type": "integer"}))
            .answers(200, "a page of lines; pass `next` as `after` for the following page", schema::<executions::LogPage>)
            .errors(&[400, 401, 403, 404]),
        // GET /api/v1/executions/{id}/events
        op(Method::GET, "/api/v1/executions/{id}/events", "followExecution", "executions", "Live events as server-sent events")
            .query("stage", "only this stage's logs and changes", json!({"type": "string"}))
            .query("after", "resume after this log seq", json!({"type": "integer"}))
            .event_stream(200, "An event stream: `execution` (the execution, first and on every status change), `log` (a LogLine; its SSE id is the seq), `stage` (a stage status change), then `end` (`{id, status}`) when the execution reaches a terminal status. `error` reports a server failure. Resume with `Last-Event-ID` or `?after=`.")
            .errors(&[400, 401, 403, 404]),
        // GET /api/v1/applications
        op(Method::GET, "/api/v1/applications", "listApplications", "deploy", "Applications with their clusters")
            .answers(200, "applications", schema::<deploy::ApplicationList>)
            .errors(&[401, 403]),
        // GET /api/v1/clusters
        op(Method::GET, "/api/v1/clusters", "listClusters", "deploy", "Clusters with their server groups and health")
            .query("q", "only clusters whose name or application contains this text", json!({"type": "string"}))
            .query("limit", "at most this many (1-1000; without it, every cluster)", json!({"type": "integer"}))
            .query("after", "only clusters named after this one (the `next` of the previous page)", json!({"type": "string"}))
            .answers(200, "clusters, by name", schema::<deploy::ClusterList>)
            .errors(&[400, 401, 403]),
        // GET /api/v1/clusters/{name}
        op(Method::GET, "/api/v1/clusters/{name}", "getCluster", "deploy", "One cluster: server groups, instances, history")
            .answers(200, "the cluster", schema::<deploy::Cluster>)
            .errors(&[401, 403, 404]),
        // POST /api/v1/clusters/{name}/rollback
        op(Method::POST, "/api/v1/clusters/{name}/rollback", "rollbackCluster", "deploy", "Re-enable the previous server group, then disable the current one")
            .answers(200, "the group enabled", schema::<deploy::Rollback>)
            .errors(&[400, 401, 403, 404]),
        // GET /api/v1/server-groups
        op(Method::GET, "/api/v1/server-groups", "listServerGroups", "deploy", "Every server group, destroyed ones included")
            .answers(200, "server groups", schema::<deploy::ServerGroupList>)
            .errors(&[401, 403]),
        // GET /api/v1/server-groups/{name}
        op(Method::GET, "/api/v1/server-groups/{name}", "getServerGroup", "deploy", "One server group with instances and traffic")
            .answers(200, "the server group", schema::<deploy::ServerGroupStatus>)
            .errors(&[401, 403, 404]),
        // DELETE /api/v1/server-groups/{name}
        op(Method::DELETE, "/api/v1/server-groups/{name}", "destroyServerGroup", "deploy", "Destroy a server group (drained, then stopped; kept in history)")
            .answers(200, "the destroyed group", schema::<deploy::ServerGroup>)
            .errors(&[401, 403, 404]),
        // POST /api/v1/server-groups/{name}/resize
        op(Method::POST, "/api/v1/server-groups/{name}/resize", "resizeServerGroup", "deploy", "Set the number of instances")
            .body(schema::<deploy::ResizeRequest>)
            .answers(200, "the server group", schema::<deploy::ServerGroup>)
            .errors(&[400, 401, 403, 404]),
        // POST /api/v1/server-groups/{name}/enable
        op(Method::POST, "/api/v1/server-groups/{name}/enable", "enableServerGroup", "deploy", "Put a server group in its load balancers' rotation")
            .answers(200, "the server group", schema::<deploy::ServerGroup>)
            .errors(&[401, 403, 404]),
        // POST /api/v1/server-groups/{name}/disable
        op(Method::POST, "/api/v1/server-groups/{name}/disable", "disableServerGroup", "deploy", "Take a server group out of rotation (in-flight requests finish)")
            .optional_body(schema::<deploy::DisableRequest>)
            .answers(200, "the server group", schema::<deploy::ServerGroup>)
            .errors(&[400, 401, 403, 404]),
        // GET /api/v1/load-balancers
        op(Method::GET, "/api/v1/load-balancers", "listLoadBalancers", "deploy", "Load balancers with weights, instance health and request rates")
            .answers(200, "load balancers", schema::<deploy::LoadBalancerList>)
            .errors(&[401, 403]),
        // GET /api/v1/load-balancers/{name}
        op(Method::GET, "/api/v1/load-balancers/{name}", "getLoadBalancer", "deploy", "One load balancer with weights, instance health and request rates")
            .answers(200, "the load balancer", schema::<deploy::LoadBalancer>)
            .errors(&[401, 403, 404]),
        // GET /api/v1/hosts
        op(Method::GET, "/api/v1/hosts", "listHosts", "hosts", "Fleet hosts, each asked now over SSH: reachable, agent version, instances, load")
            .answers(200, "hosts", schema::<hosts::HostList>)
            .errors(&[401, 403]),
        // GET /api/v1/hosts/{name}
        op(Method::GET, "/api/v1/hosts/{name}", "getHost", "hosts", "One fleet host, asked now over SSH")
            .answers(200, "the host", schema::<hosts::Host>)
            .errors(&[401, 403, 404]),
        // POST /api/v1/hosts/{name}/bootstrap
        op(Method::POST, "/api/v1/hosts/{name}/bootstrap", "bootstrapHost", "hosts", "Install this server's binary on the host (checked by SHA-256) and start its agent; idempotent")
            .answers(200, "bootstrapped", schema::<hosts::Bootstrapped>)
            .errors(&[400, 401, 403, 404, 503]),
        // POST /api/v1/hosts/{name}/drain
        op(Method::POST, "/api/v1/hosts/{name}/drain", "drainHost", "hosts", "Mark the host unschedulable; the ssh provider moves its instances to other hosts")
            .answers(200, "the host", schema::<hosts::Host>)
            .errors(&[401, 403, 404]),
        // POST /api/v1/hosts/{name}/undrain
        op(Method::POST, "/api/v1/hosts/{name}/undrain", "undrainHost", "hosts", "Make a drained host schedulable again")
            .answers(200, "the host", schema::<hosts::Host>)
            .errors(&[401, 403, 404]),
        // GET /api/v1/tokens
        op(Method::GET, "/api/v1/tokens", "listTokens", "tokens", "List tokens (never their secrets)")
            .answers(200, "tokens", schema::<tokens::TokenList>)
            .errors(&[401, 403]),
        // POST /api/v1/tokens
        op(Method::POST, "/api/v1/tokens", "createToken", "tokens", "Create a token; the secret is in this answer only")
            .body(schema::<tokens::CreateToken>)
            .answers(201, "the token and its secret", schema::<tokens::CreatedToken>)
            .errors(&[400, 401, 403, 409]),
        // DELETE /api/v1/tokens/{token}
        op(Method::DELETE, "/api/v1/tokens/{token}", "revokeToken", "tokens", "Revoke a token by id or name")
            .answers(200, "revoked", schema::<Revoked>)
            .errors(&[401, 403, 404]),
        // GET /api/v1/secrets
        op(Method::GET, "/api/v1/secrets", "listSecrets", "secrets", "List secrets (names and times; never their values)")
            .answers(200, "secrets", schema::<secrets::SecretList>)
            .errors(&[401]),
        // PUT /api/v1/secrets/{name}
        op(Method::PUT, "/api/v1/secrets/{name}", "setSecret", "secrets", "Create or replace a secret (the value is encrypted at rest and never returned)")
            .body(schema::<secrets::SetSecret>)
            .answers(200, "set", schema::<secrets::Secret>)
            .errors(&[400, 401]),
        // DELETE /api/v1/secrets/{name}
        op(Method::DELETE, "/api/v1/secrets/{name}", "deleteSecret", "secrets", "Delete a secret")
            .answers(200, "deleted", schema::<Deleted>)
            .errors(&[401, 404]),
        // GET /git/{repo}/{*path}
        op(Method::GET, "/git/{repo}/{*path}", "gitSmartHttpGet", "git", "Git smart HTTP (clone, fetch; push discovery) for repository NAME.git")
            .answer_without_body(200, "git's answer (smart HTTP, streamed)")
            .plain_error(401, "a token is needed: HTTP basic auth, the token as password")
            .errors(&[404]),
        // POST /git/{repo}/{*path}
        op(Method::POST, "/git/{repo}/{*path}", "gitSmartHttpPost", "git", "Git smart HTTP (upload-pack, receive-pack); a push starts matching git triggers")
            .answer_without_body(200, "git's answer (smart HTTP, streamed)")
            .plain_error(401, "a token is needed: HTTP basic auth, the token as password")
            .errors(&[404]),
        // GET /api/v1/repos
        op(Method::GET, "/api/v1/repos", "listRepos", "git", "List hosted repositories")
            .answers(200, "repositories", schema::<git::RepositoryList>)
            .errors(&[401, 403]),
        // POST /api/v1/repos
        op(Method::POST, "/api/v1/repos", "createRepo", "git", "Create a hosted repository")
            .body(schema::<git::CreateRepository>)
            .answers(201, "the repository", schema::<git::Repository>)
            .errors(&[400, 401, 403, 409]),
        // GET /api/v1/repos/{name}
        op(Method::GET, "/api/v1/repos/{name}", "showRepo", "git", "Show a hosted repository")
            .answers(200, "the repository", schema::<git::Repository>)
            .errors(&[401, 403, 404]),
        // DELETE /api/v1/repos/{name}
        op(Method::DELETE, "/api/v1/repos/{name}", "deleteRepo", "git", "Delete a hosted repository and its history")
            .answers(200, "deleted", schema::<Deleted>)
            .errors(&[401, 403, 404]),
        // GET /api/v1/triggers
        op(Method::GET, "/api/v1/triggers", "listTriggers", "triggers", "List every pipeline trigger and what it watches")
            .answers(200, "triggers", schema::<git::TriggerList>)
            .errors(&[401, 403]),
        // GET /api/v1/webhook-deliveries
        op(Method::GET, "/api/v1/webhook-deliveries", "listWebhookDeliveries", "triggers", "The recent webhook deliveries, newest first, accepted or refused, with why (limit: 1-500, default 50)")
            .answers(200, "deliveries", schema::<git::WebhookDeliveryLog>)
            .errors(&[400, 401, 403]),
        // GET /api/v1/trigger-deliveries
        op(Method::GET, "/api/v1/trigger-deliveries", "listTriggerDeliveries", "triggers", "The recent deliveries of every trigger kind, newest first: webhook deliveries, pushes to hosted or polled repositories, cron firings and landed packages, each with what became of it (started, ignored or refused with why); `kind` and `pipeline` narrow it (limit: 1-500, default 50)")
            .query("kind", "only this trigger kind (deliveries are logged for webhook, git, cron and artifact)", json!({"type": "string", "enum": gantry_triggers::trigger_kind_names()}))
            .query("pipeline", "only those about this pipeline", json!({"type": "string"}))
            .query("limit", "at most this many (1-500, default 50)", json!({"type": "integer"}))
            .answers(200, "deliveries", schema::<git::WebhookDeliveryLog>)
            .errors(&[400, 401, 403]),
        // POST /api/v1/pipelines/{name}/triggers/{position}/disable
        op(Method::POST, "/api/v1/pipelines/{name}/triggers/{position}/disable", "disableTrigger", "triggers", "Switch a trigger off (position: 1-based in the pipeline's triggers); it stays off across applies")
            .answers(200, "the trigger", schema::<git::Trigger>)
            .errors(&[400, 401, 403, 404]),
        // POST /api/v1/pipelines/{name}/triggers/{position}/enable
        op(Method::POST, "/api/v1/pipelines/{name}/triggers/{position}/enable", "enableTrigger", "triggers", "Switch a trigger back on")
            .answers(200, "the trigger", schema::<git::Trigger>)
            .errors(&[400, 401, 403, 404]),
        // POST /webhooks/github
        op(Method::POST, "/webhooks/github", "githubWebhook", "triggers", "GitHub push webhook (X-Hub-Signature-256, dedupe by X-GitHub-Delivery)")
            .answers(200, "accepted; nothing started (a redelivery, or not a push)", schema::<git::WebhookDelivery>)
            .answers(202, "accepted; executions started", schema::<git::WebhookDelivery>)
            .errors(&[400, 401, 403]),
        // POST /webhooks/gitlab
        op(Method::POST, "/webhooks/gitlab", "gitlabWebhook", "triggers", "GitLab Push Hook and Tag Push Hook (X-Gitlab-Token)")
            .answers(200, "accepted; nothing started (a redelivery, or not a push)", schema::<git::WebhookDelivery>)
            .answers(202, "accepted; executions started", schema::<git::WebhookDelivery>)
            .errors(&[400, 401, 403]),
        // POST /webhooks/generic/{source}
        op(Method::POST, "/webhooks/generic/{source}", "genericWebhook", "triggers", "Generic webhook: a shared secret (X-Gantry-Secret) and payload constraints")
            .answers(200, "accepted; nothing started (a redelivery, or not a push)", schema::<git::WebhookDelivery>)
            .answers(202, "accepted; executions started", schema::<git::WebhookDelivery>)
            .errors(&[400, 401, 403, 404]),
    ];
    all.extend(apt_operations::all());
    all.extend(runners::all());
    all
}
