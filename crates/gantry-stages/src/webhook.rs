//! `webhook`: one HTTP request, judged by its status (2xx/3xx succeed, 4xx
//! fail, 5xx and connection errors are tried again), then optionally polling
//! a status URL until the job it started ends (Spinnaker's webhook stage).
//!
//! The response is recorded before polling starts, so a restart resumes the
//! polling instead of sending the request twice.

use gantry_config::{StatusUrlResolution, WebhookStage};
use serde_json::{Map, Value, json};
use serde_json_path::JsonPath;

use super::{StageContext, StageFailure, StageResult, StageRunner};

impl StageRunner for gantry_config::stages::webhook::Webhook {
    async fn run(ctx: &StageContext, spec: &gantry_config::WebhookStage) -> StageResult {
        run(ctx, spec).await
    }
}

pub(crate) async fn run(ctx: &StageContext, spec: &WebhookStage) -> StageResult {
    let state = ctx.state().await;
    let response = match state.get("response") {
        Some(response) => response.clone(),
        None => {
            let response = send(ctx, spec).await?;
            ctx.save_state(json!({ "response": response }))
                .await
                .map_err(|e| StageFailure::Failed(e.to_string()))?;
            response
        }
    };
    let mut outputs = Map::new();
    outputs.insert("statusCode".into(), response["statusCode"].clone());
    outputs.insert("body".into(), response["body"].clone());
    if !spec.wait_for_completion {
        return Ok(outputs);
    }
    let url = status_url(spec, &response)?;
    let path = spec.status_json_path.as_deref().unwrap_or("$.status");
    let path = JsonPath::parse(path)
        .map_err(|e| StageFailure::Failed(format!("statusJsonPath {path:?}: {e}")))?;
    ctx.log
        .system(&format!(
            "polling {url} every {}",
            super::humanize(spec.poll_interval)
        ))
        .await;
    loop {
        if let Some((status, body)) = poll(ctx, &url, &path).await? {
            let matches = |list: &[String]| list.iter().any(|s| s.eq_ignore_ascii_case(&status));
            let done = if matches(&spec.success_statuses) {
                Some(Ok(()))
            } else if matches(&spec.canceled_statuses) {
                Some(Err(StageFailure::Canceled(format!(
                    "the polled job reports {status:?}"
                ))))
            } else if matches(&spec.terminal_statuses) {
                Some(Err(StageFailure::Failed(format!(
                    "the polled job reports {status:?}"
                ))))
            } else {
                None
            };
            if let Some(done) = done {
                outputs.insert("status".into(), Value::String(status));
                outputs.insert("pollBody".into(), body);
                return done.map(|()| outputs);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(spec.poll_interval) => {}
            _ = ctx.cancel.cancelled() => return Err(StageFailure::Canceled(ctx.cancel_reason().await)),
        }
    }
}

/// Sends the request, trying again after a 5xx or a connection error.
async fn send(ctx: &StageContext, spec: &WebhookStage) -> Result<Value, StageFailure> {
    let method = reqwest::Method::from_bytes(spec.method.to_uppercase().as_bytes())
        .map_err(|_| StageFailure::Failed(format!("bad http method {:?}", spec.method)))?;
    let tries = spec.max_retries + 1;
    for attempt in 1..=tries {
        let mut request = ctx.http().request(method.clone(), &spec.url);
        for (name, value) in &spec.headers {
            request = request.header(name, value);
        }
        request = match &spec.body {
            None => request,
            Some(Value::String(text)) => request.body(text.clone()),
            Some(json) => request.json(json),
        };
        let problem = tokio::select! {
            result = request.send() => match result {
                Ok(response) => {
                    let code = response.status();
                    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
                    let text = response.text().await.unwrap_or_default();
                    if code.is_success() || code.is_redirection() {
                        ctx.log.system(&format!("{} {} answered {code}", method, spec.url)).await;
                        return Ok(json!({
                            "statusCode": code.as_u16(),
                            "location": location,
                            "body": serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)),
                        }));
                    }
                    if code.is_client_error() {
                        let message = format!("{method} {} answered {code}: {}", spec.url, excerpt(&text));
                        ctx.log.system(&message).await;
                        return Err(StageFailure::Failed(message));
                    }
                    format!("answered {code}: {}", excerpt(&text))
                }
                Err(error) => format!("failed: {}", describe(&error)),
            },
            _ = ctx.cancel.cancelled() => return Err(StageFailure::Canceled(ctx.cancel_reason().await)),
        };
        let message = format!("{method} {} {problem}", spec.url);
        ctx.log
            .system(&format!("attempt {attempt} of {tries}: {message}"))
            .await;
        if attempt == tries {
            return Err(StageFailure::Failed(format!(
                "{message} (after {tries} attempts)"
            )));
        }
        tokio::select! {
            _ = tokio::time::sleep(spec.retry_delay) => {}
            _ = ctx.cancel.cancelled() => return Err(StageFailure::Canceled(ctx.cancel_reason().await)),
        }
    }
    unreachable!("the last attempt returns")
}

