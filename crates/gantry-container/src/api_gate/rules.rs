//! What a build may ask of the host's engine through its Docker API: the same allow-list
//! the docker builder's command line is held to (`build`, `tag`, `push`, `pull`, `images`,
//! `version`, `info`), checked per request. Anything that would run a container, mount or
//! read a host path, or change the engine beyond images is refused, naming the call.

/// Why a request is refused; the docker CLI prints the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "gantry: the docker builder may not call {method} {path}: {why}; it may build, tag, push, pull and list images, and ask the engine's version and info"
)]
pub struct Refusal {
    pub method: String,
    pub path: String,
    pub why: String,
}

/// What to do with an allowed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// Forward it as it is.
    AsIs,
    /// A build: forward it with Gantry's label added to the image (so `pruneImages` finds
    /// it, as it finds a bake's).
    Build,
}

/// Decides on one request: `path` as sent (an API version prefix `/v1.41` is allowed),
/// `query` without its `?`.
pub fn decide(method: &str, path: &str, query: Option<&str>) -> Result<Allowed, Refusal> {
    let refuse = |why: &str| Refusal {
        method: method.to_owned(),
        path: path.to_owned(),
        why: why.to_owned(),
    };
    let bare = without_version(path);
    let read = matches!(method, "GET" | "HEAD");
    let images_call = |suffix: &str| {
        bare.strip_prefix("/images/")
            .and_then(|rest| rest.strip_suffix(suffix))
            .is_some_and(|name| !name.is_empty())
    };
    match bare {
        "/_ping" | "/version" | "/info" if read => Ok(Allowed::AsIs),
        "/images/json" | "/images/search" if read => Ok(Allowed::AsIs),
        _ if read && (images_call("/json") || images_call("/history")) => Ok(Allowed::AsIs),
        _ if read && bare.starts_with("/distribution/") && bare.ends_with("/json") => {
            Ok(Allowed::AsIs)
        }
        "/build" if method == "POST" => {
            for (key, value) in pairs(query) {
                match key.as_str() {
                    "remote" => {
                        return Err(refuse(
                            "a build's context comes from the workspace, not from a remote URL the engine fetches",
                        ));
                    }
                    "networkmode" if value == "host" || value.starts_with("container:") => {
                        return Err(refuse(
                            "a build may not use the host's network or another container's",
                        ));
                    }
                    _ => {}
                }
            }
            Ok(Allowed::Build)
        }
        "/images/create" if method == "POST" => {
            if pairs(query).any(|(key, _)| key == "fromSrc") {
                return Err(refuse(
                    "importing an image from a file or URL reads what the engine can reach",
                ));
            }
            Ok(Allowed::AsIs)
        }
        "/auth" if method == "POST" => Ok(Allowed::AsIs),
        _ if method == "POST" && (images_call("/tag") || images_call("/push")) => Ok(Allowed::AsIs),
        "/session" | "/grpc" => Err(refuse(
            "BuildKit sessions are not offered: the classic builder runs builds (DOCKER_BUILDKIT=0)",
        )),
        _ if bare.starts_with("/containers") || bare.starts_with("/exec") => Err(refuse(
            "it would run or enter a container on the host's engine",
        )),
        _ if bare.starts_with("/volumes") => Err(refuse("volumes live on the host")),
        _ if method == "DELETE" => Err(refuse("the builder does not remove what the engine holds")),
        _ => Err(refuse("not on the allow-list")),
    }
}

/// `/v1.41/build` → `/build`.
fn without_version(path: &str) -> &str {
    let Some(rest) = path.strip_prefix("/v") else {
        return path;
    };
    match rest.find('/') {
        Some(end) if rest[..end].chars().all(|c| c.is_ascii_digit() || c == '.') && end > 0 => {
            &rest[end..]
        }
        _ => path,
    }
}

fn pairs(query: Option<&str>) -> impl Iterator<Item = (String, String)> + '_ {
    query
        .into_iter()
        .flat_map(|q| reqwest::Url::parse(&format!("http://gate/?{q}")).ok())
        .flat_map(|url| {
            url.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect::<Vec<_>>()
        })
}

/// A build's query with Gantry's label added to its `labels` (a JSON map).
pub fn labelled_build_query(query: Option<&str>) -> String {
    let mut labels = serde_json::Map::new();
    let mut others = Vec::new();
    for (key, value) in pairs(query) {
        if key == "labels" {
            if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&value) {
                labels = map;
            }
        } else {
            others.push((key, value));
        }
    }
    labels.insert(crate::labels::BUILT.to_owned(), "true".into());
    let mut url = reqwest::Url::parse("http://gate/build").expect("a fixed URL");
    {
        let mut query = url.query_pairs_mut();
        for (key, value) in &others {
            query.append_pair(key, value);
        }
        query.append_pair("labels", &serde_json::Value::Object(labels).to_string());
    }
    url.query().unwrap_or_default().to_owned()
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
