//! Reading a registry through the OCI distribution API (for `findImage`).

use crate::auth::Credentials;
use crate::error::ContainerError;

/// How to reach one registry.
#[derive(Clone, Debug)]
pub struct RegistryClient {
    /// `host[:port]`, as written in image references.
    pub host: String,
    /// false: plain HTTP (what `--tls-verify=false` means for a loopback
    /// registry).
    pub tls_verify: bool,
    /// For basic authentication.
    pub credentials: Option<Credentials>,
}

/// Every tag of `repository` (`team/app`) in the registry, following
/// pagination.
pub async fn list_tags(
    client: &RegistryClient,
    repository: &str,
) -> Result<Vec<String>, ContainerError> {
    let scheme = if client.tls_verify { "https" } else { "http" };
    let http = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| registry_error(client, e))?;
    let mut url = format!(
        "{scheme}://{}/v2/{repository}/tags/list?n=1000",
        client.host
    );
    let mut tags = Vec::new();
    // A registry that keeps sending `next` links must not keep us forever.
    for _ in 0..1000 {
        let mut request = http.get(&url);
        if let Some(credentials) = &client.credentials {
            request = request.basic_auth(&credentials.user, Some(&credentials.password));
        }
        let response = request
            .send()
            .await
            .map_err(|e| registry_error(client, e))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(ContainerError::Unauthorized {
                registry: client.host.clone(),
                action: format!("listing the tags of {repository:?}"),
            });
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(registry_error(
                client,
                format!("repository {repository:?} not found"),
            ));
        }
        if !status.is_success() {
            return Err(registry_error(
                client,
                format!("listing tags of {repository:?} answered {status}"),
            ));
        }
        let next = response
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| registry_error(client, e))?;
        if let Some(page) = body["tags"].as_array() {
            tags.extend(page.iter().filter_map(|t| t.as_str()).map(str::to_owned));
        }
        match next {
            Some(path) => url = format!("{scheme}://{}{path}", client.host),
            None => return Ok(tags),
        }
    }
    Ok(tags)
}

/// The path of a `Link: </v2/…>; rel="next"` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

fn registry_error(client: &RegistryClient, error: impl ToString) -> ContainerError {
    ContainerError::Registry {
        registry: client.host.clone(),
        message: error.to_string(),
    }
}

/// Splits `host[:port]/repo/path[:tag]` into the registry host and the
/// repository (without the tag).
pub fn split_reference(reference: &str) -> Result<(String, String), ContainerError> {
    let (host, rest) = reference
        .split_once('/')
        .filter(|(host, _)| host.contains('.') || host.contains(':') || *host == "localhost")
        .ok_or_else(|| ContainerError::BadReference(reference.to_owned()))?;
    let repository = match rest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => rest,
    };
    if repository.is_empty() {
        return Err(ContainerError::BadReference(reference.to_owned()));
    }
    Ok((host.to_owned(), repository.to_owned()))
}

/// The registry host of an image reference (`host[:port]`), or Docker's
/// default registry for a short name.
pub fn registry_host(image: &str) -> String {
    match split_reference(image) {
        Ok((host, _)) => host,
        Err(_) => "docker.io".to_owned(),
    }
}

/// Whether `image` lives on a loopback registry, which is pushed to and
/// read from without TLS verification (Docker's default for 127.0.0.0/8).
pub fn is_loopback_registry(image: &str) -> bool {
    let host = image.split('/').next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}