fn status_url(spec: &WebhookStage, response: &Value) -> Result<String, StageFailure> {
    if let Some(url) = &spec.status_url {
        return Ok(url.clone());
    }
    match spec.status_url_resolution {
        StatusUrlResolution::GetMethod => Ok(spec.url.clone()),
        StatusUrlResolution::LocationHeader => {
            let location = response["location"].as_str().ok_or_else(|| {
                StageFailure::Failed(
                    "statusUrlResolution is locationHeader but the response has no Location header"
                        .into(),
                )
            })?;
            // A relative Location is relative to the request URL.
            reqwest::Url::parse(&spec.url)
                .and_then(|base| base.join(location))
                .map(|url| url.to_string())
                .map_err(|e| StageFailure::Failed(format!("bad Location header {location:?}: {e}")))
        }
        StatusUrlResolution::WebhookResponse => {
            let path = spec
                .status_url_json_path
                .as_deref()
                .unwrap_or("$.statusUrl");
            let found = JsonPath::parse(path)
                .map_err(|e| StageFailure::Failed(format!("statusUrlJsonPath {path:?}: {e}")))?
                .query(&response["body"])
                .first()
                .and_then(Value::as_str)
                .map(str::to_owned);
            found.ok_or_else(|| {
                StageFailure::Failed(format!("the response has no status URL at {path}"))
            })
        }
    }
}

/// One poll: `Some((status, body))`, or `None` to poll again after a
/// passing error (5xx, connection).
async fn poll(
    ctx: &StageContext,
    url: &str,
    path: &JsonPath,
) -> Result<Option<(String, Value)>, StageFailure> {
    let response = tokio::select! {
        result = ctx.http().get(url).send() => result,
        _ = ctx.cancel.cancelled() => return Err(StageFailure::Canceled(ctx.cancel_reason().await)),
    };
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            ctx.log
                .system(&format!("polling {url} failed: {}", describe(&error)))
                .await;
            return Ok(None);
        }
    };
    let code = response.status();
    let text = response.text().await.unwrap_or_default();
    if code.is_server_error() {
        ctx.log
            .system(&format!("polling {url}: {code}; trying again"))
            .await;
        return Ok(None);
    }
    if !code.is_success() {
        return Err(StageFailure::Failed(format!(
            "polling {url} answered {code}: {}",
            excerpt(&text)
        )));
    }
    let body: Value = serde_json::from_str(&text).map_err(|e| {
        StageFailure::Failed(format!(
            "polling {url}: the answer is not JSON ({e}): {}",
            excerpt(&text)
        ))
    })?;
    let status = match path.query(&body).first() {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => {
            return Err(StageFailure::Failed(format!(
                "polling {url}: nothing at {path} in {}",
                excerpt(&text)
            )));
        }
    };
    Ok(Some((status, body)))
}

fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn describe(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
