//! A server group's release directory on a host: the artifact sent over
//! the host's SSH connection as a tar stream and unpacked into a
//! temporary directory, which is renamed into place only once complete,
//! so a copy cut half way is never run.

use std::path::Path;

use crate::agent::AGENT_DIR;
use crate::error::FleetError;
use crate::ssh::SshConnection;

/// Puts the artifact (a directory or a tarball on this machine) in the
/// group's release directory on the host, once; returns the directory's
/// absolute path there.
pub async fn prepare(
    connection: &SshConnection,
    group: &str,
    artifact: Option<&Path>,
) -> Result<String, FleetError> {
    let dir = format!("\"$HOME/{AGENT_DIR}/releases/{group}\"");
    let partial = format!("\"$HOME/{AGENT_DIR}/releases/{group}.partial\"");
    let done = format!("[ -f {dir}/.complete ] && {{ cd {dir} && pwd; exit 0; }}");
    // Asked first, so that an artifact the host has is not sent again.
    let present = connection
        .run(
            &format!("looking for the release of {group}"),
            &format!("{done}; true"),
            None,
        )
        .await?;
    let present = String::from_utf8_lossy(&present).trim().to_owned();
    if !present.is_empty() {
        return Ok(present);
    }
    let (unpack, bytes) = match artifact {
        None => (String::from("true"), None),
        Some(path) => {
            let (flags, bytes) = archive(path)?;
            // A full disk stops tar half way (GNU tar then reports a short
            // write, not ENOSPC): the partial tree goes, and the free space
            // left is told so the cause is plain.
            (
                format!(
                    "{{ tar -x {flags} -C {partial} || {{ rm -rf {partial}; \
                     echo \"$(df -Pk {partial}/.. | awk 'NR==2 {{print $4}}') KiB free on the host's disk where releases are unpacked\" >&2; exit 1; }}; }}"
                ),
                Some(bytes),
            )
        }
    };
    let script = format!(
        "{done}; rm -rf {partial} && mkdir -p {partial} && {unpack} && touch {partial}/.complete && \
         rm -rf {dir} && mv {partial} {dir} && cd {dir} && pwd"
    );
    let output = connection
        .run(
            &format!("unpacking the release of {group}"),
            &script,
            bytes.as_deref(),
        )
        .await?;
    Ok(String::from_utf8_lossy(&output).trim().to_owned())
}

/// The artifact as a tar stream, and the flags `tar -x` reads it with.
fn archive(path: &Path) -> Result<(&'static str, Vec<u8>), FleetError> {
    let read = FleetError::io(format!("reading artifact {}", path.display()));
    if path.is_dir() {
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        builder.append_dir_all(".", path).map_err(read)?;
        let bytes = builder.into_inner().map_err(FleetError::io(format!(
            "packing artifact {}",
            path.display()
        )))?;
        return Ok(("", bytes));
    }
    let bytes = std::fs::read(path).map_err(read)?;
    let flags = match bytes.get(..6) {
        Some([0x1f, 0x8b, ..]) => "-z",
        Some([0xfd, b'7', b'z', b'X', b'Z', 0x00]) => "-J",
        _ => "",
    };
    Ok((flags, bytes))
}
