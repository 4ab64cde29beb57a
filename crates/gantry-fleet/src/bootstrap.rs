//! `gantry host bootstrap`: installs the running `gantry` binary on a host
//! as its agent and starts it. Idempotent, and never half done: the binary
//! is sent to a temporary name, its SHA-256 checked on the host, and only
//! then renamed over the installed one (a rename is atomic), so an
//! interrupted bootstrap leaves the previous binary (or none) in place.

use std::path::Path;

use gantry_wire::hosts::Bootstrapped;
use sha2::{Digest, Sha256};

use crate::agent::{self, AGENT_BINARY, AGENT_DIR};
use crate::error::FleetError;
use crate::ssh::SshConnection;

/// The SHA-256 of a file, in hex.
pub fn file_sha256(path: &Path) -> Result<String, FleetError> {
    let mut file =
        std::fs::File::open(path).map_err(FleetError::io(format!("reading {}", path.display())))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .map_err(FleetError::io(format!("reading {}", path.display())))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Installs `binary` (whose digest is `sha256`) as the host's agent and
/// makes sure the agent runs.
pub async fn bootstrap(
    connection: &SshConnection,
    binary: &Path,
    sha256: &str,
) -> Result<Bootstrapped, FleetError> {
    let installed = connection
        .run(
            "checking the installed agent",
            &format!(
                "mkdir -p \"$HOME/{AGENT_DIR}/bin\" && chmod 700 \"$HOME/{AGENT_DIR}\" && \
                 {{ sha256sum \"$HOME/{AGENT_BINARY}\" 2>/dev/null || true; }}"
            ),
            None,
        )
        .await?;
    let installed = String::from_utf8_lossy(&installed);
    let copied = installed.split_whitespace().next() != Some(sha256);
    if copied {
        let bytes = tokio::fs::read(binary)
            .await
            .map_err(FleetError::io(format!("reading {}", binary.display())))?;
        let partial = format!("$HOME/{AGENT_BINARY}.partial");
        let sent = connection
            .run(
                "copying the agent",
                &format!(
                    "rm -f \"{partial}\" && {{ cat > \"{partial}\" || {{ rm -f \"{partial}\"; exit 1; }}; }} && sha256sum \"{partial}\""
                ),
                Some(&bytes),
            )
            .await;
        // A copy cut short (a full disk, a killed session) is not left
        // behind where the host's disk holds it.
        let sent = match sent {
            Ok(sent) => sent,
            Err(error) => {
                let _ = connection
                    .run(
                        "removing a partial copy",
                        &format!("rm -f \"{partial}\""),
                        None,
                    )
                    .await;
                return Err(error);
            }
        };
        let sent = String::from_utf8_lossy(&sent);
        let digest = sent.split_whitespace().next().unwrap_or_default();
        if digest != sha256 {
            let _ = connection
                .run("removing a bad copy", &format!("rm -f \"{partial}\""), None)
                .await;
            return Err(FleetError::Remote {
                host: connection.host().to_owned(),
                what: "copying the agent".into(),
                cause: format!("the copy's SHA-256 is {digest:?}, not {sha256}; removed"),
            });
        }
        // The old agent (if any) runs the replaced binary: it is asked to
        // leave, and the next request starts the new one.
        connection
            .run(
                "installing the agent",
                &format!(
                    "chmod 755 \"{partial}\" && mv -f \"{partial}\" \"$HOME/{AGENT_BINARY}\" && \
                     {{ [ -f \"$HOME/{AGENT_DIR}/agent.pid\" ] && kill \"$(cat \"$HOME/{AGENT_DIR}/agent.pid\")\" 2>/dev/null; sleep 0.2; true; }}"
                ),
                None,
            )
            .await?;
    }
    let status = agent::client::status(connection).await?;
    Ok(Bootstrapped {
        host: connection.host().to_owned(),
        copied,
        sha256: sha256.to_owned(),
        agent_version: status.version,
    })
}
