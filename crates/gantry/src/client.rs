//! The CLI's HTTP client: finds the server and a token, sends JSON, and turns
//! every failure into a message naming the problem.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use reqwest::{Method, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::sse::EventStream;

pub struct Client {
    http: reqwest::Client,
    base: String,
    /// The token, or why none was found (reported on the first request).
    token: Result<String, String>,
}

impl Client {
    pub fn new(url: &str, data_dir: anyhow::Result<PathBuf>) -> anyhow::Result<Client> {
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("GANTRY_URL {url:?} must start with http:// or https://");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Client {
            http,
            base,
            token: find_token(data_dir),
        })
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.json(Method::POST, path, Some(body)).await
    }

    /// A request whose body and answer are wire types (`gantry_wire`).
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> anyhow::Result<T> {
        let body = body
            .map(serde_json::to_value)
            .transpose()
            .context("cannot encode the request")?;
        let answer = self.json(method, path, body.as_ref()).await?;
        serde_json::from_value(answer).with_context(|| {
            format!(
                "gantry answered {path} with a shape this CLI does not know (a {})",
                std::any::type_name::<T>()
            )
        })
    }

    pub async fn get_as<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call(Method::GET, path, None::<&()>).await
    }

    pub async fn post_as<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<T> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put_as<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<T> {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete_as<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call(Method::DELETE, path, None::<&()>).await
    }

    /// Posts raw bytes of a content type (package files); the answer is JSON.
    pub async fn post_bytes_as<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        bytes: impl Into<reqwest::Body>,
        content_type: &str,
    ) -> anyhow::Result<T> {
        let token = self.token.as_ref().map_err(|e| anyhow!("{e}"))?;
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if !response.status().is_success() {
            return Err(error_of(response).await);
        }
        let text = response.text().await.map_err(|e| self.unreachable(e))?;
        serde_json::from_str(&text).context("gantry answered with something that is not JSON")
    }

    /// A GET whose answer is text (an armored key).
    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let response = self.send(Method::GET, path, None, None).await?;
        response.text().await.map_err(|e| self.unreachable(e))
    }

    /// A GET whose answer is a file, written to `dest` as it arrives (through a temporary
    /// name, renamed when whole); its size.
    pub async fn download(&self, path: &str, dest: &std::path::Path) -> anyhow::Result<u64> {
        use tokio::io::AsyncWriteExt;
        let mut response = self.send(Method::GET, path, None, None).await?;
        let partial = dest.with_extension("partial");
        let mut file = tokio::fs::File::create(&partial)
            .await
            .with_context(|| format!("cannot write {}", partial.display()))?;
        let mut size = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| self.unreachable(e))? {
            file.write_all(&chunk)
                .await
                .with_context(|| format!("cannot write {}", partial.display()))?;
            size += chunk.len() as u64;
        }
        file.sync_all().await?;
        tokio::fs::rename(&partial, dest)
            .await
            .with_context(|| format!("cannot write {}", dest.display()))?;
        Ok(size)
    }

    /// Opens a server-sent event stream.
    pub async fn events(&self, path: &str) -> anyhow::Result<EventStream> {
        let response = self.send(Method::GET, path, None, None).await?;
        Ok(EventStream::new(response))
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let timeout = Some(Duration::from_secs(60));
        let response = self.send(method, path, body, timeout).await?;
        let url = response.url().clone();
        let text = response.text().await.map_err(|e| self.unreachable(e))?;
        serde_json::from_str(&text)
            .with_context(|| format!("gantry at {url} answered with something that is not JSON"))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        timeout: Option<Duration>,
    ) -> anyhow::Result<Response> {
        let token = self.token.as_ref().map_err(|e| anyhow!("{e}"))?;
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(error_of(response).await)
    }

    fn unreachable(&self, e: reqwest::Error) -> anyhow::Error {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        anyhow::Error::new(Unreachable(format!(
            "cannot reach gantry at {}: {message}",
            self.base
        )))
    }
}

/// The server could not be reached (as opposed to an answer with an error):
/// worth trying again when the server may be restarting.
#[derive(Debug)]
pub struct Unreachable(String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

/// The server's `error` text, or the status and whatever it sent.
async fn error_of(response: Response) -> anyhow::Error {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
    {
        Some(message) => anyhow!("{message}"),
        None if status == StatusCode::NOT_FOUND => {
            anyhow!("not found (HTTP 404): is GANTRY_URL a gantry server?")
        }
        None => anyhow!("HTTP {status}: {}", text.trim()),
    }
}

fn find_token(data_dir: anyhow::Result<PathBuf>) -> Result<String, String> {
    if let Some(token) = std::env::var("GANTRY_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        return Ok(token.trim().to_owned());
    }
    let dir = data_dir.map_err(|e| format!("no API token: set GANTRY_TOKEN ({e:#})"))?;
    let path = dir.join(gantry_api::ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        Ok(_) => Err(format!(
            "no API token: {} is empty; set GANTRY_TOKEN",
            path.display()
        )),
        Err(e) => Err(format!(
            "no API token: set GANTRY_TOKEN, or run where the server's token file is readable ({}: {e})",
            path.display()
        )),
    }
}

/// Escapes a path segment (a pipeline name, an execution id).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
