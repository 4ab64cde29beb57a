//! `hosts:`: the machines the `ssh` provider deploys to. Each names how to
//! reach it (`address`, `port`, `user`), the secret-store secret holding the
//! private key (`key`), the host's public key pinned (`hostKey`: a host
//! presenting any other key is refused, never trusted on first use) and the
//! `labels` a cluster's `placement` selects hosts by.

#[cfg(test)]
mod tests;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::check::{Checker, Fields};
use crate::yaml::Node;

/// The SSH host key types `hostKey` may name (OpenSSH's public key line).
pub const HOST_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
];

/// A host of `hosts:`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Host {
    pub name: String,
    /// An IP address or a DNS name the server reaches the host at; the
    /// load balancer routes to instances there too.
    pub address: String,
    #[serde(default = "default_ssh_port")]
    pub port: u16,
    pub user: String,
    /// The secret-store secret holding the private key (OpenSSH format).
    pub key: String,
    /// The host's public key, `TYPE BASE64` as in `ssh_host_*_key.pub`.
    pub host_key: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

pub fn default_ssh_port() -> u16 {
    22
}

/// `hosts:`, each checked with every problem reported at its position.
pub(crate) fn check_hosts(cx: &mut Checker<'_>, items: &[Node]) -> Json {
    let mut names = Vec::new();
    let mut out = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some(mut f) = Fields::new(cx, item, format!("host {}", index + 1)) else {
            continue;
        };
        if let Some((name, node)) = f.required_string(cx, "name") {
            f.rename(format!("host {name:?}"));
            check_host_name(cx, node, name);
            names.push((name, node));
        }
        if let Some((address, node)) = f.required_string(cx, "address")
            && (address.is_empty() || address.chars().any(|c| c.is_whitespace() || c == '@'))
        {
            cx.error(
                node.span.start,
                format!(
                    "{}: \"address\" must be an IP address or a host name, not {address:?}",
                    f.what
                ),
            );
        }
        if let Some(node) = f.get("port") {
            match f.count(cx, "port") {
                Some(port) if (1..=65535).contains(&port) => {}
                Some(port) => cx.error(
                    node.span.start,
                    format!("{}: port must be from 1 to 65535, not {port}", f.what),
                ),
                None => {}
            }
        }
        if let Some((user, node)) = f.required_string(cx, "user")
            && !is_unix_user(user)
        {
            cx.error(
                node.span.start,
                format!("{}: \"user\" {user:?} is not a Unix user name", f.what),
            );
        }
        f.required_string(cx, "key");
        if let Some((host_key, node)) = f.required_string(cx, "hostKey")
            && let Err(problem) = check_host_key(host_key)
        {
            cx.error(
                node.span.start,
                format!("{}: \"hostKey\" {problem}", f.what),
            );
        }
        f.strings(cx, "labels");
        out.push(f.finish(cx, true));
    }
    crate::pipeline::report_duplicates(cx, &names, "host name");
    Json::Array(out)
}

fn check_host_name(cx: &mut Checker<'_>, node: &Node, name: &str) {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with(['-', '.']);
    if !ok {
        cx.error(
            node.span.start,
            format!("host name {name:?} must be 1 to 63 letters, digits, '-', '_' or '.'"),
        );
    }
}

fn is_unix_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 32
        && !user.starts_with('-')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Checks a public key line `TYPE BASE64 [comment]`: a known type whose
/// decoded key names that same type (what sshd's `.pub` files hold).
pub fn check_host_key(line: &str) -> Result<(), String> {
    let mut parts = line.split_whitespace();
    let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
        return Err(
            "must be a public key line like \"ssh-ed25519 AAAA…\" (the host's ssh_host_*_key.pub)"
                .into(),
        );
    };
    if !HOST_KEY_TYPES.contains(&kind) {
        return Err(format!(
            "has key type {kind:?}; expected one of {}",
            HOST_KEY_TYPES.join(", ")
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|e| format!("is not valid base64 after {kind:?}: {e}"))?;
    // The wire form starts with the type as an SSH string: a u32 length,
    // then the name.
    let named = bytes
        .get(0..4)
        .map(|n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize)
        .and_then(|len| bytes.get(4..4 + len));
    if named != Some(kind.as_bytes()) {
        return Err(format!("is not a {kind} key (its data names another type)"));
    }
    Ok(())
}
